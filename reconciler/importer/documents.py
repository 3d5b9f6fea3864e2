"""Rows to manifest documents: the pure half of ``reconciler import``.

:func:`build_manifests` turns the rows of :mod:`reconciler.store.import_rows` and their
decrypted secrets into one :class:`ManifestDraft` per tenant and platform, in the exact
format the loader accepts (``reconciler/load/manifest_model.py``). Fields equal to the
loader's defaults are left out, so the files stay short and a later change of a default
shows up in plans.

Nothing here invents a value. Where the format needs something the database does not hold,
the field is left out (``reconciler validate`` then points at it) and an :class:`ImportNote`
says what to fill in; where the database holds something the format cannot express, the
note says what ``plan`` will show. No I/O, no clock, no crypto.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from reconciler.load.manifest_model import API_VERSION, CONFIG_KIND, CircuitBreaker, Retry
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
    StoredWebhook,
)

SecretLookup = Callable[[str, str, int, str], Sensitive[str] | None]
"""``(table, tenant_id, row id, column) -> plaintext``; ``None`` when the column is empty."""

_ENV_ORDER = (
    Environment.PRODUCTION,
    Environment.SANDBOX,
    Environment.STAGING,
    Environment.DEVELOPMENT,
)
_RETRY_DEFAULTS = Retry()
_BREAKER_DEFAULTS = CircuitBreaker()
_FREE_FORM = ("features", "mapping_rules", "filter_rules", "transform_rules")
_CLOUDEVENTS_PREFIX = "qbo."


def manifest_path(tenant: str, platform: Platform) -> str:
    """``tenants/<tenant>/<platform>.yaml``, relative to the manifests directory."""
    return f"tenants/{tenant}/{platform.file_stem}.yaml"


@dataclass(frozen=True, slots=True)
class ImportNote:
    """Something the user must check or fill in by hand in an imported file.

    Attributes:
        file: the manifest, relative to the output directory (``tenants/<t>/<p>.yaml``).
        field: dotted path of the field in the document (``environments.production...``).
        message: what is missing or lossy and what to do; never contains a secret.
    """

    file: str
    field: str
    message: str

    def format(self, root: str = "") -> str:
        """``warning: <root>/<file>: <field>: <message>`` (one line)."""
        path = f"{root.rstrip('/')}/{self.file}" if root else self.file
        return f"warning: {path}: {self.field}: {self.message}"


@dataclass(frozen=True, slots=True)
class ManifestDraft:
    """One manifest ready to encrypt.

    Attributes:
        tenant: the tenant.
        platform: the platform.
        document: the manifest as plain data; secret fields hold :class:`Sensitive` values,
            which must be revealed only to hand them to the SOPS encryption.
        secret_paths: key paths of every secret field in ``document`` (the encryption must
            cover all of them).
        notes: what the user must check or fill in.
    """

    tenant: str
    platform: Platform
    document: Mapping[str, Any]
    secret_paths: tuple[tuple[str, ...], ...]
    notes: tuple[ImportNote, ...] = ()

    @property
    def relative_path(self) -> str:
        """``tenants/<tenant>/<platform>.yaml``, relative to the manifests directory."""
        return manifest_path(self.tenant, self.platform)


@dataclass
class _Builder:
    tenant: str
    platform: Platform
    secret: SecretLookup
    envs: dict[Environment, dict[str, Any]] = field(default_factory=dict)
    secret_paths: list[tuple[str, ...]] = field(default_factory=list)
    notes: list[ImportNote] = field(default_factory=list)

    @property
    def file(self) -> str:
        return manifest_path(self.tenant, self.platform)

    def note(self, path: Sequence[str | int], message: str) -> None:
        self.notes.append(ImportNote(self.file, ".".join(str(p) for p in path), message))

    def env(self, environment: Environment) -> dict[str, Any]:
        return self.envs.setdefault(environment, {})

    def put_secrets(
        self,
        target: dict[str, Any],
        base: tuple[str, ...],
        table: str,
        row_id: int,
        columns: Iterable[str],
    ) -> None:
        for column in columns:
            value = self.secret(table, self.tenant, row_id, column)
            if value is not None:
                target[column] = value
                self.secret_paths.append((*base, column))

    # -- integrations ------------------------------------------------------------------

    def integration(self, row: StoredIntegration) -> None:
        key = row.environment.manifest_key
        base = ("environments", key, "integrations", row.config_type.value)
        body: dict[str, Any] = {}
        if row.is_primary:
            body["primary"] = True
        if not row.is_active:
            body["active"] = False
        self.put_secrets(body, base, "integration_configs", row.id, (s.column for s in row.secrets))
        if row.config_type is ConfigType.API_KEY and "api_key" not in body:
            self.note(
                (*base, "api_key"),
                "no API key stored; an API_KEY integration needs one: add it (SOPS-encrypted)",
            )
        if row.sync_interval is not None and row.sync_direction is not None:
            body["sync"] = {
                "interval_minutes": row.sync_interval,
                "direction": row.sync_direction.value,
            }
        elif row.sync_interval is not None or row.sync_direction is not None:
            stored = "interval" if row.sync_interval is not None else "direction"
            self.note(
                (*base, "sync"),
                f"the database stores only the sync {stored}; a manifest sets both or neither, "
                "so it was left out and plan will show the sync fields as changed",
            )
        for name in _FREE_FORM:
            value = getattr(row, name)
            if value:
                body[name] = _sorted_keys(value)
        self.env(row.environment).setdefault("integrations", {})[row.config_type.value] = body

    # -- webhooks ----------------------------------------------------------------------

    def webhook(self, row: StoredWebhook) -> None:
        key = row.environment.manifest_key
        base = ("environments", key, "webhooks", row.name)
        body: dict[str, Any] = {"type": row.webhook_type.value}
        if self.platform is Platform.QUICKBOOKS:
            if any(e.startswith(_CLOUDEVENTS_PREFIX) for e in row.subscribed_events):
                body["payload_format"] = "cloudevents"
            if row.webhook_type is WebhookType.INBOUND:
                self.note(
                    (*base, "app_id"),
                    "not stored in the database: add the Intuit app (client id or app name) "
                    "this inbound webhook belongs to; validate fails until it is set",
                )
        body["endpoint_url"] = row.endpoint_url
        body["auth_type"] = row.auth_type.value
        self.put_secrets(
            body, base, "webhook_configurations", row.id, (s.column for s in row.secrets)
        )
        if row.auth_type is AuthType.SIGNATURE and "signing_secret" not in body:
            self.note((*base, "signing_secret"), "no signing secret stored: add it")
        body["events"] = list(row.subscribed_events)
        if not row.subscribed_events:
            self.note((*base, "events"), "no events stored; a webhook needs at least one")
        retry = self._non_default(
            base,
            "retry",
            (
                ("max_attempts", row.retry_max_attempts, _RETRY_DEFAULTS.max_attempts),
                (
                    "initial_delay_seconds",
                    row.retry_initial_delay_seconds,
                    _RETRY_DEFAULTS.initial_delay_seconds,
                ),
                ("multiplier", row.retry_backoff_multiplier, _RETRY_DEFAULTS.multiplier),
                (
                    "max_delay_seconds",
                    row.retry_max_delay_seconds,
                    _RETRY_DEFAULTS.max_delay_seconds,
                ),
            ),
        )
        if retry:
            body["retry"] = retry
        breaker = self._non_default(
            base,
            "circuit_breaker",
            (
                (
                    "failure_threshold",
                    row.circuit_breaker_threshold,
                    _BREAKER_DEFAULTS.failure_threshold,
                ),
                (
                    "reset_after_seconds",
                    row.circuit_breaker_reset_seconds,
                    _BREAKER_DEFAULTS.reset_after_seconds,
                ),
            ),
        )
        if breaker:
            body["circuit_breaker"] = breaker
        if not row.is_active:
            body["active"] = False
        self.env(row.environment).setdefault("webhooks", {})[row.name] = body

    def _non_default(
        self,
        base: tuple[str, ...],
        group: str,
        values: Iterable[tuple[str, int | float | None, int | float]],
    ) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, value, default in values:
            if value is None:
                self.note(
                    (*base, group, name),
                    f"not set in the database; the manifest default ({default}) applies, so "
                    "plan will show it as a change",
                )
            elif name == "multiplier":
                if float(value) != float(default):
                    out[name] = float(value)
            elif value != default:
                out[name] = value
        return out

    # -- OAuth accounts ----------------------------------------------------------------

    def accounts(self, rows: Sequence[StoredAccount]) -> None:
        seen: set[str] = set()
        for row in sorted(rows, key=lambda r: (r.account_id or "", r.id)):
            if row.account_id is None:
                self.note(
                    ("oauth_accounts",),
                    f"OAuth token {row.id} has no account id; it cannot be declared: plan "
                    "lists it as unmanaged and only `apply --prune --revoke-unmanaged` "
                    "revokes it",
                )
                continue
            if row.account_id in seen:
                continue  # several tokens of one account: declared once
            seen.add(row.account_id)
            environment, placed_by_guess = self._account_environment(row)
            entries = self.env(environment).setdefault("oauth_accounts", [])
            base = ("environments", environment.manifest_key, "oauth_accounts", len(entries))
            entries.append(self._account(row, base))
            if placed_by_guess:
                self.note(
                    base,
                    f"account {row.account_id}: its environment is not stored; placed under "
                    f"{environment.manifest_key}, move it if it belongs to another environment",
                )

    def _account_environment(self, row: StoredAccount) -> tuple[Environment, bool]:
        """The environment to declare an account under, and whether that was a guess."""
        hint = (row.environment_hint or "").upper()
        if hint in Environment.__members__:
            return Environment(hint), False
        present = [e for e in _ENV_ORDER if e in self.envs]
        if self.platform is Platform.STRIPE and row.stripe_livemode is not None:
            if row.stripe_livemode:
                return Environment.PRODUCTION, False
            test_envs = [e for e in present if e is not Environment.PRODUCTION]
            return (test_envs[0] if test_envs else Environment.SANDBOX), len(test_envs) > 1
        if len(present) == 1:
            return present[0], False
        return Environment.PRODUCTION, len(present) > 1

    def _account(self, row: StoredAccount, base: tuple[str | int, ...]) -> dict[str, Any]:
        account_id = row.account_id or ""
        if self.platform is Platform.STRIPE:
            body: dict[str, Any] = {"stripe_account_id": account_id}
            if row.stripe_livemode is None:
                self.note(
                    (*base, "livemode"),
                    f"account {account_id}: live mode is not stored; add livemode: true "
                    "(production) or false",
                )
            else:
                body["livemode"] = row.stripe_livemode
            return body
        if self.platform is Platform.HUBSPOT:
            body = {"portal_id": self._number(account_id, (*base, "portal_id"))}
            if row.hubspot_app_id is None:
                self.note(
                    (*base, "app_id"),
                    f"portal {account_id}: the HubSpot app id is not stored; add app_id",
                )
            else:
                body["app_id"] = self._number(row.hubspot_app_id, (*base, "app_id"))
            if row.hubspot_user_id is not None:
                body["user_id"] = self._number(row.hubspot_user_id, (*base, "user_id"))
            return body
        return {"realm_id": account_id}

    def _number(self, text: str, path: Sequence[str | int]) -> int | str:
        if text.isascii() and text.isdigit():
            return int(text)
        self.note(path, f"stored value {text!r} is not a number; correct it by hand")
        return text

    # -- the document ------------------------------------------------------------------

    def draft(self) -> ManifestDraft:
        environments = {
            e.manifest_key: _ordered_env(self.envs[e]) for e in _ENV_ORDER if e in self.envs
        }
        document = {
            "apiVersion": API_VERSION,
            "kind": CONFIG_KIND,
            "tenant": self.tenant,
            "platform": self.platform.value,
            "environments": environments,
        }
        return ManifestDraft(
            self.tenant, self.platform, document, tuple(self.secret_paths), tuple(self.notes)
        )


def _sorted_keys(value: Any) -> Any:
    """``value`` with mapping keys sorted at every level (JSONB keeps no author order)."""
    if isinstance(value, Mapping):
        return {str(k): _sorted_keys(value[k]) for k in sorted(value, key=str)}
    if isinstance(value, list):
        return [_sorted_keys(v) for v in value]
    return value


def _ordered_env(env: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "integrations" in env:
        out["integrations"] = {
            t.value: env["integrations"][t.value]
            for t in ConfigType
            if t.value in env["integrations"]
        }
    if "webhooks" in env:
        out["webhooks"] = {name: env["webhooks"][name] for name in sorted(env["webhooks"])}
    if "oauth_accounts" in env:
        out["oauth_accounts"] = env["oauth_accounts"]
    return out


def build_manifests(rows: StoredRows, secret: SecretLookup) -> tuple[ManifestDraft, ...]:
    """One draft per (tenant, platform) that has rows, sorted by tenant then platform.

    OAuth accounts are placed after the integrations and webhooks of their file, because
    the environments those use decide where a Stripe test-mode account goes.
    """
    groups: dict[tuple[str, Platform], _Builder] = {}

    def builder(tenant: str, platform: Platform) -> _Builder:
        key = (tenant, platform)
        if key not in groups:
            groups[key] = _Builder(tenant, platform, secret)
        return groups[key]

    for integration in rows.integrations:
        builder(integration.tenant_id, integration.platform).integration(integration)
    for webhook in rows.webhooks:
        builder(webhook.tenant_id, webhook.platform).webhook(webhook)
    accounts: dict[tuple[str, Platform], list[StoredAccount]] = defaultdict(list)
    for account in rows.accounts:
        accounts[(account.tenant_id, account.platform)].append(account)
    for (tenant, platform), found in accounts.items():
        builder(tenant, platform).accounts(found)
    return tuple(groups[k].draft() for k in sorted(groups, key=lambda k: (k[0], k[1].file_stem)))
