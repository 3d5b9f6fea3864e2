"""Which values are encrypted: the one selection rule a SOPS file carries.

A file names at most one of ``unencrypted_suffix``, ``encrypted_suffix``,
``unencrypted_regex``, ``encrypted_regex`` (sops also has two comment-regex rules, which this
implementation refuses). With none, ``unencrypted_suffix: _unencrypted`` applies. Each rule
tests every mapping key on the path from the root to a value (sops ``shouldBeEncrypted``), so
one matching ancestor decides for its whole subtree. ``mac_only_encrypted`` is separate: it
restricts the MAC to encrypted values.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from reconciler.errors import ConfigError

RuleKind = Literal["unencrypted_suffix", "encrypted_suffix", "unencrypted_regex", "encrypted_regex"]

RULE_KINDS: Final[tuple[RuleKind, ...]] = (
    "unencrypted_suffix",
    "encrypted_suffix",
    "unencrypted_regex",
    "encrypted_regex",
)
UNSUPPORTED_RULES: Final = ("unencrypted_comment_regex", "encrypted_comment_regex")
DEFAULT_UNENCRYPTED_SUFFIX: Final = "_unencrypted"


@dataclass(frozen=True, slots=True)
class EncryptionRules:
    """The selection rule of one file, plus ``mac_only_encrypted``.

    Attributes:
        kind: which of the four rules applies.
        value: the suffix or the regular expression (searched, not anchored, like Go's
            ``regexp.MatchString``).
        mac_only_encrypted: hash only encrypted values into the MAC.
    """

    kind: RuleKind = "unencrypted_suffix"
    value: str = DEFAULT_UNENCRYPTED_SUFFIX
    mac_only_encrypted: bool = False
    _regex: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    @classmethod
    def build(
        cls, kind: RuleKind, value: str, *, mac_only_encrypted: bool = False, source: str
    ) -> EncryptionRules:
        """Validate and compile a rule; raise :class:`ConfigError` naming ``source``."""
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{source}: {kind} must be a non-empty string")
        regex = None
        if kind.endswith("_regex"):
            try:
                regex = re.compile(value)
            except re.error as exc:
                raise ConfigError(f"{source}: invalid {kind} {value!r}: {exc}") from None
        return cls(kind, value, bool(mac_only_encrypted), regex)

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any], *, source: str) -> EncryptionRules:
        """Read the rule from sops metadata or a creation rule.

        Raises:
            ConfigError: more than one rule, a comment-regex rule, or an invalid value.
        """
        for name in UNSUPPORTED_RULES:
            if mapping.get(name):
                raise ConfigError(
                    f"{source}: {name} is unsupported; use encrypted_regex, unencrypted_regex, "
                    "encrypted_suffix or unencrypted_suffix"
                )
        present = [kind for kind in RULE_KINDS if mapping.get(kind) not in (None, "")]
        if len(present) > 1:
            raise ConfigError(
                f"{source}: only one of {', '.join(RULE_KINDS)} may be set, found "
                + ", ".join(present)
            )
        mac_only = mapping.get("mac_only_encrypted") or False
        if not isinstance(mac_only, bool):
            raise ConfigError(f"{source}: mac_only_encrypted must be true or false")
        if not present:
            return cls(mac_only_encrypted=mac_only)
        kind = present[0]
        return cls.build(kind, mapping[kind], mac_only_encrypted=mac_only, source=source)

    @property
    def encrypt_when_matched(self) -> bool:
        """True for the ``encrypted_*`` rules: only matching subtrees are encrypted."""
        return self.kind.startswith("encrypted")

    def matches(self, key: str) -> bool:
        """Whether one path component matches the rule."""
        if self._regex is not None:
            return self._regex.search(key) is not None
        return key.endswith(self.value)

    def should_encrypt(self, path: tuple[str, ...]) -> bool:
        """Whether a value at ``path`` (mapping keys only) is encrypted."""
        matched = any(self.matches(key) for key in path)
        return matched == self.encrypt_when_matched

    def to_metadata(self) -> dict[str, Any]:
        """The metadata entries sops writes for this rule (rule first, then the MAC flag)."""
        out: dict[str, Any] = {self.kind: self.value}
        if self.mac_only_encrypted:
            out["mac_only_encrypted"] = True
        return out
