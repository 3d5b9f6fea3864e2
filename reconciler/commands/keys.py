"""``keys``: the keyring that encrypts secrets in the database.

``status`` counts rows per key version, ``rotate`` re-encrypts every stored secret under the
active version, ``adopt-tokens`` brings OAuth tokens written before adoption into the managed
form, ``generate`` makes a new keyring entry (or fingerprint key).
"""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

from reconciler.context import resolve_actor, user_agent
from reconciler.crypto.aead import FieldCipher
from reconciler.crypto.audit_key import load_audit_key
from reconciler.crypto.fingerprint import MIN_KEY_BYTES
from reconciler.crypto.keyring import Keyring
from reconciler.crypto.legacy_tokens import LAYOUTS, LEGACY_KEY_ENV, decoder, load_legacy_key
from reconciler.crypto.local_keys import load_keys_for_target
from reconciler.errors import KeyUnavailable
from reconciler.store import rotate
from reconciler.store.audit import AuditContext
from reconciler.store.database import (
    check_connection,
    create_engine,
    ensure_schema_current,
    resolve_database_url,
    translate_db_errors,
)
from reconciler.store.rotate import (
    SECRET_TABLES,
    AdoptionResult,
    KeyUsage,
    LegacyUsage,
    RefusedToken,
    RotationProgress,
    RotationResult,
)
from reconciler.store.session import Engine, connect

__all__ = [
    "LAYOUTS",
    "LEGACY_KEY_ENV",
    "GeneratedKey",
    "KeyRotation",
    "KeyStatus",
    "KeyUsage",
    "LegacyUsage",
    "RefusedToken",
    "RotationProgress",
    "TokenAdoption",
    "adopt_tokens",
    "generate_key",
    "key_status",
    "rotate_keys",
]


@dataclass(frozen=True, slots=True)
class KeyStatus:
    """Rows per key version per table, and the keyring this process would use.

    Attributes:
        database: the database, described with its password masked.
        tables: every table that stores encrypted values, in rotation order.
        usage: rows per table and key version (legacy token rows not counted).
        legacy: legacy (not ``rcn1``) token values per table and column.
        versions: the keyring's versions (empty when no keyring is available).
        active_version: the version that encrypts (None: no keyring).
        problem: why no keyring is available ("" when one is).
    """

    database: str
    tables: tuple[str, ...]
    usage: tuple[KeyUsage, ...]
    legacy: tuple[LegacyUsage, ...]
    versions: tuple[int, ...]
    active_version: int | None
    problem: str = ""

    @property
    def stale_rows(self) -> int:
        """Rows not under the active key (0 without a keyring)."""
        if self.active_version is None:
            return 0
        return sum(u.rows for u in self.usage if u.version != self.active_version)

    @property
    def legacy_values(self) -> int:
        """Legacy token values not in the managed form."""
        return sum(u.rows for u in self.legacy)


@dataclass(frozen=True, slots=True)
class KeyRotation:
    """What :func:`rotate_keys` did.

    Attributes:
        active_version: the version everything was re-encrypted to.
        rotated: rows re-encrypted, per table.
        batches: committed transactions.
        remaining: rows skipped because another transaction held them (run it again).
        legacy: OAuth token rows holding legacy values, left as they are.
    """

    active_version: int
    rotated: Mapping[str, int]
    batches: int
    remaining: int
    legacy: int

    @property
    def total(self) -> int:
        """Rows re-encrypted in all tables."""
        return sum(self.rotated.values())

    @classmethod
    def of(cls, result: RotationResult) -> KeyRotation:
        """The frozen form of the store's running tally."""
        return cls(
            result.active_version,
            dict(result.rotated),
            result.batches,
            result.remaining,
            result.legacy,
        )


@dataclass(frozen=True, slots=True)
class TokenAdoption:
    """What :func:`adopt_tokens` did (or, for a dry run, would do): the frozen form of
    :class:`~reconciler.store.token_adoption.AdoptionResult`, whose fields it has (and
    whose docstring describes them)."""

    layout: str
    active_version: int
    adopted: int
    batches: int
    refused: tuple[RefusedToken, ...]
    remaining: int
    dry_run: bool

    @classmethod
    def of(cls, result: AdoptionResult) -> TokenAdoption:
        """The frozen form of the store's running tally."""
        return cls(
            result.layout,
            result.active_version,
            result.adopted,
            result.batches,
            tuple(result.refused),
            result.remaining,
            result.dry_run,
        )


@dataclass(frozen=True, slots=True)
class GeneratedKey:
    """A new random key (a secret: store it like one).

    Attributes:
        value: ``VERSION:BASE64`` for a keyring entry, else the base64 fingerprint key.
        version: the keyring entry's version (None for a fingerprint key).
    """

    value: str
    version: int | None

    def __repr__(self) -> str:
        return f"GeneratedKey(version={self.version!r})"


