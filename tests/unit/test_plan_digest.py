"""The plan digest: what approvals are bound to and ``apply_runs`` records."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from concurrent.futures import Future
from typing import Any

import pytest

from reconciler.commands.planning import plan_digest
from reconciler.model.enums import Platform, RiskLevel
from reconciler.model.plan import FieldChange, Plan
from tests.unit.render.sample_plans import many_tenants_plan, mixed_plan


def test_locations_do_not_change_the_digest() -> None:
    """``plan`` adds lines (and deletions' files) that apply does not look up again: an
    approval of the saved plan must still count for the changes apply derives."""
    plan = mixed_plan()
    located = dataclasses.replace(
        plan,
        changes=tuple(
            dataclasses.replace(c, source="manifests/tenants/x/stripe.yaml", line=7)
            for c in plan.changes
        ),
    )
    assert plan_digest(located) == plan_digest(plan)


def test_any_change_to_what_is_applied_changes_the_digest() -> None:
    plan = mixed_plan()
    fewer = dataclasses.replace(plan, changes=plan.changes[1:])
    assert plan_digest(fewer) != plan_digest(plan)


def test_the_digest_is_the_hash_of_the_changes_json() -> None:
    """Computed a change at a time, the digest is still the SHA-256 of the JSON list of the
    changes (sorted keys, locations left out): digests recorded and approved by earlier
    releases keep matching."""

    for plan in (mixed_plan(), dataclasses.replace(mixed_plan(), changes=())):
        body = json.dumps(
            [
                {k: v for k, v in c.to_dict().items() if k not in ("source", "line")}
                for c in plan.changes
            ],
            sort_keys=True,
        ).encode()
        assert plan_digest(plan) == hashlib.sha256(body).hexdigest()


def _reference_digest(plan: Plan) -> str:
    """The digest's definition, with the generic encoder."""
    records = []
    for c in plan.changes:
        record = c.to_dict()
        del record["source"], record["line"]
        records.append(record)
    return hashlib.sha256(json.dumps(records, sort_keys=True).encode()).hexdigest()


_ODD_VALUES: list[Any] = [
    None,
    True,
    False,
    0,
    -7,
    2**70,
    1.0,
    -0.0,
    1e-07,
    3.5e300,
    float("nan"),
    "",
    'quote " backslash \\ newline \n tab \t',
    "caf\u00e9 \u2603 \U0001f600 \x00\x1f",
    {"b": 1, "a": [1, "x", None], "c": {"z": 1.5, "y": True}},
    [3, 2, 1],
    ("t", 1),
    Platform.STRIPE,
    RiskLevel.HIGH,
]


@pytest.mark.parametrize("value", _ODD_VALUES, ids=repr)
def test_the_digest_writes_every_value_as_json_dumps_does(value: Any) -> None:
    """The digest is written piece by piece; every kind of value a field change can hold
    must come out as ``json.dumps`` writes it, or recorded approvals stop matching."""
    base = mixed_plan()
    changes = []
    for c in base.changes:
        fields = (*c.fields, FieldChange("odd", value, None), FieldChange("odd", "x", value, True))
        changes.append(dataclasses.replace(c, fields=fields, reason='r\u00e9ason "q"'))
    plan = dataclasses.replace(base, changes=tuple(changes))
    assert plan_digest(plan) == _reference_digest(plan)


def test_the_digest_of_every_sample_plan_is_the_reference() -> None:
    for plan in (mixed_plan(), many_tenants_plan(5), dataclasses.replace(mixed_plan(), changes=())):
        assert plan_digest(plan) == _reference_digest(plan)


def test_a_large_plans_digest_is_made_by_a_forked_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from reconciler.commands import apply_audit

    monkeypatch.setattr(apply_audit, "FORK_MIN_CHANGES", 1)
    plan, other = mixed_plan(), many_tenants_plan(3)
    with apply_audit.ForkedPlanWork() as digests:
        digests.start(plan)
        assert isinstance(digests._find(plan), Future)  # being made elsewhere
        assert digests.of(plan) == plan_digest(plan)
        assert digests._find(plan) == plan_digest(plan)  # kept: made once
        assert digests.of(other) == plan_digest(other)  # never started: made here


def test_a_digest_whose_process_fails_is_made_here(monkeypatch: pytest.MonkeyPatch) -> None:
    from reconciler.commands import apply_audit

    def lost(_plan: object) -> None:
        """The process starts without its plan: its digest fails there."""

    monkeypatch.setattr(apply_audit, "FORK_MIN_CHANGES", 1)
    monkeypatch.setattr(apply_audit, "_inherit", lost)
    plan = mixed_plan()
    with apply_audit.ForkedPlanWork() as digests:
        digests.start(plan)
        started = digests._find(plan)
        assert isinstance(started, Future)
        assert isinstance(started.exception(), AssertionError)  # failed in that process
        assert digests.of(plan) == plan_digest(plan)


def test_a_small_plans_digest_is_made_here() -> None:
    from reconciler.commands.apply_audit import ForkedPlanWork

    plan = mixed_plan()
    with ForkedPlanWork() as digests:
        digests.start(plan)
        assert digests._find(plan) is None
        assert digests.of(plan) == plan_digest(plan)


def test_authorizing_a_plan_nothing_in_which_needs_approval_needs_no_digest() -> None:
    """A fleet-wide digest costs seconds: it is made only to look approvals up."""
    from reconciler.commands.apply_checks import authorize_plan
    from reconciler.settings import Settings

    def no_digest(_plan: object) -> str:
        raise AssertionError("digest computed")

    auth, _, missing = authorize_plan(
        None,  # type: ignore[arg-type]  # no approvals to look up: never connects
        many_tenants_plan(3),
        Settings(),
        author="a",
        performer="a",
        allow_risk=None,
        digest_of=no_digest,
    )
    assert missing is None and not auth.needed


def test_a_large_plans_audit_documents_are_rendered_by_its_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from reconciler.commands import apply_audit

    monkeypatch.setattr(apply_audit, "FORK_MIN_CHANGES", 1)
    plan = mixed_plan()
    extra = {"revision": {"revision": "main", "commit": "c0ffee"}}
    rendered_here: list[int] = []
    real = apply_audit.render_plan_documents

    def counted(p: Plan, e: dict[str, Any]) -> list[tuple[str, str]]:
        rendered_here.append(1)  # in the forked process, appended to its own copy
        return real(p, e)

    monkeypatch.setattr(apply_audit, "render_plan_documents", counted)
    with apply_audit.ForkedPlanWork() as work:
        work.start(plan)
        documents = work.documents(plan, extra)()
    assert rendered_here == []  # not in this process
    assert documents == real(plan, extra)
    assert any("c0ffee" in changes for changes, _ in documents)  # made with the extras


def test_audit_documents_whose_process_fails_are_rendered_here(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from reconciler.commands import apply_audit

    def lost(_plan: object) -> None:
        """The process starts without its plan: its documents fail there."""

    monkeypatch.setattr(apply_audit, "FORK_MIN_CHANGES", 1)
    monkeypatch.setattr(apply_audit, "_inherit", lost)
    plan = mixed_plan()
    with apply_audit.ForkedPlanWork() as work:
        work.start(plan)
        documents = work.documents(plan, {})()
    assert documents == apply_audit.render_plan_documents(plan, {})


def test_a_secret_in_an_audit_document_is_refused_whichever_process_renders_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from reconciler.commands import apply_audit
    from reconciler.model.sensitive import Sensitive
    from reconciler.store.audit_write import SensitiveValueInAudit

    monkeypatch.setattr(apply_audit, "FORK_MIN_CHANGES", 1)
    plan = mixed_plan()
    leaked = {"note": Sensitive("sk_live_leak")}
    for forked in (True, False):
        with apply_audit.ForkedPlanWork() as work:
            if forked:
                work.start(plan)
            with pytest.raises(SensitiveValueInAudit) as raised:
                work.documents(plan, leaked)()
        assert "sk_live_leak" not in str(raised.value)
