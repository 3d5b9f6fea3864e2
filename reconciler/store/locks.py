"""Transaction-scoped advisory locks that serialize writers.

``APPLY_LOCK_KEY`` serializes ``reconciler apply`` runs; ``AUDIT_CHAIN_LOCK_KEY`` serializes
appends to the audit hash chain (an append reads each tenant's chain head, so two appenders
must not interleave). Both are ``pg_advisory_xact_lock`` locks: they are released when the
transaction ends, including when the client crashes or the connection drops, so a killed run
never leaves a lock behind.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from reconciler.errors import LockTimeout

_LOCK_NOT_AVAILABLE = "55P03"


def lock_key(name: str) -> int:
    """A stable signed 64-bit advisory lock key derived from ``name``."""
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "big", signed=True)


APPLY_LOCK_KEY = lock_key("reconciler/apply")
"""Held by ``reconciler apply`` for its whole transaction."""
AUDIT_CHAIN_LOCK_KEY = lock_key("reconciler/audit-chain")
"""Held while appending to the audit hash chain, until the appending transaction ends."""


def acquire_xact_lock(conn: sa.Connection, key: int, *, timeout_seconds: float, what: str) -> None:
    """Take the advisory lock ``key`` for the rest of the current transaction.

    Waits in PostgreSQL's lock queue (first come, first served) for at most
    ``timeout_seconds``; ``0`` or less means try once without waiting.

    Args:
        conn: a connection inside the transaction that should hold the lock.
        key: e.g. :data:`APPLY_LOCK_KEY`.
        timeout_seconds: how long to wait.
        what: what the lock protects, for the message (e.g. ``"the apply lock"``).

    Raises:
        LockTimeout: the lock was not granted in time; the message names the holder.
    """
    if timeout_seconds <= 0:
        got = conn.execute(sa.text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": key}).scalar()
        if not got:
            raise LockTimeout(_timeout_message(conn, key, what, "without waiting"))
        return
    # A savepoint: when lock_timeout fires, only the savepoint aborts and the transaction can
    # still ask who holds the lock. The short timeout is transaction-local and put back right
    # after the lock is granted, so it never applies to the row locks the caller takes later.
    savepoint = conn.begin_nested()
    try:
        previous = conn.execute(sa.text("SELECT current_setting('lock_timeout')")).scalar_one()
        milliseconds = f"{max(1, round(timeout_seconds * 1000))}ms"
        conn.execute(sa.text("SELECT set_config('lock_timeout', :v, true)"), {"v": milliseconds})
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})
        conn.execute(sa.text("SELECT set_config('lock_timeout', :v, true)"), {"v": previous})
    except DBAPIError as exc:
        savepoint.rollback()
        if getattr(exc.orig, "sqlstate", None) != _LOCK_NOT_AVAILABLE:
            raise
        waited = f"after {timeout_seconds:g}s"
        raise LockTimeout(_timeout_message(conn, key, what, waited)) from None
    savepoint.commit()


def lock_holder(conn: sa.Connection, key: int) -> str | None:
    """Describe who holds advisory lock ``key`` in this database; None if nobody does.

    Names the holder by ``application_name``, pid, user, client address, transaction start and
    state, each only when known: PostgreSQL shows another role's session details only to
    superusers and members of ``pg_read_all_stats``, and a prepared transaction has no session
    at all. Without a name the holder reads as "an unknown holder".
    """
    unsigned = key & 0xFFFF_FFFF_FFFF_FFFF
    # A bigint advisory lock shows in pg_locks as classid = high 32 bits, objid = low 32 bits,
    # objsubid = 1. LEFT JOIN: a prepared transaction holds locks with no backend (pid NULL).
    row = conn.execute(
        sa.text(
            "SELECT l.pid, a.application_name, a.usename AS user, a.client_addr::text AS client,"
            "       a.xact_start, a.state"
            "  FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid"
            " WHERE l.locktype = 'advisory' AND l.granted"
            "   AND l.classid::bigint = :hi AND l.objid::bigint = :lo AND l.objsubid = 1"
            "   AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            " LIMIT 1"
        ),
        {"hi": unsigned >> 32, "lo": unsigned & 0xFFFF_FFFF},
    ).one_or_none()
    # The columns are named as describe_holder's parameters.
    return None if row is None else describe_holder(**row._mapping)


def describe_holder(
    *,
    pid: int | None,
    application_name: str | None,
    user: str | None,
    client: str | None,
    xact_start: datetime | None,
    state: str | None,
) -> str:
    """One phrase naming a lock holder from what is known of it (``None``: not known)."""
    if pid is None:
        return "a prepared transaction (see pg_prepared_xacts)"
    details = [f"pid {pid}"]
    if user:
        details.append(f"user {user}" + (f" from {client}" if client else ""))
    if xact_start is not None:
        details.append(f"transaction open since {xact_start.isoformat(timespec='seconds')}")
    if state:
        details.append(state)
    name = application_name or "an unknown holder"
    return f"{name} ({', '.join(details)})"


def _timeout_message(conn: sa.Connection, key: int, what: str, waited: str) -> str:
    holder = lock_holder(conn, key)
    if holder is None:
        return f"could not take {what} {waited}: its holder has just released it; try again"
    return f"could not take {what} {waited}: held by {holder}"