def key_status(*, database_url: str | None = None) -> KeyStatus:
    """Rows per key version per table, and which keyring version is active.

    A missing keyring is not an error here: the status says why it is not available.
    """
    target = resolve_database_url(database_url)
    with connect(database_url, "keys status", target) as conn:
        usage = rotate.key_usage(conn)
        legacy = rotate.legacy_usage(conn)
    try:
        keyring: Keyring | None = load_keys_for_target(target)[0]
        problem = ""
    except KeyUnavailable as exc:
        keyring, problem = None, str(exc)
    return KeyStatus(
        database=target.describe(),
        tables=tuple(t.name for t in SECRET_TABLES),
        usage=tuple(usage),
        legacy=tuple(legacy),
        versions=tuple(keyring.versions) if keyring is not None else (),
        active_version=keyring.active_version if keyring is not None else None,
        problem=problem,
    )


def rotate_keys(
    *,
    batch_size: int = 500,
    actor: str | None = None,
    database_url: str | None = None,
    progress: RotationProgress | None = None,
) -> KeyRotation:
    """Re-encrypt every stored secret under the active (highest) key version.

    Each batch is one transaction that skips rows other transactions hold; run it again to
    pick those up. One ROTATE audit row per row.

    Raises:
        KeyUnavailable: no keyring, or rows under a version the rotation cannot handle
            (nothing is written then).
        DecryptFailed: a stored value does not decrypt; its batch is rolled back.
    """
    with _reencrypting(database_url, actor, "keys rotate") as (engine, cipher, context):
        with engine.connect() as conn:
            rotate.check_rotatable(rotate.key_usage(conn), cipher)
        result = rotate.rotate_keys(
            engine, cipher, context, batch_size=batch_size, progress=progress
        )
    return KeyRotation.of(result)


def adopt_tokens(
    *,
    layout: str,
    legacy_key_env: str = LEGACY_KEY_ENV,
    dry_run: bool = False,
    batch_size: int = 500,
    actor: str | None = None,
    database_url: str | None = None,
    progress: RotationProgress | None = None,
    environ: Mapping[str, str] | None = None,
) -> TokenAdoption:
    """Store OAuth tokens written before adoption in the managed (``rcn1``) form.

    Args:
        layout: how the application stored its tokens (a key of :data:`LAYOUTS`).
        legacy_key_env: the environment variable holding the application's token key, for
            the encrypted layouts (the key itself is never an argument).
        dry_run: read and re-encrypt everything, then roll back.
        batch_size: rows per transaction.
        actor: who adopts (audit); default from the environment.
        database_url: as for every command.
        progress: told the total, then each batch.
        environ: the environment (default ``os.environ``).

    Raises:
        ConfigError: an unknown layout; KeyUnavailable: a key is missing.
    """
    env = os.environ if environ is None else environ
    chosen = LAYOUTS[layout]
    key = load_legacy_key(env, legacy_key_env) if chosen.needs_key else None
    decode = decoder(layout, key)
    with _reencrypting(database_url, actor, "keys adopt-tokens") as (engine, cipher, context):
        result = rotate.adopt_tokens(
            engine,
            cipher,
            context,
            layout=layout,
            decode=decode,
            batch_size=batch_size,
            dry_run=dry_run,
            progress=progress,
        )
    return TokenAdoption.of(result)


def generate_key(
    *,
    version: int | None = None,
    fingerprint_key: bool = False,
    environ: Mapping[str, str] | None = None,
) -> GeneratedKey:
    """A new random keyring entry ``VERSION:BASE64``, or a fingerprint key.

    ``version`` defaults to one above the configured keyring's newest, else 1.
    """
    if fingerprint_key:
        return GeneratedKey(base64.b64encode(os.urandom(MIN_KEY_BYTES)).decode("ascii"), None)
    if version is None:
        current = Keyring.from_environ(os.environ if environ is None else environ)
        version = current.active_version + 1 if current is not None else 1
    return GeneratedKey(Keyring.generate_entry(version), version)


@contextmanager
def _reencrypting(
    database_url: str | None, actor: str | None, purpose: str
) -> Iterator[tuple[Engine, FieldCipher, AuditContext]]:
    """Keys, audit context and an engine for a command that re-encrypts stored secrets.

    The engine is checked (connection, schema revision) first and always disposed; driver
    errors inside the block become one-line errors.
    """
    target = resolve_database_url(database_url)
    cipher = FieldCipher(*load_keys_for_target(target))
    context = AuditContext(
        performed_by=resolve_actor(actor, os.environ),
        ip_address=None,
        user_agent=user_agent(os.environ),
        session_id=str(uuid.uuid4()),
        key=load_audit_key(target, create=True),
    )
    engine = create_engine(target, application_name=f"reconciler {purpose}")
    try:
        check_connection(engine)
        ensure_schema_current(engine, target)
        with translate_db_errors(engine.url):
            yield engine, cipher, context
    finally:
        engine.dispose()
