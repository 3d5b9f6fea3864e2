"""The pure rows-to-manifest builder: defaults left out, nothing invented, gaps reported."""

from __future__ import annotations

from typing import Any

from reconciler.importer.documents import build_manifests
from reconciler.model.enums import (
    AuthType,
    ConfigType,
    Environment,
    Platform,
    WebhookType,
)
from reconciler.model.sensitive import Sensitive
from reconciler.store.import_rows import (
    StoredAccount,
    StoredIntegration,
    StoredRows,
    StoredSecret,
    StoredWebhook,
)


def _integration(**kw: Any) -> StoredIntegration:
    base: dict[str, Any] = {
        "id": 1,
        "tenant_id": "acme",
        "platform": Platform.STRIPE,
        "environment": Environment.PRODUCTION,
        "config_type": ConfigType.API_KEY,
        "is_primary": False,
        "is_active": True,
        "secrets": (StoredSecret("api_key", "rcn1:x", "fp"),),
        "encryption_key_version": 1,
        "api_key_fingerprint": "fp",
        "api_secret_fingerprint": None,
        "deleted_at": None,
        "row_version": 1,
        "sync_interval": None,
        "sync_direction": None,
        "features": {},
        "mapping_rules": {},
        "filter_rules": {},
        "transform_rules": {},
    }
    return StoredIntegration(**{**base, **kw})


def _webhook(**kw: Any) -> StoredWebhook:
    base: dict[str, Any] = {
        "id": 2,
        "tenant_id": "acme",
        "platform": Platform.QUICKBOOKS,
        "environment": Environment.PRODUCTION,
        "name": "events",
        "webhook_type": WebhookType.INBOUND,
        "endpoint_url": "https://hooks.example.com/qb",
        "auth_type": AuthType.SIGNATURE,
        "secrets": (StoredSecret("signing_secret", "rcn1:y", "fp"),),
        "encryption_key_version": 1,
        "signing_secret_fingerprint": "fp",
        "auth_token_fingerprint": None,
        "auth_password_fingerprint": None,
        "deleted_at": None,
        "row_version": 1,
        "subscribed_events": ("qbo.customer.created.v1",),
        "retry_max_attempts": 5,
        "retry_initial_delay_seconds": 30,
        "retry_backoff_multiplier": 2.0,
        "retry_max_delay_seconds": 3600,
        "circuit_breaker_threshold": 5,
        "circuit_breaker_reset_seconds": 300,
        "is_active": True,
    }
    return StoredWebhook(**{**base, **kw})


def _account(**kw: Any) -> StoredAccount:
    base: dict[str, Any] = {
        "id": 3,
        "tenant_id": "acme",
        "platform": Platform.HUBSPOT,
        "account_id": "48213907",
        "stripe_livemode": None,
        "hubspot_app_id": None,
        "hubspot_user_id": None,
        "environment_hint": None,
        "is_active": True,
        "revoked_at": None,
        "row_version": 1,
    }
    return StoredAccount(**{**base, **kw})


def _secret(table: str, tenant: str, row_id: int, column: str) -> Sensitive[str]:
    return Sensitive(f"plain-{column}")


def test_defaults_are_left_out_and_secrets_stay_wrapped() -> None:
    (draft,) = build_manifests(StoredRows(integrations=(_integration(),)), _secret)
    assert draft.relative_path == "tenants/acme/stripe.yaml"
    body = draft.document["environments"]["production"]["integrations"]["API_KEY"]
    assert list(body) == ["api_key"]
    assert isinstance(body["api_key"], Sensitive)
    assert draft.secret_paths == (
        ("environments", "production", "integrations", "API_KEY", "api_key"),
    )
    assert draft.notes == ()


def test_quickbooks_inbound_app_id_is_reported_not_invented() -> None:
    (draft,) = build_manifests(StoredRows(webhooks=(_webhook(),)), _secret)
    hook = draft.document["environments"]["production"]["webhooks"]["events"]
    assert "app_id" not in hook
    assert hook["payload_format"] == "cloudevents"  # inferred from the stored event names
    assert "retry" not in hook and "circuit_breaker" not in hook
    (note,) = draft.notes
    assert note.format("manifests") == (
        "warning: manifests/tenants/acme/quickbooks.yaml: "
        "environments.production.webhooks.events.app_id: not stored in the database: add the "
        "Intuit app (client id or app name) this inbound webhook belongs to; validate fails "
        "until it is set"
    )


def test_lossy_rows_are_reported() -> None:
    rows = StoredRows(
        integrations=(_integration(secrets=(), sync_interval=15, config_type=ConfigType.API_KEY),),
        webhooks=(
            _webhook(
                platform=Platform.STRIPE,
                retry_max_attempts=None,
                retry_backoff_multiplier=3.0,
                subscribed_events=(),
            ),
        ),
    )
    (draft,) = build_manifests(rows, _secret)
    fields = sorted(n.field for n in draft.notes)
    assert fields == [
        "environments.production.integrations.API_KEY.api_key",
        "environments.production.integrations.API_KEY.sync",
        "environments.production.webhooks.events.events",
        "environments.production.webhooks.events.retry.max_attempts",
    ]
    hook = draft.document["environments"]["production"]["webhooks"]["events"]
    assert hook["retry"] == {"multiplier": 3.0}


def test_accounts_unknown_fields_and_environment_placement() -> None:
    rows = StoredRows(
        integrations=(
            _integration(platform=Platform.HUBSPOT, config_type=ConfigType.OAUTH, secrets=()),
            _integration(
                platform=Platform.HUBSPOT,
                config_type=ConfigType.OAUTH,
                environment=Environment.SANDBOX,
                secrets=(),
            ),
        ),
        accounts=(
            _account(),
            _account(id=4),  # a second token of the same portal: declared once
            _account(id=5, account_id="777", hubspot_app_id="42", environment_hint="sandbox"),
            _account(id=6, account_id=None),
        ),
    )
    (draft,) = build_manifests(rows, _secret)
    envs = draft.document["environments"]
    assert envs["production"]["oauth_accounts"] == [{"portal_id": 48213907}]
    assert envs["sandbox"]["oauth_accounts"] == [{"portal_id": 777, "app_id": 42}]
    messages = [n.message for n in draft.notes]
    assert any("app id is not stored" in m for m in messages)
    assert any("environment is not stored" in m for m in messages)  # two envs: a guess
    assert any("token 6 has no account id" in m for m in messages)


def test_stripe_livemode_decides_the_environment() -> None:
    rows = StoredRows(
        accounts=(
            _account(
                platform=Platform.STRIPE, account_id="acct_1LiveAbcdefg", stripe_livemode=True
            ),
            _account(
                platform=Platform.STRIPE, account_id="acct_1TestAbcdefg", stripe_livemode=False
            ),
            _account(
                platform=Platform.STRIPE, account_id="acct_1WhoKnowsAbc", stripe_livemode=None
            ),
        )
    )
    (draft,) = build_manifests(rows, _secret)
    envs = draft.document["environments"]
    assert list(envs) == ["production", "sandbox"]
    assert envs["sandbox"]["oauth_accounts"] == [
        {"stripe_account_id": "acct_1TestAbcdefg", "livemode": False}
    ]
    assert {"stripe_account_id": "acct_1WhoKnowsAbc"} in envs["production"]["oauth_accounts"]
    assert sorted(n.field for n in draft.notes) == [
        "environments.production.oauth_accounts.1",  # where it goes is a guess, said so
        "environments.production.oauth_accounts.1.livemode",
    ]
