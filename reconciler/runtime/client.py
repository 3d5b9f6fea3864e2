"""A tenant-scoped client for services: configuration, circuit breakers, OAuth tokens.

A :class:`RuntimeClient` holds a connection pool for the service's own login and the keys
(the keyring and the fingerprint key, from the environment by default). Everything happens in
a :class:`RuntimeSession`: one transaction acting for one tenant, committed when its ``with``
block ends without an error, rolled back otherwise. Keep sessions short: a circuit-breaker
call holds its webhook's row lock until the session ends.

Secrets come back as :class:`~reconciler.model.sensitive.Sensitive` values (masked in every
printout); a value is decrypted only when it is provably the one its stored fingerprint
describes (``docs/stored-secrets.md``).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from reconciler.crypto.aead import CipherContext, FieldCipher
from reconciler.crypto.fingerprint import Fingerprinter
from reconciler.crypto.keyring import Keyring
from reconciler.errors import ConfigError, KeyUnavailable
from reconciler.model.enums import CircuitBreakerStatus, Environment, Platform
from reconciler.model.fields import INTEGRATION_SECRETS
from reconciler.model.fields import ActiveConfig as ActiveConfig
from reconciler.model.sensitive import Sensitive
from reconciler.store import runtime as store
from reconciler.store.session import ClosedOnExit

DEFAULT_APPLICATION = "reconciler-runtime"


@dataclass(frozen=True, slots=True)
class OAuthAccount:
    """The connected account a token belongs to, as the manifests declare it.

    Build one with :meth:`stripe`, :meth:`hubspot` or :meth:`quickbooks`: the reconciler
    recognises a token as a declared account by these columns (Stripe: account id and live
    mode; HubSpot: portal and app; QuickBooks: realm).
    """

    platform: Platform
    stripe_account_id: str | None = None
    stripe_user_id: str | None = None
    stripe_livemode: bool | None = None
    hubspot_portal_id: str | None = None
    hubspot_user_id: str | None = None
    hubspot_app_id: str | None = None
    quickbooks_realm_id: str | None = None

    @classmethod
    def stripe(cls, account_id: str, *, livemode: bool, user_id: str | None = None) -> OAuthAccount:
        """A Stripe Connect account (``livemode`` true in production, false elsewhere)."""
        return cls(
            Platform.STRIPE,
            stripe_account_id=account_id,
            stripe_user_id=user_id,
            stripe_livemode=livemode,
        )

    @classmethod
    def hubspot(
        cls, portal_id: int | str, *, app_id: int | str, user_id: int | str | None = None
    ) -> OAuthAccount:
        """A HubSpot installation: the portal (hub) id and the app id."""
        return cls(
            Platform.HUBSPOT,
            hubspot_portal_id=str(portal_id),
            hubspot_app_id=str(app_id),
            hubspot_user_id=None if user_id is None else str(user_id),
        )

    @classmethod
    def quickbooks(cls, realm_id: str) -> OAuthAccount:
        """A QuickBooks Online company (realm id, digits)."""
        return cls(Platform.QUICKBOOKS, quickbooks_realm_id=realm_id)

    def __post_init__(self) -> None:
        # Plain strings are accepted for the platform; the checks below need the enum.
        object.__setattr__(self, "platform", Platform(str(self.platform).upper()))
        required = {
            Platform.STRIPE: (self.stripe_account_id, self.stripe_livemode),
            Platform.HUBSPOT: (self.hubspot_portal_id, self.hubspot_app_id),
            Platform.QUICKBOOKS: (self.quickbooks_realm_id,),
        }[self.platform]
        if any(value is None or value == "" for value in required):
            raise ConfigError(
                f"an OAuth account of {self.platform.value} needs its identity "
                "(Stripe: account id and livemode; HubSpot: portal id and app id; "
                "QuickBooks: realm id)"
            )


@dataclass(frozen=True, slots=True)
class OAuthTokens:
    """A token row's decrypted tokens."""

    id: int
    access_token: Sensitive[str]
    refresh_token: Sensitive[str] | None
    key_version: int


_ACTIVE_VALUES = tuple(
    f.name for f in dataclasses.fields(ActiveConfig) if f.name not in INTEGRATION_SECRETS
)
"""The attributes of :class:`ActiveConfig` that are stored values (the others are secrets)."""


def _plain(value: str | Sensitive[str]) -> Sensitive[str]:
    return value if isinstance(value, Sensitive) else Sensitive(value)


