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
from reconciler.model.field_spec import (
    compile_constructor,
    fast_constructor,
    identity_of,
    lookup,
)
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

_SHARED = ("tenant_id", "platform", "environment", "source")
"""What every object of a file and environment shares: parameters of the makers below."""


def _maker(fields: tuple[FieldSpec, ...], model: type[Any]) -> Callable[..., Any]:
    """``(obj, secret, tenant_id, platform, environment, source, name) -> model`` object of
    the manifest object ``obj`` (``name``: the last part of its identity); ``secret(key)``
    makes a present secret's value. An absent group (``sync:`` left out) reads as None in
    each of its fields (made for fleet scale by :func:`compile_constructor`)."""
    items: dict[str, str] = {name: name for name in _SHARED}
    items[identity_of(fields)[-1].name] = "name"
    nested: dict[str, list[str]] = {}
    for spec in fields:
        if spec.identity or spec.owner is not Owner.MANIFEST or not spec.manifest:
            continue
        value = attribute_path(spec.manifest, none_safe=True)
        attribute, dot, _ = spec.desired_path.partition(".")
        if spec.secret:
            items[attribute] = f"(None if {value} is None else secret({spec.manifest!r}))"
        elif dot:
            nested.setdefault(attribute, []).append(value)
        else:
            items[attribute] = call("tuple" if spec.kind is Kind.LIST else "", value)
    # The only grouped desired value: a webhook's retry policy.
    items.update({a: call("RetryPolicy", ", ".join(parts)) for a, parts in nested.items()})
    helpers = {"RetryPolicy": _RETRY, "tuple": tuple}
    return compile_constructor(model, items, helpers, f"obj, secret, {', '.join(_SHARED)}, name")


_RETRY = fast_constructor(RetryPolicy)
_INTEGRATION = _maker(INTEGRATION_FIELDS, DesiredIntegration)
_WEBHOOK = _maker(WEBHOOK_FIELDS, DesiredWebhook)
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
            identity = (config.tenant, platform, environment)
            shared: dict[str, Any] = dict(zip(_SHARED, (*identity, source), strict=True))
            base = ("environments", env_name)
            for config_type in ConfigType:
                integ = getattr(env.integrations, config_type.value)
                if integ is None:
                    continue
                here = (*base, "integrations", config_type.value)
                integrations.append(
                    _INTEGRATION(integ, secret_at(here), *identity, source, config_type)
                )
            for name, hook in env.webhooks.items():
                here = (*base, "webhooks", name)
                webhooks.append(_WEBHOOK(hook, secret_at(here), *identity, source, name))
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
