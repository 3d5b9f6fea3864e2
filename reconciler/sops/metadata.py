"""The ``sops:`` metadata block: reading it from a file and writing it back.

Only the fields this implementation uses are interpreted (age keys, key groups, Shamir
threshold, ``lastmodified``, ``mac``, ``version`` and the selection rule); other master keys
(pgp, kms, …) are kept verbatim when a file is re-encrypted with the same data key.
Legacy files carry empty lists (YAML) or ``null`` (JSON) for unused key types; both are
accepted. Field order on output follows the sops 3.11 struct order.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from reconciler.errors import ConfigError, DecryptFailed
from reconciler.sops.codec import format_rfc3339, parse_rfc3339
from reconciler.sops.encryption_rules import EncryptionRules

FORMAT_VERSION: Final = "3.11.0"
"""Written as ``version``: the sops release whose file format this implementation writes."""

_OTHER_KEY_TYPES: Final = ("kms", "gcp_kms", "azure_kv", "hc_vault", "pgp")
_OUTPUT_ORDER: Final = (
    "shamir_threshold",
    "key_groups",
    "kms",
    "gcp_kms",
    "azure_kv",
    "hc_vault",
    "age",
    "lastmodified",
    "mac",
    "pgp",
    "unencrypted_suffix",
    "encrypted_suffix",
    "unencrypted_regex",
    "encrypted_regex",
    "mac_only_encrypted",
    "version",
)

AgeEntry = Mapping[str, Any]
"""``{"recipient": "age1…", "enc": "-----BEGIN AGE ENCRYPTED FILE-----…"}``."""


def is_metadata(block: object) -> bool:
    """sops's own test for an encrypted file: a mapping with non-empty ``mac`` and ``version``."""
    return isinstance(block, Mapping) and bool(block.get("mac")) and bool(block.get("version"))


@dataclass(frozen=True, slots=True)
class Metadata:
    """The parsed ``sops:`` block of one file.

    Attributes:
        key_groups: the age entries of each key group. A file without ``key_groups`` has one
            group: its top-level ``age`` list, which wraps the whole data key.
        shamir_threshold: shares needed when there are several groups, else ``None``.
        lastmodified: when the file was last written.
        mac: the encrypted MAC (an ENC string).
        version: the sops version that wrote the file.
        rules: the selection rule and ``mac_only_encrypted``.
        other_keys: non-age master keys, kept verbatim (single-group files only).
        grouped: True when the file used ``key_groups``.
        raw_groups: the ``key_groups`` list as read, kept verbatim on re-encryption.
    """

    key_groups: tuple[tuple[AgeEntry, ...], ...]
    shamir_threshold: int | None
    lastmodified: datetime
    mac: str
    version: str
    rules: EncryptionRules
    other_keys: Mapping[str, Any] = field(default_factory=dict)
    grouped: bool = False
    raw_groups: tuple[Any, ...] = ()

    @property
    def mac_aad(self) -> str:
        """The MAC's additional data: ``lastmodified`` as Go ``time.RFC3339``."""
        return format_rfc3339(self.lastmodified)

    @property
    def recipients(self) -> tuple[str, ...]:
        """Every age recipient of the file, in order."""
        return tuple(str(e.get("recipient", "")) for group in self.key_groups for e in group)

    @classmethod
    def parse(cls, block: object, *, source: str) -> Metadata:
        """Read a ``sops:`` block.

        Raises:
            DecryptFailed: the block is malformed or uses an unsupported rule.
        """
        if not is_metadata(block):
            raise DecryptFailed(f"{source}: the sops metadata has no mac or version")
        assert isinstance(block, Mapping)
        try:
            rules = EncryptionRules.from_mapping(block, source=source)
        except ConfigError as exc:
            raise DecryptFailed(str(exc)) from None
        lastmodified = _parse_lastmodified(block.get("lastmodified"), source)
        grouped = bool(block.get("key_groups"))
        if grouped:
            raw_groups = block["key_groups"]
            if not isinstance(raw_groups, list) or not all(
                isinstance(g, Mapping) for g in raw_groups
            ):
                raise DecryptFailed(f"{source}: sops.key_groups must be a list of mappings")
            groups = tuple(_age_entries(g.get("age"), source) for g in raw_groups)
            threshold = block.get("shamir_threshold")
            if not isinstance(threshold, int) or isinstance(threshold, bool):
                threshold = len(groups)
            if not 1 <= threshold <= len(groups):
                raise DecryptFailed(f"{source}: sops.shamir_threshold {threshold} is invalid")
            other: dict[str, Any] = {}
        else:
            raw_groups, threshold = [], None
            groups = (_age_entries(block.get("age"), source),)
            other = {k: block[k] for k in _OTHER_KEY_TYPES if block.get(k)}
        return cls(
            key_groups=groups,
            shamir_threshold=threshold,
            lastmodified=lastmodified,
            mac=str(block["mac"]),
            version=str(block["version"]),
            rules=rules,
            other_keys=other,
            grouped=grouped,
            raw_groups=tuple(raw_groups),
        )

    def to_block(self, *, lastmodified: datetime, mac: str) -> dict[str, Any]:
        """The block to write, with a new ``lastmodified`` and MAC, in sops field order."""
        out: dict[str, Any] = {}
        if self.grouped:
            out["shamir_threshold"] = self.shamir_threshold
            out["key_groups"] = list(self.raw_groups)
        else:
            out.update(self.other_keys)
            out["age"] = [dict(entry) for entry in self.key_groups[0]]
        out["lastmodified"] = format_rfc3339(lastmodified)
        out["mac"] = mac
        out.update(self.rules.to_metadata())
        out["version"] = FORMAT_VERSION
        return {key: out[key] for key in _OUTPUT_ORDER if key in out}


def new_block(
    age_entries: list[dict[str, str]], rules: EncryptionRules, *, lastmodified: datetime, mac: str
) -> dict[str, Any]:
    """The ``sops:`` block of a newly encrypted file (one key group)."""
    return {
        "age": age_entries,
        "lastmodified": format_rfc3339(lastmodified),
        "mac": mac,
        **rules.to_metadata(),
        "version": FORMAT_VERSION,
    }


def _parse_lastmodified(value: object, source: str) -> datetime:
    if isinstance(value, datetime):  # an unquoted timestamp typed by the YAML reader
        return value
    if isinstance(value, str):
        try:
            return parse_rfc3339(value)
        except ValueError:
            pass
    raise DecryptFailed(f"{source}: sops.lastmodified is missing or not an RFC 3339 time")


def _age_entries(value: object, source: str) -> tuple[AgeEntry, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(
        isinstance(e, Mapping) and isinstance(e.get("enc"), str) for e in value
    ):
        raise DecryptFailed(f"{source}: sops.age must be a list of {{recipient, enc}} entries")
    return tuple(value)
