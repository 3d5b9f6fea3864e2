"""Mutated example manifests never crash the loader and never leak a secret.

The corpus is the example repository (``manifests/``, encrypted to the demo key), mutated by
hypothesis in the ways real files go wrong or are made to: byte edits, broken ``ENC[...]``
values (data, iv, tag, type), edited or missing sops metadata, values replaced by other
types and deep nesting, other encodings. Every mutant is validated in-process and rendered
in every diagnostic format; each run must end in diagnostics, never an exception, and no
output may contain a plaintext secret of the corpus.

The search is derandomized and bounded (``FUZZ_EXAMPLES``, default 150 per strategy) so the
suite stays fast and repeatable; raise it locally for a deeper search.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.load.validate import validate_manifests
from reconciler.render.diagnostics import RENDERERS
from reconciler.sops.age import Identities, load_identities
from tests.e2e.workspace import sops_binary

REPO = Path(__file__).resolve().parents[2]
DEMO_KEY = REPO / "examples" / "demo-keys" / "age-key.txt"
SEEDS = sorted(p.relative_to(REPO / "manifests") for p in (REPO / "manifests").rglob("*.yaml"))
SECRET_FIELDS = {"api_key", "api_secret", "signing_secret", "auth_token", "auth_password"}
ENC = re.compile(r"ENC\[AES256_GCM,[^\]]*\]")

FUZZ = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "150")),
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _secrets_in(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in SECRET_FIELDS and isinstance(value, str):
                yield value
            else:
                yield from _secrets_in(value)
    elif isinstance(node, list):
        for item in node:
            yield from _secrets_in(item)


@pytest.fixture(scope="module")
def plaintexts() -> frozenset[str]:
    """Every secret of the corpus, decrypted by the real sops binary."""
    env = {**os.environ, "SOPS_AGE_KEY_FILE": str(DEMO_KEY), "SOPS_DISABLE_VERSION_CHECK": "1"}
    found: set[str] = set()
    for seed in SEEDS:
        text = (REPO / "manifests" / seed).read_text()
        if "ENC[" not in text:
            continue
        out = subprocess.run(
            [sops_binary(), "decrypt", "--output-type", "json", str(REPO / "manifests" / seed)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        found.update(_secrets_in(json.loads(out)))
    assert found, "the corpus has no secrets to look for"
    return frozenset(found)


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fuzz") / "manifests"
    shutil.copytree(REPO / "manifests", root)
    return root


@pytest.fixture(scope="module")
def identities() -> Identities:
    return load_identities({"SOPS_AGE_KEY_FILE": str(DEMO_KEY)})


def _check(
    tree: Path, seed: Path, mutant: bytes, plaintexts: frozenset[str], ids: Identities
) -> None:
    target = tree / seed
    original = target.read_bytes()
    target.write_bytes(mutant)
    try:
        report = validate_manifests(manifests_dir=tree, identities=ids)
        outputs = [render(report) for render in RENDERERS.values()]
    finally:
        target.write_bytes(original)
    for diagnostic in report.diagnostics:
        assert diagnostic.file, diagnostic
        assert "\n" not in diagnostic.message, diagnostic
    for text in outputs:
        for secret in plaintexts:
            assert secret not in text, f"a secret of the corpus was printed for {seed}"


seeds = st.sampled_from(SEEDS)


@st.composite
def byte_edits(draw: st.DrawFn) -> tuple[Path, bytes]:
    seed = draw(seeds)
    data = bytearray((REPO / "manifests" / seed).read_bytes())
    for _ in range(draw(st.integers(1, 8))):
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        op = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "duplicate"]))
        if op == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=12))
        elif op == "delete":
            del data[at : at + draw(st.integers(1, 40))]
        elif op == "truncate":
            del data[at:]
        else:
            data[at:at] = data[at : at + draw(st.integers(1, 200))]
    return seed, bytes(data)


_B64 = st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=", max_size=80)
_ENC_PART = st.one_of(
    st.just(""), st.just("AAAA"), st.just("A"), _B64, st.text(max_size=20), st.just("=" * 3)
)


@st.composite
def enc_edits(draw: st.DrawFn) -> tuple[Path, bytes]:
    seed = draw(
        st.sampled_from([s for s in SEEDS if "ENC[" in (REPO / "manifests" / s).read_text()])
    )
    text = (REPO / "manifests" / seed).read_text()
    values = ENC.findall(text)
    value = draw(st.sampled_from(values))
    parts = dict(p.split(":", 1) for p in value[len("ENC[AES256_GCM,") : -1].split(","))
    for _ in range(draw(st.integers(1, 3))):
        key = draw(st.sampled_from(["data", "iv", "tag", "type", "extra"]))
        action = draw(st.sampled_from(["replace", "drop"]))
        if action == "drop":
            parts.pop(key, None)
        elif key == "type":
            parts[key] = draw(
                st.sampled_from(["str", "bytes", "int", "float", "bool", "comment", ""])
            )
        else:
            parts[key] = draw(_ENC_PART)
    mutated = "ENC[AES256_GCM," + ",".join(f"{k}:{v}" for k, v in parts.items()) + "]"
    return seed, text.replace(value, mutated, 1).encode()


def _load(seed: Path) -> Any:
    return yaml.safe_load((REPO / "manifests" / seed).read_text())


_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["ENC[AES256_GCM,data:,iv:,tag:,type:str]", "sk_live_" + "x" * 24, "~"]),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _paths(value, (*prefix, index))


def _replace(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value
    return doc


@st.composite
def structure_edits(draw: st.DrawFn) -> tuple[Path, bytes]:
    """A node anywhere (sops metadata included) replaced by another type, or nested deeply."""
    seed = draw(seeds)
    doc = _load(seed)
    path = draw(st.sampled_from(list(_paths(doc))))
    kind = draw(st.sampled_from(["value", "deep-list", "deep-map", "drop"]))
    if kind == "value":
        doc = _replace(doc, path, draw(_VALUES))
    elif kind == "drop" and path:
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        del parent[path[-1]]
    else:
        depth = draw(st.integers(10, 400))
        nested: Any = "leaf"
        for _ in range(depth):
            nested = [nested] if kind == "deep-list" else {"k": nested}
        doc = _replace(doc, path, nested)
    return seed, yaml.safe_dump(doc, sort_keys=False).encode()


@st.composite
def encoding_edits(draw: st.DrawFn) -> tuple[Path, bytes]:
    seed = draw(seeds)
    text = (REPO / "manifests" / seed).read_text()
    how = draw(st.sampled_from(["utf-16", "utf-32", "bom", "latin-1", "nul", "crlf", "cr", "tabs"]))
    if how in ("utf-16", "utf-32"):
        return seed, text.encode(how)
    if how == "bom":
        return seed, b"\xef\xbb\xbf" + text.encode()
    if how == "latin-1":
        return seed, (text + "\n# caf\u00e9 \u00ff\n").encode("latin-1")
    if how == "nul":
        at = draw(st.integers(0, len(text)))
        return seed, (text[:at] + "\x00" + text[at:]).encode()
    if how == "crlf":
        return seed, text.replace("\n", "\r\n").encode()
    if how == "cr":
        return seed, text.replace("\n", "\r").encode()
    return seed, text.replace("    ", "\t").encode()


@pytest.mark.parametrize(
    "strategy",
    [byte_edits(), enc_edits(), structure_edits(), encoding_edits()],
    ids=["bytes", "enc-values", "structure", "encodings"],
)
def test_mutants_end_in_diagnostics_without_leaks(
    strategy: st.SearchStrategy[tuple[Path, bytes]],
    tree: Path,
    plaintexts: frozenset[str],
    identities: Identities,
) -> None:
    @FUZZ
    @given(strategy)
    def run(case: tuple[Path, bytes]) -> None:
        _check(tree, case[0], case[1], plaintexts, identities)

    run()


def test_unmutated_corpus_is_valid(tree: Path, identities: Identities) -> None:
    """The seeds themselves load cleanly, so every diagnostic above comes from a mutation."""
    report = validate_manifests(manifests_dir=tree, identities=identities)
    assert report.valid, [d.format() for d in report.diagnostics]


def _first_enc(text: str, **parts: str | None) -> str:
    """``text`` with the first ENC value's parts replaced (``None`` drops a part)."""
    value = ENC.findall(text)[0]
    fields = dict(p.split(":", 1) for p in value[len("ENC[AES256_GCM,") : -1].split(","))
    for key, new in parts.items():
        if new is None:
            fields.pop(key, None)
        else:
            fields[key] = new
    mutated = "ENC[AES256_GCM," + ",".join(f"{k}:{v}" for k, v in fields.items()) + "]"
    return text.replace(value, mutated, 1)


