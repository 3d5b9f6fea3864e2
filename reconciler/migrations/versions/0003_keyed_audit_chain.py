"""keyed_audit_chain: reviews become chained audit rows; the audit log refuses every UPDATE.

Revision ID: keyed_audit_chain
Revises: add_configuration_management
Create Date: 2026-12-01

Upgrade:

* ``audit_action`` gains ``REVIEW``: a review decision is a new audit row in the reviewed
  row's tenant chain, written and signed like every other row;
* a unique index ``idx_configuration_audit_logs_review_of`` on ``(tenant_id, changes ->>
  'reviews') WHERE action = 'REVIEW'``: one review per row, and the lookup that derives a
  row's review status;
* the append-only trigger refuses every UPDATE (it used to let the review columns change),
  and ``reconciler_app`` loses its UPDATE grant on those columns. The legacy review columns
  keep what they hold.

The keyed chain itself needs no schema change: a keyed ``entry_hash`` is told from an unkeyed
one by its text (see ``reconciler/store/audit.py``), and the key is never in the database.

Downgrade restores the previous trigger and grant, and folds every ``REVIEW`` row back into
the review columns of the row it decides on, so the previous version's ``audit pending`` and
``audit list`` see the decisions. The ``REVIEW`` rows themselves are kept (deleting them
would break the chain), and so is the ``REVIEW`` enum label when such rows exist; without
any, ``audit_action`` returns to its previous labels. The previous version cannot verify
keyed rows: its ``audit verify`` reports the first keyed row of a tenant as edited; upgrade
again to verify them.

The enum is re-created rather than extended with ``ALTER TYPE ... ADD VALUE``: a label added
that way cannot be used in the same transaction, and the new index's predicate uses it.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from reconciler.migrations.support import APP_ROLE, REVIEW_COLUMNS, append_only_allowing_reviews

revision: str = "keyed_audit_chain"
down_revision: str | None = "add_configuration_management"

TABLE = "configuration_audit_logs"
ACTIONS = ("CREATE", "UPDATE", "DELETE", "REVOKE", "ROTATE", "REVIEW")
PREVIOUS_ACTIONS = ("CREATE", "UPDATE", "DELETE", "REVOKE", "ROTATE")
REVIEW_INDEX = "idx_configuration_audit_logs_review_of"


def recreate_action_enum(labels: Sequence[str]) -> str:
    """SQL that gives ``audit_action`` exactly ``labels`` (existing values must be among them)."""
    quoted = ", ".join(f"'{label}'" for label in labels)
    return (
        f"CREATE TYPE audit_action_new AS ENUM ({quoted});\n"
        f"ALTER TABLE {TABLE} ALTER COLUMN action TYPE audit_action_new "
        "USING action::text::audit_action_new;\n"
        "DROP TYPE audit_action;\n"
        "ALTER TYPE audit_action_new RENAME TO audit_action"
    )


def upgrade() -> None:
    op.execute(recreate_action_enum(ACTIONS))
    op.execute(
        f"CREATE UNIQUE INDEX {REVIEW_INDEX} ON {TABLE} (tenant_id, (changes ->> 'reviews')) "
        "WHERE action = 'REVIEW'"
    )
    op.execute(
        """
        CREATE OR REPLACE FUNCTION configuration_audit_logs_append_only() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            -- No "%" placeholder: offline SQL rendering would double it.
            RAISE EXCEPTION USING
                MESSAGE = 'configuration_audit_logs is append-only: ' || TG_OP
                    || ' is not allowed (a review is a new audit row)',
                ERRCODE = 'insufficient_privilege';
        END
        $$
        """
    )
    op.execute(f"REVOKE UPDATE ({', '.join(REVIEW_COLUMNS)}) ON {TABLE} FROM {APP_ROLE}")


def downgrade() -> None:
    op.execute(append_only_allowing_reviews("CREATE OR REPLACE"))
    # Each decision back into the columns the previous version reads (a row reviewed before
    # the upgrade already has them, and then has no REVIEW row).
    op.execute(
        f"""
        UPDATE {TABLE} a
           SET reviewed_at = r.created_at,
               reviewed_by = r.performed_by,
               review_decision = (r.changes ->> 'decision')::review_decision,
               review_note = r.changes ->> 'note'
          FROM {TABLE} r
         WHERE r.action = 'REVIEW' AND r.tenant_id = a.tenant_id
           AND r.changes ->> 'reviews' = a.id::text
           AND a.reviewed_at IS NULL
        """
    )
    op.execute(f"DROP INDEX {REVIEW_INDEX}")
    op.execute(f"GRANT UPDATE ({', '.join(REVIEW_COLUMNS)}) ON {TABLE} TO {APP_ROLE}")
    previous = recreate_action_enum(PREVIOUS_ACTIONS).replace("\n", "\n            ")
    op.execute(
        f"""
        DO $$
        BEGIN
            -- Review rows are kept, so their label stays while any exists.
            IF NOT EXISTS (SELECT FROM {TABLE} WHERE action::text = 'REVIEW') THEN
            {previous};
            END IF;
        END
        $$
        """
    )
