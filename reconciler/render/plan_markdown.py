"""Plan as Markdown for a pull-request comment.

Summary first (counts by action and by risk, review count, breaker warnings), then one
collapsed ``<details>`` per tenant holding the text rendering of its changes in a ``diff``
fence, then notices. GitHub refuses comments over 65,536 characters, so the output stays
under ``max_chars`` by dropping whole tenant sections from the end (never cutting inside a
fence) and saying how many were left out.

Values outside fences are escaped as HTML character references, which GitHub shows as the
characters themselves without treating them as Markdown or HTML.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from reconciler.model.enums import RiskLevel
from reconciler.model.plan import Action, NoticeKind
from reconciler.render.plan_json import plan_record
from reconciler.render.plan_text import (
    Record,
    change_lines,
    mass_deletion_text,
    needs_listing,
    notice_heading,
    notice_item_text,
    prune_text,
    selectors_text,
    summary_text,
)

if TYPE_CHECKING:
    from reconciler.model.plan import Plan

DEFAULT_MAX_CHARS = 65000
"""Below GitHub's 65,536-character limit on a comment, with room for a bot's own footer."""

MIN_MAX_CHARS = 4000
"""Room for the summary (at most about 2,000 characters) and the notes; smaller is refused."""

_MAX_SELECTORS_CHARS = 200
"""The selectors line is cut here so the summary stays bounded whatever was selected."""

_TITLE = "## Reconciler plan"
_FULL_PLAN_HINT = "run `reconciler plan` for the full plan"
# Anywhere in a line: emphasis, code, links, HTML, tables, strikethrough, math, mentions.
_MD_SPECIAL = frozenset("\\`*_[]<>&|~$@")
# At the start of a line, or of a list item's text, these would start a block.
_MD_SPECIAL_FIRST = _MD_SPECIAL | frozenset("#+-.!:=>0123456789")


MARKER = "<!-- reconciler-plan -->"
"""First line of every Markdown plan: a bot finds its one comment by it and edits it in place."""


def render_markdown(
    plan: Plan, *, max_chars: int = DEFAULT_MAX_CHARS, show_notices: bool = False
) -> str:
    """Render a plan as a pull-request comment no longer than ``max_chars``.

    Args:
        plan: the plan to render.
        max_chars: upper bound on the length of the result (at least ``MIN_MAX_CHARS``).

    Returns:
        Markdown ending in a newline.

    Raises:
        ValueError: ``max_chars`` is below ``MIN_MAX_CHARS``.
    """
    return render_markdown_record(plan_record(plan), max_chars=max_chars, show_notices=show_notices)


def render_markdown_record(
    record: Record, *, max_chars: int = DEFAULT_MAX_CHARS, show_notices: bool = True
) -> str:
    """Render a plan record (``Plan.to_dict()`` form); see :func:`render_markdown`.

    Tenants come in order of their highest risk (CRITICAL first); a tenant with a HIGH or
    CRITICAL change is expanded. Without ``show_notices``, notices are counted by kind and
    only those that need review are listed.
    """
    if max_chars < MIN_MAX_CHARS:
        raise ValueError(f"max_chars must be at least {MIN_MAX_CHARS}, got {max_chars}")
    # Parts are joined with "\n"; a part ending in "\n" is followed by a blank line.
    parts = [_head(record)]
    budget = max_chars - _cost(parts) - 1
    # In order of importance; each may use what the later ones' headings and notes leave.
    sections = [
        _Section(
            "",
            [_mass_warning(m) for m in record["mass_deletions"]],
            lambda n: f"> [!CAUTION]\n> … {n} more mass-deletion warnings; {_FULL_PLAN_HINT}.\n",
        ),
        _Section(
            "### Changes by tenant\n",
            [_tenant_section(t, changes) for t, changes in _by_tenant(record["changes"])],
            lambda n: f"… {n} more tenants not shown; {_FULL_PLAN_HINT}.\n",
        ),
        _Section(
            "### Notices\n",
            _notice_items(record["notices"], listed=show_notices),
            lambda n: f"\n… {n} more notices not shown; {_FULL_PLAN_HINT}.\n",
        ),
    ]
    for i, section in enumerate(sections):
        heading = [section.heading] if section.heading else []
        later = sum(s.reserve() for s in sections[i + 1 :])
        kept = _fit(section.items, budget - later - _cost(heading), section.more_note)
        if kept:
            parts += [*heading, *kept]
            budget -= _cost([*heading, *kept])
    return "\n".join(parts).rstrip("\n") + "\n"


@dataclass(frozen=True, slots=True)
class _Section:
    """Part of the comment that may be cut: whole items dropped from the end, with a note."""

    heading: str
    items: list[str]
    more_note: Callable[[int], str]

    def reserve(self) -> int:
        """Room for the heading and the longest "N more" note this section could need."""
        if not self.items:
            return 0
        return _cost([self.heading, self.more_note(len(self.items))])


def md_text(text: str) -> str:
    """Escape text for Markdown and inline HTML: specials become character references."""
    escaped = "".join(
        f"&#{ord(ch)};" if ch in (_MD_SPECIAL_FIRST if i == 0 else _MD_SPECIAL) else ch
        for i, ch in enumerate(text)
    )
    # A newline would end a table row, list item or <summary>; keep values on one line.
    return escaped.replace("\r", " ").replace("\n", " ")


def diff_fence(lines: Sequence[str]) -> str:
    """A ``diff`` fence of text-plan lines, with each line's ``+``/``-``/``~``/``!`` moved
    to the first column so GitHub colors added and removed lines.

    The fence is one backtick longer than any backtick run in the content, so no value can
    close it early.
    """
    body = [_symbol_first(line) for line in lines]
    longest = max((_longest_backtick_run(line) for line in body), default=0)
    fence = "`" * max(3, longest + 1)
    return "\n".join([f"{fence}diff", *body, fence]) + "\n"


def _head(record: Record) -> str:
    summary = record["summary"]
    by_action, by_risk = summary["by_action"], summary["by_risk"]
    actions = [a.value for a in Action if a is not Action.NOOP]
    levels = [lvl.value for lvl in RiskLevel]
    lines = [
        MARKER,
        _TITLE,
        "",
        f"**{summary_text(summary)}**",
        "",
        f"{md_text(_clip(selectors_text(record['selectors'])))}. "
        + md_text(prune_text(record["prune"])),
        "",
    ]
    if summary["total"]:
        lines += [
            _table([*actions, "total"], [*(by_action[a] for a in actions), summary["total"]]),
            _table(
                [*levels, "needs review"],
                [*(by_risk[lvl] for lvl in levels), summary["requires_review"]],
            ),
        ]
    policy = record.get("policy")
    if policy and policy["blocked"]:
        lines.append("> [!CAUTION]\n> **Apply will be blocked by policy:**")
        for block in policy["blocks"]:
            # Escaped as running text (a leading digit is only special at a line's start).
            what = md_text("x" + str(block["summary"]))[1:]
            needs = str(block["needs"])
            flag = f"`{needs}`" if re.fullmatch(r"[-a-z ]+", needs) else md_text(needs)
            lines.append(f"> - {what} (needs {flag})")
        lines.append("")
    review = summary["requires_review"]
    if review:
        lines.append(
            f"> [!WARNING]\n> {review} HIGH or CRITICAL change{_s(review)} marked for review.\n"
        )
    return "\n".join(lines).rstrip("\n") + "\n"


def _table(headers: list[str], counts: list[Any]) -> str:
    head = "| " + " | ".join(headers) + " |"
    rule = "|" + "---:|" * len(headers)
    row = "| " + " | ".join(str(c) for c in counts) + " |"
    return f"{head}\n{rule}\n{row}\n"


def _mass_warning(mass: Record) -> str:
    return f"> [!CAUTION]\n> **Warning:** {md_text(mass_deletion_text(mass))}\n"


def _by_tenant(changes: Sequence[Record]) -> list[tuple[str, list[Record]]]:
    """Changes grouped by tenant, riskiest tenant first (then first appearance), plan order
    kept within a tenant: a CRITICAL deletion is never below a page of LOW creates."""
    groups: dict[str, list[Record]] = {}
    for change in changes:
        if Action(change["action"]) is not Action.NOOP:
            groups.setdefault(change["resource"]["tenant"], []).append(change)
    return sorted(groups.items(), key=lambda item: -_top(item[1]).rank)


def _top(changes: list[Record]) -> RiskLevel:
    # By rank: RiskLevel is a str enum, so plain max() would compare the names.
    return max((RiskLevel(c["risk"]["level"]) for c in changes), key=lambda lvl: lvl.rank)


def _tenant_section(tenant: str, changes: list[Record]) -> str:
    lines: list[str] = []
    for change in changes:
        lines += [*change_lines(change, color=False), ""]
    top = _top(changes)
    count = f"{len(changes)} change{_s(len(changes))}"
    # HIGH and CRITICAL are what a reviewer must read: expanded, not behind a click.
    details = "<details open>" if top.requires_review else "<details>"
    return (
        f"{details}<summary><b>{md_text(tenant)}</b> — {count} (max {top.value})</summary>\n\n"
        f"{diff_fence(lines[:-1])}\n</details>\n"
    )


def _notice_items(notices: Sequence[Record], *, listed: bool = True) -> list[str]:
    """One item per notice (so "N more" counts notices); a kind's heading rides on its first.

    With ``listed`` false each kind is one line with its count, plus its notices that need
    review."""
    items: list[str] = []
    for kind in NoticeKind:
        of_kind_records = [n for n in notices if n["kind"] == kind.value]
        if not of_kind_records:
            continue
        if listed:
            of_kind = [f"- {_notice_item(n)}" for n in of_kind_records]
            of_kind[0] = f"**{md_text(notice_heading(kind))}**\n\n{of_kind[0]}"
        else:
            of_kind = [
                f"- **{md_text(notice_heading(kind))}**: {len(of_kind_records)}",
                *(f"  - {_notice_item(n)}" for n in of_kind_records if needs_listing(n)),
            ]
        of_kind[-1] += "\n"
        items += of_kind
    if items and not listed:
        items.append("`--show-notices` lists every notice.\n")
    return items


def _notice_item(notice: Record) -> str:
    """``address`` as code (readable, nothing to escape), then level and message as text."""
    address = str(notice["address"])
    if "`" in address or "\n" in address:
        return md_text(notice_item_text(notice))
    level = f" [{notice['level']}]" if notice["level"] else ""
    message = f" — {md_text(str(notice['message']))}" if notice["message"] else ""
    return f"`{address}`{level}{message}"


def _fit(items: list[str], budget: int, more_note: Callable[[int], str]) -> list[str]:
    """The items from the front that fit in ``budget``, plus a note saying how many were
    dropped. The caller reserves room for the note, so a cut is never silent."""
    if _cost(items) <= budget:
        return items
    kept: list[str] = []
    for item in items:
        note = more_note(len(items) - len(kept) - 1)
        if _cost([*kept, item, note]) > budget:
            break
        kept.append(item)
    return [*kept, more_note(len(items) - len(kept))]


def _cost(parts: Sequence[str]) -> int:
    """Length of parts once joined: each part plus its joining newline."""
    return sum(len(p) + 1 for p in parts)


def _symbol_first(line: str) -> str:
    body = line.lstrip(" ")
    pad = len(line) - len(body)
    if pad and body[:2] in ("+ ", "- ", "~ ", "! "):
        return f"{body[0]}{' ' * pad}{body[1:]}"
    return line


def _longest_backtick_run(line: str) -> int:
    longest = run = 0
    for ch in line:
        run = run + 1 if ch == "`" else 0
        longest = max(longest, run)
    return longest


def _clip(text: str) -> str:
    if len(text) <= _MAX_SELECTORS_CHARS:
        return text
    return text[:_MAX_SELECTORS_CHARS] + "…"


def _s(n: int) -> str:
    return "" if n == 1 else "s"
