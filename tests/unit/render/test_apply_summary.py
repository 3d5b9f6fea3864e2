"""The last line of ``reconciler apply``: exact text for each outcome."""

from __future__ import annotations

import uuid

from reconciler.model.enums import ApplyOutcome
from reconciler.render.apply_summary import render_apply_summary

RUN = uuid.UUID("12345678-1234-5678-1234-567812345678")
COUNTS = {"create": 2, "update": 1, "revoke": 3}


def test_no_changes() -> None:
    assert render_apply_summary(ApplyOutcome.NO_CHANGES, {}, None) == (
        "No changes. The database matches the manifests; nothing written."
    )


def test_applied_names_every_action_and_the_run() -> None:
    assert render_apply_summary(ApplyOutcome.APPLIED, COUNTS, RUN) == (
        "Applied 6 change(s): 2 created, 1 updated, 0 deleted, 3 revoked "
        "(run 12345678-1234-5678-1234-567812345678)."
    )


def test_dry_run_says_it_was_rolled_back() -> None:
    assert render_apply_summary(ApplyOutcome.APPLIED, COUNTS, None, dry_run=True) == (
        "Dry run: 6 change(s) (2 created, 1 updated, 0 deleted, 3 revoked) written with their "
        "audit rows and rolled back; nothing applied."
    )
