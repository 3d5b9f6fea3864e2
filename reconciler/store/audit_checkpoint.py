"""Checkpoints: chain heads recorded outside the database, so that removing a tenant's
newest rows is caught too (see :mod:`reconciler.store.audit`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from reconciler.errors import ConfigError
from reconciler.store import tables
from reconciler.store.audit_chain import ChainHead, ChainReport, Checkpoint
from reconciler.store.audit_hash import canonical_timestamp, chain_format

CHECKPOINT_FORMAT = "reconciler-audit-checkpoint/v1"

_TABLE = tables.configuration_audit_logs.name


# --- checkpoints --------------------------------------------------------------------------


def checkpoint_document(report: ChainReport, *, now: datetime) -> dict[str, Any]:
    """The JSON-able checkpoint of ``report``'s heads (call only for an intact report)."""
    if report.breaks:
        raise ValueError("a checkpoint of a broken chain would vouch for it")
    return {
        "format": CHECKPOINT_FORMAT,
        "created_at": canonical_timestamp(now),
        "heads": {
            tenant: {"id": tip.audit_id, "entry_hash": tip.entry_hash, "rows": tip.rows}
            for tenant, tip in sorted(report.tips.items())
        },
    }


def chain_heads(conn: sa.Connection, tenants: Iterable[str]) -> dict[str, ChainHead]:
    """The newest row of each of ``tenants``' chains, as a checkpoint records it (no verification).

    For an apply's output, inside its transaction after :func:`append_audit_entries`: one
    statement, an index-only count per tenant on the ``(tenant_id, id)`` primary key.
    """
    rows = conn.execute(
        sa.text(
            f"""
            SELECT t.tenant_id, h.id, h.entry_hash, c.n
              FROM unnest(CAST(:tenants AS text[])) AS t(tenant_id)
              JOIN LATERAL (SELECT id, entry_hash FROM {_TABLE} a
                             WHERE a.tenant_id = t.tenant_id ORDER BY id DESC LIMIT 1) h ON true
              JOIN LATERAL (SELECT count(*) AS n FROM {_TABLE} a
                             WHERE a.tenant_id = t.tenant_id) c ON true
            """
        ),
        {"tenants": sorted(set(tenants))},
    )
    return {r.tenant_id: ChainHead(r.id, r.entry_hash, r.n) for r in rows}


def parse_checkpoint(text: str, *, source: str) -> Checkpoint:
    """Read a checkpoint written by :func:`checkpoint_document` (strict; nothing is executed).

    Raises:
        ConfigError: not JSON, another format or version, or a malformed head; the message
            names ``source`` and the place.
    """
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{source}: not a JSON audit checkpoint ({exc})") from None
    fmt = data.get("format") if isinstance(data, dict) else None
    if fmt != CHECKPOINT_FORMAT:
        raise ConfigError(
            f"{source}: format {fmt!r} is not an audit checkpoint this reconciler reads "
            f"(expected {CHECKPOINT_FORMAT!r})"
        )
    raw = data.get("heads")
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: heads: expected an object of tenant heads")
    heads: dict[str, ChainHead] = {}
    for tenant, head in raw.items():
        place = f"{source}: heads.{tenant}"
        if not isinstance(head, dict) or set(head) != {"id", "entry_hash", "rows"}:
            raise ConfigError(f"{place}: expected exactly id, entry_hash and rows")
        audit_id, digest, rows = head["id"], head["entry_hash"], head["rows"]
        if type(audit_id) is not int or type(rows) is not int or rows < 1:
            raise ConfigError(f"{place}: id and rows must be integers, rows at least 1")
        if not isinstance(digest, str) or chain_format(digest) is None:
            raise ConfigError(f"{place}: entry_hash is not an audit chain hash")
        heads[tenant] = ChainHead(audit_id, digest, rows)
    created = data.get("created_at")
    return Checkpoint(heads=heads, created_at=created if isinstance(created, str) else "")
