"""Plan as text: what a reviewer reads in a terminal or CI log (Terraform style).

Everything here reads the record from :func:`~reconciler.render.plan_json.plan_record`,
never the ``Plan`` object, so the text can never show more than the JSON. Sensitive fields
print only ``(sensitive)`` words, whatever the record holds.

Layout::

    Plan for tenants: all; platforms: all. Prune: off (objects not in manifests are kept).

    ~ update acme/stripe/production/integration/API_KEY [MEDIUM]
        ~ <field>: 15 → 30
        ~ <secret field>: (sensitive, changed)

    Plan: 0 to create, 1 to update, 0 to delete, 0 to revoke. Risk: ...

Values are single-line JSON with sorted keys; control, format (bidi, zero-width) and line
separator characters are escaped so a value cannot forge plan lines or hide text.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, assert_never

from reconciler.model.enums import RiskLevel
from reconciler.model.plan import Action, NoticeKind
from reconciler.render.plan_json import plan_record

if TYPE_CHECKING:
    from reconciler.model.plan import Plan

Record = Mapping[str, Any]

INDENT = "    "
"""Indentation of field lines under a change header (and of each nesting level below)."""

MAX_VALUE_CHARS = 120
"""Longest value display; longer values are cut and say how much was cut."""

WRAP_AT = 100
"""A ``~ field: before → after`` line longer than this puts before and after on own lines."""

MAX_SELECTOR_NAMES = 10
"""How many selected tenant names the header lists before it says "and N more"."""

_ARROW = "→"

# Characters a terminal or browser would not show as themselves: controls, bidi overrides,
# zero-width and line separators. Showing them escaped keeps "what you see is what applies".
_HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"})
_SHORT_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_BARE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:/@+=-]*")

_RESET = "\x1b[0m"
_ACTION_COLOR = {
    Action.NOOP: "",
    Action.CREATE: "\x1b[32m",
    Action.UPDATE: "\x1b[33m",
    Action.DELETE: "\x1b[31m",
    Action.REVOKE: "\x1b[31m",
}
_LEVEL_COLOR = {
    RiskLevel.LOW: "",
    RiskLevel.MEDIUM: "\x1b[33m",
    RiskLevel.HIGH: "\x1b[31m",
    RiskLevel.CRITICAL: "\x1b[1;31m",
}
_WARNING_COLOR = "\x1b[1;31m"
_SYMBOL_COLOR = {
    "+": _ACTION_COLOR[Action.CREATE],
    "~": _ACTION_COLOR[Action.UPDATE],
    "-": _ACTION_COLOR[Action.DELETE],
}


def render_text(plan: Plan, *, color: bool, show_notices: bool = False) -> str:
    """Render a plan for a terminal.

    Args:
        plan: the plan to render.
        color: add ANSI colors (green create, yellow update, red delete/revoke, bold red
            CRITICAL). Pass ``False`` for files, pipes and PR comments.

    Returns:
        The text, ending in a newline, whose last line is the summary.
    """
    return render_text_record(plan_record(plan), color=color, show_notices=show_notices)


def render_text_record(record: Record, *, color: bool, show_notices: bool = True) -> str:
    """Render a plan record (``Plan.to_dict()`` form) as text; see :func:`render_text`.

    Without ``show_notices`` the notices that need no review are counted by kind instead
    of listed (a fleet's accounts waiting for a connection would bury the changes).
    """
    lines = [header_line(record), ""]
    for change in record["changes"]:
        block = change_lines(change, color=color)
        if block:
            lines += [*block, ""]
    if record["notices"]:
        lines += [*notice_lines(record["notices"], color=color, listed=show_notices), ""]
    for mass in record["mass_deletions"]:
        lines.append(_paint("Warning:", _WARNING_COLOR, color) + " " + mass_deletion_text(mass))
    if record["mass_deletions"]:
        lines.append("")
    lines.append(summary_text(record["summary"], color=color))
    policy = record.get("policy")
    if policy and policy["blocked"]:
        lines.append(_paint(policy_line(policy), _WARNING_COLOR, color))
    return "\n".join(lines) + "\n"


def policy_line(policy: Record) -> str:
    """``apply will be blocked: <what> (needs <flag>); ...`` from a record's verdict."""
    parts = [f"{safe_text(b['summary'])} (needs {b['needs']})" for b in policy["blocks"]]
    return "Apply will be blocked: " + "; ".join(parts) + "."


def location_text(change: Record) -> str | None:
    """``path:line`` of the manifest that declares (or declared) a change's object."""
    source = change.get("source")
    if not source:
        return None
    line = change.get("line")
    return f"{source}:{line}" if line else str(source)


def notices_by_kind(notices: Sequence[Record]) -> list[tuple[NoticeKind, int]]:
    """How many notices of each kind, in the kinds' order."""
    return [
        (kind, count)
        for kind in NoticeKind
        if (count := sum(1 for n in notices if n["kind"] == kind.value))
    ]


def needs_listing(notice: Record) -> bool:
    """A notice shown one by one even when notices are summarised: HIGH or above."""
    return bool(notice["level"]) and RiskLevel(notice["level"]).requires_review


def header_line(record: Record) -> str:
    """The first line: which tenants and platforms the plan covers, and the prune state."""
    return f"Plan for {selectors_text(record['selectors'])}. {prune_text(record['prune'])}"


def selectors_text(selectors: Record) -> str:
    """``tenants: acme, globex; platforms: all`` (with ``; excluding: ...`` when set)."""
    parts = [
        f"tenants: {_name_list(selectors['tenants'])}",
        f"platforms: {_name_list(selectors['platforms'])}",
    ]
    if selectors["exclude_tenants"]:
        parts.append(f"excluding: {_name_list(selectors['exclude_tenants'])}")
    return "; ".join(parts)


def prune_text(prune: bool) -> str:
    """Whether undeclared objects are deleted, in words a reviewer needs."""
    if prune:
        return "Prune: on (objects not in manifests are deleted)."
    return "Prune: off (objects not in manifests are kept)."


def summary_text(summary: Record, *, color: bool = False) -> str:
    """The final line: counts by action and by risk, or that there is nothing to do."""
    if not summary["total"]:
        return "No changes. The database matches the manifests."
    by_action = summary["by_action"]
    actions = ", ".join(
        f"{by_action[a.value]} to {a.value}" for a in Action if a is not Action.NOOP
    )
    by_risk = summary["by_risk"]
    risks = ", ".join(
        _paint(
            f"{by_risk[lvl.value]} {lvl.value}", _LEVEL_COLOR[lvl], color and by_risk[lvl.value] > 0
        )
        for lvl in RiskLevel
    )
    return f"Plan: {actions}. Risk: {risks} ({summary['requires_review']} needs review)."


def change_lines(change: Record, *, color: bool) -> list[str]:
    """The header line, reason, field lines and risk reasons of one change.

    Returns an empty list for a no-op (plans do not list them, but a record might).
    """
    action = Action(change["action"])
    if action is Action.NOOP:
        return []
    lines = [change_header(change, color=color)]
    where = location_text(change)
    if where:
        lines.append(f"{INDENT}# {safe_text(where)}")
    if change["reason"]:
        lines.append(f"{INDENT}# {safe_text(change['reason'])}")
    lines += _paint_symbols(field_lines(action, change["fields"]), color=color)
    risk = change["risk"]
    if RiskLevel(risk["level"]).requires_review and risk["reasons"]:
        lines.append(f"{INDENT}Risk reasons:")
        lines += [f"{INDENT}  {risk_reason_text(r)}" for r in risk["reasons"]]
    return lines


def change_header(change: Record, *, color: bool) -> str:
    """``~ update <address> [HIGH] needs review``."""
    action = Action(change["action"])
    verb = _paint(f"{action.symbol} {action.value}", _ACTION_COLOR[action], color)
    level = RiskLevel(change["risk"]["level"])
    badge = _paint(f"[{level.value}]", _LEVEL_COLOR[level], color)
    review = " needs review" if change["risk"]["requires_review"] else ""
    return f"{verb} {safe_text(change['address'])} {badge}{review}"


def risk_reason_text(reason: Record) -> str:
    """``[HIGH] CODE: message`` for one matched risk rule."""
    return f"[{reason['level']}] {safe_text(reason['code'])}: {safe_text(reason['message'])}"


def field_lines(action: Action, fields: Sequence[Record]) -> list[str]:
    """Field lines of one change, indented, uncolored (see :func:`change_lines`)."""
    lines: list[str] = []
    for fc in fields:
        name = display_key(fc["field"])
        match action:
            case Action.CREATE:
                if fc["after"] is not None:
                    lines.append(f"{INDENT}+ {name}: {_side(fc, 'after')}")
            case Action.DELETE | Action.REVOKE:
                if fc["before"] is not None:
                    lines.append(f"{INDENT}- {name}: {_side(fc, 'before')}")
            case Action.UPDATE:
                if fc["sensitive"]:
                    lines.append(f"{INDENT}{_sensitive_update(name, fc)}")
                else:
                    lines += _diff_lines(name, fc["before"], fc["after"], INDENT)
            case Action.NOOP:
                pass
            case _:
                assert_never(action)
    return lines


def notice_lines(notices: Sequence[Record], *, color: bool, listed: bool = True) -> list[str]:
    """The notices section: one heading per kind present, then its addresses.

    With ``listed`` false, a kind's heading carries its count and only the notices that
    need review are listed under it, followed by how to see the rest (``--show-notices``).
    """
    lines = ["Notices:"]
    hidden = 0
    for kind in NoticeKind:
        of_kind = [n for n in notices if n["kind"] == kind.value]
        if not of_kind:
            continue
        shown = of_kind if listed else [n for n in of_kind if needs_listing(n)]
        hidden += len(of_kind) - len(shown)
        lines.append(
            f"  {notice_heading(kind)}: {len(of_kind)}"
            if not listed
            else f"  {notice_heading(kind)}:"
        )
        lines += [f"    {notice_item_text(n, color=color)}" for n in shown]
    if hidden:
        lines.append(f"  ({hidden} not listed; --show-notices lists every notice)")
    return lines


def notice_heading(kind: NoticeKind) -> str:
    """What a kind of notice means for the reviewer, and what to do about it."""
    match kind:
        case NoticeKind.KEPT:
            return "Not in manifests, kept (use --prune to delete)"
        case NoticeKind.WAITING_FOR_CONNECTION:
            return "OAuth accounts waiting for connection"
        case NoticeKind.UNDECLARED_ACCOUNT:
            return "Undeclared connected accounts (use --prune to revoke)"
        case NoticeKind.UNMANAGED_ACCOUNTS:
            return "Unmanaged connected accounts, never declared (kept; --revoke-unmanaged revokes)"
        case NoticeKind.ACCOUNT_MODE_MISMATCH:
            return "Connected in the wrong live/test mode (reconnect the account)"
        case _:
            assert_never(kind)


def notice_item_text(notice: Record, *, color: bool = False) -> str:
    """``<address> [HIGH] — message`` (badge and message only when present)."""
    text = safe_text(notice["address"])
    if notice["level"]:
        level = RiskLevel(notice["level"])
        text += " " + _paint(f"[{level.value}]", _LEVEL_COLOR[level], color)
    message = notice["message"]
    # Producers often repeat the kind's heading; under that heading it would be noise.
    if message and message.casefold() != notice_heading(NoticeKind(notice["kind"])).casefold():
        text += f" — {safe_text(message)}"
    return text


def mass_deletion_text(mass: Record) -> str:
    """One tripped mass-deletion (or mass-revocation) breaker, in words."""
    scope = " (the whole tenant)" if mass["whole_tenant"] else ""
    if mass.get("kind") == "tokens":
        return (
            f"mass revocation in tenant {safe_text(mass['tenant'])}: {mass['deleting']} of "
            f"{mass['total']} active OAuth tokens would be revoked{scope}. "
            "Apply refuses this unless mass revocation is explicitly allowed."
        )
    return (
        f"mass deletion in tenant {safe_text(mass['tenant'])}: {mass['deleting']} of "
        f"{mass['total']} objects would be deleted{scope}. "
        "Apply refuses this unless mass deletion is explicitly allowed."
    )


def display_value(value: Any) -> str:
    """A value as one line of JSON with sorted keys, escaped and cut at ``MAX_VALUE_CHARS``."""
    text = safe_text(json.dumps(value, sort_keys=True, ensure_ascii=False))
    if len(text) <= MAX_VALUE_CHARS:
        return text
    return f"{text[:MAX_VALUE_CHARS]}… (+{len(text) - MAX_VALUE_CHARS} chars)"


def display_key(key: Any) -> str:
    """A field name, dict key or list item: bare when plain, else quoted like a value."""
    if isinstance(key, str) and _BARE.fullmatch(key):
        return key
    return display_value(key)


def safe_text(text: str) -> str:
    """Escape characters that would not display as themselves (newlines, bidi, zero-width)."""
    if not any(_is_hidden(ch) for ch in text):
        return text
    return "".join(_escape_char(ch) if _is_hidden(ch) else ch for ch in text)


def _is_hidden(ch: str) -> bool:
    return unicodedata.category(ch) in _HIDDEN_CATEGORIES


def _escape_char(ch: str) -> str:
    if ch in _SHORT_ESCAPES:
        return _SHORT_ESCAPES[ch]
    code = ord(ch)
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def _side(fc: Record, side: str) -> str:
    # Sensitive fields never print their record value, even if a producer put one there.
    return "(sensitive)" if fc["sensitive"] else display_value(fc[side])


def _sensitive_update(name: str, fc: Record) -> str:
    before, after = fc["before"] is not None, fc["after"] is not None
    if before and after:
        return f"~ {name}: (sensitive, changed)"
    if after:
        return f"+ {name}: (sensitive)"
    if before:
        return f"- {name}: (sensitive) {_ARROW} null"
    return f"~ {name}: (sensitive)"


def _diff_lines(name: str, before: Any, after: Any, indent: str) -> list[str]:
    """Lines for one changed value: nested for dict/dict and list/list, else before → after."""
    if isinstance(before, dict) and isinstance(after, dict):
        return [f"{indent}~ {name}:", *_dict_diff(before, after, indent + INDENT)]
    if isinstance(before, list) and isinstance(after, list):
        return [f"{indent}~ {name}:", *_list_diff(before, after, indent + INDENT)]
    if before is None:
        return [f"{indent}+ {name}: {display_value(after)}"]
    if after is None:
        return [f"{indent}- {name}: {display_value(before)} {_ARROW} null"]
    line = f"{indent}~ {name}: {display_value(before)} {_ARROW} {display_value(after)}"
    if len(line) <= WRAP_AT:
        return [line]
    deeper = indent + INDENT
    return [
        f"{indent}~ {name}:",
        f"{deeper}- {display_value(before)}",
        f"{deeper}+ {display_value(after)}",
    ]


def _dict_diff(before: dict[str, Any], after: dict[str, Any], indent: str) -> list[str]:
    lines: list[str] = []
    for key in sorted(before.keys() | after.keys()):
        name = display_key(key)
        if key not in before:
            lines.append(f"{indent}+ {name}: {display_value(after[key])}")
        elif key not in after:
            lines.append(f"{indent}- {name}: {display_value(before[key])}")
        elif before[key] != after[key]:
            lines += _diff_lines(name, before[key], after[key], indent)
    return lines


def _list_diff(before: list[Any], after: list[Any], indent: str) -> list[str]:
    # Items compare as canonical JSON so dict items (unhashable) diff like strings do.
    before_keys = [json.dumps(v, sort_keys=True) for v in before]
    after_keys = [json.dumps(v, sort_keys=True) for v in after]
    removed = _multiset_minus(before, before_keys, after_keys)
    added = _multiset_minus(after, after_keys, before_keys)
    if not removed and not added:
        return [f"{indent}(order changed) {display_value(after)}"]
    return [f"{indent}+ {display_key(v)}" for v in added] + [
        f"{indent}- {display_key(v)}" for v in removed
    ]


def _multiset_minus(items: list[Any], keys: list[str], other: list[str]) -> list[Any]:
    """Items whose key is not matched by an occurrence in ``other`` (duplicates count)."""
    remaining = Counter(other)
    out = []
    for item, key in zip(items, keys, strict=True):
        if remaining[key] > 0:
            remaining[key] -= 1
        else:
            out.append(item)
    return out


def _name_list(names: Sequence[str]) -> str:
    if not names:
        return "all"
    shown = ", ".join(safe_text(n) for n in names[:MAX_SELECTOR_NAMES])
    more = len(names) - MAX_SELECTOR_NAMES
    return f"{shown} and {more} more" if more > 0 else shown


def _paint(text: str, code: str, enabled: bool) -> str:
    return f"{code}{text}{_RESET}" if enabled and code else text


def _paint_symbols(lines: list[str], *, color: bool) -> list[str]:
    """Color the leading ``+``/``-``/``~`` of field lines like the action they stand for."""
    if not color:
        return lines
    painted = []
    for line in lines:
        body = line.lstrip(" ")
        pad = line[: len(line) - len(body)]
        code = _SYMBOL_COLOR.get(body[:1], "")
        painted.append(f"{pad}{_paint(body[:1], code, True)}{body[1:]}" if code else line)
    return painted
