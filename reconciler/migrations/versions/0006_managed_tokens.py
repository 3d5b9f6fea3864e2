"""managed_tokens: ``oauth_tokens.managed_since`` records that a manifest declared the account.

Revision ID: managed_tokens
Revises: database_recorded_writes
Create Date: 2026-12-01

A token whose account no manifest has ever declared is *unmanaged*: plans list such tokens
in one notice per tenant and platform, and ``apply --prune`` does not revoke them (only
``--revoke-unmanaged`` does). ``apply`` sets ``managed_since`` on the tokens of a connected
account the first time a manifest declares it; a token keeps it when its account is later
removed from the manifests, and is then revoked by ``--prune`` as before.

Upgrade adds the nullable column: every existing token starts unmanaged, and the next apply
marks those whose accounts are declared (a LOW change per account token). A value kept by an
earlier downgrade in ``metadata`` is brought back.

Downgrade keeps the data: each value moves into ``metadata`` under
``reconciler_managed_since`` before the column is dropped, and the next upgrade restores it.
"""

from __future__ import annotations

from alembic import op

revision: str = "managed_tokens"
down_revision: str | None = "database_recorded_writes"

KEPT_KEY = "reconciler_managed_since"


def upgrade() -> None:
    op.execute("ALTER TABLE oauth_tokens ADD COLUMN managed_since TIMESTAMP WITH TIME ZONE")
    # apply marks tokens as managed: the deploy role writes the column, services never do.
    op.execute("GRANT UPDATE (managed_since) ON oauth_tokens TO reconciler_deploy")
    op.execute(
        f"""
        UPDATE oauth_tokens
           SET managed_since = (metadata ->> '{KEPT_KEY}')::timestamptz,
               metadata = metadata - '{KEPT_KEY}'
         WHERE metadata ->> '{KEPT_KEY}' IS NOT NULL
        """
    )


def downgrade() -> None:
    op.execute(
        f"""
        UPDATE oauth_tokens
           SET metadata = metadata || jsonb_build_object('{KEPT_KEY}', managed_since)
         WHERE managed_since IS NOT NULL
        """
    )
    op.execute("ALTER TABLE oauth_tokens DROP COLUMN managed_since")
