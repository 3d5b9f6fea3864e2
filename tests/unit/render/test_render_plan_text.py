"""Text plan: layout, masking, value display, colors, notices, breakers, golden output."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from reconciler.model.enums import Platform, RiskLevel
from reconciler.model.plan import (
    Action,
    Change,
    FieldChange,
    Notice,
    NoticeKind,
    Plan,
    ResourceKind,
    Risk,
    RiskReason,
)
from reconciler.render.plan_text import MAX_VALUE_CHARS, display_value, render_text
from tests.unit.render.sample_plans import (
    CREATED_AT,
    DIGEST,
    FINGERPRINT,
    MARKER,
    SAMPLE_PLANS,
    addr,
    empty_plan,
    kept_only_plan,
    mixed_plan,
)

ESC = "\x1b["


def one_change_plan(*changes: Change) -> Plan:
    return Plan(CREATED_AT, DIGEST, FINGERPRINT, changes=changes)


def update(*fields: FieldChange, risk: Risk | None = None) -> Change:
    return Change(
        addr("acme-robotics", Platform.STRIPE, ResourceKind.WEBHOOK, "hook"),
        Action.UPDATE,
        fields=fields,
        risk=risk or Risk(RiskLevel.LOW),
    )


def body(plan: Plan) -> list[str]:
    return render_text(plan, color=False, show_notices=True).splitlines()


@pytest.mark.parametrize("name", sorted(SAMPLE_PLANS))
def test_golden_plain(name: str, golden: Callable[[str, str], None]) -> None:
    golden(f"text_{name}.txt", render_text(SAMPLE_PLANS[name](), color=False))


def test_golden_color(golden: Callable[[str, str], None]) -> None:
    golden("text_mixed_color.txt", render_text(mixed_plan(), color=True))


def test_change_headers_show_symbol_verb_address_and_badge() -> None:
    lines = body(mixed_plan())
    assert "+ create acme-robotics/stripe/production/integration/API_KEY [LOW]" in lines
    assert (
        "~ update acme-robotics/stripe/production/webhook/billing-events [HIGH] needs review"
        in lines
    )
    assert (
        "! revoke acme-robotics/stripe/-/oauth_account/acct_9Undeclared [CRITICAL] needs review"
        in lines
    )
    assert "- delete globex/hubspot/sandbox/webhook/legacy [HIGH] needs review" in lines
    assert "~ update globex/hubspot/sandbox/integration/SETTINGS [MEDIUM]" in lines


def test_summary_line_counts_actions_and_risk() -> None:
    assert body(mixed_plan())[-1] == (
        "Plan: 1 to create, 2 to update, 1 to delete, 1 to revoke. "
        "Risk: 1 LOW, 1 MEDIUM, 2 HIGH, 1 CRITICAL (3 needs review)."
    )


def test_empty_plan_says_no_changes() -> None:
    assert body(empty_plan()) == [
        "Plan for tenants: all; platforms: all. Prune: off (objects not in manifests are kept).",
        "",
        "No changes. The database matches the manifests.",
    ]


def test_header_shows_selectors_and_prune() -> None:
    assert body(kept_only_plan())[0] == (
        "Plan for tenants: acme-robotics; platforms: all; excluding: globex. "
        "Prune: off (objects not in manifests are kept)."
    )
    assert "Prune: on (objects not in manifests are deleted)." in body(mixed_plan())[0]


def test_sensitive_fields_show_masks_and_values_show_values() -> None:
    text = render_text(mixed_plan(), color=False)
    assert "    + api_key: (sensitive)" in text
    assert "    ~ signing_secret: (sensitive, changed)" in text
    assert "    - auth_token: (sensitive)" in text
    assert MARKER in text  # control: non-sensitive values do show
    # A sensitive field with no value on the created side is not listed.
    assert "api_secret" not in text


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        (None, "(sensitive)", "    + api_key: (sensitive)"),
        ("(sensitive)", None, "    - api_key: (sensitive) → null"),
        ("(sensitive)", "(sensitive)", "    ~ api_key: (sensitive, changed)"),
    ],
)
def test_sensitive_update_variants(before: str | None, after: str | None, expected: str) -> None:
    lines = body(one_change_plan(update(FieldChange("api_key", before, after, sensitive=True))))
    assert expected in lines


def test_created_fields_use_plus_and_deleted_fields_use_minus() -> None:
    lines = body(mixed_plan())
    assert "    + sync_interval: 15" in lines
    assert '    + features: {"customers": true, "invoices": true}' in lines
    assert '    - endpoint_url: "https://old.globex.example/hook"' in lines


def test_scalar_update_shows_before_and_after() -> None:
    assert "    ~ sync_interval: 15 → 30" in body(mixed_plan())


def test_update_that_sets_or_clears_a_field() -> None:
    lines = body(one_change_plan(update(FieldChange("a", None, 1), FieldChange("b", "x", None))))
    assert "    + a: 1" in lines
    assert '    - b: "x" → null' in lines


def test_list_update_shows_added_and_removed_items() -> None:
    lines = body(mixed_plan())
    i = lines.index("    ~ events:")
    assert lines[i + 1 : i + 3] == ["        + invoice.paid", "        - charge.refunded"]


def test_list_diff_counts_duplicates_and_reports_reordering() -> None:
    dup = body(one_change_plan(update(FieldChange("events", ["a", "a"], ["a"]))))
    assert "        - a" in dup
    reordered = body(one_change_plan(update(FieldChange("events", ["a", "b"], ["b", "a"]))))
    assert '        (order changed) ["b", "a"]' in reordered


def test_dict_update_shows_changed_keys_sorted_and_nested() -> None:
    change = update(
        FieldChange(
            "features",
            {"z": 1, "a": True, "nested": {"k": [1]}},
            {"a": False, "b": "new", "nested": {"k": [1, 2]}},
        )
    )
    lines = body(one_change_plan(change))
    i = lines.index("    ~ features:")
    assert lines[i + 1 : i + 6] == [
        "        ~ a: true → false",
        '        + b: "new"',
        "        ~ nested:",
        "            ~ k:",
        "                + 2",
    ]
    assert "        - z: 1" in lines


def test_values_are_compact_json_with_sorted_keys() -> None:
    assert display_value({"b": [1, {"d": 1, "c": None}], "a": "x"}) == (
        '{"a": "x", "b": [1, {"c": null, "d": 1}]}'
    )


def test_long_values_are_cut_and_long_lines_wrapped() -> None:
    long = "x" * 500
    assert (
        display_value(long) == f'"{"x" * (MAX_VALUE_CHARS - 1)}… (+{502 - MAX_VALUE_CHARS} chars)'
    )
    lines = body(one_change_plan(update(FieldChange("endpoint_url", "https://a/" + long, "b"))))
    i = lines.index("    ~ endpoint_url:")
    assert lines[i + 1].startswith('        - "https://a/xxx')
    assert lines[i + 2] == '        + "b"'
    assert max(len(line) for line in lines) < 200


def test_values_cannot_forge_lines_or_hide_text() -> None:
    forged = "ok\n+ create evil/stripe/production/webhook/x [LOW]"
    change = update(FieldChange("endpoint_url", "a", forged), FieldChange("note", "\u202eabc", "b"))
    text = render_text(one_change_plan(change), color=False)
    assert "\n+ create evil" not in text
    assert "\\n+ create evil" in text
    assert "\u202e" not in text
    assert "\\u202e" in text


def test_reasons_listed_only_for_high_and_critical() -> None:
    text = render_text(mixed_plan(), color=False)
    assert "      [HIGH] RSK-W001: webhook endpoint URL changed" in text
    assert "      [CRITICAL] RSK-O002: revokes a live connected account" in text
    assert "RSK-I003" not in text  # MEDIUM change: reason kept in JSON, not in the text


def test_change_reason_is_a_comment_line() -> None:
    assert "    # not in manifests (--prune)" in body(mixed_plan())


def test_notices_are_grouped_by_kind() -> None:
    kept = body(kept_only_plan())
    assert kept[2:5] == [
        "Notices:",
        "  Not in manifests, kept (use --prune to delete):",
        "    acme-robotics/quickbooks/production/webhook/old-sync",
    ]
    mixed = body(mixed_plan())
    assert "  OAuth accounts waiting for connection:" in mixed
    assert "  Undeclared connected accounts (use --prune to revoke):" in mixed
    assert (
        "    globex/quickbooks/-/oauth_account/9130347596263942 [HIGH]"
        " — connected account no manifest declares"
    ) in mixed


def test_mass_deletion_warning() -> None:
    assert (
        "Warning: mass deletion in tenant globex: 1 of 1 objects would be deleted "
        "(the whole tenant). Apply refuses this unless mass deletion is explicitly allowed."
    ) in body(mixed_plan())


def test_no_color_means_no_escape_codes() -> None:
    assert ESC not in render_text(mixed_plan(), color=False)


def test_colors_follow_action_and_risk() -> None:
    text = render_text(mixed_plan(), color=True)
    assert "\x1b[32m+ create\x1b[0m" in text
    assert "\x1b[33m~ update\x1b[0m" in text
    assert "\x1b[31m- delete\x1b[0m" in text
    assert "\x1b[31m! revoke\x1b[0m" in text
    assert "\x1b[1;31m[CRITICAL]\x1b[0m" in text
    assert "    \x1b[32m+\x1b[0m sync_interval: 15" in text


def test_noop_changes_are_not_shown() -> None:
    noop = Change(addr("a", Platform.STRIPE, ResourceKind.WEBHOOK, "w"), Action.NOOP)
    assert "w" not in "\n".join(body(one_change_plan(noop))[1:-1])


def test_output_depends_only_on_the_plan() -> None:
    a = update(FieldChange("features", {"a": 1, "b": 2}, {"b": 3, "a": 1}))
    b = update(FieldChange("features", {"b": 2, "a": 1}, {"a": 1, "b": 3}))
    assert render_text(one_change_plan(a), color=True) == render_text(
        one_change_plan(b), color=True
    )


def test_reasons_are_escaped_too() -> None:
    risk = Risk(RiskLevel.HIGH, (RiskReason("R1", RiskLevel.HIGH, "line\nbreak"),))
    assert "      [HIGH] R1: line\\nbreak" in body(one_change_plan(update(risk=risk)))


def test_notice_message_repeating_its_heading_is_not_repeated() -> None:
    notice = Notice(
        NoticeKind.KEPT,
        addr("acme", Platform.STRIPE, ResourceKind.WEBHOOK, "w"),
        "not in manifests, kept (use --prune to delete)",
    )
    lines = body(Plan(CREATED_AT, DIGEST, FINGERPRINT, notices=(notice,)))
    assert "    acme/stripe/production/webhook/w" in lines


def test_notices_are_counted_by_kind_unless_asked_for() -> None:
    waiting = tuple(
        Notice(
            NoticeKind.WAITING_FOR_CONNECTION,
            addr(f"t{i}", Platform.STRIPE, ResourceKind.OAUTH_ACCOUNT, "acct"),
            "waiting for the OAuth connection",
        )
        for i in range(2000)
    )
    plan = Plan(CREATED_AT, DIGEST, FINGERPRINT, notices=waiting)
    text = render_text(plan, color=False)
    assert "  OAuth accounts waiting for connection: 2000" in text
    assert "waiting for the OAuth connection" not in text
    assert "(2000 not listed; --show-notices lists every notice)" in text
    assert len(text.splitlines()) < 10
    listed = render_text(plan, color=False, show_notices=True)
    assert listed.count("waiting for the OAuth connection") == 2000


def test_high_notices_are_listed_even_when_counted() -> None:
    text = render_text(mixed_plan(), color=False)
    assert "globex/quickbooks/-/oauth_account/9130347596263942 [HIGH]" in text
