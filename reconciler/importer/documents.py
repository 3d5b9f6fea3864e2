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

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from reconciler.load.manifest_model import (
    API_VERSION,
    CONFIG_KIND,
    HubSpotWebhook,
    Integration,
    QuickBooksWebhook,
    StripeWebhook,
)
from reconciler.model.enums import (
    AuthType,
    ConfigType,
    Environment,
    Platform,
    WebhookType,
)
from reconciler.model.fields import (
    AUTH_TYPE,
    HUBSPOT_APP,
    HUBSPOT_USER,
    INTEGRATION_FIELDS,
    INTEGRATION_SECRETS,
    LIVEMODE,
    WEBHOOK_FIELDS,
    WEBHOOK_SECRETS,
    FieldSpec,
    Kind,
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
_WEBHOOK_MODELS: Mapping[Platform, type[BaseModel]] = {
    Platform.STRIPE: StripeWebhook,
    Platform.HUBSPOT: HubSpotWebhook,
    Platform.QUICKBOOKS: QuickBooksWebhook,
}
_API_KEY, _SIGNING_SECRET = INTEGRATION_SECRETS[0], WEBHOOK_SECRETS[0]
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

    # -- fields ----------------------------------------------------------------------

    def put_fields(
        self,
        row: Any,
        fields: tuple[FieldSpec, ...],
        model: type[BaseModel],
        table: str,
        base: tuple[str, ...],
        body: dict[str, Any],
        after: Mapping[str, Callable[[], None]],
    ) -> None:
        """Write a row's manifest-owned fields into ``body``, in the order of the field table.

        A value equal to the manifest default is left out; a group (``sync``, ``retry``) is
        written as one mapping. ``after`` runs a platform step after a field (by its manifest
        key; ``secrets`` after the secrets).
        """
        secrets_done = False
        groups_done: set[str] = set()
        for spec in fields:
            if not spec.reconciled or not spec.manifest:
                continue
            if spec.secret:
                if not secrets_done:
                    secrets_done = True
                    columns = (s.column for s in row.secrets)
                    self.put_secrets(body, base, table, row.id, columns)
                    if "secrets" in after:
                        after["secrets"]()
                continue
            key, _, member = spec.manifest.partition(".")
            if member:
                if key not in groups_done:
                    groups_done.add(key)
                    members = [f for f in fields if f.manifest.startswith(f"{key}.")]
                    self._group(row, members, model.model_fields[key], base, key, body)
                continue
            value = getattr(row, spec.name)
            info = model.model_fields[key]
            if info.is_required() or value != info.get_default(call_default_factory=True):
                body[key] = _manifest_value(spec, value)
            if spec.kind is Kind.LIST and not value:
                self.note((*base, key), f"no {key} stored; a webhook needs at least one")
            if key in after:
                after[key]()

    def _group(
        self,
        row: Any,
        members: list[FieldSpec],
        info: FieldInfo,
        base: tuple[str, ...],
        group: str,
        body: dict[str, Any],
    ) -> None:
        values = [(f, f.manifest.partition(".")[2], getattr(row, f.name)) for f in members]
        defaults = info.get_default(call_default_factory=True)
        if defaults is None:
            # An optional group: the manifest sets all of it or none of it.
            present = [(f, k, v) for f, k, v in values if v is not None]
            if len(present) == len(values):
                body[group] = {k: _manifest_value(f, v) for f, k, v in values}
            elif present:
                stored = present[0][0].name.removeprefix(f"{group}_")
                self.note(
                    (*base, group),
                    f"the database stores only the {group} {stored}; a manifest sets both or "
                    f"neither, so it was left out and plan will show the {group} fields as "
                    "changed",
                )
            return
        out: dict[str, Any] = {}
        for spec, key, value in values:
            default = getattr(defaults, key)
            if value is None:
                self.note(
                    (*base, group, key),
                    f"not set in the database; the manifest default ({default}) applies, so "
                    "plan will show it as a change",
                )
            elif spec.kind is Kind.FLOAT:
                if float(value) != float(default):
                    out[key] = float(value)
            elif value != default:
                out[key] = value
        if out:
            body[group] = out

    # -- integrations ------------------------------------------------------------------

    def integration(self, row: StoredIntegration) -> None:
        key = row.environment.manifest_key
        base = ("environments", key, "integrations", row.config_type.value)
        body: dict[str, Any] = {}

        def api_key_needed() -> None:
            if row.config_type is ConfigType.API_KEY and _API_KEY not in body:
                self.note(
                    (*base, _API_KEY),
                    "no API key stored; an API_KEY integration needs one: add it (SOPS-encrypted)",
                )

        self.put_fields(
            row,
            INTEGRATION_FIELDS,
            Integration,
            "integration_configs",
            base,
            body,
            {"secrets": api_key_needed},
        )
        self.env(row.environment).setdefault("integrations", {})[row.config_type.value] = body

    # -- webhooks ----------------------------------------------------------------------

    def webhook(self, row: StoredWebhook) -> None:
        key = row.environment.manifest_key
        base = ("environments", key, "webhooks", row.name)
        body: dict[str, Any] = {}

        def quickbooks() -> None:
            if self.platform is not Platform.QUICKBOOKS:
                return
            if any(e.startswith(_CLOUDEVENTS_PREFIX) for e in row.subscribed_events):
                body["payload_format"] = "cloudevents"
            if row.webhook_type is WebhookType.INBOUND:
                self.note(
                    (*base, "app_id"),
                    "not stored in the database: add the Intuit app (client id or app name) "
                    "this inbound webhook belongs to; validate fails until it is set",
                )

        def signing_secret_needed() -> None:
            if AUTH_TYPE.read(row) is AuthType.SIGNATURE and _SIGNING_SECRET not in body:
                self.note((*base, _SIGNING_SECRET), "no signing secret stored: add it")

        self.put_fields(
            row,
            WEBHOOK_FIELDS,
            _WEBHOOK_MODELS[self.platform],
            "webhook_configurations",
            base,
            body,
            {"type": quickbooks, "secrets": signing_secret_needed},
        )
        self.env(row.environment).setdefault("webhooks", {})[row.name] = body

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
        livemode = LIVEMODE.read(row)
        if self.platform is Platform.STRIPE and livemode is not None:
            if livemode:
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
            livemode, key = LIVEMODE.read(row), LIVEMODE.manifest
            if livemode is None:
                self.note(
                    (*base, key),
                    f"account {account_id}: live mode is not stored; add {key}: true "
                    "(production) or false",
                )
            else:
                body[key] = livemode
            return body
        if self.platform is Platform.HUBSPOT:
            body = {"portal_id": self._number(account_id, (*base, "portal_id"))}
            app, app_key = HUBSPOT_APP.read(row), HUBSPOT_APP.manifest
            if app is None:
                self.note(
                    (*base, app_key),
                    f"portal {account_id}: the HubSpot app id is not stored; add {app_key}",
                )
            else:
                body[app_key] = self._number(app, (*base, app_key))
            user, user_key = HUBSPOT_USER.read(row), HUBSPOT_USER.manifest
            if user is not None:
                body[user_key] = self._number(user, (*base, user_key))
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


def _manifest_value(spec: FieldSpec, value: Any) -> Any:
    """A row value as the manifest writes it (enum labels, lists, sorted mappings)."""
    if spec.kind is Kind.ENUM:
        return value.value
    if spec.kind is Kind.LIST:
        return list(value)
    if spec.kind is Kind.JSON:
        return _sorted_keys(value)
    return value


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
