"""Database credentials in messages: masked wherever they appear, URLs shown without them.

Nothing about a database is printed or raised without :func:`mask_credentials`. It masks the
password in the userinfo (``user:***@``), the ``password`` and ``sslpassword`` parameters of a
URL query or a keyword string, and every credential of a URL this process has resolved
(:func:`remember_credentials`), in plain and URL-encoded form, wherever it appears.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import quote, quote_plus, unquote

import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url

MASK = "***"
"""What a masked credential reads as."""

SECRET_PARAMETERS = frozenset({"password", "sslpassword"})
"""libpq connection parameters whose values are credentials (in a URL query or a keyword
string); ``sslpassword`` decrypts the client key named by ``sslkey``."""

# Every credential of every database URL this process has resolved (see normalize_url), in
# each spelling it may take in a message. A driver or server message can quote a value
# anywhere, and callers do not always know the URL (translate_db_errors() without one): masking
# what we know to be secret, wherever it appears, does not depend on that.
_known_secrets: set[str] = set()

_USERINFO_PASSWORD = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^\s/:@]*:)[^\s@]*@")
# An already masked value (``***`` then a delimiter) is left as it is, so that masking twice
# does not swallow the punctuation after it.
_SECRET_PARAMETER = re.compile(
    r"(?i)(?<![\w])((?:pg|ssl)?password\s*=\s*)"
    r"(?:\*\*\*(?=[\s)&,;]|$)|'(?:[^'\\]|\\.)*'?|[^\s&'\"]+)"
)


def mask_credentials(text: str, url: URL | str | None = None) -> str:
    """``text`` with every database credential in it replaced by ``***``.

    Masks, in this order: the credentials of ``url`` and of every database URL resolved in this
    process (plain, percent-encoded and form-encoded spellings, wherever they stand as a whole
    token, i.e. not run together with other letters or digits); the password of any URL
    userinfo (``scheme://user:PASSWORD@``); and the value of any ``password=`` or
    ``sslpassword=`` parameter, in a URL query or a libpq keyword string. Apply it to anything
    that can quote a database URL or a driver message before it is shown.
    """
    secrets = set(_known_secrets)
    if url is not None:
        with contextlib.suppress(sa.exc.ArgumentError, ValueError):
            secrets.update(_secret_spellings(_credentials(make_url(url))))
    for secret in sorted(secrets, key=len, reverse=True):
        # Whole tokens only: a password "postgres" must not turn "postgresql://" into
        # "***ql://". A credential echoed by a driver or server stands between delimiters.
        before = r"(?<![A-Za-z0-9])" if secret[0].isalnum() else ""
        after = r"(?![A-Za-z0-9])" if secret[-1].isalnum() else ""
        text = re.sub(f"{before}{re.escape(secret)}{after}", MASK, text)
    text = _USERINFO_PASSWORD.sub(lambda m: f"{m.group(1)}{MASK}@", text)
    return _SECRET_PARAMETER.sub(lambda m: f"{m.group(1)}{MASK}", text)


def _credentials(url: URL) -> list[str]:
    found = [url.password] if url.password else []
    for key, value in url.query.items():
        if key.lower() in SECRET_PARAMETERS:
            found.extend([value] if isinstance(value, str) else value)
    return [str(secret) for secret in found if secret]


def _secret_spellings(secrets: Iterable[str]) -> set[str]:
    spellings: set[str] = set()
    for secret in secrets:
        spellings.update(
            {secret, quote(secret, safe=""), quote(secret), quote_plus(secret), quote(secret, " +")}
        )
    spellings.discard("")
    return spellings


def display_url(url: URL | str) -> str:
    """``url`` for messages: ``postgresql://`` scheme, every credential as ``***``."""
    parsed = make_url(url).set(drivername="postgresql")
    query = {
        key: (MASK if key.lower() in SECRET_PARAMETERS else value)
        for key, value in parsed.query.items()
    }
    parsed = parsed.set(query=query)
    # Unquoted so a socket directory reads as a path (host=/run/postgresql, not %2Frun...).
    return unquote(parsed.render_as_string(hide_password=True))


def display_path(path: Path | None) -> str:
    """``path`` for messages: relative to the working directory where it is below it."""
    if path is None:
        return "?"
    with contextlib.suppress(ValueError):
        return str(path.relative_to(Path.cwd()))
    return str(path)


def remember_credentials(url: URL) -> None:
    """Mask the credentials of ``url`` in every later message of this process."""
    _known_secrets.update(_secret_spellings(_credentials(url)))
