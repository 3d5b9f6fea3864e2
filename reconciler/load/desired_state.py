"""The desired state built from validated manifests and their decrypted secrets."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from reconciler.load.decrypt import SecretKey
from reconciler.load.file_types import (
    FileResult,
    Fingerprint,
)
from reconciler.load.manifest_model import (
    PlatformConfig,
)
from reconciler.load.platforms import rules_for
from reconciler.model.desired import (
    DesiredIntegration,
    DesiredOAuthAccount,
    DesiredState,
    DesiredWebhook,
    RetryPolicy,
    SecretValue,
    Source,
)
from reconciler.model.enums import ConfigType, Environment, Platform
from reconciler.model.sensitive import Sensitive


def build_state(
    results: Sequence[FileResult],
    secrets: Mapping[SecretKey, str],
    fingerprint: Fingerprint | None,
    digest: str,
) -> DesiredState:
    integrations: list[DesiredIntegration] = []
    webhooks: list[DesiredWebhook] = []
    accounts: list[DesiredOAuthAccount] = []
    tenants: set[str] = set()

    for result in results:
        config = result.config
        if config is None:
            continue
        tenants.add(config.tenant)
        source = Source(result.display)
        platform = Platform(config.platform)

        def secret(
            path: tuple[str | int, ...], present: bool, rel: str = result.rel
        ) -> SecretValue | None:
            if not present:
                return None
            plain = secrets.get((rel, path))
            if plain is None:
                return SecretValue(None, None)
            return SecretValue(Sensitive(plain), fingerprint(plain) if fingerprint else None)

        for env_name in ("production", "sandbox", "staging", "development"):
            env = getattr(config.environments, env_name)
            if env is None:
                continue
            environment = Environment(env_name.upper())
            base = ("environments", env_name)
            for config_type in ConfigType:
                integ = getattr(env.integrations, config_type.value)
                if integ is None:
                    continue
                here = (*base, "integrations", config_type.value)
                integrations.append(
                    DesiredIntegration(
                        tenant_id=config.tenant,
                        platform=platform,
                        environment=environment,
                        config_type=config_type,
                        is_primary=integ.primary,
                        is_active=integ.active,
                        api_key=secret((*here, "api_key"), integ.api_key is not None),
                        api_secret=secret((*here, "api_secret"), integ.api_secret is not None),
                        sync_interval=integ.sync.interval_minutes if integ.sync else None,
                        sync_direction=integ.sync.direction if integ.sync else None,
                        features=integ.features,
                        mapping_rules=integ.mapping_rules,
                        filter_rules=integ.filter_rules,
                        transform_rules=integ.transform_rules,
                        source=source,
                    )
                )
            for name, hook in env.webhooks.items():
                here = (*base, "webhooks", name)
                webhooks.append(
                    DesiredWebhook(
                        tenant_id=config.tenant,
                        platform=platform,
                        environment=environment,
                        name=name,
                        webhook_type=hook.type,
                        endpoint_url=hook.endpoint_url,
                        auth_type=hook.auth_type,
                        signing_secret=secret(
                            (*here, "signing_secret"), hook.signing_secret is not None
                        ),
                        auth_token=secret((*here, "auth_token"), hook.auth_token is not None),
                        auth_password=secret(
                            (*here, "auth_password"), hook.auth_password is not None
                        ),
                        subscribed_events=tuple(hook.events),
                        retry=RetryPolicy(
                            hook.retry.max_attempts,
                            hook.retry.initial_delay_seconds,
                            hook.retry.multiplier,
                            hook.retry.max_delay_seconds,
                        ),
                        circuit_breaker_threshold=hook.circuit_breaker.failure_threshold,
                        circuit_breaker_reset_seconds=hook.circuit_breaker.reset_after_seconds,
                        is_active=hook.active,
                        source=source,
                    )
                )
            accounts.extend(_accounts(config, env.oauth_accounts, environment, source))
    return DesiredState(
        integrations=tuple(integrations),
        webhooks=tuple(webhooks),
        oauth_accounts=tuple(accounts),
        tenants=frozenset(tenants),
        manifests_digest=digest,
    )


def _accounts(
    config: PlatformConfig, declared: Sequence[Any], environment: Environment, source: Source
) -> Iterable[DesiredOAuthAccount]:
    platform = Platform(config.platform)
    platform_rules = rules_for(platform)
    for acct in declared:
        reason = acct.revoke.reason if acct.revoke else None
        ids = platform_rules.account_ids(acct)
        yield DesiredOAuthAccount(
            tenant_id=config.tenant,
            platform=platform,
            environment=environment,
            account_id=ids.account_id,
            stripe_livemode=ids.stripe_livemode,
            hubspot_app_id=ids.hubspot_app_id,
            hubspot_user_id=ids.hubspot_user_id,
            revoke_reason=reason,
            source=source,
        )
