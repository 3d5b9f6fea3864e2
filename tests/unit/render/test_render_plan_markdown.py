"""Markdown PR comment: layout, escaping, and staying under the size limit."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from reconciler.model.enums import Platform
from reconciler.model.plan import (
    Action,
    Change,
    FieldChange,
    MassDeletion,
    Notice,
    NoticeKind,
    Plan,
    ResourceKind,
    Selectors,
)
from reconciler.render.plan_markdown import MIN_MAX_CHARS, md_text, render_markdown
from tests.unit.render.sample_plans import (
    CREATED_AT,
    DIGEST,
    FINGERPRINT,
    MARKER,
    addr,
    empty_plan,
    kept_only_plan,
    many_tenants_plan,
    mixed_plan,
)

FENCE = re.compile(r"^(`{3,})(diff)?$")
NOTE = re.compile(r"… (\d+) more tenants not shown; run `reconciler plan` for the full plan\.")


def assert_well_formed(md: str) -> None:
    """Fences open and close in pairs of equal length; outside fences every <details> is
    closed (inside a fence HTML is plain text)."""
    open_fence: str | None = None
    outside: list[str] = []
    for line in md.splitlines():
        m = FENCE.match(line)
        if m and open_fence is None:
            assert m.group(2) == "diff", line
            open_fence = m.group(1)
        elif m and m.group(1) == open_fence and m.group(2) is None:
            open_fence = None
        elif open_fence is None:
            outside.append(line)
    assert open_fence is None, "unclosed fence"
    text = "\n".join(outside)
    assert (text.count("<details>") + text.count("<details open>")) == text.count("</details>")


def test_golden(golden: Callable[[str, str], None]) -> None:
    golden("markdown_mixed.md", render_markdown(mixed_plan()))


def test_summary_comes_first_with_count_tables() -> None:
    md = render_markdown(mixed_plan())
    assert md.startswith(
        "<!-- reconciler-plan -->\n## Reconciler plan\n\n**Plan: 1 to create, 2 to update,"
    )
    tables = md.index("| create | update | delete | revoke | total |")
    assert "| 1 | 2 | 1 | 1 | 5 |" in md
    assert "| LOW | MEDIUM | HIGH | CRITICAL | needs review |" in md
    assert "| 1 | 1 | 2 | 1 | 3 |" in md
    assert "3 HIGH or CRITICAL changes marked for review." in md
    assert "mass deletion in tenant globex: 1 of 1 objects" in md
    assert tables < md.index("<details")
    assert_well_formed(md)


def test_one_details_per_tenant_with_diff_of_its_changes() -> None:
    md = render_markdown(mixed_plan())
    assert "<summary><b>acme-robotics</b> — 3 changes (max CRITICAL)</summary>" in md
    assert "<summary><b>globex</b> — 2 changes (max HIGH)</summary>" in md
    acme = md[md.index("acme-robotics</b>") : md.index("globex</b>")]
    assert "```diff\n+ create acme-robotics/stripe/production/integration/API_KEY [LOW]" in acme
    # Field symbols move to the first column so GitHub colors them.
    assert "\n+     sync_interval: 15\n" in acme
    assert "\n-         charge.refunded\n" in acme
    assert "\n~     signing_secret: (sensitive, changed)\n" in acme
    assert MARKER in acme
    assert "globex/" not in acme
    assert "\x1b[" not in md


def test_notices_have_their_own_section() -> None:
    md = render_markdown(kept_only_plan(), show_notices=True)
    assert "### Notices\n\n**Not in manifests, kept (use --prune to delete)**\n\n" in md
    assert "- `acme-robotics/quickbooks/production/webhook/old-sync`" in md
    assert "<details>" not in md


def test_empty_plan() -> None:
    md = render_markdown(empty_plan())
    assert "**No changes. The database matches the manifests.**" in md
    assert "|" not in md
    assert "<details>" not in md


@pytest.mark.parametrize("max_chars", [MIN_MAX_CHARS, 5000, 20000, 65000])
def test_long_plans_drop_tenants_from_the_end(max_chars: int) -> None:
    tenants = 400
    md = render_markdown(many_tenants_plan(tenants), max_chars=max_chars)
    assert len(md) <= max_chars
    assert_well_formed(md)
    shown = md.count("<details")
    note = NOTE.search(md)
    assert note is not None
    assert int(note.group(1)) == tenants - shown
    summaries = re.findall(r"<b>(tenant-\d+)</b>", md)
    assert summaries == [f"tenant-{t:03d}" for t in range(shown)]
    assert "Plan: 0 to create, 1200 to update" in md


def test_short_plans_are_not_cut() -> None:
    md = render_markdown(many_tenants_plan(5))
    assert md.count("<details") == 5
    assert NOTE.search(md) is None


def crowded_plan(tenants: int, notices: int, breakers: int, long_name: str = "t") -> Plan:
    return Plan(
        CREATED_AT,
        DIGEST,
        FINGERPRINT,
        changes=many_tenants_plan(tenants).changes,
        notices=tuple(
            Notice(
                NoticeKind.KEPT,
                addr(f"t{i}", Platform.STRIPE, ResourceKind.WEBHOOK, "w"),
                "x" * 200,
            )
            for i in range(notices)
        ),
        mass_deletions=tuple(MassDeletion(f"t{i}", 9, 10, False) for i in range(breakers)),
        selectors=Selectors(
            tenants=tuple(f"{long_name}{i}" for i in range(30)),
            exclude_tenants=tuple(f"{long_name}{i}" for i in range(30)),
        ),
    )


@pytest.mark.parametrize("max_chars", [MIN_MAX_CHARS, 9000, 30000])
def test_every_cut_section_says_how_much_was_cut(max_chars: int) -> None:
    md = render_markdown(
        crowded_plan(50, 500, 500, "<*>" * 30), max_chars=max_chars, show_notices=True
    )
    assert len(md) <= max_chars
    assert_well_formed(md)
    breakers = re.search(r"… (\d+) more mass-deletion warnings", md)
    tenants = NOTE.search(md)
    notices = re.search(r"… (\d+) more notices not shown", md)
    assert breakers and tenants and notices
    assert int(breakers.group(1)) == 500 - md.count("**Warning:**")
    assert int(tenants.group(1)) == 50 - md.count("<details")
    assert int(notices.group(1)) == 500 - md.count("\n- `t")


def test_notices_are_kept_when_there_is_room() -> None:
    md = render_markdown(crowded_plan(1, 20, 2), show_notices=True)
    assert md.count("\n- `t") == 20
    assert "more notices" not in md
    assert md.count("**Not in manifests, kept (use --prune to delete)**") == 1


def test_too_small_a_limit_is_refused() -> None:
    with pytest.raises(ValueError, match="max_chars"):
        render_markdown(mixed_plan(), max_chars=MIN_MAX_CHARS - 1)


def test_values_outside_fences_are_escaped() -> None:
    assert md_text("*a* _b_ <img src=x> [l](u) @team |x| `c`") == (
        "&#42;a&#42; &#95;b&#95; &#60;img src=x&#62; &#91;l&#93;(u) &#64;team "
        "&#124;x&#124; &#96;c&#96;"
    )
    assert md_text("# title") == "&#35; title"
    assert md_text("1. item\nnext") == "&#49;. item next"
    notice = Notice(
        NoticeKind.KEPT,
        addr("acme", Platform.STRIPE, ResourceKind.WEBHOOK, "w"),
        "<script>alert(1)</script> **bold** @octocat",
    )
    md = render_markdown(
        Plan(CREATED_AT, DIGEST, FINGERPRINT, notices=(notice,)), show_notices=True
    )
    assert "<script>" not in md
    assert "**bold**" not in md
    assert "@octocat" not in md


def test_backticks_in_values_cannot_close_the_fence() -> None:
    change = Change(
        addr("acme", Platform.STRIPE, ResourceKind.WEBHOOK, "w"),
        Action.UPDATE,
        fields=(FieldChange("endpoint_url", "a", "````\n</details>"),),
    )
    md = render_markdown(Plan(CREATED_AT, DIGEST, FINGERPRINT, changes=(change,)))
    assert "`````diff\n" in md
    assert_well_formed(md)


def test_marker_risk_order_and_expanded_critical() -> None:
    md = render_markdown(many_tenants_plan(5))
    assert md.splitlines()[0] == "<!-- reconciler-plan -->"
    md = render_markdown(mixed_plan())
    assert md.index("acme-robotics</b>") < md.index("globex</b>")  # CRITICAL before HIGH
    assert "<details open><summary><b>acme-robotics</b>" in md
    assert "<details open><summary><b>globex</b>" in md


def test_notices_are_counted_by_kind_by_default() -> None:
    md = render_markdown(crowded_plan(1, 500, 2))
    assert "- **Not in manifests, kept (use --prune to delete)**: 500" in md
    assert md.count("\n- `t") == 0
    assert "`--show-notices` lists every notice." in md