class RuntimeSession:
    """One transaction acting for one tenant (``app.tenant_id``); see :class:`RuntimeClient`."""

    __slots__ = ("_cipher", "_conn", "tenant_id")

    def __init__(self, conn: store.Connection, cipher: FieldCipher | None, tenant_id: str):
        self._conn = conn
        self._cipher = cipher
        self.tenant_id = tenant_id

    def _need_cipher(self, what: str) -> FieldCipher:
        if self._cipher is None:
            raise KeyUnavailable(
                f"{what} needs the keyring and the fingerprint key "
                "($RECONCILER_KEYRING and $RECONCILER_FINGERPRINT_KEY)"
            )
        return self._cipher

    # -- configuration ---------------------------------------------------------------------

    def active_config(
        self, platform: Platform | str, environment: Environment | str
    ) -> list[ActiveConfig]:
        """The active primary configurations of ``platform`` in ``environment``, decrypted.

        Raises:
            KeyUnavailable: a secret is stored under a key version the keyring lacks.
            DecryptFailed: a stored secret does not decrypt, or is not its fingerprint's
                value (replayed or swapped in the database).
        """
        rows = store.active_config(
            self._conn, Platform(str(platform).upper()), Environment(str(environment).upper())
        )
        return [self._decrypted(row) for row in rows]

    def _decrypted(self, row: store.StoredConfig) -> ActiveConfig:
        values = row.values

        def open_(
            column: str, stored: str | None, fingerprint: str | None
        ) -> Sensitive[str] | None:
            if stored is None:
                return None
            cipher = self._need_cipher("decrypting a configuration")
            if values["key_version"] is None:
                raise KeyUnavailable(f"integration_configs row {values['id']} has no key version")
            ctx = CipherContext.integration(
                values["tenant_id"],
                values["platform"],
                values["environment"],
                values["config_type"],
                column,
            )
            return cipher.decrypt(stored, values["key_version"], ctx, fingerprint)

        opened: dict[str, Any] = {
            column: open_(column, stored, fingerprint)
            for column, stored, fingerprint in row.secrets
        }
        return ActiveConfig(**{name: values[name] for name in _ACTIVE_VALUES}, **opened)

    # -- circuit breaker -------------------------------------------------------------------

    def webhook_id(
        self, platform: Platform | str, environment: Environment | str, name: str
    ) -> int | None:
        """The id of this tenant's webhook ``name``, or ``None``."""
        return store.webhook_id(
            self._conn, Platform(str(platform).upper()), Environment(str(environment).upper()), name
        )

    def allow_delivery(self, webhook_id: int) -> bool:
        """May a delivery to this webhook go out now? (``reconciler_webhook_allow``).

        CLOSED: yes. OPEN: no until its reset time has passed, then exactly one caller gets
        a trial (the circuit becomes HALF_OPEN). HALF_OPEN: no while the trial runs.
        """
        return store.webhook_allow(self._conn, webhook_id)

    def record_delivery(
        self, webhook_id: int, *, succeeded: bool, error: str | None = None
    ) -> CircuitBreakerStatus:
        """Record a delivery's outcome (``reconciler_webhook_record``); the new circuit state.

        ``error`` (a short reason, never a secret: it is kept in the audit log when the
        failure opens the circuit) is ignored for a success.
        """
        return store.webhook_record(self._conn, webhook_id, succeeded, error)

    # -- OAuth tokens ----------------------------------------------------------------------

    def store_oauth_token(
        self,
        account: OAuthAccount,
        access_token: str | Sensitive[str],
        refresh_token: str | Sensitive[str] | None = None,
        *,
        token_type: str | None = None,
        scope: str | None = None,
        expires_at: datetime | None = None,
        refresh_token_expires_at: datetime | None = None,
        created_by: str = DEFAULT_APPLICATION,
    ) -> int:
        """Store a new connection's tokens, encrypted under the keyring's active version.

        Returns:
            The new row's id.
        """
        cipher = self._need_cipher("storing an OAuth token")
        version = cipher.active_version
        token_id = store.insert_token(
            self._conn,
            store.NewToken(
                platform=account.platform,
                key_version=version,
                token_type=token_type,
                scope=scope,
                expires_at=expires_at,
                refresh_token_expires_at=refresh_token_expires_at,
                created_by=created_by,
                account={column: getattr(account, column) for column in store.ACCOUNT_COLUMNS},
            ),
        )
        self._write_tokens(cipher, token_id, version, access_token, refresh_token, expires_at)
        return token_id

    def refresh_oauth_token(
        self,
        token_id: int,
        access_token: str | Sensitive[str],
        refresh_token: str | Sensitive[str] | None = None,
        *,
        expires_at: datetime | None = None,
    ) -> None:
        """Replace a token row's tokens (``refresh_token`` None keeps the stored one).

        The row is locked first and the tokens are encrypted under the row's own key version,
        so a concurrent ``keys rotate`` of the row waits (or skips it) instead of interleaving.

        Raises:
            StateError: no such token for this tenant, or it is revoked.
            KeyUnavailable: the row's key version is not in the keyring.
        """
        cipher = self._need_cipher("storing an OAuth token")
        version = store.lock_token(self._conn, token_id)
        self._write_tokens(cipher, token_id, version, access_token, refresh_token, expires_at)

    def read_oauth_token(self, token_id: int) -> OAuthTokens:
        """A token row's tokens, decrypted.

        Raises:
            StateError: no such token for this tenant.
            DecryptFailed: a token is not in the managed form or does not decrypt here.
        """
        cipher = self._need_cipher("reading an OAuth token")
        access, refresh, version = store.read_token(self._conn, token_id)

        def open_(column: str, stored: str) -> Sensitive[str]:
            ctx = CipherContext.oauth_token(self.tenant_id, token_id, column)
            return cipher.decrypt(stored, version, ctx, None)

        return OAuthTokens(
            id=token_id,
            access_token=open_("access_token", access),
            refresh_token=None if refresh is None else open_("refresh_token", refresh),
            key_version=version,
        )

    def _write_tokens(
        self,
        cipher: FieldCipher,
        token_id: int,
        version: int,
        access_token: str | Sensitive[str],
        refresh_token: str | Sensitive[str] | None,
        expires_at: datetime | None,
    ) -> None:
        if version != cipher.active_version:
            # Under the row's version, which FieldCipher.encrypt does not choose: a cipher
            # whose active version is the row's (the keyring cut at that version).
            ring = cipher.keyring
            if version not in ring:
                raise KeyUnavailable(
                    f"oauth_tokens row {token_id} is under key version {version}, which the "
                    "keyring does not hold"
                )
            older = {v: ring.key(v, where="oauth_tokens") for v in ring.versions if v <= version}
            cipher = FieldCipher(Keyring(older), cipher.fingerprinter)

        def seal(column: str, token: str | Sensitive[str]) -> str:
            ctx = CipherContext.oauth_token(self.tenant_id, token_id, column)
            return cipher.encrypt(_plain(token), ctx, None)

        store.write_tokens(
            self._conn,
            token_id,
            seal("access_token", access_token),
            None if refresh_token is None else seal("refresh_token", refresh_token),
            expires_at,
        )


