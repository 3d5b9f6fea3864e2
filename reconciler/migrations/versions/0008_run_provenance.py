"""run_provenance: ``apply_runs.git_dirty`` records an apply of uncommitted manifests.

Revision ID: run_provenance
Revises: runtime_functions
Create Date: 2026-12-01

``apply_runs.git_commit`` names the commit the manifests came from; when the work tree had
uncommitted changes under the manifests directory, that commit is not what was applied.
``git_dirty`` says so: true (uncommitted changes), false (clean), NULL (unknown: not a git
work tree, or a run from before this revision).

Downgrade keeps the data: a run's ``user_agent`` gets the suffix `` [git-dirty]`` or
`` [git-clean]`` before the column is dropped, and the next upgrade moves it back into the
column.
"""

from __future__ import annotations

from alembic import op

revision: str = "run_provenance"
down_revision: str | None = "runtime_functions"

KEPT = {True: " [git-dirty]", False: " [git-clean]"}


def upgrade() -> None:
    op.execute("ALTER TABLE apply_runs ADD COLUMN git_dirty BOOLEAN")
    for flag, suffix in KEPT.items():
        op.execute(
            f"""
            UPDATE apply_runs
               SET git_dirty = {str(flag).lower()},
                   user_agent = NULLIF(left(user_agent, length(user_agent) - {len(suffix)}), '')
             WHERE right(user_agent, {len(suffix)}) = '{suffix}'
            """
        )


def downgrade() -> None:
    for flag, suffix in KEPT.items():
        op.execute(
            f"""
            UPDATE apply_runs
               SET user_agent = coalesce(user_agent, '') || '{suffix}'
             WHERE git_dirty = {str(flag).lower()}
            """
        )
    op.execute("ALTER TABLE apply_runs DROP COLUMN git_dirty")
