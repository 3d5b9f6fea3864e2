"""Edge: PostgreSQL through SQLAlchemy 2.x (Core) and psycopg 3.

* :mod:`~reconciler.store.tables` — the schema (Alembic's ``target_metadata``);
* :mod:`~reconciler.store.database` — which database to use (``--database-url``,
  ``$RECONCILER_DATABASE_URL``, ``$DATABASE_URL``, else an embedded PostgreSQL), engines,
  and translation of driver errors into :class:`~reconciler.errors.DatabaseUnavailable`;
* :mod:`~reconciler.store.migrate` — upgrade, downgrade, current revision and offline SQL.

Nothing outside this package imports SQLAlchemy or psycopg.
"""
