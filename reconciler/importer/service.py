"""``reconciler import`` as a Python function: read, decrypt, build, encrypt, write.

Order of work, chosen so that a failure leaves nothing half-written:

1. check the arguments and the output paths (existing files are refused without ``force``);
2. read the rows in one read-only snapshot (one query per table);
3. decrypt the secrets with the keyring, in memory only, each checked against its stored
   fingerprint (a replayed or swapped ciphertext is refused, see ``crypto.aead``);
4. build every document and encrypt it with the ``.sops.yaml`` creation rule that matches
   its output path, checking that every secret field came out encrypted;
5. only then write the files (each atomically).

Plaintext secrets exist only in memory: in :class:`~reconciler.model.sensitive.Sensitive`
wrappers until the moment they are handed to the SOPS encryption.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

from reconciler.crypto.aead import CipherContext, FieldCipher
from reconciler.crypto.local_keys import load_keys_for_target
from reconciler.errors import ConfigError, DecryptFailed
from reconciler.files import atomic_write
from reconciler.load.manifest_model import NAME_PATTERN
from reconciler.model.enums import Platform
from reconciler.model.fields import INTEGRATION_SECRETS, WEBHOOK_SECRETS
from reconciler.model.sensitive import Sensitive
from reconciler.progress import QUIET, Progress
from reconciler.sops import dump, encrypt_documents, find_config, load_creation_rule
from reconciler.store.database import translate_db_errors
from reconciler.store.import_rows import (
    StoredIntegration,
    StoredRows,
    StoredWebhook,
    begin_snapshot,
    read_rows,
)
from reconciler.store.session import open_database

from .documents import ImportNote, ManifestDraft, build_manifests, manifest_path

SCHEMA_FILE = Path("schemas") / "manifest.v1.json"
DEFAULT_SCHEMA_REF = "../../../schemas/manifest.v1.json"
"""The schema reference of a file in ``manifests/tenants/<t>/`` when no schema is found."""

_NAME = re.compile(NAME_PATTERN)
_TITLES = {
    Platform.STRIPE: "Stripe",
    Platform.HUBSPOT: "HubSpot",
    Platform.QUICKBOOKS: "QuickBooks",
}
_SecretKey = tuple[str, str, int, str]
_SECRET_KEYS = (*INTEGRATION_SECRETS, *WEBHOOK_SECRETS)
"""The manifest keys of the secret fields (what ``encrypted_regex`` must match)."""


@dataclass(frozen=True, slots=True)
class WrittenManifest:
    """One file ``import`` wrote.

    Attributes:
        path: where it was written (as given: relative when ``out_dir`` was relative).
        tenant: its tenant.
        platform: its platform.
        secrets: how many secret fields it holds (all SOPS-encrypted).
        replaced: whether it replaced an existing file (``force``).
    """

    path: Path
    tenant: str
    platform: Platform
    secrets: int
    replaced: bool


@dataclass(frozen=True, slots=True)
class ImportResult:
    """What ``import`` wrote, and what the user must check or fill in."""

    written: tuple[WrittenManifest, ...]
    notes: tuple[ImportNote, ...]


class ImportOptions(TypedDict, total=False):
    """The optional keyword arguments of :func:`import_manifests` (see there), for callers
    that pass them on: ``platforms``, ``force``, ``database_url``, ``progress``, ``environ``."""

    platforms: Sequence[Platform]
    force: bool
    database_url: str | None
    progress: Progress
    environ: Mapping[str, str] | None


def import_manifests(
    *,
    tenants: Sequence[str],
    out_dir: Path,
    platforms: Sequence[Platform] = (),
    force: bool = False,
    database_url: str | None = None,
    progress: Progress = QUIET,
    environ: Mapping[str, str] | None = None,
) -> ImportResult:
    """Write ``out_dir/tenants/<tenant>/<platform>.yaml`` from the database, SOPS-encrypted.

    Args:
        tenants: the tenants to import (at least one; each must have rows).
        out_dir: the manifests directory to write into (holds ``tenants/``).
        platforms: only these platforms (default: every platform the tenant has rows for).
        force: replace existing files instead of refusing.
        database_url: as for every command (else the environment, else embedded).
        progress: progress lines on stderr.
        environ: the environment for the keyring (default ``os.environ``).

    Raises:
        ConfigError: bad tenant name, a tenant without rows, an existing file without
            ``force``, no ``.sops.yaml`` creation rule for an output path, or a rule that
            would leave a secret field unencrypted. Nothing is written.
        KeyUnavailable / DecryptFailed: a stored secret cannot be decrypted, or is not the
            value its stored fingerprint describes. Nothing is written.
        DatabaseUnavailable: the database cannot be reached.
    """
    wanted = tuple(dict.fromkeys(tenants))
    if not wanted:
        raise ConfigError("name at least one tenant: --tenant T")
    bad = [t for t in wanted if not _NAME.match(t)]
    if bad:
        raise ConfigError(f"invalid tenant name {bad[0]!r}: expected {NAME_PATTERN}")

    with (
        open_database(database_url, progress) as db,
        progress.stage("Reading database") as stage,
        translate_db_errors(db.engine.url),
        db.engine.connect() as conn,
        conn.begin(),
    ):
        begin_snapshot(conn)
        rows = read_rows(conn, wanted, tuple(platforms))
        count = len(rows.integrations) + len(rows.webhooks) + len(rows.accounts)
        stage["detail"] = f"{count} rows"
    missing = [t for t in wanted if t not in rows.tenants()]
    if missing:
        only = f" for {', '.join(p.file_stem for p in platforms)}" if platforms else ""
        raise ConfigError(
            f"nothing to import for tenant(s) {', '.join(missing)}{only}: no active "
            "integrations, webhooks or connected accounts in the database"
        )

    # Refuse before any secret is decrypted.
    existing = sorted(
        path for path in {out_dir / manifest_path(t, p) for t, p in rows.files()} if path.exists()
    )
    if existing and not force:
        raise ConfigError(
            f"{existing[0]} already exists"
            + (f" (and {len(existing) - 1} more)" if len(existing) > 1 else "")
            + ": nothing written; pass --force to replace"
        )

    plaintext: dict[_SecretKey, Sensitive[str]] = {}
    if _has_secrets(rows):
        keyring, fingerprinter = load_keys_for_target(db.target, environ)
        with progress.stage("Decrypting secrets") as stage:
            plaintext = _decrypt(rows, FieldCipher(keyring, fingerprinter))
            stage["detail"] = f"{len(plaintext)} values"

    drafts = build_manifests(rows, lambda *key: plaintext.get(key))
    notes = [n for d in drafts for n in d.notes]

    targets = [(d, out_dir / d.relative_path) for d in drafts]

    with progress.stage("Encrypting manifests", len(targets), unit="file") as stage:
        texts = []
        for draft, path in targets:
            texts.append((draft, path, _encrypt(draft, path)))
            stage.advance()
        stage["detail"] = f"{len(texts)} files"
    written: list[WrittenManifest] = []
    for draft, path, text in texts:
        replaced = path.exists()
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, text)
        written.append(
            WrittenManifest(path, draft.tenant, draft.platform, len(draft.secret_paths), replaced)
        )
    return ImportResult(tuple(written), tuple(notes))


def _has_secrets(rows: StoredRows) -> bool:
    return any(i.secrets for i in rows.integrations) or any(w.secrets for w in rows.webhooks)


def _decrypt(rows: StoredRows, cipher: FieldCipher) -> dict[_SecretKey, Sensitive[str]]:
    """Decrypt every stored secret, each only as the value its stored fingerprint describes.

    A value that is not (a ciphertext copied back from an earlier credential, or swapped in
    from another row or column) is refused with :class:`DecryptFailed` before anything is
    written: importing it would put a stale credential into git as the desired state.
    """
    out: dict[_SecretKey, Sensitive[str]] = {}
    items: list[tuple[str, StoredIntegration | StoredWebhook]] = [
        (i.config_type.value, i) for i in rows.integrations
    ]
    items += [(w.name, w) for w in rows.webhooks]
    for name, row in items:
        platform, environment = row.platform.value, row.environment.value
        for secret in row.secrets:
            if isinstance(row, StoredIntegration):
                ctx = CipherContext.integration(
                    row.tenant_id, platform, environment, name, secret.column
                )
            else:
                ctx = CipherContext.webhook(
                    row.tenant_id, platform, environment, name, secret.column
                )
            if row.encryption_key_version is None:
                raise DecryptFailed(
                    f"{ctx.describe()} has a ciphertext but no encryption_key_version"
                )
            value = cipher.decrypt(
                secret.ciphertext, row.encryption_key_version, ctx, secret.fingerprint
            )
            out[(ctx.table, row.tenant_id, row.id, secret.column)] = value
    return out


def _reveal(value: Any) -> Any:
    """A copy of ``value`` with every :class:`Sensitive` replaced by its plaintext."""
    if isinstance(value, Sensitive):
        return value.reveal()
    if isinstance(value, Mapping):
        return {k: _reveal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_reveal(v) for v in value]
    return value


def _encrypt(draft: ManifestDraft, path: Path) -> str:
    """The encrypted file text, with the editor schema header."""
    config = find_config(path.parent)
    if config is None:
        raise ConfigError(
            f"no .sops.yaml in {path.parent} or above: add one with a creation rule for "
            "the manifests (age recipients; encrypted_regex for the secret fields)"
        )
    rule = load_creation_rule(path, config)
    source = str(path)
    encrypted = encrypt_documents(
        [_reveal(draft.document)], rule.recipients, rule.rules, source=source
    )[0]
    for key_path in draft.secret_paths:
        node: Any = encrypted
        for key in key_path:
            node = node[key]
        if not (isinstance(node, str) and node.startswith("ENC[")):
            raise ConfigError(
                f"{config}: creation_rules[{rule.index}] would leave {'.'.join(key_path)} "
                f"of {source} unencrypted: its rule must encrypt the secret fields "
                f"(encrypted_regex: ^({'|'.join(_SECRET_KEYS)})$)"
            )
    header = (
        f"# yaml-language-server: $schema={_schema_ref(path)}\n"
        f"# {draft.tenant}: {_TITLES[draft.platform]}. Imported from the database by "
        "`reconciler import`.\n"
    )
    return header + dump([encrypted], "yaml", source=source)


def _schema_ref(path: Path) -> str:
    """Relative reference from ``path`` to the nearest ``schemas/manifest.v1.json`` above it."""
    directory = path.parent.absolute()
    for candidate in (directory, *directory.parents):
        schema = candidate / SCHEMA_FILE
        if schema.is_file():
            return Path(os.path.relpath(schema, directory)).as_posix()
    return DEFAULT_SCHEMA_REF
