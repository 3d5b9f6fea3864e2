"""Hand-built plans shared by the renderer tests.

``MARKER`` appears only in non-sensitive values, so a test can tell that values do show up
while sensitive fields show masks.
"""

from __future__ import annotations

from collections.abc import Callable

from reconciler.model.enums import Environment, Platform, RiskLevel
from reconciler.model.plan import (
    SENSITIVE_MASK,
    Action,
    Address,
    Change,
    FieldChange,
    MassDeletion,
    Notice,
    NoticeKind,
    Plan,
    ResourceKind,
    Risk,
    RiskReason,
    RowRef,
    Selectors,
)

MARKER = "zebra-marker-7731"
CREATED_AT = "2026-01-15T09:00:00Z"
DIGEST = "sha256:4f1c0d9b2e"
FINGERPRINT = "sha256:9a8b7c6d5e"

ACME = "acme-robotics"
GLOBEX = "globex"


def addr(
    tenant: str,
    platform: Platform,
    kind: ResourceKind,
    name: str,
    env: Environment | None = Environment.PRODUCTION,
) -> Address:
    return Address(tenant, platform, env, kind, name)


def reason(code: str, level: RiskLevel, message: str) -> RiskReason:
    return RiskReason(code, level, message)


def mixed_plan() -> Plan:
    """Every action, sensitive fields, lists, nested dicts, notices and a breaker."""
    create = Change(
        address=addr(ACME, Platform.STRIPE, ResourceKind.INTEGRATION, "API_KEY"),
        action=Action.CREATE,
        fields=(
            FieldChange("active", None, True),
            FieldChange("api_key", None, SENSITIVE_MASK, sensitive=True),
            FieldChange("features", None, {"invoices": True, "customers": True}),
            FieldChange("api_secret", None, None, sensitive=True),
            FieldChange("sync_interval", None, 15),
        ),
        risk=Risk(RiskLevel.LOW),
        reason="declared in manifests",
        source="manifests/tenants/acme-robotics/stripe.yaml",
    )
    update = Change(
        address=addr(ACME, Platform.STRIPE, ResourceKind.WEBHOOK, "billing-events"),
        action=Action.UPDATE,
        fields=(
            FieldChange(
                "endpoint_url",
                "https://hooks.acme.example/stripe",
                f"https://hooks.acme.example/{MARKER}",
            ),
            FieldChange(
                "events",
                ["charge.refunded", "customer.subscription.updated"],
                ["customer.subscription.updated", "invoice.paid"],
            ),
            FieldChange(
                "retry",
                {"initial_delay_seconds": 30, "max_attempts": 8},
                {"initial_delay_seconds": 30, "max_attempts": 10, "multiplier": 2},
            ),
            FieldChange("signing_secret", SENSITIVE_MASK, SENSITIVE_MASK, sensitive=True),
        ),
        risk=Risk(
            RiskLevel.HIGH,
            (
                reason("RSK-W001", RiskLevel.HIGH, "webhook endpoint URL changed"),
                reason("RSK-W004", RiskLevel.MEDIUM, "signing secret rotated"),
            ),
        ),
        source="manifests/tenants/acme-robotics/stripe.yaml",
        row_id=41,
        row_version=3,
    )
    revoke = Change(
        address=addr(ACME, Platform.STRIPE, ResourceKind.OAUTH_ACCOUNT, "acct_9Undeclared", None),
        action=Action.REVOKE,
        fields=(FieldChange("stripe_account_id", "acct_9Undeclared", None),),
        risk=Risk(
            RiskLevel.CRITICAL,
            (reason("RSK-O002", RiskLevel.CRITICAL, "revokes a live connected account"),),
        ),
        reason="undeclared connected account (--prune)",
        row_id=7,
        row_version=1,
    )
    settings = Change(
        address=addr(
            GLOBEX, Platform.HUBSPOT, ResourceKind.INTEGRATION, "SETTINGS", Environment.SANDBOX
        ),
        action=Action.UPDATE,
        fields=(
            FieldChange("sync_interval", 15, 30),
            FieldChange("mapping_rules", {"contact": {"email": "email"}}, {"contact": {}}),
        ),
        risk=Risk(RiskLevel.MEDIUM, (reason("RSK-I003", RiskLevel.MEDIUM, "mapping changed"),)),
        source="manifests/tenants/globex/hubspot.yaml",
        row_id=12,
        row_version=5,
    )
    delete = Change(
        address=addr(GLOBEX, Platform.HUBSPOT, ResourceKind.WEBHOOK, "legacy", Environment.SANDBOX),
        action=Action.DELETE,
        fields=(
            FieldChange("endpoint_url", "https://old.globex.example/hook", None),
            FieldChange("auth_token", SENSITIVE_MASK, None, sensitive=True),
        ),
        risk=Risk(RiskLevel.HIGH, (reason("RSK-D001", RiskLevel.HIGH, "deletes a webhook"),)),
        reason="not in manifests (--prune)",
        row_id=13,
        row_version=2,
    )
    return Plan(
        created_at=CREATED_AT,
        manifests_digest=DIGEST,
        actual_fingerprint=FINGERPRINT,
        changes=(create, update, revoke, settings, delete),
        read_set=(RowRef("integration_configs", 12, 5), RowRef("webhook_configurations", 41, 3)),
        notices=(
            Notice(
                NoticeKind.WAITING_FOR_CONNECTION,
                addr(ACME, Platform.STRIPE, ResourceKind.OAUTH_ACCOUNT, "acct_1ExampleAbc"),
                "no token yet; connect the account in the app",
            ),
            Notice(
                NoticeKind.UNDECLARED_ACCOUNT,
                addr(
                    GLOBEX,
                    Platform.QUICKBOOKS,
                    ResourceKind.OAUTH_ACCOUNT,
                    "9130347596263942",
                    None,
                ),
                "connected account no manifest declares",
                RiskLevel.HIGH,
            ),
        ),
        mass_deletions=(MassDeletion(GLOBEX, 1, 1, whole_tenant=True),),
        selectors=Selectors(platforms=(Platform.STRIPE, Platform.HUBSPOT, Platform.QUICKBOOKS)),
        prune=True,
    )


