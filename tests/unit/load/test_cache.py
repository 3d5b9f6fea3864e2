"""The manifest cache: warm runs equal cold ones, minus plaintext; anything stale misses."""

from __future__ import annotations

import ast
import base64
import dataclasses
import hashlib
import hmac
import inspect
import json
import multiprocessing
import os
import pickle
import shutil
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from reconciler import commands
from reconciler.crypto.fingerprint import Fingerprinter
from reconciler.errors import ConfigError
from reconciler.load import cache as cache_module
from reconciler.load.cache import CachedFile
from reconciler.load.cache_file import LoadCache
from reconciler.load.stage import load_desired_state
from reconciler.model.desired import DesiredIntegration, DesiredState, DesiredWebhook
from reconciler.sops import load_identities

REPO = Path(__file__).resolve().parents[3]
DEMO_KEY = REPO / "examples" / "demo-keys" / "age-key.txt"


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(DEMO_KEY))
    shutil.copytree(REPO / "manifests", tmp_path / "manifests")
    monkeypatch.chdir(tmp_path)
    return tmp_path / "manifests"


def _load(root: Path, fp: Fingerprinter, cache_dir: Path) -> tuple[DesiredState, LoadCache]:
    cache = LoadCache.open(cache_dir, fp.fingerprint("ns"))
    result = load_desired_state(root, identities=load_identities(), fingerprint=fp, cache=cache)
    assert result.state is not None, [d.format() for d in result.diagnostics]
    return result.state, cache


def _secrets(state: DesiredState) -> list[tuple[str, str | None, bool]]:
    out: list[tuple[str, str | None, bool]] = []
    objects: list[DesiredIntegration | DesiredWebhook] = [*state.integrations, *state.webhooks]
    for obj in objects:
        for name in ("api_key", "api_secret", "signing_secret", "auth_token", "auth_password"):
            secret = getattr(obj, name, None)
            if secret is not None:
                out.append((f"{obj.source.path}:{name}", secret.fingerprint, secret.value is None))
    return out


def test_warm_run_equals_cold_run_without_plaintext(tree: Path, tmp_path: Path) -> None:
    fp = Fingerprinter(b"k" * 32)
    cold, cache = _load(tree, fp, tmp_path / "c")
    assert cache.path.exists() and len(cache.entries) == 9
    warm, _ = _load(tree, fp, tmp_path / "c")
    assert [(n, f) for n, f, _ in _secrets(warm)] == [(n, f) for n, f, _ in _secrets(cold)]
    assert all(hidden for _, _, hidden in _secrets(warm))
    assert not any(hidden for _, _, hidden in _secrets(cold))

    def strip(s: DesiredState) -> tuple[int, int, object, object]:
        return (len(s.integrations), len(s.webhooks), s.oauth_accounts, s.tenants)

    assert strip(warm) == strip(cold) and warm.manifests_digest == cold.manifests_digest
    # Nothing secret is written: only fingerprints.
    blob = cache.path.read_bytes()
    for obj in cold.integrations:
        if obj.api_key is not None and obj.api_key.value is not None:
            assert obj.api_key.value.reveal().encode() not in blob


def test_changed_file_misses_alone(tree: Path, tmp_path: Path) -> None:
    fp = Fingerprinter(b"k" * 32)
    _load(tree, fp, tmp_path / "c")
    target = tree / "tenants" / "initech-health" / "stripe.yaml"
    target.write_text(target.read_text().replace("interval_minutes: 60", "interval_minutes: 61"))
    warm, _ = _load(tree, fp, tmp_path / "c")
    fresh = [n for n, _, hidden in _secrets(warm) if not hidden]
    assert fresh and all(
        n.startswith("manifests/tenants/initech-health/stripe.yaml") for n in fresh
    )


