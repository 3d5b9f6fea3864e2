"""The append-only, keyed hash chain of the audit log (``configuration_audit_logs``).

This module names the whole audit API; the code lives by concern in
:mod:`~reconciler.store.audit_hash` (formats, hashes),
:mod:`~reconciler.store.audit_chain` (verification),
:mod:`~reconciler.store.audit_write` (appending signed rows),
:mod:`~reconciler.store.audit_checkpoint` (checkpoints) and
:mod:`~reconciler.store.audit_review` (listing, reviews, summaries).

Every change the reconciler writes gets one row, in the same transaction as the change, and
so does every review decision. Rows form one chain per tenant, ordered by ``id``::

    prev_hash  = entry_hash of the tenant's previous row, NULL for its first row
    entry_hash = "k" + HMAC-SHA256(audit key, canonical JSON of the row)[:63 hex digits]

The audit key (:mod:`reconciler.crypto.audit_key`) is never stored in the database, so the
database owner, who can switch the append-only trigger off and rewrite any row, cannot make
an edited, inserted or reordered row verify. Removing a tenant's newest rows leaves a valid
but shorter chain: :func:`checkpoint_document` records the heads so that this is caught too
(keep the checkpoint outside the database, e.g. committed to git).

Chain formats, told apart by ``entry_hash`` itself (so the format survives a downgrade and
re-upgrade of the schema without a column to carry it):

* **v1** (64 hex digits): ``sha256`` of the canonical JSON with ``"format":
  "reconciler-audit/v1"``, unkeyed. Written before the keyed chain existed; still verified
  (anyone can recompute it, so on its own it proves nothing against the database owner) and
  extended: the first keyed row after v1 rows covers them through its ``prev_hash``.
* **v2** (``k`` + 63 hex digits): keyed as above, ``"format": "reconciler-audit/v2"``.
* **database-recorded** (``t`` + 63 hex digits): written by the database itself (the
  trigger function ``record_configuration_write()``) for a write to a configuration table
  that the reconciler does not audit itself, e.g. a service updating health columns. The
  database has no key, so the hash is an unkeyed ``sha256`` over a length-prefixed
  canonical text (:func:`database_entry_hash`). Such a row may follow keyed rows, and a
  keyed row after it covers it through ``prev_hash``. It can never stand in for a
  reconciler row: it may not carry an ``apply_run_id`` nor be a ``REVIEW`` (``format``
  break otherwise), ``audit list`` shows it as recorded by the database, and only the
  trigger function may insert one. Inserted between keyed rows it breaks the next keyed
  row's link; replacing a tenant's newest keyed rows with it is a truncation, which the
  checkpoint catches. Rows after a tenant's newest verified keyed row (or checkpoint) are
  counted in :attr:`ChainReport.database_uncovered`.
* anything else is refused as an unknown format (a newer reconciler's, or damage).

A v1 row after a keyed or database-recorded row of the same tenant is a break: the
reconciler never writes one, so it was written or rewritten by someone without the key.
The owner can still recompute a tenant's *whole* chain in the v1 format; so v1 rows that
no verified keyed row and no checkpoint covers are counted
(:attr:`ChainReport.unkeyed_only`), and ``audit verify`` fails on them unless told to
accept them (legitimately, right after the upgrade, for tenants that have had no change
since).

The canonical JSON is ``json.dumps(record, sort_keys=True, separators=(",", ":"),
ensure_ascii=False)`` of the fields named in :data:`HASHED_FIELDS` plus the format. JSONB
columns enter it as PostgreSQL's own text rendering of the stored value (``changes::text``),
so that number formatting can never make a faithful row look tampered; timestamps as UTC
``YYYY-MM-DDTHH:MM:SS.ffffffZ``; addresses as ``host(ip_address)``.

Reviews are rows too: action ``REVIEW``, the reviewed row's entity, ``changes`` =
``{"reviews": <audit id>, "decision": "APPROVED"|"REJECTED", "note": ...}`` and the reviewer
as ``performed_by``. A unique index allows one review per row. The old review columns
(``reviewed_at``, ``reviewed_by``, ``review_decision``, ``review_note``) are no longer
written and the trigger refuses every UPDATE; a decision they hold from before the keyed
chain is still shown for v1 rows (as a ``legacy`` review) and ignored for keyed rows.

Appends are serialized by :data:`~reconciler.store.locks.AUDIT_CHAIN_LOCK_KEY` among
reconciler writers, and per tenant by :func:`tenant_chain_lock_key` under the shared
:data:`FLEET_CHAIN_LOCK_KEY` (or by that fleet lock alone, taken exclusively, for a write to
more than :data:`FLEET_THRESHOLD` tenants), which the database's recording function takes
too (all held to the end of the appending transaction), so two writers never both extend
the same head and no writer fills the server's lock table. The unique index
``idx_configuration_audit_logs_successor`` (one successor per keyed or database-recorded
row) backs this for a writer whose snapshot predates the head (REPEATABLE READ).

A transaction whose configuration writes the reconciler audits itself calls
:func:`mark_audited_write` first, so that the database does not record them a second time.
"""