def _edit_yaml(seed: str, edit: Any) -> bytes:
    doc = _load(Path(seed))
    edit(doc)
    return yaml.safe_dump(doc, sort_keys=False).encode()


def _text(seed: str) -> str:
    return (REPO / "manifests" / seed).read_text()


STRIPE = "tenants/acme-robotics/stripe.yaml"
QUICKBOOKS = "tenants/initech-health/quickbooks.yaml"
HUBSPOT_APP = "templates/hubspot-app.yaml"

KNOWN_BAD: dict[str, tuple[str, Callable[[], bytes]]] = {
    "short-iv": (STRIPE, lambda: _first_enc(_text(STRIPE), iv="AAAA").encode()),
    "empty-iv": (STRIPE, lambda: _first_enc(_text(STRIPE), iv="").encode()),
    "no-tag": (STRIPE, lambda: _first_enc(_text(STRIPE), tag=None).encode()),
    "bytes-type": (STRIPE, lambda: _first_enc(_text(STRIPE), type="bytes").encode()),
    "int-type": (STRIPE, lambda: _first_enc(_text(STRIPE), type="int").encode()),
    "empty-mac": (
        STRIPE,
        lambda: _edit_yaml(STRIPE, lambda d: d["sops"].__setitem__("mac", "")),
    ),
    "no-mac": (STRIPE, lambda: _edit_yaml(STRIPE, lambda d: d["sops"].pop("mac"))),
    "template-webhooks-list": (
        HUBSPOT_APP,
        lambda: _edit_yaml(
            HUBSPOT_APP,
            lambda d: d["environments"]["production"].__setitem__("webhooks", ["crm-events"]),
        ),
    ),
    "template-environments-scalar": (
        HUBSPOT_APP,
        lambda: _edit_yaml(HUBSPOT_APP, lambda d: d.__setitem__("environments", "production")),
    ),
    "portal-id-list": (
        "tenants/initech-health/hubspot.yaml",
        lambda: _edit_yaml(
            "tenants/initech-health/hubspot.yaml",
            lambda d: [
                acct.__setitem__("portal_id", [1])
                for env in d["environments"].values()
                for acct in env.get("oauth_accounts") or []
            ],
        ),
    ),
    "app-id-list": (
        QUICKBOOKS,
        lambda: _edit_yaml(
            QUICKBOOKS,
            lambda d: [
                hook.__setitem__("app_id", [1, 2])
                for env in d["environments"].values()
                for hook in (env.get("webhooks") or {}).values()
            ],
        ),
    ),
}