def test_new_code_or_another_key_or_a_forged_file_misses(
    tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fp = Fingerprinter(b"k" * 32)
    _, cache = _load(tree, fp, tmp_path / "c")
    other, other_cache = _load(tree, Fingerprinter(b"o" * 32), tmp_path / "c")
    assert other_cache.path != cache.path and not any(h for _, _, h in _secrets(other))

    blob = bytearray(cache.path.read_bytes())
    blob[-10] ^= 1  # one flipped bit in the last entry: its tag no longer matches
    cache.path.write_bytes(bytes(blob))
    reopened = LoadCache.open(tmp_path / "c", fp.fingerprint("ns"))
    assert (reopened.unauthentic, len(reopened.entries)) == (1, 8)
    (edited,) = set(cache.entries) - set(reopened.entries)
    forged, _ = _load(tree, fp, tmp_path / "c")
    fresh = {n.partition(":")[0] for n, _, hidden in _secrets(forged) if not hidden}
    assert fresh == {f"manifests/{edited}"}  # only the edited entry missed; the rest hit

    _load(tree, fp, tmp_path / "c")  # warm again
    monkeypatch.setattr(cache_module, "code_fingerprint", lambda: b"another release")
    upgraded, _ = _load(tree, fp, tmp_path / "c")
    assert not any(hidden for _, _, hidden in _secrets(upgraded))


def test_files_with_warnings_are_not_cached(tree: Path, tmp_path: Path) -> None:
    target = tree / "tenants" / "initech-health" / "quickbooks.yaml"
    text = target.read_text()
    assert "interval_minutes: 15" in text
    target.write_text(text.replace("interval_minutes: 15", "interval_minutes: 2", 1))
    fp = Fingerprinter(b"k" * 32)
    for _ in range(2):  # the warning is reported on the warm run too
        cache = LoadCache.open(tmp_path / "c", fp.fingerprint("ns"))
        result = load_desired_state(tree, identities=load_identities(), fingerprint=fp, cache=cache)
        assert [d.code for d in result.diagnostics] == ["RCN-SYNC-2"]
    assert "tenants/initech-health/quickbooks.yaml" not in cache.entries
    assert "tenants/initech-health/stripe.yaml" in cache.entries


def test_entries_of_deleted_files_are_dropped(tree: Path, tmp_path: Path) -> None:
    fp = Fingerprinter(b"k" * 32)
    _load(tree, fp, tmp_path / "c")
    (tree / "tenants" / "initech-health" / "quickbooks.yaml").unlink()
    _, cache = _load(tree, fp, tmp_path / "c")
    reopened = LoadCache.open(tmp_path / "c", fp.fingerprint("ns"))
    assert "tenants/initech-health/quickbooks.yaml" not in reopened.entries
    assert len(reopened.entries) == len(cache.entries) == 8


# -- integrity: nothing in the cache directory is trusted without the directory's own key --

ATTACKER_URL = "https://attacker.example/hook"


def _tampered(cache: LoadCache) -> dict[str, tuple[bytes, CachedFile]]:
    """The cache's entries with every webhook pointed at the attacker."""
    out = {}
    for rel, (key, value) in cache.entries.items():
        hooks = tuple((*w[:5], ATTACKER_URL, *w[6:]) for w in value.webhooks)
        out[rel] = (key, dataclasses.replace(value, webhooks=hooks))
    return out


def _urls(state: DesiredState) -> set[str]:
    return {w.endpoint_url for w in state.webhooks}


def _derivable_keys(fp_key: bytes, namespace: str) -> list[bytes]:
    """Every MAC key someone holding only the fingerprint key could compute."""
    return [
        hashlib.sha256(b"reconciler/load-cache/mac\0" + namespace.encode()).digest(),
        namespace.encode(),
        bytes.fromhex(namespace),
        fp_key,
        hashlib.sha256(fp_key).digest(),
    ]


def _write_v2(path: Path, namespace: str, payload: bytes) -> None:
    """A cache file as release 2 wrote it, authenticated the way release 2 did."""
    body = b"reconciler-load-cache/2\n" + payload
    mac_key = hashlib.sha256(b"reconciler/load-cache/mac\0" + namespace.encode()).digest()
    path.write_bytes(hmac.new(mac_key, body, hashlib.sha256).digest() + body)


def _line(mac_key: bytes, namespace: str, entry: object) -> bytes:
    payload = json.dumps(entry, separators=(",", ":")).encode()
    prefix = cache_module.FORMAT + namespace.encode() + b"\n"
    return hmac.new(mac_key, prefix + payload, hashlib.sha256).hexdigest().encode() + b" " + payload


def _entry(rel: str, key: bytes, value: CachedFile) -> list[object]:
    return [
        rel,
        key.hex(),
        value.tenant,
        value.integrations,
        value.webhooks,
        value.accounts,
        value.endpoints,
        value.chain,
    ]


def _plain_entry(cache: LoadCache, rel: str) -> list[Any]:
    """The entry of ``rel`` as the JSON values it is written as (lists, not tuples)."""
    key, value = cache.entries[rel]
    entry: list[Any] = json.loads(json.dumps(_entry(rel, key, value)))
    return entry


def test_fingerprint_key_holder_cannot_forge_the_cache(tree: Path, tmp_path: Path) -> None:
    fp_key = b"k" * 32
    fp = Fingerprinter(fp_key)
    namespace = fp.fingerprint("ns")  # computable by anyone holding the fingerprint key
    cold, cache = _load(tree, fp, tmp_path / "c")
    assert ATTACKER_URL not in _urls(cold)
    forged = _tampered(cache)

    # The previous format, with its MAC key derived from the fingerprint key.
    _write_v2(cache.path, namespace, pickle.dumps(forged))
    warm, _ = _load(tree, fp, tmp_path / "c")
    assert ATTACKER_URL not in _urls(warm)

    # The current format, tagged with every key derivable from the fingerprint key.
    for mac_key in _derivable_keys(fp_key, namespace):
        lines = [_line(mac_key, namespace, _entry(r, k, v)) for r, (k, v) in forged.items()]
        cache.path.write_bytes(cache_module.FORMAT + b"\n".join(lines) + b"\n")
        reopened = LoadCache.open(tmp_path / "c", namespace)
        assert (reopened.entries, reopened.unauthentic) == ({}, len(forged))
        warm, _ = _load(tree, fp, tmp_path / "c")
        assert ATTACKER_URL not in _urls(warm)

    # The same lines under the directory's own key are accepted: the key is what matters.
    assert cache.mac_key is not None
    lines = [_line(cache.mac_key, namespace, _entry(r, k, v)) for r, (k, v) in forged.items()]
    cache.path.write_bytes(cache_module.FORMAT + b"\n".join(lines) + b"\n")
    assert ATTACKER_URL in _urls(_load(tree, fp, tmp_path / "c")[0])


class _Payload:
    """A pickle that creates a file when loaded."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.marker), "w"))


def test_a_planted_pickle_is_never_loaded(tree: Path, tmp_path: Path) -> None:
    fp = Fingerprinter(b"k" * 32)
    namespace = fp.fingerprint("ns")
    _, cache = _load(tree, fp, tmp_path / "c")
    marker = tmp_path / "pwned"
    payload = pickle.dumps({"x": _Payload(marker)})
    plants = [
        None,  # authenticated the way release 2 did: see _write_v2
        payload,
        cache_module.FORMAT + payload,
        cache_module.FORMAT + b"0" * 64 + b" " + payload + b"\n",
    ]
    for plant in plants:
        if plant is None:
            _write_v2(cache.path, namespace, payload)
        else:
            cache.path.write_bytes(plant)
        state, reopened = _load(tree, fp, tmp_path / "c")
        assert not marker.exists()
        assert len(state.integrations) and len(reopened.entries) == 9
    module = ast.parse(inspect.getsource(cache_module))
    imported = {a.name for n in ast.walk(module) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module for n in ast.walk(module) if isinstance(n, ast.ImportFrom) and n.module}
    assert not imported & {"pickle", "marshal", "shelve", "dill", "cloudpickle"}


def test_an_old_format_file_is_ignored_with_a_notice_and_rewritten(
    tree: Path, tmp_path: Path
) -> None:
    fp = Fingerprinter(b"k" * 32)
    namespace = fp.fingerprint("ns")
    cache_dir = tmp_path / "c"
    cache_dir.mkdir()
    path = cache_dir / f"manifests-{namespace[:16]}.cache"
    _write_v2(path, namespace, pickle.dumps({}))
    reopened = LoadCache.open(cache_dir, namespace)
    assert reopened.entries == {} and reopened.ignored == 0
    (notice,) = reopened.report()
    assert "not in the format reconciler-load-cache/3" in notice and str(path) in notice
    _load(tree, fp, cache_dir)
    assert path.read_bytes().startswith(cache_module.FORMAT)
    assert LoadCache.open(cache_dir, namespace).report() == []


def test_corrupt_or_wrongly_typed_entries_are_ignored_and_counted(
    tree: Path, tmp_path: Path
) -> None:
    fp = Fingerprinter(b"k" * 32)
    namespace = fp.fingerprint("ns")
    cold, cache = _load(tree, fp, tmp_path / "c")
    assert cache.mac_key is not None
    good = cache.path.read_bytes().splitlines()[1:]
    rels = list(cache.entries)

    def signed(i: int, change: Callable[[list[Any]], object]) -> bytes:
        assert cache.mac_key is not None
        return _line(cache.mac_key, namespace, change(_plain_entry(cache, rels[i])))

    def at(entry: list[Any], path: tuple[int, ...], value: object) -> list[Any]:
        target = entry
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = value
        return entry

    hooked = next(i for i, r in enumerate(rels) if cache.entries[r][1].webhooks)
    malformed = [
        signed(0, lambda e: at(e, (3, 0, 1), "NOT_A_PLATFORM")),  # KeyError on decode before
        signed(1, lambda e: at(e, (3, 0, 4), "yes")),  # a string where a bool belongs
        signed(2, lambda e: at(e, (3, 0), e[3][0][:-1])),  # a row one field short
        signed(hooked, lambda e: at(e, (4, 0, 11), "5")),  # max_attempts as text
        signed(4, lambda e: {"rel": e[0]}),  # an object, not an entry
        signed(5, lambda e: at(e, (1,), "zz" * 32)),  # a lookup key that is not hex
    ]
    unauthentic = [
        good[6][:-20] + b"x" * 20,  # edited payload
        good[7][:100],  # truncated
        b"not a cache line",
    ]
    body = [*malformed, *unauthentic, good[8]]
    cache.path.write_bytes(cache_module.FORMAT + b"\n".join(body))  # no final newline
    reopened = LoadCache.open(tmp_path / "c", namespace)
    assert (reopened.malformed, reopened.unauthentic) == (len(malformed), len(unauthentic))
    assert list(reopened.entries) == [rels[8]]
    assert len(reopened.report()) == 2

    warm, after = _load(tree, fp, tmp_path / "c")
    hidden = {n.partition(":")[0] for n, _, h in _secrets(warm) if h}
    assert hidden == {f"manifests/{rels[8]}"}  # the one intact entry still hit
    assert [(n, f) for n, f, _ in _secrets(warm)] == [(n, f) for n, f, _ in _secrets(cold)]
    assert after.ignored == len(malformed) + len(unauthentic)
    clean = LoadCache.open(tmp_path / "c", namespace)  # rewritten without them
    assert (clean.ignored, len(clean.entries)) == (0, 9)


def test_an_integer_beyond_64_bits_is_read_exactly(tree: Path, tmp_path: Path) -> None:
    # The cache gives back what json.loads gives: such an entry is neither ignored nor
    # rounded to a float (as some fast JSON parsers do).
    fp = Fingerprinter(b"k" * 32)
    namespace = fp.fingerprint("ns")
    _, cache = _load(tree, fp, tmp_path / "c")
    assert cache.mac_key is not None
    rel = next(r for r, (_, value) in cache.entries.items() if value.webhooks)
    entry = _plain_entry(cache, rel)
    entry[4][0][11] = 2**70  # max_attempts
    cache.path.write_bytes(cache_module.FORMAT + _line(cache.mac_key, namespace, entry) + b"\n")
    reopened = LoadCache.open(tmp_path / "c", namespace)
    assert reopened.ignored == 0
    assert reopened.entries[rel][1].webhooks[0][11] == 2**70


def test_ignored_entries_are_reported_on_stderr(
    tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fp = Fingerprinter(b"k" * 32)
    monkeypatch.setenv("RECONCILER_CACHE_DIR", str(tmp_path / "c"))
    monkeypatch.setenv("RECONCILER_DATA_DIR", str(tmp_path / "data"))
    commands.load_desired(tree, commands.ALL, fp, commands.Progress())
    (path,) = (tmp_path / "c").glob("manifests-*.cache")
    lines = path.read_bytes().split(b"\n")
    lines[1] = b"0" * 64 + lines[1][64:]
    path.write_bytes(b"\n".join(lines))
    capsys.readouterr()
    commands.load_desired(tree, commands.ALL, fp, commands.Progress())
    err = capsys.readouterr().err
    assert f"manifest cache {path}: 1 entry ignored: failed authentication\n" in err


# -- the key file --------------------------------------------------------------------------


def test_the_key_is_random_private_and_created_once(tmp_path: Path) -> None:
    directory = tmp_path / "data" / "cache"
    first = LoadCache.open(directory, "ab" * 32)
    key_file = directory / cache_module.KEY_FILE_NAME
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert first.mac_key == key_file.read_bytes() and len(first.mac_key) == 32
    assert LoadCache.open(directory, "cd" * 32).mac_key == first.mac_key  # shared, not remade
    assert LoadCache.open(tmp_path / "other", "ab" * 32).mac_key != first.mac_key
    assert [p.name for p in directory.iterdir()] == [cache_module.KEY_FILE_NAME]


def _open_key(directory: str) -> bytes | None:
    return LoadCache.open(Path(directory), "ab" * 32).mac_key


def test_concurrent_first_runs_agree_on_one_key(tmp_path: Path) -> None:
    directory = tmp_path / "cache"
    with multiprocessing.get_context("fork").Pool(6) as pool:
        keys = pool.map(_open_key, [str(directory)] * 24)
    assert keys[0] is not None and set(keys) == {keys[0]}
    assert (directory / cache_module.KEY_FILE_NAME).read_bytes() == keys[0]


@pytest.mark.parametrize(
    ("spoil", "expected"),
    [
        (lambda p: p.chmod(0o640), "is open to group or others (mode 0640"),
        (lambda p: p.chmod(0o604), "is open to group or others (mode 0604"),
        (lambda p: p.write_bytes(b"short"), "is not 32 bytes long"),
        (lambda p: p.write_bytes(b"k" * 33), "is not 32 bytes long"),
    ],
)
def test_an_unusable_key_file_turns_the_cache_off(
    tree: Path, tmp_path: Path, spoil: Callable[[Path], None], expected: str
) -> None:
    fp = Fingerprinter(b"k" * 32)
    _, cache = _load(tree, fp, tmp_path / "c")
    before = cache.path.read_bytes()
    spoil(tmp_path / "c" / cache_module.KEY_FILE_NAME)
    state, off = _load(tree, fp, tmp_path / "c")
    assert off.mac_key is None and off.entries == {}
    (notice,) = off.report()
    assert notice.startswith("manifest cache off for this run: ") and expected in notice
    assert not any(hidden for _, _, hidden in _secrets(state))  # nothing came from the cache
    assert cache.path.read_bytes() == before  # and nothing was written


def test_a_symlinked_key_file_is_not_followed(tmp_path: Path) -> None:
    directory = tmp_path / "c"
    directory.mkdir(mode=0o700)
    target = tmp_path / "elsewhere"
    target.write_bytes(b"k" * 32)
    target.chmod(0o600)
    (directory / cache_module.KEY_FILE_NAME).symlink_to(target)
    off = LoadCache.open(directory, "ab" * 32)
    assert off.mac_key is None and off.report()[0].startswith("manifest cache off for this run")


def test_a_restored_cache_directory_does_not_bring_its_key(
    tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Restoring ``.reconciler/cache`` (a CI cache) brings entries, never the key to trust them."""
    fp = Fingerprinter(b"k" * 32)
    restored = tmp_path / "writer" / "cache"
    monkeypatch.setenv("RECONCILER_DATA_DIR", str(tmp_path / "writer"))
    monkeypatch.setenv("RECONCILER_CACHE_DIR", str(restored))
    commands.load_desired(tree, commands.ALL, fp, commands.Progress())
    assert (tmp_path / "writer" / cache_module.KEY_FILE_NAME).exists()
    assert not (restored / cache_module.KEY_FILE_NAME).exists()

    monkeypatch.setenv("RECONCILER_DATA_DIR", str(tmp_path / "reader"))
    cache = commands.open_load_cache(fp, dict(os.environ))
    assert cache is not None
    assert cache.entries == {} and cache.unauthentic == 9


def test_jobs_sharing_the_cache_key_share_entries(
    tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fp = Fingerprinter(b"k" * 32)
    shared = base64.b64encode(b"s" * 32).decode()
    env = {"RECONCILER_CACHE_KEY": shared, "RECONCILER_CACHE_DIR": str(tmp_path / "c")}
    first = commands.open_load_cache(fp, {**env, "RECONCILER_DATA_DIR": str(tmp_path / "a")})
    assert first is not None
    load_desired_state(tree, identities=load_identities(), fingerprint=fp, cache=first)
    first.save()
    second = commands.open_load_cache(fp, {**env, "RECONCILER_DATA_DIR": str(tmp_path / "b")})
    assert second is not None and len(second.entries) == 9 and second.ignored == 0
    assert not (tmp_path / "a" / cache_module.KEY_FILE_NAME).exists()


@pytest.mark.parametrize("value", ["not base64!", "c2hvcnQ="])
def test_an_unusable_cache_key_variable_is_a_one_line_error(value: str) -> None:
    with pytest.raises(
        ConfigError, match=r"^\$RECONCILER_CACHE_KEY (is not valid base64|decodes to 5 bytes)"
    ):
        commands.open_load_cache(Fingerprinter(b"k" * 32), {"RECONCILER_CACHE_KEY": value})
