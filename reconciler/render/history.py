"""``history show RUN`` and ``history ADDRESS`` as text, JSON and Markdown.

Everything shown comes from the audit log and ``apply_runs``, where sensitive values were
never stored (``(sensitive)`` markers only); text from the database is escaped so that a
stored newline or escape sequence cannot forge a line of the output.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Protocol

from reconciler.escape import printable
from reconciler.store.audit import AuditRecord


class _Detail(Protocol):
    def to_dict(self) -> dict[str, Any]: ...


def _value(v: Any) -> str:
    return "null" if v is None else printable(json.dumps(v, ensure_ascii=False))


def _field_lines(changes: dict[str, Any], indent: str) -> list[str]:
    lines = []
    for f in changes.get("fields") or []:
        if isinstance(f, dict):
            lines.append(
                f"{indent}{printable(str(f.get('field')))}: "
                f"{_value(f.get('before'))} -> {_value(f.get('after'))}"
            )
    return lines


def _reasons(record: AuditRecord) -> str:
    return "; ".join(printable(f"{r.get('code')}: {r.get('message')}") for r in record.risk_reasons)


def _describe(record: AuditRecord) -> str:
    if record.action == "REVIEW":
        c = record.changes
        what = "approval of plan " + str(c.get("approves_plan", ""))[:12]
        if "reviews" in c:
            what = f"review of audit row {c.get('reviews')}"
        note = f" ({c['note']})" if c.get("note") else ""
        return printable(f"{c.get('decision', '?')} by {record.performed_by}: {what}{note}")
    return printable(f"{record.action} by {record.performed_by}")


def render_run(detail: _Detail, fmt: str) -> str:
    """One apply run in ``text``, ``json`` or ``markdown``."""
    data = detail.to_dict()
    if fmt == "json":
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    run = data["run"]
    auth = data["authorization"]
    revision = data["revision"]
    approvals = data["approvals"]
    changes: list[AuditRecord] = getattr(detail, "changes", [])
    md = fmt == "markdown"
    lines: list[str] = []
    head = f"Apply run {run['id']}"
    lines.append(f"## {head}" if md else head)
    lines.append("")
    facts = [
        ("Outcome", run["outcome"] + (" (drift remediation)" if data["remediation"] else "")),
        ("Actor", run["actor"]),
        ("Started", run["started_at"]),
        ("Finished", run["finished_at"] or "-"),
        (
            "Commit",
            (run["git_commit"] or "unknown")
            + (" (working tree had uncommitted changes)" if data["worktree_dirty"] else ""),
        ),
        ("Revision", f"{revision['revision']} ({revision['commit']})" if revision else "-"),
        ("Plan digest", run["plan_digest"] or "-"),
        ("Manifests digest", run["manifests_digest"]),
        (
            "Counts",
            f"{run['created']} created, {run['updated']} updated, "
            f"{run['deleted']} deleted, {run['revoked']} revoked",
        ),
    ]
    if auth:
        if auth.get("break_glass"):
            how = f"BREAK-GLASS (--allow-risk {str(auth.get('allow_risk') or '').lower()})"
        else:
            how = "approved by " + ", ".join(auth.get("approved_by") or [])
        facts.append(("Authorization", f"{how}; {auth.get('approvals_needed')} needed"))
    for name, value in facts:
        text = printable(str(value))
        lines.append(f"- **{name}**: {text}" if md else f"{name + ':':18}{text}")
    lines.append("")
    lines.append("### Approvals" if md else "Approvals:")
    if not approvals:
        lines.append("- none" if md else "  none")
    for a in approvals:
        note = f" — {a['note']}" if a.get("note") else ""
        lines.append(
            printable(
                f"{'-' if md else ' '} {a['approved_by']} at {a['created_at']} "
                f"(plan by {a['plan_author'] or 'unknown'}){note}"
            )
        )
    lines.append("")
    lines.append("### Changes" if md else "Changes:")
    for r in changes:
        address = printable(r.entity_address or "-")
        title = f"{r.action} {address} [{r.risk_level}]"
        lines.append(f"- `{r.action}` `{address}` **{r.risk_level}**" if md else f"  {title}")
        reasons = _reasons(r)
        if reasons:
            lines.append(f"    - reasons: {reasons}" if md else f"      reasons: {reasons}")
        if r.changes.get("reason"):
            why = printable(str(r.changes["reason"]))
            lines.append(f"    - why: {why}" if md else f"      why: {why}")
        for line in _field_lines(r.changes, "    - " if md else "      "):
            lines.append(line)
    return "\n".join(lines) + "\n"


def render_timeline(address: str, records: Sequence[AuditRecord], fmt: str) -> str:
    """One object's audit rows, oldest first, in ``text``, ``json`` or ``markdown``."""
    if fmt == "json":
        doc = {"address": address, "events": [r.to_dict() for r in records]}
        return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    md = fmt == "markdown"
    lines = [f"## History of {printable(address)}" if md else f"History of {printable(address)}"]
    lines.append("")
    if not records:
        lines.append("No audit rows for this object.")
    for r in records:
        when = getattr(r, "created_at", None)
        stamp = when.strftime("%Y-%m-%d %H:%M:%S") if when is not None else "?"
        run = f" run {r.apply_run_id}" if r.apply_run_id else ""
        head = f"{stamp}  #{r.id}  {_describe(r)} [{r.risk_level}]{run}"
        lines.append(f"- {head}" if md else head)
        for line in _field_lines(r.changes, "    - " if md else "    "):
            lines.append(line)
        if r.changes.get("authorization", {}).get("break_glass"):
            lines.append("    BREAK-GLASS: applied without the required approvals")
    return "\n".join(lines) + "\n"
