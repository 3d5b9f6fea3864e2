"""The keyed audit chain against its owner: rewrites, unkeyed rows, reviews and checkpoints."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from reconciler.crypto.audit_key import AuditKey
from reconciler.errors import ConfigError, KeyUnavailable
from reconciler.model.enums import AuditAction, EntityType, ReviewDecision, RiskLevel
from reconciler.store.audit import (
    _VERIFY_SELECT,
    AuditContext,
    AuditEntry,
    append_audit_entries,
    chain_heads,
    checkpoint_document,
    entry_hash,
    inspect_chains,
    keyed_entry_hash,
    list_entries,
    parse_checkpoint,
    pending_reviews,
    review_entry,
)

NOW = datetime(2026, 11, 30, 9, 0, 0, 250000, tzinfo=UTC)
KEY = AuditKey(os.urandom(32))
APPLIER = AuditContext("root", "10.0.0.9", "reconciler/test", "apply-1", key=KEY)


def _entry(tenant: str, name: str, risk: RiskLevel = RiskLevel.LOW) -> AuditEntry:
    return AuditEntry(
        tenant_id=tenant,
        entity_type=EntityType.WEBHOOK_CONFIGURATION,
        entity_id=7,
        entity_address=f"{tenant}/stripe/production/webhook/{name}",
        action=AuditAction.UPDATE,
        changes={"signing_secret": {"before": "(sensitive)", "after": "(sensitive, changed)"}},
        risk_level=risk,
        risk_reasons=[{"code": "SECRET_CHANGED", "level": risk.value, "message": "m"}],
        requires_review=risk.requires_review,
    )


def _reviewer(name: str) -> AuditContext:
    return AuditContext(name, None, "reconciler/test", f"review-{name}", key=KEY)


@pytest.fixture
def logged(engine: sa.Engine) -> sa.Engine:
    """acme: LOW, HIGH (id 2), LOW; globex: LOW. All keyed, performed by root."""
    with engine.begin() as conn:
        append_audit_entries(
            conn,
            [
                _entry("acme", "a"),
                _entry("acme", "b", RiskLevel.HIGH),
                _entry("acme", "c"),
                _entry("globex", "d"),
            ],
            APPLIER,
            now=NOW,
        )
    return engine


def _high_id(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.text("SELECT id FROM configuration_audit_logs WHERE risk_level = 'HIGH'")
            ).scalar_one()
        )


def _rewrite_chain(
    engine: sa.Engine,
    tenant: str,
    edit: Callable[[dict[str, Any]], None],
    sign: Callable[[dict[str, Any]], str],
) -> None:
    """What the table owner can do: edit rows, recompute every hash and link, write it back."""
    with engine.begin() as conn:
        rows = [
            dict(r._mapping)
            for r in conn.execute(
                sa.text(_VERIFY_SELECT + " WHERE tenant_id = :t ORDER BY id"), {"t": tenant}
            )
        ]
        conn.execute(sa.text("ALTER TABLE configuration_audit_logs DISABLE TRIGGER USER"))
        prev = None
        for row in rows:
            edit(row)
            row["prev_hash"] = prev
            record = dict(row, created_at=row["created_at"].strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
            row["entry_hash"] = prev = sign(record)
            conn.execute(
                sa.text(
                    "UPDATE configuration_audit_logs SET risk_level = CAST(:risk_level AS"
                    " risk_level), requires_review = :requires_review, performed_by ="
                    " :performed_by, prev_hash = :prev_hash, entry_hash = :entry_hash"
                    " WHERE tenant_id = :tenant_id AND id = :id"
                ),
                row,
            )
        conn.execute(sa.text("ALTER TABLE configuration_audit_logs ENABLE TRIGGER USER"))


def _downgrade_high(row: dict[str, Any]) -> None:
    if row["risk_level"] == "HIGH":
        row["risk_level"], row["requires_review"] = "LOW", False


def test_owner_recomputing_an_unkeyed_chain_is_detected(logged: sa.Engine) -> None:
    # The owner turns the HIGH row into LOW and recomputes the chain with the public, unkeyed
    # algorithm. Every row now looks like a pre-upgrade row: links and hashes verify, but none
    # is covered by a keyed row, which is what a verifier must refuse to call intact.
    _rewrite_chain(logged, "acme", _downgrade_high, entry_hash)
    with logged.connect() as conn:
        report = inspect_chains(conn, key=KEY)
        assert pending_reviews(conn) == []  # the lie the rewrite was for
    assert report.breaks == []
    assert (report.unkeyed_only, report.keyed_rows) == (3, 1)


def test_owner_rewriting_only_the_tail_unkeyed_is_a_break(logged: sa.Engine) -> None:
    def unkeyed_after_first(record: dict[str, Any]) -> str:
        return keyed_entry_hash(record, KEY) if record["prev_hash"] is None else entry_hash(record)

    # (Signing the first row needs the key; this shows the rule, not a feasible attack.)
    _rewrite_chain(logged, "acme", _downgrade_high, unkeyed_after_first)
    with logged.connect() as conn:
        report = inspect_chains(conn, key=KEY)
    assert [(b.tenant_id, b.kind) for b in report.breaks] == [("acme", "unkeyed")]
    assert "without the audit key" in report.breaks[0].detail


def test_owner_recomputing_with_another_key_is_detected(logged: sa.Engine) -> None:
    guess = AuditKey(os.urandom(32))
    _rewrite_chain(logged, "acme", _downgrade_high, lambda r: keyed_entry_hash(r, guess))
    with logged.connect() as conn:
        report = inspect_chains(conn, key=KEY)
    assert [(b.tenant_id, b.kind) for b in report.breaks] == [("acme", "edited")]
    assert "globex" in report.heads


def test_a_faithful_recomputation_with_the_key_still_verifies(logged: sa.Engine) -> None:
    # The check of the test above is the key, not the rewriting itself.
    _rewrite_chain(logged, "acme", lambda row: None, lambda r: keyed_entry_hash(r, KEY))
    with logged.connect() as conn:
        assert inspect_chains(conn, key=KEY).breaks == []


def test_unkeyed_rows_are_verified_reported_and_extended(logged: sa.Engine) -> None:
    # acme's rows as an older reconciler wrote them (unkeyed), then a new keyed row.
    _rewrite_chain(logged, "acme", lambda row: None, entry_hash)
    with logged.connect() as conn:
        before = inspect_chains(conn, key=KEY)
    assert before.breaks == []
    assert (before.unkeyed_rows, before.unkeyed_only, before.keyed_rows) == (3, 3, 1)
    with logged.begin() as conn:
        append_audit_entries(conn, [_entry("acme", "e")], APPLIER, now=NOW)
    with logged.connect() as conn:
        after = inspect_chains(conn, key=KEY)
    assert after.breaks == []
    # The keyed row covers the unkeyed ones through its prev_hash.
    assert (after.unkeyed_rows, after.unkeyed_only, after.keyed_rows) == (3, 0, 2)


def test_unknown_hash_format_is_refused(logged: sa.Engine) -> None:
    with logged.begin() as conn:
        conn.execute(sa.text("ALTER TABLE configuration_audit_logs DISABLE TRIGGER USER"))
        conn.execute(
            sa.text(
                "UPDATE configuration_audit_logs SET entry_hash = 'z' || substr(entry_hash, 2)"
                " WHERE tenant_id = 'globex'"
            )
        )
        conn.execute(sa.text("ALTER TABLE configuration_audit_logs ENABLE TRIGGER USER"))
    with logged.connect() as conn:
        report = inspect_chains(conn, key=KEY)
    assert [(b.tenant_id, b.kind) for b in report.breaks] == [("globex", "format")]
    assert "no known chain format" in report.breaks[0].detail


def test_without_the_key_only_links_are_checked_and_counted(logged: sa.Engine) -> None:
    _rewrite_chain(
        logged, "acme", _downgrade_high, lambda r: keyed_entry_hash(r, AuditKey(b"x" * 32))
    )
    with logged.connect() as conn:
        report = inspect_chains(conn)
    assert report.breaks == [] and report.keyed_unverified == report.keyed_rows == 4


def test_appending_without_a_key_writes_nothing(engine: sa.Engine) -> None:
    unkeyed = AuditContext("root", None, "reconciler/test", "s")
    with engine.begin() as conn, pytest.raises(KeyUnavailable, match="RECONCILER_AUDIT_KEY"):
        append_audit_entries(conn, [_entry("acme", "a")], unkeyed, now=NOW)
    with engine.connect() as conn:
        assert list_entries(conn) == []


def test_self_review_is_refused(logged: sa.Engine) -> None:
    high = _high_id(logged)
    for name in ("root", " Root "):
        with logged.begin() as conn, pytest.raises(ConfigError) as info:
            review_entry(
                conn,
                tenant=None,
                audit_id=high,
                decision=ReviewDecision.APPROVED,
                context=_reviewer(name),
                note=None,
                now=NOW,
            )
        assert str(info.value) == (
            f"audit row {high} of tenant acme was performed by root: "
            "a change must be reviewed by someone else"
        )
    with logged.connect() as conn:
        assert [p.id for p in pending_reviews(conn)] == [high]
        assert len(list_entries(conn)) == 4


def _review(engine: sa.Engine, audit_id: int, by: str = "carol") -> int:
    with engine.begin() as conn:
        record = review_entry(
            conn,
            tenant="acme",
            audit_id=audit_id,
            decision=ReviewDecision.REJECTED,
            context=_reviewer(by),
            note="not in the change window",
            now=NOW + timedelta(minutes=5),
        )
    assert record.review_id is not None
    return record.review_id


def test_a_review_cannot_be_edited(logged: sa.Engine) -> None:
    review_id = _review(logged, _high_id(logged))
    approve = (
        "UPDATE configuration_audit_logs SET changes = jsonb_set(changes, '{decision}',"
        " '\"APPROVED\"') WHERE id = :id"
    )
    # Through the trigger: refused.
    with pytest.raises(DBAPIError, match="append-only"), logged.begin() as conn:
        conn.execute(sa.text(approve), {"id": review_id})
    # Around it, as the owner: the chain shows it.
    with logged.begin() as conn:
        conn.execute(sa.text("ALTER TABLE configuration_audit_logs DISABLE TRIGGER USER"))
        conn.execute(sa.text(approve), {"id": review_id})
        conn.execute(sa.text("ALTER TABLE configuration_audit_logs ENABLE TRIGGER USER"))
    with logged.connect() as conn:
        report = inspect_chains(conn, key=KEY)
        assert list_entries(conn, tenant="acme", min_risk=RiskLevel.HIGH)[-1].review_status == (
            "APPROVED"
        )
    assert [(b.audit_id, b.kind) for b in report.breaks] == [(review_id, "edited")]


def test_one_review_per_row_even_past_the_checks(logged: sa.Engine) -> None:
    high = _high_id(logged)
    _review(logged, high)
    # A second REVIEW row for the same row, as a buggy or hostile writer would append it.
    second = AuditEntry(
        tenant_id="acme",
        entity_type=EntityType.WEBHOOK_CONFIGURATION,
        entity_id=7,
        entity_address="acme/stripe/production/webhook/b",
        action=AuditAction.REVIEW,
        changes={"reviews": high, "decision": "APPROVED", "note": None},
        risk_level=RiskLevel.HIGH,
    )
    with pytest.raises(sa.exc.IntegrityError), logged.begin() as conn:
        append_audit_entries(conn, [second], _reviewer("dan"), now=NOW)


def test_legacy_review_columns_count_only_on_unkeyed_rows(logged: sa.Engine) -> None:
    high = _high_id(logged)

    def set_legacy_review(engine: sa.Engine) -> None:
        with engine.begin() as conn:
            conn.execute(sa.text("ALTER TABLE configuration_audit_logs DISABLE TRIGGER USER"))
            conn.execute(
                sa.text(
                    "UPDATE configuration_audit_logs SET reviewed_by = 'mallory',"
                    " reviewed_at = now(), review_decision = 'APPROVED' WHERE id = :id"
                ),
                {"id": high},
            )
            conn.execute(sa.text("ALTER TABLE configuration_audit_logs ENABLE TRIGGER USER"))

    # On a keyed row, a decision written into the old columns is ignored.
    set_legacy_review(logged)
    with logged.connect() as conn:
        assert [p.id for p in pending_reviews(conn)] == [high]
        assert inspect_chains(conn, key=KEY).breaks == []
    # On an unkeyed (pre-upgrade) row it is the legacy decision it always was.
    _rewrite_chain(logged, "acme", lambda row: None, entry_hash)
    with logged.connect() as conn:
        assert pending_reviews(conn) == []
        [row] = [r for r in list_entries(conn) if r.id == high]
    assert (row.review_status, row.review_source, row.reviewed_by) == (
        "APPROVED",
        "legacy",
        "mallory",
    )


def _checkpoint(engine: sa.Engine) -> str:
    import json

    with engine.connect() as conn:
        report = inspect_chains(conn, key=KEY)
    return json.dumps(checkpoint_document(report, now=NOW))


def test_checkpoint_catches_removal_of_the_newest_rows(logged: sa.Engine) -> None:
    _review(logged, _high_id(logged))
    checkpoint = parse_checkpoint(_checkpoint(logged), source="cp.json")
    assert {t: h.rows for t, h in checkpoint.heads.items()} == {"acme": 4, "globex": 1}
    with logged.connect() as conn:
        assert chain_heads(conn, ["acme", "globex", "nobody"]) == checkpoint.heads
    with logged.begin() as conn:
        append_audit_entries(conn, [_entry("acme", "later")], APPLIER, now=NOW)
    with logged.connect() as conn:
        assert inspect_chains(conn, key=KEY, checkpoint=checkpoint).breaks == []
    # The owner deletes acme's newest rows (the review among them) and globex's only row.
    with logged.begin() as conn:
        conn.execute(sa.text("ALTER TABLE configuration_audit_logs DISABLE TRIGGER USER"))
        conn.execute(
            sa.text(
                "DELETE FROM configuration_audit_logs WHERE action = 'REVIEW'"
                " OR tenant_id = 'globex' OR entity_address LIKE '%/later'"
            )
        )
        conn.execute(sa.text("ALTER TABLE configuration_audit_logs ENABLE TRIGGER USER"))
    with logged.connect() as conn:
        plain = inspect_chains(conn, key=KEY)
        checked = inspect_chains(conn, key=KEY, checkpoint=checkpoint)
        only_acme = inspect_chains(conn, ["acme"], key=KEY, checkpoint=checkpoint)
    assert plain.breaks == []  # a shorter chain is still a valid chain ...
    assert [(b.tenant_id, b.kind) for b in checked.breaks] == [
        ("acme", "truncated"),
        ("globex", "truncated"),
    ]  # ... but not the one the checkpoint saw
    assert "has 3 audit row(s), but the checkpoint recorded 4" in checked.breaks[0].detail
    assert [b.tenant_id for b in only_acme.breaks] == ["acme"]


def test_checkpoint_catches_a_rewritten_chain(logged: sa.Engine) -> None:
    checkpoint = parse_checkpoint(_checkpoint(logged), source="cp.json")
    # Even with the key (a leaked key, say), rewriting history leaves another head.
    _rewrite_chain(logged, "acme", _downgrade_high, lambda r: keyed_entry_hash(r, KEY))
    with logged.connect() as conn:
        assert inspect_chains(conn, key=KEY).breaks == []
        report = inspect_chains(conn, key=KEY, checkpoint=checkpoint)
    assert [(b.tenant_id, b.kind) for b in report.breaks] == [("acme", "checkpoint")]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not json", "not a JSON audit checkpoint"),
        ('{"format": "reconciler-audit-checkpoint/v9", "heads": {}}', "format 'reconciler-"),
        ('{"format": "reconciler-audit-checkpoint/v1", "heads": []}', "heads: expected"),
        (
            '{"format": "reconciler-audit-checkpoint/v1", "heads": {"acme": {"id": 1,'
            ' "entry_hash": "x", "rows": 1}}}',
            "heads.acme: entry_hash",
        ),
        (
            '{"format": "reconciler-audit-checkpoint/v1", "heads": {"acme": {"id": true,'
            ' "entry_hash": "x", "rows": 1}}}',
            "heads.acme: id and rows",
        ),
    ],
)
def test_malformed_checkpoints_are_refused(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=r"cp\.json: ") as info:
        parse_checkpoint(text, source="cp.json")
    assert message in str(info.value) and "\n" not in str(info.value)


def test_a_checkpoint_covers_unkeyed_rows(logged: sa.Engine) -> None:
    # Right after an upgrade: rows no keyed row follows yet, accepted once and checkpointed.
    _rewrite_chain(logged, "acme", lambda row: None, entry_hash)
    checkpoint = parse_checkpoint(_checkpoint(logged), source="cp.json")
    with logged.connect() as conn:
        assert inspect_chains(conn, key=KEY).unkeyed_only == 3
        assert inspect_chains(conn, key=KEY, checkpoint=checkpoint).unkeyed_only == 0
    # Recomputing them now (the unkeyed hash needs no key) moves the head the file holds.
    _rewrite_chain(logged, "acme", _downgrade_high, entry_hash)
    with logged.connect() as conn:
        report = inspect_chains(conn, key=KEY, checkpoint=checkpoint)
    assert [(b.tenant_id, b.kind) for b in report.breaks] == [("acme", "checkpoint")]