from __future__ import annotations

from reconciler.store.audit_chain import _VERIFY_SELECT as _VERIFY_SELECT  # the rows as hashed
from reconciler.store.audit_chain import (
    ChainBreak,
    ChainHead,
    ChainReport,
    Checkpoint,
    inspect_chains,
    verify_chain,
)
from reconciler.store.audit_checkpoint import (
    CHECKPOINT_FORMAT,
    chain_heads,
    checkpoint_document,
    parse_checkpoint,
)
from reconciler.store.audit_hash import (
    DATABASE_HASH_FORMAT,
    DATABASE_PREFIX,
    HASH_FORMAT,
    HASHED_FIELDS,
    KEYED_HASH_FORMAT,
    KEYED_PREFIX,
    canonical_timestamp,
    chain_format,
    database_entry_hash,
    entry_hash,
    keyed_entry_hash,
)
from reconciler.store.audit_review import (
    AuditFilters,
    AuditRecord,
    SummaryRow,
    daily_summary,
    list_entries,
    parse_since,
    pending_reviews,
    rejected_reviews,
    review_entry,
)
from reconciler.store.audit_write import (
    AUDITED_WRITE_SETTING,
    FLEET_CHAIN_LOCK_KEY,
    FLEET_THRESHOLD,
    AuditContext,
    AuditEntry,
    SensitiveValueInAudit,
    append_audit_entries,
    mark_audited_write,
    render_documents,
    tenant_chain_lock_key,
)

__all__ = [
    "AUDITED_WRITE_SETTING",
    "CHECKPOINT_FORMAT",
    "DATABASE_HASH_FORMAT",
    "DATABASE_PREFIX",
    "FLEET_CHAIN_LOCK_KEY",
    "FLEET_THRESHOLD",
    "HASHED_FIELDS",
    "HASH_FORMAT",
    "KEYED_HASH_FORMAT",
    "KEYED_PREFIX",
    "AuditContext",
    "AuditEntry",
    "AuditFilters",
    "AuditRecord",
    "ChainBreak",
    "ChainHead",
    "ChainReport",
    "Checkpoint",
    "SensitiveValueInAudit",
    "SummaryRow",
    "append_audit_entries",
    "canonical_timestamp",
    "chain_format",
    "chain_heads",
    "checkpoint_document",
    "daily_summary",
    "database_entry_hash",
    "entry_hash",
    "inspect_chains",
    "keyed_entry_hash",
    "list_entries",
    "mark_audited_write",
    "parse_checkpoint",
    "parse_since",
    "pending_reviews",
    "rejected_reviews",
    "render_documents",
    "review_entry",
    "tenant_chain_lock_key",
    "verify_chain",
]
