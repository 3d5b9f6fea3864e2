"""Decrypting and encrypting whole SOPS files: the functions behind the public API and CLI.

Three ways to write a file:

* **new**: a plaintext file is encrypted with a fresh data key to the recipients given or
  those of the matching ``.sops.yaml`` creation rule;
* **reseal**: a file that already has a ``sops`` block is encrypted again with its own data
  key, recipients and rule. Encrypted values must still authenticate at their key path;
  plaintext values found where the rule wants encryption (e.g. a secret just added by hand)
  are encrypted; everything unchanged keeps its ciphertext, and a file with nothing new is
  left byte-for-byte as it was. This is what ``encrypt`` does with an encrypted file;
* **edit**: :class:`EditSession` decrypts (MAC verified) to text and seals the edited text
  with the same data key, again keeping the ciphertext of unchanged values.

Changing a file's keys (``update_keys``, ``rotate_file``) is in ``sops/rekey.py``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from reconciler.errors import ConfigError, DecryptFailed, KeyUnavailable
from reconciler.files import read_text
from reconciler.sops import shamir
from reconciler.sops.age import (
    Identities,
    default_key_file,
    load_identities,
    split_recipients,
    unwrap_entries,
    wrap_key,
)
from reconciler.sops.codec import CodecError, ValueCipher, format_rfc3339
from reconciler.sops.creation_rules import (
    CreationRule,
    find_config,
    load_creation_rule,
)
from reconciler.sops.encryption_rules import EncryptionRules
from reconciler.sops.files import FileFormat, detect_format, dump, parse_text
from reconciler.sops.mac import MacHasher
from reconciler.sops.metadata import Metadata, is_metadata, new_block
from reconciler.sops.roundtrip import (
    plaintext_view,
    sealed_text,
)
from reconciler.sops.tree import Location, decrypt_tree, encrypt_tree

DATA_KEY_SIZE = 32


def is_encrypted(document: object) -> bool:
    """True for a top-level mapping whose ``sops`` key holds ``mac`` and ``version``."""
    return isinstance(document, Mapping) and is_metadata(document.get("sops"))


def split_metadata(documents: Sequence[Any], *, source: str) -> tuple[list[Any], Metadata]:
    """Separate the documents from the ``sops`` block of the first one (as sops reads).

    Raises:
        DecryptFailed: the file is not a SOPS file, a document is not a mapping, or the
            metadata is malformed or uses an unsupported rule.
    """
    if not documents or not isinstance(documents[0], Mapping) or "sops" not in documents[0]:
        raise DecryptFailed(f"{source}: not a SOPS-encrypted file (no sops metadata)")
    if not is_encrypted(documents[0]):
        # sops refuses this too ("MAC mismatch. File has no MAC"): without a MAC nothing
        # says the ENC values belong together, or to this file.
        raise DecryptFailed(
            f"{source}: the sops metadata has no MAC (sops.mac or sops.version is empty or "
            "missing): nothing authenticates the values; encrypt the file again with sops"
        )
    metadata = Metadata.parse(documents[0]["sops"], source=source)
    plain: list[Any] = []
    for number, document in enumerate(documents, start=1):
        if not isinstance(document, Mapping):
            raise DecryptFailed(f"{source}: document {number} is not a mapping")
        plain.append({k: v for k, v in document.items() if k != "sops"})
    return plain, metadata


def unwrap_data_key(metadata: Metadata, identities: Identities, *, source: str) -> bytes:
    """Recover the file's data key with the first identities that open it.

    Raises:
        KeyUnavailable: no identity opens an age entry (or not enough Shamir groups).
        DecryptFailed: what an identity opened is not a data key or share.
    """
    groups = metadata.key_groups
    if len(groups) == 1:
        key = unwrap_entries(groups[0], identities)
        if key is None:
            raise _no_key(metadata, identities, source)
        if len(key) != DATA_KEY_SIZE:
            raise DecryptFailed(f"{source}: the age entry does not hold a 32-byte data key")
        return key
    threshold = metadata.shamir_threshold or len(groups)
    shares: list[bytes] = []
    for group in groups:
        share = unwrap_entries(group, identities)
        if share is not None:
            shares.append(share)
            if len(shares) == threshold:
                break
    if len(shares) < threshold:
        raise _no_key(metadata, identities, source, shares=(len(shares), threshold))
    if any(len(share) != DATA_KEY_SIZE + 1 for share in shares):
        raise DecryptFailed(f"{source}: a key group does not hold a 33-byte Shamir share")
    try:
        return shamir.combine(shares)
    except ValueError as exc:
        raise DecryptFailed(f"{source}: cannot combine the key groups' shares: {exc}") from None


def _no_key(
    metadata: Metadata, identities: Identities, source: str, shares: tuple[int, int] | None = None
) -> KeyUnavailable:
    recipients = ", ".join(r for r in metadata.recipients if r) or "none"
    if not identities:
        default = default_key_file(os.environ) or "~/.config/sops/age/keys.txt"
        return KeyUnavailable(
            f"{source}: no age identity found (set SOPS_AGE_KEY_FILE or SOPS_AGE_KEY, or create "
            f"{default}); the file is encrypted to: {recipients}"
        )
    why = f"only {shares[0]} of {shares[1]} key groups could be opened; " if shares else ""
    pq = "; post-quantum (age1pq1) recipients are not supported" if "age1pq1" in recipients else ""
    return KeyUnavailable(
        f"{source}: {why}no age identity matches the file's recipients ({recipients}){pq}; "
        f"identities from: {identities.describe()}"
    )


def verify_mac(metadata: Metadata, cipher: ValueCipher, hasher: MacHasher, source: str) -> None:
    """Refuse (DecryptFailed) a file whose MAC does not match the values ``hasher`` saw."""
    try:
        stored, _ = cipher.decrypt(metadata.mac, metadata.mac_aad)
    except CodecError:
        raise DecryptFailed(
            f"{source}: cannot decrypt the MAC (lastmodified or the MAC was changed)"
        ) from None
    if not isinstance(stored, str) or not hasher.matches(stored):
        raise DecryptFailed(
            f"{source}: MAC mismatch: values, their order or structure changed after the file "
            "was encrypted"
        )


def open_documents(
    documents: Sequence[Any], identities: Identities, *, source: str, stash: bool
) -> tuple[list[Any], Metadata, ValueCipher]:
    """Decrypt and MAC-verify ``documents``: the plaintext, the metadata and the cipher."""
    encrypted, metadata = split_metadata(documents, source=source)
    cipher = ValueCipher(unwrap_data_key(metadata, identities, source=source), stash=stash)
    hasher = MacHasher(only_encrypted=metadata.rules.mac_only_encrypted)
    plain = decrypt_tree(encrypted, cipher, metadata.rules, hasher, source=source)
    verify_mac(metadata, cipher, hasher, source)
    return plain, metadata, cipher


def decrypt_documents(documents: list[Any], identities: Identities, *, source: str) -> list[Any]:
    """Decrypt one file's documents and verify its MAC.

    Args:
        documents: the file as parsed (``yaml_source.parse_documents``, or ``[json.loads()]``).
        identities: from :func:`load_identities`.
        source: the file name used in error messages.

    Returns:
        The documents without the ``sops`` key, every encrypted value replaced by its typed
        plaintext (``str``, ``int``, ``float``, ``bool``, aware ``datetime``; ``bytes`` for
        the legacy ``bytes`` type). Encrypted list comments are dropped.

    Raises:
        KeyUnavailable: no identity matches any recipient (names the file and recipients).
        DecryptFailed: no MAC, MAC mismatch, malformed metadata or unsupported rule; its
            subclass :class:`~reconciler.sops.tree.ValueRejected` for a tampered or malformed
            value or plaintext in an encrypted position (names the file and the key path).
    """
    plain, _, _ = open_documents(documents, identities, source=source, stash=False)
    return plain


def utc_now() -> datetime:
    """Now, to the second: the ``lastmodified`` of a file written now."""
    return datetime.now(UTC).replace(microsecond=0)


def _check_plain_documents(documents: Sequence[Any], *, source: str) -> None:
    if not documents:
        raise ConfigError(f"{source}: the file has no document to encrypt")
    for number, document in enumerate(documents, start=1):
        if not isinstance(document, dict):
            raise ConfigError(f"{source}: document {number} is not a mapping; sops needs one")
        if "sops" in document:
            raise ConfigError(f"{source}: the top-level key 'sops' is reserved for metadata")


def seal_documents(
    documents: list[Any],
    cipher: ValueCipher,
    rules: EncryptionRules,
    block: Any,
    *,
    source: str,
    now: datetime,
) -> list[Any]:
    """Encrypt values, compute and encrypt the MAC, and append the block to every document.

    ``block(mac)`` builds the ``sops`` block for the encrypted MAC.
    """
    hasher = MacHasher(only_encrypted=rules.mac_only_encrypted)
    encrypted = encrypt_tree(documents, cipher, rules, hasher, source=source)
    mac = cipher.encrypt(hasher.hexdigest(), format_rfc3339(now))
    metadata = block(mac)
    return [{**document, "sops": metadata} for document in encrypted]


def encrypt_documents(
    documents: list[Any],
    recipients: Sequence[str],
    rules: EncryptionRules | None = None,
    *,
    source: str,
    now: datetime | None = None,
) -> list[Any]:
    """Encrypt plaintext documents with a new data key (one key group).

    Raises:
        ConfigError: no recipients, an unsupported recipient, or content sops cannot hold.
    """
    _check_plain_documents(documents, source=source)
    if not recipients:
        raise ConfigError(f"{source}: no age recipients to encrypt to")
    rules = rules or EncryptionRules()
    data_key = os.urandom(DATA_KEY_SIZE)
    entries = [{"recipient": r, "enc": wrap_key(data_key, r)} for r in recipients]
    when = now or utc_now()
    return seal_documents(
        documents,
        ValueCipher(data_key),
        rules,
        lambda mac: new_block(entries, rules, lastmodified=when, mac=mac),
        source=source,
        now=when,
    )


@dataclass(frozen=True, slots=True)
class Resealed:
    """The result of re-encrypting an encrypted file.

    Attributes:
        documents: the encrypted documents to write.
        changed: False when the file already was exactly this (nothing to write).
        newly_encrypted: paths of plaintext values that were encrypted now.
    """

    documents: list[Any]
    changed: bool
    newly_encrypted: tuple[Location, ...]


def reseal_documents(
    documents: list[Any], identities: Identities, *, source: str, now: datetime | None = None
) -> Resealed:
    """Encrypt an encrypted file again with its own key, keeping unchanged ciphertext.

    Raises:
        KeyUnavailable: no identity opens the file.
        DecryptFailed: an encrypted value does not authenticate at its path.
    """
    encrypted, metadata = split_metadata(documents, source=source)
    cipher = ValueCipher(unwrap_data_key(metadata, identities, source=source), stash=True)
    hasher = MacHasher(only_encrypted=metadata.rules.mac_only_encrypted)
    found: list[Location] = []
    plain = decrypt_tree(
        encrypted, cipher, metadata.rules, hasher, source=source, reseal=True, plaintext=found
    )
    if not found:
        try:
            verify_mac(metadata, cipher, hasher, source)
            return Resealed(list(documents), False, ())
        except DecryptFailed:
            pass  # edited by hand (a value moved or changed in clear): seal it again
    return Resealed(_reseal(plain, cipher, metadata, source=source, now=now), True, tuple(found))


def _reseal(
    plain: list[Any],
    cipher: ValueCipher,
    metadata: Metadata,
    *,
    source: str,
    now: datetime | None,
) -> list[Any]:
    when = now or utc_now()
    return seal_documents(
        plain,
        cipher,
        metadata.rules,
        lambda mac: metadata.to_block(lastmodified=when, mac=mac),
        source=source,
        now=when,
    )


def read_file(path: str | os.PathLike[str], fmt: str | None = None) -> tuple[list[Any], FileFormat]:
    """Read and parse a file; return its documents and format.

    Raises:
        ConfigError: the file cannot be read or parsed.
    """
    documents, file_format, _ = read_source(path, fmt)
    return documents, file_format


def read_source(
    path: str | os.PathLike[str], fmt: str | None = None
) -> tuple[list[Any], FileFormat, str]:
    """Read and parse a file; return its documents, format and text.

    Raises:
        ConfigError: the file cannot be read, is not UTF-8, or cannot be parsed.
    """
    file_format = detect_format(path, fmt)
    text = read_text(path)
    return parse_text(text, file_format, source=str(path)), file_format, text


def _creation_rule(path: Path, search_from: str | os.PathLike[str] | None) -> CreationRule | None:
    config = find_config(search_from if search_from is not None else path.parent)
    return None if config is None else load_creation_rule(path, config)


def encrypt_file(
    path: str | os.PathLike[str],
    *,
    config_search_from: str | os.PathLike[str] | None = None,
    recipients: str | Sequence[str] | None = None,
    rules: EncryptionRules | None = None,
    identities: Identities | None = None,
    input_format: str | None = None,
    output_format: str | None = None,
    now: datetime | None = None,
) -> str:
    """Encrypt a file and return the encrypted text (the caller writes it).

    A plaintext file gets a new data key. Recipients: ``recipients`` if given, else the
    matching creation rule of the nearest ``.sops.yaml`` (searched upward from
    ``config_search_from``, default the file's directory). Selection rule: ``rules``, else
    the creation rule's, else ``unencrypted_suffix: _unencrypted``.

    A file that is already encrypted is resealed (see the module docstring); its recipients
    and rule stay as they are, so ``recipients`` and ``rules`` must not be given.

    Raises:
        ConfigError: no recipients, bad configuration, or content sops cannot hold.
        KeyUnavailable / DecryptFailed: when resealing an encrypted file.
    """
    file_path = Path(path)
    source = str(path)
    documents, fmt, original = read_source(file_path, input_format)
    out_fmt = detect_format(file_path, output_format or fmt)
    same_yaml = fmt == "yaml" and out_fmt == "yaml"
    if out_fmt == "dotenv":
        raise ConfigError(f"{source}: dotenv files can be decrypted but not encrypted here")
    if documents and is_encrypted(documents[0]):
        if recipients or rules:
            raise ConfigError(
                f"{source}: already encrypted; its recipients and rule are kept "
                "(use 'secrets updatekeys' to change recipients)"
            )
        resealed = reseal_documents(
            documents, identities if identities is not None else load_identities(), source=source
        )
        if not resealed.changed and out_fmt == fmt:
            return original
        kept = sealed_text(original, resealed.documents) if same_yaml else None
        return kept if kept is not None else dump(resealed.documents, out_fmt, source=source)
    rule: CreationRule | None = None
    if recipients:
        chosen = split_recipients(recipients, source="--age")
        if rules is None:
            try:
                rule = _creation_rule(file_path, config_search_from)
            except ConfigError:
                rule = None  # explicit recipients do not need a matching rule
    else:
        rule = _creation_rule(file_path, config_search_from)
        if rule is None:
            raise ConfigError(
                f"{source}: no recipients: pass --age or add a creation rule to .sops.yaml"
            )
        chosen = rule.recipients
    effective = rules or (rule.rules if rule is not None else EncryptionRules())
    encrypted = encrypt_documents(documents, chosen, effective, source=source, now=now)
    kept = sealed_text(original, encrypted) if same_yaml else None
    return kept if kept is not None else dump(encrypted, out_fmt, source=source)


@dataclass(frozen=True, slots=True)
class DecryptedFile:
    """A decrypted file: its plaintext documents, format and metadata."""

    documents: list[Any]
    format: FileFormat
    metadata: Metadata


def decrypt_file(
    path: str | os.PathLike[str],
    identities: Identities | None = None,
    *,
    input_format: str | None = None,
) -> DecryptedFile:
    """Read, decrypt and MAC-verify a file (identities discovered when not given)."""
    documents, fmt = read_file(path, input_format)
    ids = identities if identities is not None else load_identities()
    plain, metadata, _ = open_documents(documents, ids, source=str(path), stash=False)
    return DecryptedFile(plain, fmt, metadata)


@dataclass(slots=True)
class EditSession:
    """A decrypted file being edited; :meth:`seal` encrypts the edited text.

    The cipher remembers every value it decrypted, so values the edit leaves alone keep
    their ciphertext.
    """

    path: Path
    format: FileFormat
    metadata: Metadata
    plaintext: str
    _cipher: ValueCipher = dataclasses.field(repr=False)

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        identities: Identities | None = None,
        *,
        input_format: str | None = None,
    ) -> EditSession:
        """Decrypt a file for editing (MAC verified)."""
        documents, fmt, original = read_source(path, input_format)
        if fmt == "dotenv":
            raise ConfigError(f"{path}: dotenv files cannot be edited here")
        ids = identities if identities is not None else load_identities()
        plain, metadata, cipher = open_documents(documents, ids, source=str(path), stash=True)
        view = None
        if fmt == "yaml":
            encrypted, _ = split_metadata(documents, source=str(path))
            view = plaintext_view(original, encrypted, plain)
        text = view if view is not None else dump(plain, fmt, source=str(path))
        return cls(Path(path), fmt, metadata, text, cipher)

    def parse(self, text: str) -> list[Any]:
        """Parse and check edited text.

        Raises:
            ConfigError: invalid syntax, a non-mapping document, or a ``sops`` key.
        """
        documents = parse_text(text, self.format, source=str(self.path))
        _check_plain_documents(documents, source=str(self.path))
        return documents

    def seal(self, text: str, *, now: datetime | None = None) -> str:
        """Encrypt edited text with the file's key, recipients and rule; return file text."""
        documents = self.parse(text)
        sealed = _reseal(documents, self._cipher, self.metadata, source=str(self.path), now=now)
        kept = sealed_text(text, sealed) if self.format == "yaml" else None
        return kept if kept is not None else dump(sealed, self.format, source=str(self.path))
