"""Advisory-lock timeouts name the holder, or say plainly that it is unknown."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from reconciler.errors import LockTimeout
from reconciler.store.locks import APPLY_LOCK_KEY, acquire_xact_lock


@pytest.fixture
def unprivileged_role(engine: sa.Engine) -> Iterator[str]:
    """A NOLOGIN role without pg_read_all_stats: other roles' sessions are hidden from it."""
    name = f"waiter_{uuid.uuid4().hex[:8]}"
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE ROLE {name} NOLOGIN"))
    try:
        yield name
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP ROLE {name}"))


def test_holder_hidden_from_the_waiter_is_an_unknown_holder(
    engine: sa.Engine, unprivileged_role: str
) -> None:
    with engine.connect() as holder:
        holder.execute(sa.text("SET application_name = 'secret-job'"))
        holder.commit()
        acquire_xact_lock(holder, APPLY_LOCK_KEY, timeout_seconds=5, what="the apply lock")
        pid = holder.execute(sa.text("SELECT pg_backend_pid()")).scalar()
        with engine.connect() as waiter:
            waiter.execute(sa.text(f"SET ROLE {unprivileged_role}"))
            with pytest.raises(LockTimeout) as info:
                acquire_xact_lock(
                    waiter, APPLY_LOCK_KEY, timeout_seconds=0.2, what="the apply lock"
                )
            waiter.rollback()
        holder.rollback()
    message = str(info.value)
    assert "could not take the apply lock after 0.2s: held by" in message
    assert f"pid {pid}" in message
    assert "None" not in message and "?" not in message


def test_describe_holder_names_what_is_known() -> None:
    from reconciler.store.locks import describe_holder

    since = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
    full = describe_holder(
        pid=42,
        application_name="deploy-job-7",
        user="erin",
        client="10.0.0.5",
        xact_start=since,
        state="idle in transaction",
    )
    assert full == (
        "deploy-job-7 (pid 42, user erin from 10.0.0.5, "
        "transaction open since 2026-12-01T09:30:00+00:00, idle in transaction)"
    )
    hidden = describe_holder(
        pid=42, application_name=None, user=None, client=None, xact_start=None, state=None
    )
    assert hidden == "an unknown holder (pid 42)"
    empty_name = describe_holder(
        pid=7, application_name="", user="bob", client=None, xact_start=None, state=None
    )
    assert empty_name == "an unknown holder (pid 7, user bob)"
    prepared = describe_holder(
        pid=None, application_name=None, user=None, client=None, xact_start=None, state=None
    )
    assert prepared == "a prepared transaction (see pg_prepared_xacts)"
