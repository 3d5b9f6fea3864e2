"""Changing a SOPS file's keys: re-wrap its data key to new recipients, or rotate the data key.

``update_keys`` re-wraps the data key to the recipients of the file's creation rule and
touches nothing else (values, ``lastmodified`` and the MAC stay as they are); ``rotate_file``
encrypts every value again under a new data key, like ``sops rotate``.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from reconciler.errors import ConfigError
from reconciler.sops.age import Identities, load_identities, wrap_key
from reconciler.sops.codec import ValueCipher
from reconciler.sops.creation_rules import CreationRule, RuleCache
from reconciler.sops.files import dump
from reconciler.sops.mac import MacHasher
from reconciler.sops.operations import (
    DATA_KEY_SIZE,
    open_documents,
    read_source,
    seal_documents,
    split_metadata,
    unwrap_data_key,
    utc_now,
    verify_mac,
)
from reconciler.sops.roundtrip import block_is_last, rekeyed_text, swapped_text
from reconciler.sops.tree import decrypt_tree


@dataclass(frozen=True, slots=True)
class KeyUpdate:
    """What ``update_keys`` would change.

    Attributes:
        rule: the creation rule the recipients come from.
        added: recipients that will be able to decrypt.
        removed: recipients that will no longer be able to decrypt.
        text: the new file text, or ``None`` when the file is already up to date.
    """

    rule: CreationRule
    added: tuple[str, ...]
    removed: tuple[str, ...]
    text: str | None


def update_keys(
    path: str | os.PathLike[str],
    identities: Identities | None = None,
    *,
    config: str | os.PathLike[str] | None = None,
    input_format: str | None = None,
    rules: RuleCache | None = None,
) -> KeyUpdate:
    """Re-wrap a file's data key to the recipients of its creation rule.

    ``rules`` shares the lookup and parsing of ``.sops.yaml`` between the files of a batch.

    The file is decrypted first (MAC verified) so a tampered file is never re-keyed. Values,
    ``lastmodified``, the MAC and the selection rule are unchanged; entries of recipients
    that stay are kept as they are. A file with Shamir key groups becomes one group.

    Raises:
        ConfigError: no ``.sops.yaml`` or no matching rule.
        KeyUnavailable / DecryptFailed: the file cannot be opened.
    """
    file_path = Path(path)
    source = str(path)
    documents, fmt, original = read_source(file_path, input_format)
    if fmt == "dotenv":
        raise ConfigError(f"{source}: dotenv files cannot be re-keyed here")
    known = rules if rules is not None else RuleCache()
    config_path = Path(config) if config is not None else known.find_config(file_path.parent)
    if config_path is None:
        raise ConfigError(f"{source}: no .sops.yaml found in this directory or its parents")
    rule = known.rule_for(file_path, config_path)
    ids = identities if identities is not None else load_identities()
    encrypted, metadata = split_metadata(documents, source=source)
    data_key = unwrap_data_key(metadata, ids, source=source)
    hasher = MacHasher(only_encrypted=metadata.rules.mac_only_encrypted)
    cipher = ValueCipher(data_key)
    decrypt_tree(encrypted, cipher, metadata.rules, hasher, source=source)
    verify_mac(metadata, cipher, hasher, source)
    old = metadata.recipients
    added = tuple(r for r in rule.recipients if r not in old)
    removed = tuple(r for r in old if r not in rule.recipients)
    if not metadata.grouped and not metadata.other_keys and tuple(old) == rule.recipients:
        return KeyUpdate(rule, (), (), None)
    kept = {str(e.get("recipient")): e for e in metadata.key_groups[0] if not metadata.grouped}
    entries = tuple(
        dict(kept[r]) if r in kept else {"recipient": r, "enc": wrap_key(data_key, r)}
        for r in rule.recipients
    )
    rekeyed = dataclasses.replace(
        metadata,
        key_groups=(entries,),
        shamir_threshold=None,
        other_keys={},
        grouped=False,
        raw_groups=(),
    )
    block = rekeyed.to_block(lastmodified=metadata.lastmodified, mac=metadata.mac)
    # to_block writes this implementation's version; keep the file's own, as sops does.
    block["version"] = metadata.version
    rekeyed_docs = [{**doc, "sops": block} for doc in encrypted]
    patched = None
    if fmt == "yaml":
        trusted = block_is_last(original, documents)
        patched = rekeyed_text(original, rekeyed_docs, verify=not trusted)
    text = patched if patched is not None else dump(rekeyed_docs, fmt, source=source)
    return KeyUpdate(rule, added, removed, text)


def rotate_file(
    path: str | os.PathLike[str],
    identities: Identities | None = None,
    *,
    input_format: str | None = None,
    now: datetime | None = None,
) -> str:
    """Rotate a file's data key, like ``sops rotate``; return the new file text.

    The file is decrypted (MAC verified), a new random data key is wrapped for the same
    recipients, every encrypted value is encrypted again under it and the MAC recomputed.
    Recipients, the selection rule, clear values and (in YAML) comments and layout stay.

    Raises:
        ConfigError: a dotenv file, or a file with key groups or non-age master keys
            (their keys cannot be re-wrapped here).
        KeyUnavailable / DecryptFailed: the file cannot be opened.
    """
    source = str(path)
    documents, fmt, original = read_source(path, input_format)
    if fmt == "dotenv":
        raise ConfigError(f"{source}: dotenv files cannot be rotated here")
    ids = identities if identities is not None else load_identities()
    plain, metadata, _ = open_documents(documents, ids, source=source, stash=False)
    if metadata.grouped or metadata.other_keys:
        raise ConfigError(
            f"{source}: key groups and non-age master keys cannot be rotated here; use sops"
        )
    data_key = os.urandom(DATA_KEY_SIZE)
    entries = tuple({"recipient": r, "enc": wrap_key(data_key, r)} for r in metadata.recipients)
    rotated = dataclasses.replace(metadata, key_groups=(entries,))
    when = now or utc_now()
    sealed = seal_documents(
        plain,
        ValueCipher(data_key),
        metadata.rules,
        lambda mac: rotated.to_block(lastmodified=when, mac=mac),
        source=source,
        now=when,
    )
    if fmt == "yaml":
        encrypted, _ = split_metadata(documents, source=source)
        after = [{k: v for k, v in doc.items() if k != "sops"} for doc in sealed]
        trusted = block_is_last(original, documents)
        kept = swapped_text(original, encrypted, after, sealed[0]["sops"], verify=not trusted)
        if kept is not None:
            return kept
    return dump(sealed, fmt, source=source)
