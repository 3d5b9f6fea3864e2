"""age identities and recipients: key discovery, data-key wrapping, key generation.

Key discovery follows sops (``age/keysource.go``) and gathers identities from every source
that is present, in this order:

1. ``SOPS_AGE_KEY``: identities in the variable itself, one or more per line;
2. ``SOPS_AGE_KEY_FILE``: a key file (an error if it is set but cannot be read);
3. the default key file ``$XDG_CONFIG_HOME/sops/age/keys.txt``, or
   ``$HOME/.config/sops/age/keys.txt`` when ``XDG_CONFIG_HOME`` is unset (Go's
   ``os.UserConfigDir``); silently skipped when it does not exist.

Key files list one identity per line; blank lines and lines starting with ``#`` are skipped.
Only X25519 identities (``AGE-SECRET-KEY-1…``) can be used: other kinds (plugins, post-quantum)
are skipped and reported when no identity fits a file. ``SOPS_AGE_KEY_CMD`` and SSH keys are
not read.

Each SOPS ``age`` entry holds the 32-byte data key (or a Shamir share) as an armored age file
for one recipient. Unwrapping first tries the identities whose public key equals the entry's
``recipient`` (one X25519 operation), then any identity for entries it could not match.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import pyrage

from reconciler.errors import ConfigError, KeyUnavailable
from reconciler.sops.age_x25519 import X25519Opener
from reconciler.sops.codec import format_rfc3339

ENV_KEY: Final = "SOPS_AGE_KEY"
ENV_KEY_FILE: Final = "SOPS_AGE_KEY_FILE"
DEFAULT_KEY_FILE: Final = Path("sops") / "age" / "keys.txt"
_SECRET_PREFIX: Final = "AGE-SECRET-KEY-1"  # noqa: S105 - a prefix, not a secret
_PQ_PREFIX: Final = "age1pq1"


@dataclass(frozen=True, slots=True)
class Identities(Sequence[Any]):
    """The age identities found for this process, and where they came from.

    A sequence of ``pyrage`` identity objects. Empty when no source had any; callers decide
    whether that is an error. ``sources`` names each source read (never key material), and
    ``skipped`` the identities that were present but cannot be used here.
    """

    identities: tuple[Any, ...] = ()
    sources: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()
    _by_recipient: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)
    _openers: Mapping[str, X25519Opener] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def of(
        cls, identities: Sequence[Any], sources: Sequence[str] = (), skipped: Sequence[str] = ()
    ) -> Identities:
        """Build from pyrage identities (the recipient index and openers are derived here)."""
        index = {str(identity.to_public()): identity for identity in identities}
        openers = {
            recipient: opener
            for recipient, identity in index.items()
            if (opener := X25519Opener.for_identity(str(identity), recipient)) is not None
        }
        return cls(tuple(identities), tuple(sources), tuple(skipped), index, openers)

    def __len__(self) -> int:
        return len(self.identities)

    def __getitem__(self, index: Any) -> Any:
        return self.identities[index]

    def __iter__(self) -> Iterator[Any]:
        return iter(self.identities)

    @property
    def recipients(self) -> frozenset[str]:
        """The public keys (``age1…``) of the identities."""
        return frozenset(self._by_recipient)

    def for_recipient(self, recipient: str) -> Any | None:
        """The identity whose public key is ``recipient``, if any."""
        return self._by_recipient.get(recipient)

    def opener_for(self, recipient: str) -> X25519Opener | None:
        """The fast opener of the identity whose public key is ``recipient``, if any."""
        return self._openers.get(recipient)

    def describe(self) -> str:
        """Where identities were looked for, for error messages."""
        where = ", ".join(self.sources) if self.sources else "no key source"
        if self.skipped:
            where += "; unusable identities skipped: " + ", ".join(self.skipped)
        return where


def parse_identities(text: str, *, source: str) -> tuple[list[Any], list[str]]:
    """Parse age identities from key-file text; return (identities, skipped descriptions).

    Raises:
        KeyUnavailable: a line looks like an X25519 identity but is not valid. The message
            names the source and line, never the key.
    """
    identities: list[Any] = []
    skipped: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        for token in line.split():
            if token.startswith(_SECRET_PREFIX):
                try:
                    identities.append(pyrage.x25519.Identity.from_str(token))
                except pyrage.IdentityError:
                    raise KeyUnavailable(
                        f"{source}: line {number} is not a valid age identity"
                    ) from None
            else:
                kind = "plugin" if token.startswith("AGE-PLUGIN-") else "unsupported"
                skipped.append(f"{kind} identity at {source}:{number}")
    return identities, skipped


def default_key_file(environ: Mapping[str, str]) -> Path | None:
    """``$XDG_CONFIG_HOME/sops/age/keys.txt``, else ``$HOME/.config/sops/age/keys.txt``."""
    xdg = environ.get("XDG_CONFIG_HOME", "")
    if xdg and os.path.isabs(xdg):
        return Path(xdg) / DEFAULT_KEY_FILE
    home = environ.get("HOME", "")
    return Path(home) / ".config" / DEFAULT_KEY_FILE if home else None


def load_identities(environ: Mapping[str, str] | None = None) -> Identities:
    """Discover age identities the way sops does (see the module docstring).

    Args:
        environ: the environment to read; ``os.environ`` when ``None``.

    Raises:
        KeyUnavailable: ``SOPS_AGE_KEY_FILE`` is set but unreadable, or a key is malformed.
    """
    env = os.environ if environ is None else environ
    found: list[Any] = []
    sources: list[str] = []
    skipped: list[str] = []

    def add(text: str, source: str) -> None:
        identities, unusable = parse_identities(text, source=source)
        found.extend(identities)
        skipped.extend(unusable)
        sources.append(source)

    if ENV_KEY in env:
        add(env[ENV_KEY], ENV_KEY)
    if ENV_KEY_FILE in env:
        path = env[ENV_KEY_FILE]
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8"
            message = f"{ENV_KEY_FILE}={path}: cannot read the key file: {reason}"
            raise KeyUnavailable(message) from None
        add(text, f"{ENV_KEY_FILE}={path}")
    default = default_key_file(env)
    if default is not None and default.is_file():
        try:
            add(default.read_text(encoding="utf-8"), str(default))
        except (OSError, UnicodeDecodeError):
            raise KeyUnavailable(f"{default}: cannot read the key file") from None
    return Identities.of(found, sources, skipped)


def check_recipient(recipient: str, *, source: str) -> Any:
    """Parse an X25519 recipient; refuse post-quantum, plugin and SSH recipients clearly.

    Raises:
        ConfigError: the recipient is not a usable ``age1…`` X25519 public key.
    """
    if recipient.startswith(_PQ_PREFIX):
        raise ConfigError(
            f"{source}: post-quantum age recipients (age1pq1…) are not supported: {recipient[:16]}…"
        )
    try:
        return pyrage.x25519.Recipient.from_str(recipient)
    except pyrage.RecipientError:
        kind = "SSH " if recipient.startswith("ssh-") else ""
        raise ConfigError(
            f"{source}: {kind}recipient {recipient!r} is not an X25519 age public key (age1…); "
            "only X25519 age recipients are supported"
        ) from None


def split_recipients(value: object, *, source: str) -> tuple[str, ...]:
    """Recipients from a comma-separated string or a list of strings (as ``.sops.yaml``)."""
    items: list[str] = []
    if isinstance(value, str):
        items = value.split(",")
    elif isinstance(value, list) and all(isinstance(item, str) for item in value):
        for item in value:
            items.extend(item.split(","))
    elif value is not None:
        raise ConfigError(f"{source}: age must be a string or a list of strings")
    recipients = tuple(dict.fromkeys(item.strip() for item in items if item.strip()))
    for recipient in recipients:
        check_recipient(recipient, source=source)
    return recipients


def wrap_key(data_key: bytes, recipient: str) -> str:
    """Encrypt the data key (or share) to one recipient as an armored age file."""
    parsed = check_recipient(recipient, source="recipient")
    armored: bytes = pyrage.encrypt(data_key, [parsed], armored=True)
    return armored.decode("ascii")


def try_unwrap(enc: str, identities: Sequence[Any]) -> bytes | None:
    """Decrypt one armored age file with the given identities; ``None`` if none fits."""
    if not identities or not isinstance(enc, str):
        return None
    try:
        plain: bytes = pyrage.decrypt(enc.encode("ascii"), list(identities))
    except (pyrage.DecryptError, UnicodeEncodeError, ValueError):
        return None
    return plain


def unwrap_entries(entries: Sequence[Mapping[str, Any]], identities: Identities) -> bytes | None:
    """Unwrap the first ``{recipient, enc}`` entry an identity opens.

    Entries whose recipient is one of our public keys are tried first with that identity
    only (by :class:`X25519Opener` when the file has the form age writes, else by
    ``pyrage``); every other entry is then tried with all identities (e.g. when the recipient
    string is written differently).
    """
    rest = []
    for entry in entries:
        recipient, enc = str(entry.get("recipient", "")), entry.get("enc", "")
        identity = identities.for_recipient(recipient)
        if identity is None:
            rest.append(entry)
            continue
        opener = identities.opener_for(recipient)
        if opener is not None and isinstance(enc, str):
            plain = opener.open(enc)  # the common form, quickly; pyrage decides the rest
            if plain is not None:
                return plain
        plain = try_unwrap(enc, [identity])
        if plain is not None:
            return plain
    for entry in rest:
        if str(entry.get("recipient", "")).startswith(_PQ_PREFIX):
            continue  # pyrage cannot open hybrid post-quantum stanzas
        plain = try_unwrap(entry.get("enc", ""), identities.identities)
        if plain is not None:
            return plain
    return None


@dataclass(frozen=True, slots=True)
class GeneratedKey:
    """A new age identity as ``age-keygen`` prints it."""

    public_key: str
    text: str
    """``# created: …``, ``# public key: …`` and the secret key line."""


def generate_key(now: datetime | None = None) -> GeneratedKey:
    """Generate an X25519 identity and its key-file text (same layout as ``age-keygen``)."""
    identity = pyrage.x25519.Identity.generate()
    public = str(identity.to_public())
    created = format_rfc3339(now or datetime.now().astimezone())
    text = f"# created: {created}\n# public key: {public}\n{identity}\n"
    return GeneratedKey(public, text)
