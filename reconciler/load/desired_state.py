"""The desired state built from validated manifests and their decrypted secrets."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
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
from reconciler.model.field_spec import lookup
from reconciler.model.fields import (
    ACCOUNT_ID,
    INTEGRATION_FIELDS,
    OAUTH_ACCOUNT_FIELDS,
    WEBHOOK_FIELDS,
    FieldSpec,
    Kind,
    Owner,
    attribute_path,
    call,
    compile_record,
)
from reconciler.model.sensitive import Sensitive

_HELPERS: Mapping[str, object] = {"RetryPolicy": RetryPolicy, "tuple": tuple}


def _values_of(fields: tuple[FieldSpec, ...]) -> Callable[..., dict[str, Any]]:
    """``(manifest object, secret) -> desired attributes`` of the manifest-owned, non-identity
    fields; ``secret(key)`` makes a present secret's value. An absent group (``sync:``
    left out) reads as None in each of its fields."""
    items: list[tuple[str, str]] = []
    nested: dict[str, list[str]] = {}
    for spec in fields:
        if spec.identity or spec.owner is not Owner.MANIFEST or not spec.manifest:
            continue
        value = attribute_path(spec.manifest, none_safe=True)
        attribute, dot, _ = spec.desired_path.partition(".")
        if spec.secret:
            items.append((attribute, f"(None if {value} is None else secret({spec.manifest!r}))"))
        elif dot:
            nested.setdefault(attribute, []).append(value)
        else:
            wrap = "tuple" if spec.kind is Kind.LIST else ""
            items.append((attribute, call(wrap, value)))
    # The only grouped desired value: a webhook's retry policy.
    items += [(a, call("RetryPolicy", ", ".join(parts))) for a, parts in nested.items()]
    return compile_record(items, _HELPERS, params="obj, secret")


_INTEGRATION = _values_of(INTEGRATION_FIELDS)
_WEBHOOK = _values_of(WEBHOOK_FIELDS)
_ACCOUNT = compile_record(
    [
        # The account id, and a field with an oauth_tokens column, identify the account in
        # the platform's own terms: the platform module reads them (AccountIds); the others
        # are manifest paths.
        (
            f.name,
            lookup("ids", f.name)
            if f.column or f is ACCOUNT_ID
            else attribute_path(f.manifest, "acct", none_safe=True),
        )
        for f in OAUTH_ACCOUNT_FIELDS
        if (f is ACCOUNT_ID or not f.identity) and f.owner is Owner.MANIFEST
    ],
    params="ids, acct",
)
"""``(AccountIds, manifest account) -> the desired account's attributes but the tenant,
platform, environment and source``."""


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
            # What every object of this file and environment shares (its identity's first
            # three parts, and where it was declared).
            shared: dict[str, Any] = {
                "tenant_id": config.tenant,
                "platform": platform,
                "environment": environment,
                "source": source,
            }
            base = ("environments", env_name)
            for config_type in ConfigType:
                integ = getattr(env.integrations, config_type.value)
                if integ is None:
                    continue
                here = (*base, "integrations", config_type.value)
                values = _INTEGRATION(integ, secret_at(here))
                integrations.append(DesiredIntegration(**shared, config_type=config_type, **values))
            for name, hook in env.webhooks.items():
                values = _WEBHOOK(hook, secret_at((*base, "webhooks", name)))
                webhooks.append(DesiredWebhook(**shared, name=name, **values))
            accounts.extend(_accounts(config, env.oauth_accounts, shared))
    return DesiredState(
        integrations=tuple(integrations),
        webhooks=tuple(webhooks),
        oauth_accounts=tuple(accounts),
        tenants=frozenset(tenants),
        manifests_digest=digest,
    )


def _accounts(
    config: PlatformConfig, declared: Sequence[Any], shared: Mapping[str, Any]
) -> Iterable[DesiredOAuthAccount]:
    platform_rules = rules_for(Platform(config.platform))
    for acct in declared:
        ids = platform_rules.account_ids(acct)
        yield DesiredOAuthAccount(**shared, **_ACCOUNT(ids, acct))
