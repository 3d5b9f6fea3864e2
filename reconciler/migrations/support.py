"""Names and SQL shared by several migration scripts in ``versions/``.

Released migrations use what is here, so it is append-only: never change what an existing
name holds or what an existing helper emits (a database migrated with the old text would no
longer match a database migrated with the new, and ``migrations/sql/*.sql`` would change);
add a new one instead. Nothing here may import ``reconciler.store`` or ``reconciler.model``,
which describe the current schema rather than the one a revision knew.

Kept outside ``versions/``, where Alembic reads every module as a revision.
"""

from __future__ import annotations

from collections.abc import Sequence

APP_ROLE = "reconciler_app"
"""The services' role (``add_configuration_management``)."""
DEPLOY_ROLE = "reconciler_deploy"
"""The role ``apply`` runs as (``least_privilege_roles``)."""
CI_ROLE = "reconciler_ci"
"""The read-only role of ``plan`` and ``drift`` (``least_privilege_roles``)."""

ACCOUNT_COLUMNS = (
    "hubspot_portal_id",
    "hubspot_user_id",
    "hubspot_app_id",
    "stripe_account_id",
    "stripe_user_id",
    "stripe_livemode",
    "quickbooks_realm_id",
)
"""The connected-account identity columns ``add_configuration_management`` added to
``oauth_tokens``, in that revision's order."""

REVIEW_COLUMNS = ("reviewed_at", "reviewed_by", "review_decision", "review_note")
"""The audit log's review columns (``add_configuration_management``), which
``keyed_audit_chain`` stopped writing."""


def append_only_allowing_reviews(create: str) -> str:
    """``configuration_audit_logs_append_only()`` as ``add_configuration_management`` wrote it.

    An UPDATE may change only :data:`REVIEW_COLUMNS`; anything else is refused. ``create`` is
    the statement's verb (``CREATE`` or ``CREATE OR REPLACE``): ``keyed_audit_chain``'s
    downgrade puts this same function back.
    """
    review = ", ".join(f"'{c}'" for c in REVIEW_COLUMNS)
    return f"""
        {create} FUNCTION configuration_audit_logs_append_only() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'UPDATE' THEN
                IF (to_jsonb(NEW) - ARRAY[{review}]) IS DISTINCT FROM
                   (to_jsonb(OLD) - ARRAY[{review}]) THEN
                    RAISE EXCEPTION USING
                        MESSAGE = 'configuration_audit_logs is append-only: an UPDATE may '
                            || 'change only the review columns ({", ".join(REVIEW_COLUMNS)})',
                        ERRCODE = 'insufficient_privilege';
                END IF;
                RETURN NEW;
            END IF;
            -- No "%" placeholder: offline SQL rendering would double it.
            RAISE EXCEPTION USING
                MESSAGE = 'configuration_audit_logs is append-only: ' || TG_OP || ' is not allowed',
                ERRCODE = 'insufficient_privilege';
        END
        $$
        """


def amend_function(revision: str, function: str, pairs: Sequence[tuple[str, str]]) -> str:
    """A DO block that rewrites ``function``'s body in place, each ``old`` text to ``new``.

    The definition is read from the catalog (``pg_get_functiondef``: owner, ``SET`` options
    and body as they are) and each ``old`` text replaced by its ``new`` one, in order; a body
    without an ``old`` text stops the migration (the message names ``revision``) rather than
    leave the function half amended. :func:`undo_amendment` reverses it.
    """
    steps = "\n".join(
        f"""    IF position($old{i}${old}$old{i}$ IN def) = 0 THEN
        RAISE EXCEPTION '{revision}: {function} is not the expected version';
    END IF;
    def := replace(def, $old{i}${old}$old{i}$, $new{i}${new}$new{i}$);"""
        for i, (old, new) in enumerate(pairs)
    )
    return f"""DO $do$
DECLARE
    def text := pg_get_functiondef(CAST('{function}' AS regprocedure));
BEGIN
{steps}
    EXECUTE def;
END
$do$"""


def undo_amendment(revision: str, function: str, pairs: Sequence[tuple[str, str]]) -> str:
    """The DO block that reverses ``amend_function(revision, function, pairs)`` exactly."""
    return amend_function(revision, function, [(new, old) for old, new in reversed(pairs)])
