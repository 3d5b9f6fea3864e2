"""Stripe: what differs for ``tenants/<tenant>/stripe.yaml``.

Stripe webhooks belong to the tenant's own account (one ``whsec_`` secret per endpoint); a
connected account has a mode (``livemode``) that must match the environment, and so must
the mode of its keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reconciler.diagnostics import Severity
from reconciler.load import catalogs
from reconciler.load.findings import FieldPath, Finding
from reconciler.load.platforms import AccountIds, EventProblem, PlatformRules
from reconciler.model.enums import Platform
from reconciler.model.fields import ACCOUNT_ID, API_KEY, API_SECRET, LIVEMODE, SIGNING_SECRET


class StripeRules(PlatformRules):
    """The Stripe :class:`~reconciler.load.platforms.PlatformRules`."""

    platform = Platform.STRIPE
    signature_key_hint = "the endpoint's whsec_ secret"
    account_id_field = "stripe_account_id"
    app_kind = None  # every tenant owns its Stripe endpoints: no app_endpoints
    events_description = (
        "Stripe names such as `invoice.paid`; `*` (all events) is allowed with a warning."
    )

    def check_event(self, event: str, payload_format: str) -> EventProblem | None:
        if event == catalogs.STRIPE_WILDCARD:
            return (
                "RCN-WH-6",
                "'*' subscribes to every event type, including future ones; list the events "
                "this endpoint handles",
                Severity.WARNING,
            )
        if event in catalogs.stripe_events():
            return None
        return catalogs.unknown_event(event, catalogs.stripe_events(), self.platform)

    def events_json_schema(self) -> dict[str, Any]:
        return {"enum": [catalogs.STRIPE_WILDCARD, *sorted(catalogs.stripe_events())]}

    def account_findings(
        self, path: FieldPath, acct: Mapping[str, Any], env_name: str
    ) -> list[Finding]:
        """RCN-ENV-3: ``livemode`` is true in production and false elsewhere."""
        livemode = acct.get("livemode")
        if not isinstance(livemode, bool) or livemode == (env_name == "production"):
            return []
        want = "true" if env_name == "production" else "false"
        return [
            Finding(
                "RCN-ENV-3",
                f"livemode must be {want} in {env_name}: "
                + (
                    "production uses the live-mode account"
                    if env_name == "production"
                    else "only production may connect in live mode"
                ),
                (*path, "livemode"),
            )
        ]

    def secret_finding(self, env_name: str, field: str, plaintext: str) -> Finding | None:
        """RCN-ENV-1/2 (key mode and kind) and RCN-WH-3 (a ``whsec_`` signing secret).

        The message names at most the key's public prefix (``sk_test_``), never the key.
        """
        if field == SIGNING_SECRET.manifest:
            if not plaintext.startswith("whsec_"):
                return Finding("RCN-WH-3", "does not look like a Stripe signing secret (whsec_...)")
            return None
        if field not in (API_KEY.manifest, API_SECRET.manifest):
            return None
        if plaintext.startswith("pk_"):
            return Finding(
                "RCN-ENV-2",
                "is a publishable key (pk_...), which cannot call the API; use a restricted "
                "(rk_) or secret (sk_) key",
            )
        prefix = plaintext[:8]
        live = prefix in ("sk_live_", "rk_live_")
        test = prefix in ("sk_test_", "rk_test_")
        if env_name == "production" and test:
            return Finding(
                "RCN-ENV-1",
                f"holds a test-mode key ({prefix}...) in production; use a live key "
                "(rk_live_ preferred)",
            )
        if env_name != "production" and live:
            return Finding(
                "RCN-ENV-1",
                f"holds a live-mode key ({prefix}...) in {env_name}; only production may use live "
                "keys (use sk_test_ or rk_test_)",
            )
        return None

    def account_ids(self, acct: Any) -> AccountIds:
        return {ACCOUNT_ID.name: acct.stripe_account_id, LIVEMODE.name: acct.livemode}


RULES = StripeRules()
