"""The desired state built from validated manifests and their decrypted secrets."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reconciler.load.decrypt import SecretKey
from reconciler.load.file_types import (
    FileResult,
    Fingerprint,
)
from reconciler.load.manifest_model import (
    HubSpotConfig,
    PlatformConfig,
    StripeConfig,
)
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
from reconciler.model.fields import (
    INTEGRATION_FIELDS,
    OAUTH_ACCOUNT_FIELDS,
    WEBHOOK_FIELDS,
    FieldSpec,
    Kind,
    Owner,
)
from reconciler.model.sensitive import Sensitive


def _manifest_getter(path: str) -> Callable[[Any], Any]:
    """Read a dotted manifest path; an absent key or group (``sync: null``) reads as None."""
    head, _, rest = path.partition(".")
    if not rest:
        return lambda o: getattr(o, head, None)
    inner = _manifest_getter(rest)
    return lambda o: None if (g := getattr(o, head, None)) is None else inner(g)


@dataclass(frozen=True, slots=True)
class _Fields:
    """How the manifest-owned, non-identity fields of one entity become desired values."""

    plain: tuple[tuple[str, Callable[[Any], Any], Kind], ...]
    """(desired attribute, manifest getter, kind) of each value."""
    secrets: tuple[tuple[str, str], ...]
    """(desired attribute, manifest key) of each secret."""
    nested: tuple[tuple[str, tuple[Callable[[Any], Any], ...]], ...]
    """(desired attribute, manifest getters of its parts) of each grouped value."""

    @classmethod
    def of(cls, fields: tuple[FieldSpec, ...]) -> _Fields:
        plain: list[tuple[str, Callable[[Any], Any], Kind]] = []
        secrets: list[tuple[str, str]] = []
        nested: list[tuple[str, tuple[Callable[[Any], Any], ...]]] = []
        for spec in fields:
            if spec.identity or spec.owner is not Owner.MANIFEST or not spec.manifest:
                continue
            get = _manifest_getter(spec.manifest)
            attribute, dot, _ = spec.desired_path.partition(".")
            if spec.secret:
                secrets.append((attribute, spec.manifest))
            elif dot:
                if nested and nested[-1][0] == attribute:
                    nested[-1] = (attribute, (*nested[-1][1], get))
                else:
                    nested.append((attribute, (get,)))
            else:
                plain.append((attribute, get, spec.kind))
        return cls(tuple(plain), tuple(secrets), tuple(nested))

    def values(self, obj: Any, secret: Callable[[str], SecretValue | None]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for attribute, get, kind in self.plain:
            value = get(obj)
            if kind is Kind.LIST:
                value = tuple(value)
            elif kind is Kind.TEXT and value is not None and not isinstance(value, str):
                value = str(value)  # HubSpot app and user ids are numbers in manifests
            out[attribute] = value
        for attribute, key in self.secrets:
            out[attribute] = secret(key) if getattr(obj, key) is not None else None
        for attribute, getters in self.nested:
            # The only grouped desired value: a webhook's retry policy.
            out[attribute] = RetryPolicy(*(get(obj) for get in getters))
        return out


_INTEGRATION = _Fields.of(INTEGRATION_FIELDS)
_WEBHOOK = _Fields.of(WEBHOOK_FIELDS)
_ACCOUNT = _Fields.of(OAUTH_ACCOUNT_FIELDS)


def build_state(
    results: Sequence[FileResult],
    secrets: Mapping[SecretKey, str],
    fingerprint: Fingerprint | None,
    digest: str,
) -> DesiredState:
    """The desired objects of validated files; every field comes from the field table."""
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

        def secret(path: tuple[str | int, ...], rel: str = result.rel) -> SecretValue | None:
            plain = secrets.get((rel, path))
            if plain is None:
                return SecretValue(None, None)
            return SecretValue(Sensitive(plain), fingerprint(plain) if fingerprint else None)

        def secret_at(here: tuple[str | int, ...]) -> Callable[[str], SecretValue | None]:
            return lambda key: secret((*here, key))

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
                        source=source,
                        **_INTEGRATION.values(integ, secret_at(here)),
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
                        source=source,
                        **_WEBHOOK.values(hook, secret_at(here)),
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


def _no_secret(key: str) -> SecretValue | None:
    raise AssertionError(f"an OAuth account has no secret ({key})")


def _accounts(
    config: PlatformConfig, declared: Sequence[Any], environment: Environment, source: Source
) -> Iterable[DesiredOAuthAccount]:
    for acct in declared:
        # The account id is the platform's own key; the other fields come from the table.
        if isinstance(config, StripeConfig):
            platform, account_id = Platform.STRIPE, acct.stripe_account_id
        elif isinstance(config, HubSpotConfig):
            platform, account_id = Platform.HUBSPOT, str(acct.portal_id)
        else:
            platform, account_id = Platform.QUICKBOOKS, acct.realm_id
        yield DesiredOAuthAccount(
            tenant_id=config.tenant,
            platform=platform,
            environment=environment,
            account_id=account_id,
            source=source,
            **_ACCOUNT.values(acct, _no_secret),
        )
