"""Data-driven plan cases: manifests + a starting database state -> the expected plan.

Each ``tests/cases/plan/<case>/`` folder holds:

``case.yaml``
    ``description`` (required), and optionally ``prune`` (bool), ``revoke_unmanaged``
    (bool, with ``prune``), ``selectors``
    (``tenants`` / ``platforms`` / ``exclude_tenants`` lists), ``manifests: before`` (plan
    the ``before/`` manifests again instead of a ``manifests/`` folder), ``recipients``
    (how many age recipients the planned manifests are encrypted to; default 1) and
    ``converges: false`` to skip the apply-and-replan check below; ``xfail: <reason>`` for
    a case whose expected files show the correct result of a known, unfixed product bug.
``before/``
    Plaintext manifests (``tenants/<tenant>/<platform>.yaml``, ``templates/``) applied
    first with ``commands.apply`` (all risk and mass deletion allowed): the starting state.
``setup.sql``
    Raw SQL run after that, for what manifests cannot express: runtime-owned fields,
    out-of-band edits, OAuth token rows, soft-deleted rows.
``manifests/``
    The plaintext manifests to plan (absent: no manifests at all).
``reconciler.yaml``
    Optional repository settings (risk policy) used for the plan.
``expected.plan.json``
    The plan JSON with volatile fields normalized (see :func:`normalize`).
``expected.plan.txt``
    Optional: the text rendering without color.
``expected.error.txt``
    Instead of a plan: the error making the plan must fail with (case path as ``<case>``).

Secret fields in the plaintext manifests are SOPS-encrypted at test time with a generated
age key (a fresh data key each time, so ``before/`` and ``manifests/`` never share
ciphertext). Every case checks that no secret value reaches the expected files or the
rendered plan; unless ``converges: false``, a case then applies its plan and re-plans, and
expects no changes left.

``RECONCILER_UPDATE_GOLDEN=1`` rewrites the expected files from the actual results.
"""

from __future__ import annotations

import base64
import json
import os
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pyrage
import pytest
import yaml

from reconciler import commands
from reconciler.core.planner import build_plan
from reconciler.core.risk import RULES as RISK_RULES
from reconciler.core.risk import RiskPolicy
from reconciler.errors import ConfigError
from reconciler.model.enums import ApplyOutcome, Platform, RiskLevel
from reconciler.model.plan import NoticeKind, Plan, Selectors
from reconciler.render.plan_json import plan_record
from reconciler.render.plan_text import render_text
from reconciler.settings import Settings, load_settings
from reconciler.sops import EncryptionRules, dump, encrypt_documents
from tests.e2e.workspace import libpq_url
from tests.unit.core import builders

CASES = Path(__file__).resolve().parent / "cases" / "plan"
UPDATE = os.environ.get("RECONCILER_UPDATE_GOLDEN") == "1"

SECRET_FIELDS = ("api_key", "api_secret", "signing_secret", "auth_token", "auth_password")
SECRET_REGEX = "^(" + "|".join(SECRET_FIELDS) + ")$"
RULES = EncryptionRules.build(
    "encrypted_regex", SECRET_REGEX, mac_only_encrypted=True, source="tests/test_plan_cases.py"
)
CASE_KEYS = {
    "description",
    "prune",
    "revoke_unmanaged",
    "selectors",
    "manifests",
    "recipients",
    "converges",
    "xfail",
}
ENC_VALUE = re.compile(r"ENC\[AES256_GCM,data:[^\]]+\]")
HEX64 = re.compile(r"^[0-9a-f]{64}$")
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def _cases() -> list[Path]:
    return sorted(p for p in CASES.iterdir() if (p / "case.yaml").is_file())


def _params() -> list[Any]:
    """One parameter per case; a case whose ``case.yaml`` names a known product bug
    (``xfail: <reason>``) expects the correct plan and is marked strict xfail."""
    params = []
    for folder in _cases():
        reason = yaml.safe_load((folder / "case.yaml").read_text()).get("xfail")
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        params.append(pytest.param(folder, id=folder.name, marks=marks))
    return params


