"""What user text may be echoed in a message: the one place that knows what a secret looks like.

Diagnostics and error messages quote user input (a value, a YAML key, a tag, a file name) so
that a user can find the mistake. Any such text passes through :func:`redact` (to cut the
secret-shaped parts out of a message) or :func:`is_secret_shaped` (to leave a value out
entirely) before it is shown. Both use the one pattern :data:`SECRET_SHAPES`, so adding a
shape here covers every message, every output format (text, JSON, GitHub annotations) and
every command.

The shapes (credential formats in ``docs/domain-rules.md``, RCN-SEC-2):

* age identities: ``AGE-SECRET-KEY-1...`` and plugin identities ``AGE-PLUGIN-...-1...``;
* PEM private key blocks (``-----BEGIN ... PRIVATE KEY-----`` up to the matching end line,
  or the end of the text when it was cut) and age-encrypted blocks;
* SOPS-encrypted values ``ENC[...]`` (ciphertext is not a secret, but it is noise, and the
  rules have always left it out of messages);
* Stripe secret, restricted and publishable keys (``sk_``/``rk_``/``pk_`` + ``live``/``test``),
  webhook signing secrets (``whsec_``) and Connect refresh tokens (``rt_``);
* HubSpot private-app tokens (``pat-<region>-...``) and UUID-shaped client secrets;
* Intuit (QuickBooks) client ids and refresh tokens (``AB`` + 38 or more letters/digits)
  and JWT-shaped access tokens (``eyJ...``);
* any other opaque token: 32 or more letters and digits in a row, with at least one of each
  (QuickBooks client secrets and verifier tokens have no prefix), except lowercase hex of
  exactly 40 or 64 characters: git commit ids and SHA-256 digests, which messages name.

A bare prefix (``sk_live_``, ``whsec_``) or the placeholder ``ENC[...]`` names a kind of
value and is left alone, so that messages can say which kind is expected. Otherwise redaction
errs towards hiding: a message that loses a harmless long token is a small price for never
printing a credential into a CI log.
"""

from __future__ import annotations

import re

REDACTED = "(redacted)"
"""What replaces a secret-shaped text."""

_NOT_AFTER = r"(?<![0-9A-Za-z])"
"""A shape starts at a token boundary (``_`` and ``-`` count as boundaries)."""

SECRET_SHAPES = re.compile(
    "|".join(
        (
            # PEM private keys and age-armored files, to their end line (or the text's end).
            r"-----BEGIN [A-Z0-9 ]*(?:PRIVATE KEY(?: BLOCK)?|AGE ENCRYPTED FILE)-----"
            r".*?(?:-----END [A-Z0-9 ]*-----|\Z)",
            r"(?i:AGE-SECRET-KEY-1|AGE-PLUGIN-[A-Z0-9-]*-1)[0-9A-Za-z]+",
            r"ENC\[(?!\.\.\.\])[^\]]*\]?",
            _NOT_AFTER + r"(?:sk|rk|pk|ek)_(?:live|test)_\w+",
            _NOT_AFTER + r"whsec_\w+",
            _NOT_AFTER + r"rt_[0-9A-Za-z]{16,}",
            _NOT_AFTER + r"pat-[a-z]{2,3}\d?-[\w-]+",
            _NOT_AFTER + r"[0-9A-Fa-f]{8}(?:-[0-9A-Fa-f]{4}){3}-[0-9A-Fa-f]{12}",
            _NOT_AFTER + r"AB[0-9A-Za-z]{38,}",
            _NOT_AFTER + r"eyJ[\w-]{8,}(?:\.[\w-]*){0,4}",
            # Git object ids and SHA-256 digests (lowercase hex, 40 or 64 long) name things
            # in messages (commits, plan and audit hashes) and are never credentials here.
            _NOT_AFTER
            + r"(?![0-9a-f]{40}(?![0-9A-Za-z]))(?![0-9a-f]{64}(?![0-9A-Za-z]))"
            + r"(?=[A-Za-z]*[0-9])(?=[0-9]*[A-Za-z])[0-9A-Za-z]{32,}",
        )
    ),
    re.DOTALL,
)
"""Every secret shape the project knows (see the module docstring), as one pattern."""


def is_secret_shaped(text: str) -> bool:
    """True when ``text`` holds anything that looks like a secret (anywhere in it)."""
    return SECRET_SHAPES.search(text) is not None


def redact(text: str) -> str:
    """``text`` with every secret-shaped part replaced by ``(redacted)``."""
    return SECRET_SHAPES.sub(REDACTED, text)