class RuntimeClient(ClosedOnExit):
    """The services' client: a pool on the service's own login, and the keys.

    Args:
        database_url: the service's PostgreSQL URL (its own LOGIN role, a member of
            ``reconciler_app``); ``None`` takes ``$RECONCILER_DATABASE_URL`` as the CLI does.
        keyring: the database keyring; default ``$RECONCILER_KEYRING`` (or
            ``$RECONCILER_KEYRING_FILE``). Without it (and the fingerprint key) the client
            still runs circuit breakers, but decrypts and stores nothing.
        fingerprinter: the fingerprint key; default ``$RECONCILER_FINGERPRINT_KEY``.
        application_name: what the server shows (``pg_stat_activity``, the audit log).
        environ: the environment to read keys from (default ``os.environ``).
    """

    __slots__ = ("_cipher", "_engine")

    def __init__(
        self,
        database_url: str | None = None,
        *,
        keyring: Keyring | None = None,
        fingerprinter: Fingerprinter | None = None,
        application_name: str = DEFAULT_APPLICATION,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        env = os.environ if environ is None else environ
        keyring = keyring if keyring is not None else Keyring.from_environ(env)
        fingerprinter = (
            fingerprinter if fingerprinter is not None else Fingerprinter.from_environ(env)
        )
        self._cipher = (
            FieldCipher(keyring, fingerprinter)
            if keyring is not None and fingerprinter is not None
            else None
        )
        self._engine = store.RuntimeEngine(database_url, application_name)

    def __repr__(self) -> str:
        return f"RuntimeClient(keys={'yes' if self._cipher else 'no'})"

    @contextmanager
    def session(self, tenant_id: str) -> Iterator[RuntimeSession]:
        """One transaction acting for ``tenant_id``: committed at the end of the block, rolled
        back if it raises."""
        if not tenant_id:
            raise ConfigError("a runtime session needs a tenant")
        with self._engine.tenant_transaction(tenant_id) as conn:
            yield RuntimeSession(conn, self._cipher, tenant_id)

    def close(self) -> None:
        """Close the pool's connections."""
        self._engine.close()