# -- the case files -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    folder: Path
    description: str
    prune: bool
    revoke_unmanaged: bool
    selectors: Selectors
    manifests: Path | None
    recipients: int
    converges: bool
    xfail: str | None

    @classmethod
    def read(cls, folder: Path) -> Case:
        raw: dict[str, Any] = yaml.safe_load((folder / "case.yaml").read_text())
        unknown = set(raw) - CASE_KEYS
        assert not unknown, f"{folder.name}/case.yaml: unknown keys {sorted(unknown)}"
        sel: dict[str, list[str]] = raw.get("selectors") or {}
        selectors = Selectors(
            tenants=tuple(sel.get("tenants", ())),
            platforms=tuple(Platform(p) for p in sel.get("platforms", ())),
            exclude_tenants=tuple(sel.get("exclude_tenants", ())),
        )
        source = raw.get("manifests", "manifests")
        assert source in ("manifests", "before"), f"{folder.name}: manifests: {source!r}"
        manifests = folder / source
        return cls(
            folder=folder,
            description=str(raw["description"]),
            prune=bool(raw.get("prune", False)),
            revoke_unmanaged=bool(raw.get("revoke_unmanaged", False)),
            selectors=selectors,
            manifests=manifests if manifests.is_dir() else None,
            recipients=int(raw.get("recipients", 1)),
            converges=bool(raw.get("converges", True)),
            xfail=raw.get("xfail"),
        )


