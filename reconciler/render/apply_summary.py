"""The one-line result of an apply, as ``reconciler apply`` prints it last."""

from __future__ import annotations

import uuid
from collections.abc import Mapping

from reconciler.model.enums import ApplyOutcome


def render_apply_summary(
    outcome: ApplyOutcome,
    counts: Mapping[str, int],
    run_id: uuid.UUID | None,
    *,
    dry_run: bool = False,
) -> str:
    """What an apply did: nothing, a dry run rolled back, or the counts and the run id.

    ``counts`` maps an action (``create``, ``update``, ``delete``, ``revoke``) to the number
    of changes applied; a missing action counts zero.
    """
    if outcome is ApplyOutcome.NO_CHANGES:
        return "No changes. The database matches the manifests; nothing written."
    c = counts
    total = sum(c.values())
    if dry_run:
        return (
            f"Dry run: {total} change(s) ({c.get('create', 0)} created, "
            f"{c.get('update', 0)} updated, {c.get('delete', 0)} deleted, "
            f"{c.get('revoke', 0)} revoked) written with their audit rows and rolled "
            "back; nothing applied."
        )
    return (
        f"Applied {total} change(s): {c.get('create', 0)} created, "
        f"{c.get('update', 0)} updated, {c.get('delete', 0)} deleted, "
        f"{c.get('revoke', 0)} revoked (run {run_id})."
    )