@pytest.mark.parametrize("name", sorted(KNOWN_BAD))
def test_known_bad_inputs_end_in_diagnostics(
    name: str, tree: Path, plaintexts: frozenset[str], identities: Identities
) -> None:
    """Inputs that once raised inside the loader, kept as a fixed corpus."""
    seed, make = KNOWN_BAD[name]
    _check(tree, Path(seed), make(), plaintexts, identities)
    target = tree / seed
    original = target.read_bytes()
    target.write_bytes(make())
    try:
        report = validate_manifests(manifests_dir=tree, identities=identities)
    finally:
        target.write_bytes(original)
    assert not report.valid, name


OUTSIDE_SECRET = "AGE-SECRET-KEY-1" + "Q" * 58


def _special(kind: str, target: Path, outside: Path) -> None:
    target.unlink()
    if kind == "symlink-outside":
        target.symlink_to(outside)
    elif kind == "symlink-dev-zero":
        target.symlink_to("/dev/zero")
    elif kind == "dangling-symlink":
        target.symlink_to(target.parent / "missing.yaml")
    elif kind == "symlink-loop":
        target.symlink_to(target)
    elif kind == "fifo":
        os.mkfifo(target)
    elif kind == "directory":
        target.mkdir()


@pytest.mark.parametrize(
    "kind",
    [
        "symlink-outside",
        "symlink-dev-zero",
        "dangling-symlink",
        "symlink-loop",
        "fifo",
        "directory",
    ],
)
@pytest.mark.parametrize("seed", [STRIPE, HUBSPOT_APP])
def test_special_files_end_in_diagnostics_without_reading_them(
    kind: str, seed: str, tmp_path: Path, identities: Identities
) -> None:
    root = tmp_path / "manifests"
    shutil.copytree(REPO / "manifests", root)
    outside = tmp_path / "keys.txt"
    outside.write_text(f"# created: 2026-01-01\n{OUTSIDE_SECRET}\n")
    _special(kind, root / seed, outside)

    report = validate_manifests(manifests_dir=root, identities=identities)

    assert not report.valid or kind == "directory"
    for render in RENDERERS.values():
        assert OUTSIDE_SECRET[:20] not in render(report)