def _walk_secrets(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in SECRET_FIELDS and isinstance(value, str):
                yield value
            else:
                yield from _walk_secrets(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk_secrets(item)


def plaintext_secrets(*trees: Path | None) -> set[str]:
    """Every secret value written in plaintext in the case's manifest trees."""
    found: set[str] = set()
    for tree in trees:
        if tree is not None:
            for file in tree.rglob("*.yaml"):
                found.update(_walk_secrets(yaml.safe_load(file.read_text())))
    return found


# -- encryption -----------------------------------------------------------------------------------


class AgeRecipients:
    """Generated age identities; the first one decrypts (``SOPS_AGE_KEY``)."""

    def __init__(self, count: int) -> None:
        self.identities = [pyrage.x25519.Identity.generate() for _ in range(max(1, count))]

    @property
    def secret_key(self) -> str:
        return str(self.identities[0])

    def recipients(self, count: int) -> list[str]:
        return [str(i.to_public()) for i in self.identities[:count]]


def encrypt_tree(source: Path | None, target: Path, recipients: list[str]) -> Path:
    """Copy a plaintext manifest tree, SOPS-encrypting the secret fields of every file."""
    target.mkdir(parents=True)
    if source is None:
        return target
    for file in sorted(source.rglob("*.yaml")):
        rel = file.relative_to(source).as_posix()
        out = target / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        documents = [yaml.safe_load(file.read_text())]
        encrypted = encrypt_documents(documents, recipients, RULES, source=rel)
        out.write_text(dump(encrypted, "yaml", source=rel))
    return target


def ciphertexts(tree: Path) -> dict[str, list[str]]:
    return {
        f.relative_to(tree).as_posix(): ENC_VALUE.findall(f.read_text())
        for f in sorted(tree.rglob("*.yaml"))
    }


# -- normalization and goldens ------------------------------------------------------------------


def normalize(record: dict[str, Any]) -> dict[str, Any]:
    """The plan record without what differs from run to run.

    ``created_at``, ``manifests_digest`` and ``actual_fingerprint`` become placeholders
    (after checking their form), ``read_set`` becomes a row count per table, and a change's
    ``row_id``/``row_version`` become ``"<row>"``/``"<version>"`` when set. ``author`` (who
    runs the tests) is dropped after checking that it is set.
    """
    out: dict[str, Any] = json.loads(json.dumps(record))
    assert out.pop("author", None), "a plan records its author"
    assert RFC3339.match(out["created_at"]), out["created_at"]
    assert HEX64.match(out["manifests_digest"]), out["manifests_digest"]
    assert HEX64.match(out["actual_fingerprint"]), out["actual_fingerprint"]
    out["created_at"] = "<created_at>"
    out["manifests_digest"] = "<manifests_digest>"
    out["actual_fingerprint"] = "<actual_fingerprint>"
    counts = Counter(ref["table"] for ref in out["read_set"])
    out["read_set"] = dict(sorted(counts.items()))
    for change in out["changes"]:
        if change["row_id"] is not None:
            change["row_id"] = "<row>"
        if change["row_version"] is not None:
            change["row_version"] = "<version>"
    return out


def check_golden(path: Path, actual: str, *, update: bool = UPDATE) -> None:
    if update:
        path.write_text(actual)
        return
    assert path.is_file(), f"{path} is missing (RECONCILER_UPDATE_GOLDEN=1 writes it)"
    assert actual == path.read_text(), f"{path.parent.name}/{path.name} differs"


def assert_no_secret(secrets: set[str], *texts: str) -> None:
    for text in texts:
        for value in secrets:
            assert value not in text, "a secret value appears in a plan output"


# -- the runner -----------------------------------------------------------------------------------


def _run_sql(database_url: str, script: str) -> None:
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        conn.execute(script.encode())


def _make_plan(case: Case, manifests: Path, settings: Settings, database_url: str) -> Plan:
    result = commands.plan(
        manifests_dir=manifests,
        settings=settings,
        selectors=case.selectors,
        prune=case.prune,
        database_url=database_url,
        revoke_unmanaged=case.revoke_unmanaged,
    )
    result.database.engine.dispose()
    return result.plan


def test_plan_corpus_is_complete() -> None:
    cases = _cases()
    assert len(cases) >= 15
    for folder in cases:
        expected = [p.name for p in folder.glob("expected.*")]
        assert "expected.plan.json" in expected or "expected.error.txt" in expected, folder.name


def test_plan_corpus_covers_every_risk_rule() -> None:
    """Every rule of the risk table is matched by at least one expected plan.

    STRIPE_MODE_MISMATCH is a notice, not a change: its CRITICAL level shows on the notice.
    """
    codes: set[str] = set()
    critical_account_notices = 0
    for folder in _cases():
        golden = folder / "expected.plan.json"
        if not golden.is_file():
            continue
        record = json.loads(golden.read_text())
        for change in record["changes"]:
            codes.update(r["code"] for r in change["risk"]["reasons"])
        critical_account_notices += sum(
            1
            for n in record["notices"]
            if n["resource"]["kind"] == "oauth_account" and n["level"] == "CRITICAL"
        )
    assert set(RISK_RULES) - codes == {"STRIPE_MODE_MISMATCH"}
    assert critical_account_notices >= 1


@pytest.fixture
def age_env(monkeypatch: pytest.MonkeyPatch) -> AgeRecipients:
    """Generated age and database keys in the environment the commands read."""
    keys = AgeRecipients(2)
    monkeypatch.delenv("SOPS_AGE_KEY_FILE", raising=False)
    monkeypatch.setenv("SOPS_AGE_KEY", keys.secret_key)
    monkeypatch.setenv("RECONCILER_KEYRING", "1:" + base64.b64encode(os.urandom(32)).decode())
    monkeypatch.setenv("RECONCILER_FINGERPRINT_KEY", base64.b64encode(os.urandom(32)).decode())
    monkeypatch.setenv("RECONCILER_AUDIT_KEY", base64.b64encode(os.urandom(32)).decode())
    monkeypatch.setenv("RECONCILER_ACTOR", "plan-cases")
    return keys


@pytest.mark.parametrize("folder", _params())
def test_plan_case(folder: Path, tmp_path: Path, database_url: str, age_env: AgeRecipients) -> None:
    case = Case.read(folder)
    update = UPDATE and case.xfail is None  # a known bug's expected files are kept as written
    before_src = folder / "before"
    secrets = plaintext_secrets(before_src if before_src.is_dir() else None, case.manifests)

    before: Path | None = None
    if before_src.is_dir():
        before = encrypt_tree(before_src, tmp_path / "before", age_env.recipients(1))
        setup = commands.apply(
            manifests_dir=before,
            settings=Settings(),
            allow_risk=RiskLevel.CRITICAL,
            allow_mass_deletion=True,
            database_url=database_url,
        )
        assert setup.outcome is ApplyOutcome.APPLIED, f"{folder.name}: before/ applied nothing"
    if (folder / "setup.sql").is_file():
        _run_sql(database_url, (folder / "setup.sql").read_text())

    manifests = encrypt_tree(
        case.manifests, tmp_path / "manifests", age_env.recipients(case.recipients)
    )
    if before is not None:
        # Same plaintext file in both trees: the planned copy must carry new ciphertext.
        old, new = ciphertexts(before), ciphertexts(manifests)
        for rel in set(old) & set(new):
            assert not set(old[rel]) & set(new[rel]), f"{rel}: ciphertext reused"

    error_file = folder / "expected.error.txt"
    try:
        settings = load_settings(folder)
        plan = _make_plan(case, manifests, settings, database_url)
    except ConfigError as exc:
        message = str(exc).replace(str(folder), "<case>") + "\n"
        assert_no_secret(secrets, message)
        check_golden(error_file, message, update=update)
        return
    assert not error_file.is_file(), f"{folder.name}: expected an error, got a plan"

    record = plan_record(plan)
    body = json.dumps(normalize(record), indent=2, ensure_ascii=False) + "\n"
    # Planned again, every file comes from the manifest cache and the objects stored as
    # declared are settled without desired objects: the plan must be the same.
    warm = plan_record(_make_plan(case, manifests, settings, database_url))
    assert normalize(warm) == normalize(record), f"{folder.name}: the warm-cache plan differs"
    text = render_text(plan, color=False)
    assert_no_secret(secrets, json.dumps(record), text)
    check_golden(folder / "expected.plan.json", body, update=update)
    text_file = folder / "expected.plan.txt"
    if text_file.is_file() or (update and folder.name in _TEXT_CASES):
        check_golden(text_file, text, update=update)
    for path in folder.glob("expected.*"):
        assert_no_secret(secrets, path.read_text())

    if not case.converges:
        return
    applied = commands.apply(
        manifests_dir=manifests,
        settings=settings,
        selectors=case.selectors,
        prune=case.prune,
        revoke_unmanaged=case.revoke_unmanaged,
        allow_risk=RiskLevel.CRITICAL,
        allow_mass_deletion=True,
        allow_mass_revocation=True,
        database_url=database_url,
    )
    expected_outcome = ApplyOutcome.APPLIED if plan.changes else ApplyOutcome.NO_CHANGES
    assert applied.outcome is expected_outcome
    assert [str(c.address) for c in applied.plan.changes] == [str(c.address) for c in plan.changes]
    again = _make_plan(case, manifests, settings, database_url)
    assert [str(c.address) for c in again.changes] == [], "apply did not converge"


_TEXT_CASES = frozenset(
    {
        "create-new-tenant",
        "noop-after-apply",
        "secret-value-changed",
        "oauth-notices",
        "mass-deletion-whole-tenant",
        "adopt-connected-account",
        "revoke-unmanaged",
        "mass-revocation",
    }
)
"""Cases whose text rendering is kept too (``expected.plan.txt``), written on update."""


def test_stripe_mode_mismatch_is_not_filed_as_undeclared() -> None:
    """A declared account in the wrong mode is not "undeclared, use --prune to revoke"."""
    desired = builders.state(builders.account(stripe_livemode=True))
    actual = builders.as_actual(desired, (builders.token(stripe_livemode=False),))
    plan = build_plan(
        desired, actual, policy=RiskPolicy(), created_at="2026-01-01T00:00:00Z", prune=True
    )
    assert plan.changes == ()  # --prune never revokes the token of a declared account
    [notice] = plan.notices
    assert notice.level is RiskLevel.CRITICAL
    assert notice.kind is not NoticeKind.UNDECLARED_ACCOUNT
    assert "use --prune to revoke" not in render_text(plan, color=False)
