"""Plan as GitHub Actions workflow commands: annotations on the manifests of a pull request.

One annotation per change, on the manifest that declares it (``file=``; changes to objects
no manifest declares carry no file and show on the run's summary page). The level follows
risk: ``notice`` up to MEDIUM, ``warning`` for HIGH, ``error`` for CRITICAL. Each tripped
mass-deletion breaker is an ``error``; each notice is a ``notice`` (``warning`` when HIGH or
above). Escaping follows ``@actions/core``: ``%``, CR and LF in the message; additionally
``:`` and ``,`` in properties. Escaping also keeps a value from starting a command of its own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, assert_never

from reconciler.model.enums import RiskLevel
from reconciler.model.plan import Action, NoticeKind
from reconciler.render import plan_text
from reconciler.render.plan_json import plan_record

if TYPE_CHECKING:
    from reconciler.model.plan import Plan

_DATA_ESCAPES = (("%", "%25"), ("\r", "%0D"), ("\n", "%0A"))
_PROPERTY_ESCAPES = (*_DATA_ESCAPES, (":", "%3A"), (",", "%2C"))


def render_github(plan: Plan, *, show_notices: bool = False) -> str:
    """Render a plan as GitHub workflow commands, one per line.

    Args:
        plan: the plan to render.

    Returns:
        The commands, each ending in a newline; empty when there is nothing to report.
    """
    record = plan_record(plan)
    commands = [
        change_annotation(c) for c in record["changes"] if Action(c["action"]) is not Action.NOOP
    ]
    commands += [
        workflow_command(
            "error",
            escape_data(plan_text.mass_deletion_text(m)),
            title=(
                f"Mass revocation in tenant {m['tenant']}"
                if m.get("kind") == "tokens"
                else f"Mass deletion in tenant {m['tenant']}"
            ),
        )
        for m in record["mass_deletions"]
    ]
    policy = record.get("policy")
    if policy and policy["blocked"]:
        commands.append(
            workflow_command(
                "error", escape_data(plan_text.policy_line(policy)), title="Blocked by policy"
            )
        )
    if show_notices:
        commands += [_notice_annotation(n) for n in record["notices"]]
    else:
        # GitHub shows a limited number of annotations per step: one per notice kind, plus
        # the notices that need review, so real changes are never crowded out.
        commands += [_notice_annotation(n) for n in record["notices"] if plan_text.needs_listing(n)]
        commands += [
            workflow_command(
                "notice",
                escape_data(f"{count} notice(s); `reconciler show --show-notices` lists them"),
                title=f"{plan_text.notice_heading(kind)}: {count}",
            )
            for kind, count in plan_text.notices_by_kind(
                [n for n in record["notices"] if not plan_text.needs_listing(n)]
            )
        ]
    return "".join(f"{c}\n" for c in commands)


def change_annotation(change: plan_text.Record) -> str:
    """The annotation of one change: title ``<action> <address>``, message the text plan's
    lines for it (risk and reasons first)."""
    level = RiskLevel(change["risk"]["level"])
    risk = f"Risk {level.value}" + (", needs review" if change["risk"]["requires_review"] else "")
    lines = [
        f"{risk}.",
        *(
            ln.removeprefix(plan_text.INDENT)
            for ln in plan_text.change_lines(change, color=False)[1:]
        ),
    ]
    return workflow_command(
        _command_for(level),
        escape_data("\n".join(lines)),
        file=change["source"],
        line=str(change["line"]) if change.get("line") else None,
        title=f"{change['action']} {change['address']}",
    )


def workflow_command(command: str, data: str, **properties: str | None) -> str:
    """``::command key=value,...::data`` with properties escaped; ``None`` values left out.

    ``data`` must already be escaped (see :func:`escape_data`).
    """
    props = ",".join(f"{k}={escape_property(v)}" for k, v in properties.items() if v)
    return f"::{command}{' ' + props if props else ''}::{data}"


def escape_data(text: str) -> str:
    """Escape a command's message: ``%``, CR, LF."""
    for raw, escaped in _DATA_ESCAPES:
        text = text.replace(raw, escaped)
    return text


def escape_property(text: str) -> str:
    """Escape a property value: ``%``, CR, LF, ``:`` and ``,``."""
    for raw, escaped in _PROPERTY_ESCAPES:
        text = text.replace(raw, escaped)
    return text


def _notice_annotation(notice: plan_text.Record) -> str:
    level = RiskLevel(notice["level"]) if notice["level"] else RiskLevel.LOW
    return workflow_command(
        "warning" if level.requires_review else "notice",
        escape_data(plan_text.notice_item_text(notice)),
        title=plan_text.notice_heading(NoticeKind(notice["kind"])),
    )


def _command_for(level: RiskLevel) -> str:
    match level:
        case RiskLevel.LOW | RiskLevel.MEDIUM:
            return "notice"
        case RiskLevel.HIGH:
            return "warning"
        case RiskLevel.CRITICAL:
            return "error"
        case _:
            assert_never(level)
