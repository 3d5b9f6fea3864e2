"""Edge: PostgreSQL through SQLAlchemy 2.x (Core) and psycopg 3; all of the package's SQL.

* :mod:`~reconciler.store.tables` — the schema (Alembic's ``target_metadata``);
* :mod:`~reconciler.store.database` — which database to use (``--database-url``,
  ``$RECONCILER_DATABASE_URL``, ``$DATABASE_URL``, else an embedded PostgreSQL), engines,
  and translation of driver errors into :class:`~reconciler.errors.DatabaseUnavailable`;
* :mod:`~reconciler.store.session` — one command's database: resolve, check the schema,
  always dispose of the engine (:func:`open_database`, or :func:`connect` for one transaction);
* :mod:`~reconciler.store.transaction` — transaction settings: read snapshot, statement timeout;
* :mod:`~reconciler.store.runs` — the ``apply_runs`` history: one row per apply, ``history``;
* :mod:`~reconciler.store.migrate` — upgrade, downgrade, current revision and offline SQL;
* :mod:`~reconciler.store.visibility` — refuse a partial view under row-level security;
* :mod:`~reconciler.store.read` — the actual state for a plan (fingerprints, no plaintext);
* :mod:`~reconciler.store.write` — a plan's changes, set-based, in the caller's transaction;
* :mod:`~reconciler.store.locks` — the advisory locks that serialize writers;
* :mod:`~reconciler.store.audit` — the keyed hash chain of the audit log and its queries,
  by concern in :mod:`~reconciler.store.audit_hash` (formats, hashes),
  :mod:`~reconciler.store.audit_chain` (verification),
  :mod:`~reconciler.store.audit_write` (appending signed rows),
  :mod:`~reconciler.store.audit_checkpoint` (checkpoints) and
  :mod:`~reconciler.store.audit_review` (listing, reviews, summaries);
* :mod:`~reconciler.store.secret_tables` — the tables holding encrypted values, rows per key
  version;
* :mod:`~reconciler.store.rotate` — re-encryption of stored secrets under a new key version;
* :mod:`~reconciler.store.token_adoption` — OAuth tokens written before adoption, into
  ``rcn1``;
* :mod:`~reconciler.store.roles` — the reconciler's group roles and their members;
* :mod:`~reconciler.store.health` — ``health check``: targets, health writes, circuit moves;
* :mod:`~reconciler.store.reports` — ``report health|circuits``: read-only report queries;
* :mod:`~reconciler.store.import_rows` — ``import``: the rows to export, secrets encrypted.

Nothing outside this package and the migration scripts (``reconciler/migrations``) imports
SQLAlchemy or psycopg or writes SQL; ``tests/unit/test_architecture.py`` checks the imports.
"""
