"""The audit log and apply history go only with --discard-audit-history; reviews survive too."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

from reconciler.cli.cmd_db import db
from reconciler.crypto.audit_key import AuditKey
from reconciler.errors import StateError
from reconciler.model.enums import AuditAction, EntityType, ReviewDecision, RiskLevel
from reconciler.store import audit, migrate
from reconciler.store.database import DatabaseTarget, create_engine, resolve_database_url
from reconciler.store.tables import APP_ROLE
from tests.e2e.workspace import libpq_url
from tests.migrations.test_rollback_keeps_data import psql

HEAD = migrate.head_revision()
ARCHIVE = migrate.ARCHIVE_SCHEMA
NOW = datetime(2026, 6, 1, 8, 0, 0, tzinfo=UTC)
KEY = AuditKey(os.urandom(32))
HASHED = ", ".join(audit.HASHED_FIELDS).replace("action", "action::text")


@pytest.fixture(autouse=True)
def no_env_database(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RECONCILER_DATABASE_URL", "DATABASE_URL", "RECONCILER_DEBUG"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def target(empty_database_url: str) -> DatabaseTarget:
    return resolve_database_url(empty_database_url)


@pytest.fixture
def engine(target: DatabaseTarget) -> Iterator[sa.Engine]:
    migrate.upgrade(target)
    eng = create_engine(target)
    yield eng
    eng.dispose()


def run(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(db, list(args), input=input, catch_exceptions=False)


def sql(target: DatabaseTarget, statement: str) -> list[tuple[object, ...]]:
    with psycopg.connect(libpq_url(target.url), autocommit=True) as conn:
        cur = conn.execute(statement.encode())
        return cur.fetchall() if cur.description else []


def history(engine: sa.Engine) -> None:
    """Two keyed audit rows (one CRITICAL, reviewed by a REVIEW row) and one apply run."""
    entry = audit.AuditEntry(
        tenant_id="acme",
        entity_type=EntityType.WEBHOOK_CONFIGURATION,
        entity_id=9,
        entity_address="acme/stripe/production/webhook/w",
        action=AuditAction.UPDATE,
        changes={"fields": []},
        risk_level=RiskLevel.CRITICAL,
        requires_review=True,
    )
    applier = audit.AuditContext("ci", None, "reconciler/test", "s1", key=KEY)
    with engine.begin() as conn:
        audit.append_audit_entries(conn, [entry], applier, now=NOW)
        [critical] = audit.pending_reviews(conn)
        audit.review_entry(
            conn,
            tenant="acme",
            audit_id=critical.id,
            decision=ReviewDecision.APPROVED,
            context=audit.AuditContext("lead", None, "reconciler/test", "s2", key=KEY),
            note="ok",
            now=NOW + timedelta(minutes=1),
        )
        conn.execute(
            sa.text(
                "INSERT INTO apply_runs (actor, manifests_digest, outcome, reconciler_version)"
                " VALUES ('ci', 'sha256:x', 'APPLIED', 'test')"
            )
        )


def hashed_rows(engine: sa.Engine) -> list[tuple[object, ...]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(f"SELECT {HASHED}, entry_hash FROM configuration_audit_logs ORDER BY id")
        )
        return [tuple(row) for row in rows]


def archived_tables(target: DatabaseTarget) -> set[str]:
    rows = sql(target, f"SELECT tablename FROM pg_tables WHERE schemaname = '{ARCHIVE}'")
    return {str(row[0]) for row in rows}


def test_reviews_and_the_keyed_chain_survive_a_full_rollback(
    target: DatabaseTarget, engine: sa.Engine
) -> None:
    history(engine)
    before = hashed_rows(engine)
    assert [row[5] for row in before] == ["UPDATE", "REVIEW"]
    runs = sql(target, "SELECT to_jsonb(r) FROM apply_runs r")
    # Grants a later revision might have made, to roles this one does not know.
    sql(
        target,
        "GRANT SELECT ON apply_runs TO PUBLIC;"
        " GRANT SELECT (performed_by) ON configuration_audit_logs TO PUBLIC",
    )

    migrate.downgrade(target, "baseline")
    assert archived_tables(target) >= {"configuration_audit_logs", "apply_runs"}
    # Archived: reachable by the owner only.
    grants = sql(
        target,
        "SELECT count(*) FROM pg_class c"
        " LEFT JOIN pg_attribute a ON a.attrelid = c.oid,"
        " LATERAL (SELECT grantee FROM aclexplode(c.relacl)"
        "          UNION ALL SELECT grantee FROM aclexplode(a.attacl)) g"
        f" WHERE c.relnamespace = '{ARCHIVE}'::regnamespace AND g.grantee <> c.relowner",
    )
    assert grants == [(0,)]

    migrate.upgrade(target)
    migrate.check(target)
    assert hashed_rows(engine) == before
    assert sql(target, "SELECT to_jsonb(r) FROM apply_runs r") == runs
    with engine.connect() as conn:
        report = audit.inspect_chains(conn, key=KEY)
        assert report.breaks == [] and report.rows == 2
        assert audit.pending_reviews(conn) == []
    # New rows continue the chain after the restored ones.
    history(engine)
    with engine.connect() as conn:
        report = audit.inspect_chains(conn, key=KEY)
    assert report.breaks == [] and report.rows == 4


def test_discard_asks_naming_the_counts_and_only_then_destroys(
    target: DatabaseTarget, engine: sa.Engine
) -> None:
    history(engine)
    url = ["--database-url", target.url]

    refused = run("downgrade", "baseline", "--discard-audit-history", *url, input="n\n")
    assert refused.exit_code == 1  # aborted at the prompt
    assert "DESTROY 2 audit log rows and 1 apply run?" in refused.stderr
    assert migrate.current(target) == HEAD
    assert len(hashed_rows(engine)) == 2

    done = run("downgrade", "baseline", "--discard-audit-history", *url, input="y\n")
    assert done.exit_code == 0, done.stderr
    assert "discarded 2 audit log rows and 1 apply run" in done.stderr
    assert archived_tables(target) == {"oauth_tokens_columns"}
    assert migrate.archived_history(target) is None

    upgraded = run("upgrade", *url)
    assert upgraded.exit_code == 0, upgraded.stderr
    assert "restored" not in upgraded.stderr
    assert hashed_rows(engine) == []
    assert sql(target, "SELECT count(*) FROM apply_runs") == [(0,)]


def test_without_the_option_the_prompt_says_what_is_archived(
    target: DatabaseTarget, engine: sa.Engine
) -> None:
    history(engine)
    result = run("downgrade", "baseline", "--database-url", target.url, input="n\n")
    assert result.exit_code == 1
    assert "2 audit log rows and 1 apply run are archived in reconciler_archive" in (result.stderr)
    assert migrate.current(target) == HEAD


def test_discard_where_the_downgrade_keeps_the_tables_is_refused(
    target: DatabaseTarget, engine: sa.Engine
) -> None:
    history(engine)
    result = run(
        "downgrade",
        "add_configuration_management",
        "--discard-audit-history",
        "--yes",
        "--database-url",
        target.url,
    )
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "nothing to discard" in errors[0]
    assert migrate.current(target) == HEAD


def test_sql_rollback_discards_only_with_the_option(
    target: DatabaseTarget, engine: sa.Engine, tmp_path: Path
) -> None:
    history(engine)
    refused = run("sql", "--discard-audit-history")
    assert refused.exit_code == 1 and "needs --rollback" in refused.stderr

    kept = migrate.offline_sql(rollback=True)
    assert "DROP TABLE configuration_audit_logs" not in kept
    assert "DROP TABLE apply_runs" not in kept

    generated = run("sql", "--rollback", "--discard-audit-history")
    assert generated.exit_code == 0
    assert "DESTROYS the audit log and the apply history" in generated.stderr
    path = tmp_path / "discard.sql"
    path.write_text(generated.stdout, encoding="utf-8")
    completed = psql(target.url, path)
    assert completed.returncode == 0, completed.stderr
    assert "discarding the audit log (2 rows) and the apply history (1 runs)" in (completed.stderr)
    assert migrate.current(target) == "baseline"
    assert archived_tables(target) == {"oauth_tokens_columns"}


def test_an_archive_left_in_place_is_never_overwritten(
    target: DatabaseTarget, engine: sa.Engine
) -> None:
    history(engine)
    before = hashed_rows(engine)
    sql(target, f"CREATE SCHEMA {ARCHIVE}; CREATE TABLE {ARCHIVE}.apply_runs (note text)")

    with pytest.raises(StateError, match="nothing was changed"):
        migrate.downgrade(target, "baseline")

    assert migrate.current(target) == HEAD
    assert hashed_rows(engine) == before
    assert archived_tables(target) == {"apply_runs"}


def test_a_column_a_later_revision_left_behind_stops_the_rollback(
    target: DatabaseTarget, engine: sa.Engine
) -> None:
    # The upgrade restores only the columns it knows: rather than lose this one, refuse.
    history(engine)
    sql(target, "ALTER TABLE apply_runs ADD COLUMN approver text DEFAULT 'someone'")

    with pytest.raises(StateError, match=r"apply_runs\.approver .* would be lost"):
        migrate.downgrade(target, "baseline")

    assert migrate.current(target) == HEAD
    assert sql(target, "SELECT approver FROM apply_runs") == [("someone",)]
    assert archived_tables(target) == set()


@pytest.fixture
def owner_target(pg_server_url: str) -> Iterator[DatabaseTarget]:
    """A database owned by a LOGIN role that is not a superuser (so row-level security applies
    to it when forced), migrated to head by that role."""
    role = f"owner_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_server_url, autocommit=True) as admin:
        admin.execute(
            f"DO $$ BEGIN CREATE ROLE {APP_ROLE} NOLOGIN; "
            "EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
        )
        admin.execute(f"CREATE ROLE {role} LOGIN NOSUPERUSER PASSWORD 'pw-{role}'")
        admin.execute(f"CREATE DATABASE t_{role} OWNER {role}")
    url = (
        sa.make_url(pg_server_url)
        .set(drivername="postgresql+psycopg", username=role, password=f"pw-{role}")
        .set(database=f"t_{role}")
        .render_as_string(hide_password=False)
    )
    try:
        target = resolve_database_url(url)
        migrate.upgrade(target)
        yield target
    finally:
        with psycopg.connect(pg_server_url, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS t_{role} WITH (FORCE)")
            admin.execute(f"DROP ROLE IF EXISTS {role}")


def test_forced_row_level_security_hides_nothing_from_the_restore(
    owner_target: DatabaseTarget,
) -> None:
    engine = create_engine(owner_target)
    try:
        history(engine)
        before = hashed_rows(engine)
        runs = sql(owner_target, "SELECT to_jsonb(r) FROM apply_runs r")
        # As a later revision may leave it: forced, with no policy letting the owner in.
        sql(
            owner_target,
            "ALTER TABLE apply_runs ENABLE ROW LEVEL SECURITY;"
            " ALTER TABLE apply_runs FORCE ROW LEVEL SECURITY",
        )

        migrate.downgrade(owner_target, "baseline")
        migrate.upgrade(owner_target)

        assert hashed_rows(engine) == before
        assert sql(owner_target, "SELECT to_jsonb(r) FROM apply_runs r") == runs
        assert archived_tables(owner_target) == set()
        assert sql(owner_target, f"SELECT to_regnamespace('{ARCHIVE}')") == [(None,)]
    finally:
        engine.dispose()


def test_forced_row_level_security_hides_no_token_from_the_archive(
    owner_target: DatabaseTarget,
) -> None:
    sql(
        owner_target,
        "INSERT INTO oauth_tokens (tenant_id, platform, access_token, stripe_account_id,"
        " encryption_key_version) VALUES ('acme', 'STRIPE', 'rcn1:x', 'acct_9', 2);"
        " ALTER TABLE oauth_tokens FORCE ROW LEVEL SECURITY",
    )
    migrate.downgrade(owner_target, "baseline")
    migrate.upgrade(owner_target)
    assert sql(
        owner_target, "SELECT stripe_account_id, encryption_key_version FROM oauth_tokens"
    ) == [("acct_9", 2)]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--discard-audit-history"], "needs --rollback"),
        (["--rollback", "--from", "baseline"], "--from is for the upgrade SQL"),
        (["--from", "nosuchrev"], "unknown revision 'nosuchrev'"),
    ],
    ids=["discard-without-rollback", "from-with-rollback", "unknown-from"],
)
def test_sql_option_mistakes_are_one_line(args: list[str], expected: str) -> None:
    result = run("sql", *args)
    assert result.exit_code == 1 and result.stdout == ""
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and expected in errors[0]
    assert "Traceback" not in result.stderr