def empty_plan() -> Plan:
    return Plan(created_at=CREATED_AT, manifests_digest=DIGEST, actual_fingerprint=FINGERPRINT)


def kept_only_plan() -> Plan:
    """No changes, but objects the database has and manifests do not (no --prune)."""
    return Plan(
        created_at=CREATED_AT,
        manifests_digest=DIGEST,
        actual_fingerprint=FINGERPRINT,
        notices=(
            Notice(
                NoticeKind.KEPT,
                addr(ACME, Platform.QUICKBOOKS, ResourceKind.WEBHOOK, "old-sync"),
                "",
            ),
        ),
        selectors=Selectors(tenants=(ACME,), exclude_tenants=(GLOBEX,)),
    )


def many_tenants_plan(tenants: int, changes_per_tenant: int = 3) -> Plan:
    """A large plan: one update per webhook for each of ``tenants`` tenants."""
    changes = tuple(
        Change(
            address=addr(f"tenant-{t:03d}", Platform.STRIPE, ResourceKind.WEBHOOK, f"hook-{i}"),
            action=Action.UPDATE,
            fields=(
                FieldChange(
                    "endpoint_url", f"https://a.example/{t}/{i}", f"https://b.example/{t}/{i}"
                ),
                FieldChange("events", ["invoice.paid"], ["invoice.paid", "invoice.voided"]),
            ),
            risk=Risk(RiskLevel.MEDIUM),
            source=f"manifests/tenants/tenant-{t:03d}/stripe.yaml",
        )
        for t in range(tenants)
        for i in range(changes_per_tenant)
    )
    return Plan(
        created_at=CREATED_AT,
        manifests_digest=DIGEST,
        actual_fingerprint=FINGERPRINT,
        changes=changes,
    )


SAMPLE_PLANS: dict[str, Callable[[], Plan]] = {
    "mixed": mixed_plan,
    "empty": empty_plan,
    "kept_only": kept_only_plan,
    "many_tenants": lambda: many_tenants_plan(4, 2),
}
