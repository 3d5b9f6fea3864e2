"""Driver errors become one-line errors of the class that says what happened (by SQLSTATE)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from reconciler.errors import (
    DatabaseUnavailable,
    LockTimeout,
    PermissionDenied,
    ReconcilerError,
    StatementCancelled,
    TransactionConflict,
)
from reconciler.store.database import translate_db_errors


def test_statement_timeout_is_a_cancelled_statement_not_an_unavailable_database(
    engine: sa.Engine,
) -> None:
    with (
        pytest.raises(StatementCancelled) as info,
        translate_db_errors(engine.url),
        engine.connect() as conn,
        conn.begin(),
    ):
        conn.execute(sa.text("SET LOCAL statement_timeout = 50"))
        conn.execute(sa.text("SELECT pg_sleep(5)"))
    message = str(info.value)
    assert not isinstance(info.value, DatabaseUnavailable)
    assert message.startswith(
        "the database cancelled a statement: canceling statement due to statement timeout"
    )
    assert "statement_timeout_seconds" in message and "\n" not in message


def test_row_lock_timeout_is_a_lock_timeout(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE t_locked (id int PRIMARY KEY)"))
        conn.execute(sa.text("INSERT INTO t_locked VALUES (1)"))
    with engine.connect() as holder:
        holder.execute(sa.text("SELECT * FROM t_locked WHERE id = 1 FOR UPDATE"))
        with (
            pytest.raises(LockTimeout) as info,
            translate_db_errors(engine.url),
            engine.connect() as conn,
            conn.begin(),
        ):
            conn.execute(sa.text("SET LOCAL lock_timeout = 50"))
            conn.execute(sa.text("UPDATE t_locked SET id = 2 WHERE id = 1"))
        holder.rollback()
    assert str(info.value).startswith(
        "a lock was not granted in time: canceling statement due to lock timeout"
    )


def test_deadlock_is_a_transaction_conflict(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE t_pair (id int PRIMARY KEY)"))
        conn.execute(sa.text("INSERT INTO t_pair VALUES (1), (2)"))
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def worker(first: int, second: int) -> None:
        try:
            with translate_db_errors(engine.url), engine.connect() as conn, conn.begin():
                conn.execute(sa.text("UPDATE t_pair SET id = id WHERE id = :i"), {"i": first})
                barrier.wait(timeout=10)
                conn.execute(sa.text("UPDATE t_pair SET id = id WHERE id = :i"), {"i": second})
        except ReconcilerError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=pair) for pair in ((1, 2), (2, 1))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    # The server breaks the deadlock by failing one of the two transactions.
    assert len(errors) == 1 and isinstance(errors[0], TransactionConflict)
    assert "deadlock detected" in str(errors[0]) and "run the command again" in str(errors[0])


@pytest.mark.parametrize(
    ("sqlstate", "error_type", "start"),
    [
        ("40001", TransactionConflict, "the transaction conflicted with a concurrent one"),
        ("53300", DatabaseUnavailable, "the database server is out of resources"),
        ("53100", DatabaseUnavailable, "the database server is out of resources"),
        ("28P01", DatabaseUnavailable, "the database refused the login"),
        ("57P01", DatabaseUnavailable, "lost the database connection"),
        ("08006", DatabaseUnavailable, "lost the database connection"),
    ],
)
def test_sqlstate_classes_map_to_precise_errors(
    engine: sa.Engine, sqlstate: str, error_type: type[ReconcilerError], start: str
) -> None:
    # A real server error carrying the SQLSTATE, raised by PL/pgSQL.
    statement = (
        f"DO $$ BEGIN RAISE EXCEPTION 'simulated %', '{sqlstate}' "
        f"USING ERRCODE = '{sqlstate}'; END $$"
    )
    with (
        pytest.raises(error_type) as info,
        translate_db_errors(engine.url),
        engine.connect() as conn,
    ):
        conn.execute(sa.text(statement))
    message = str(info.value)
    assert message.startswith(start), message
    assert f"simulated {sqlstate}" in message and "\n" not in message


@pytest.fixture
def powerless_role(engine: sa.Engine) -> Iterator[str]:
    name = f"powerless_{uuid.uuid4().hex[:8]}"
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE ROLE {name} NOLOGIN"))
    try:
        yield name
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP ROLE {name}"))


def test_missing_privilege_is_permission_denied(engine: sa.Engine, powerless_role: str) -> None:
    with (
        pytest.raises(PermissionDenied) as info,
        translate_db_errors(engine.url),
        engine.connect() as conn,
    ):
        conn.execute(sa.text(f"SET ROLE {powerless_role}"))
        conn.execute(sa.text("SELECT count(*) FROM integration_configs"))
    message = str(info.value)
    assert message.startswith("permission denied (connected as postgres): ")
    assert "permission denied for table integration_configs" in message
