"""The ``plan_approvals`` table: approvals of a plan, bound to the digest of its changes.

Append-only (a trigger refuses UPDATE, DELETE and TRUNCATE). One approval per person and
digest. Each approval is also written to the audit chain by the caller, in the same
transaction (see :mod:`reconciler.commands.approvals`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from reconciler.errors import ConfigError
from reconciler.model.enums import RiskLevel
from reconciler.store.records import json_form

_COLUMNS = (
    "id, plan_digest, approved_by, plan_author, max_risk::text AS max_risk, tenants, note,"
    " created_at"
)


@dataclass(frozen=True, slots=True)
class Approval:
    """One approval of a plan digest.

    Attributes:
        id: the row id.
        plan_digest: SHA-256 of the plan's changes (as ``apply_runs.plan_digest``).
        approved_by: who approved.
        plan_author: who made the plan, as the plan file named them (None: unknown).
        max_risk: the plan's highest risk level.
        tenants: the tenants the plan changes.
        note: why, in the approver's words.
        created_at: when.
    """

    id: int
    plan_digest: str
    approved_by: str
    plan_author: str | None
    max_risk: str
    tenants: list[str]
    note: str | None
    created_at: datetime

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return json_form(self)


def insert_approval(
    conn: sa.Connection,
    *,
    plan_digest: str,
    approved_by: str,
    plan_author: str | None,
    max_risk: RiskLevel,
    tenants: Sequence[str],
    note: str | None,
    now: datetime,
) -> Approval:
    """Record one approval in the caller's transaction.

    Raises:
        ConfigError: ``approved_by`` already approved this digest.
    """
    try:
        with conn.begin_nested():
            row = conn.execute(
                sa.text(
                    "INSERT INTO plan_approvals (plan_digest, approved_by, plan_author, max_risk,"
                    " tenants, note, created_at) VALUES (:digest, :by, :author,"
                    " CAST(:risk AS risk_level), CAST(:tenants AS text[]), :note, :now)"
                    f" RETURNING {_COLUMNS}"
                ),
                {
                    "digest": plan_digest,
                    "by": approved_by,
                    "author": plan_author,
                    "risk": max_risk.value,
                    "tenants": sorted(set(tenants)),
                    "note": note,
                    "now": now,
                },
            ).one()
    except IntegrityError as exc:
        if "uq_plan_approvals_digest_approver" in str(exc.orig):
            raise ConfigError(
                f"{approved_by} has already approved plan {plan_digest[:12]}"
            ) from None
        raise
    return Approval(**row._mapping)


def approvals_for(conn: sa.Connection, digests: Sequence[str]) -> list[Approval]:
    """Every approval of any of ``digests``, oldest first."""
    if not digests:
        return []
    rows = conn.execute(
        sa.text(
            f"SELECT {_COLUMNS} FROM plan_approvals WHERE plan_digest = ANY(:digests)"
            " ORDER BY created_at, id"
        ),
        {"digests": list(digests)},
    )
    return [Approval(**r._mapping) for r in rows]
