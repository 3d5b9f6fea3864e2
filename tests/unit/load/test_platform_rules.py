"""Every platform has its rules module, and the registry hands out the right one."""

from __future__ import annotations

from reconciler.load.platforms import PLATFORMS, rules_for
from reconciler.model.enums import Platform


def test_every_platform_has_rules() -> None:
    assert set(PLATFORMS) == set(Platform)
    for platform in Platform:
        assert rules_for(platform).platform is platform


def test_platform_rules_answer_for_their_own_platform_only() -> None:
    assert rules_for(Platform.STRIPE).secret_finding("sandbox", "api_key", "sk_live_x") is not None
    assert rules_for(Platform.HUBSPOT).secret_finding("sandbox", "api_key", "sk_live_x") is None
    assert rules_for(Platform.QUICKBOOKS).webhook_findings(("w",), {}, True)[0].code == "RCN-WH-11"
    assert rules_for(Platform.HUBSPOT).webhook_findings(("w",), {}, True) == []
