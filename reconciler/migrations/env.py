"""Alembic environment: runs migrations on the connection :mod:`reconciler.store.migrate` passes.

Online: the caller puts an open SQLAlchemy ``Connection`` into ``config.attributes["connection"]``
(no URL in the config, so passwords never go through ConfigParser interpolation). All
migrations of one command run in one transaction (PostgreSQL has transactional DDL) under an
advisory lock, so two commands upgrading the same database at once run one after the other.

Offline (``reconciler db sql``): SQL for the postgresql dialect is written to the output buffer.

Options reach the migrations as configuration attributes (``config.attributes``, read by a
migration through ``op.get_context().config``). The only one is ``discard_audit_history``:
when ``True``, a downgrade may drop the audit log and apply history instead of archiving them
(``reconciler db downgrade --discard-audit-history``). Running Alembic directly, ``-x
discard_audit_history=true`` sets it.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection

from reconciler.store.tables import metadata

DISCARD_AUDIT_HISTORY = "discard_audit_history"

# Any constant works; this one is "reconcil" in ASCII, unlikely to collide with others.
MIGRATION_LOCK_KEY = 0x7265636F6E63696C


def run_offline() -> None:
    context.configure(
        dialect_name="postgresql",
        literal_binds=True,
        target_metadata=metadata,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online(connection: Connection) -> None:
    # Autogenerate (`alembic check`) compares types and server defaults too; what it cannot
    # compare (enum labels, index methods and predicates) reconciler.store.migrate.check adds.
    context.configure(
        connection=connection,
        target_metadata=metadata,
        compare_type=True,
        compare_server_default=True,
    )
    with context.begin_transaction():
        connection.execute(text(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})"))
        context.run_migrations()


def main() -> None:
    x_arguments = context.get_x_argument(as_dictionary=True)
    if x_arguments.get(DISCARD_AUDIT_HISTORY, "").lower() == "true":
        context.config.attributes[DISCARD_AUDIT_HISTORY] = True
    if context.is_offline_mode():
        run_offline()
        return
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError(
            "run migrations through `reconciler db` or reconciler.store.migrate, "
            "which pass the database connection"
        )
    run_online(connection)


main()
