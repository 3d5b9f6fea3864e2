"""Driver errors as one-line errors of the most specific class, credentials masked.

Statement timeout, lock timeout, serialization failure or deadlock, missing privilege and an
unreachable server each have their own class (see ``errors.py``); anything else the driver
raises becomes one :class:`~reconciler.errors.DatabaseError` line at the command line's last
resort (:func:`unanticipated_error`). Never the statement text or its parameters.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

import psycopg
import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url

from reconciler.errors import (
    DatabaseError,
    DatabaseUnavailable,
    LockTimeout,
    PermissionDenied,
    ReconcilerError,
    StatementCancelled,
    TransactionConflict,
)
from reconciler.store.credentials import display_url, mask_credentials


@contextlib.contextmanager
def translate_db_errors(url: URL | str | None = None) -> Iterator[None]:
    """Turn driver errors into one-line errors of the most specific class, credentials masked.

    Wrap any block that talks to the database. Errors are told apart by SQLSTATE, never by
    message text:

    ============================  ==========================================================
    57014 query_canceled          :class:`StatementCancelled` (statement timeout, cancel)
    55P03 lock_not_available      :class:`LockTimeout`
    40001, 40P01                  :class:`TransactionConflict` (serialization, deadlock)
    42501 insufficient_privilege  :class:`PermissionDenied`
    28xxx, 53xxx, 08xxx, 57Pxx    :class:`DatabaseUnavailable` (login refused, out of
                                  resources, connection lost, server shutting down)
    other operational errors      :class:`DatabaseUnavailable` (cannot connect, no SQLSTATE)
    ============================  ==========================================================

    Any other error (a constraint violation, a missing table: bugs or data problems the caller
    handles) propagates unchanged. The cause is chained with ``from``, so ``--debug`` still
    shows it. Code that must handle one of these itself (the advisory lock's timeout) catches
    it inside this block. Pass the URL when known: its credentials are masked even if a driver
    echoes them (those of every URL resolved by this process are masked regardless).
    """
    try:
        yield
    except sa.exc.DBAPIError as exc:
        translated = translate_error(exc, url)
        if translated is None:
            raise
        raise translated from exc
    except psycopg.Error as exc:
        translated = translate_error(exc, url)
        if translated is None:
            raise
        raise translated from exc


def translate_error(exc: BaseException, url: URL | str | None = None) -> ReconcilerError | None:
    """The error of ours for a driver exception (see :func:`translate_db_errors`), or None."""
    orig = exc.orig if isinstance(exc, sa.exc.DBAPIError) and exc.orig is not None else exc
    state = getattr(orig, "sqlstate", None) or ""
    reason = _server_message(orig, url)
    if state == "57014":
        return StatementCancelled(
            f"the database cancelled a statement: {reason} (the limit is "
            "apply.statement_timeout_seconds in reconciler.yaml, or the server's "
            "statement_timeout)"
        )
    if state == "55P03":
        return LockTimeout(
            f"a lock was not granted in time: {reason} (another transaction holds a row or "
            "table lock; try again when it has finished)"
        )
    if state in ("40001", "40P01"):
        return TransactionConflict(
            f"the transaction conflicted with a concurrent one and was rolled back: {reason}; "
            "run the command again"
        )
    if state == "42501":
        role = _user(url)
        as_role = f" (connected as {role})" if role else ""
        return PermissionDenied(f"permission denied{as_role}: {reason}")
    if state.startswith("28"):
        return DatabaseUnavailable(f"the database refused the login{_at(url)}: {reason}")
    if state.startswith("53"):
        return DatabaseUnavailable(f"the database server is out of resources{_at(url)}: {reason}")
    if state.startswith(("08", "57P")):
        return DatabaseUnavailable(f"lost the database connection{_at(url)}: {reason}")
    operational = (
        sa.exc.OperationalError,
        sa.exc.InterfaceError,
        psycopg.OperationalError,
        psycopg.InterfaceError,
    )
    if isinstance(exc, operational):
        return DatabaseUnavailable(_message(orig, url))
    return None


DRIVER_ERRORS: tuple[type[BaseException], ...] = (sa.exc.DBAPIError, psycopg.Error)
"""What the database driver raises: for a last-resort ``except`` outside the store."""


def unanticipated_error(exc: BaseException, url: URL | str | None = None) -> ReconcilerError:
    """One line for any driver error: :func:`translate_error`'s, else a :class:`DatabaseError`.

    For the command line's last resort: what failed (the server's primary message and
    SQLSTATE), which kind of statement (and the table it names), and that the transaction
    was rolled back, so nothing was applied. Never the statement text or its parameters.
    """
    translated = translate_error(exc, url)
    if translated is not None:
        return translated
    orig = exc.orig if isinstance(exc, sa.exc.DBAPIError) and exc.orig is not None else exc
    state = getattr(orig, "sqlstate", None)
    code = f" (SQLSTATE {state})" if state else ""
    statement = exc.statement if isinstance(exc, sa.exc.StatementError) else None
    return DatabaseError(
        f"the database refused {statement_kind(statement)}: {_server_message(orig, url)}{code}; "
        "the transaction was rolled back, nothing was applied (--debug shows the details)"
    )


_KIND = re.compile(
    r"^\s*(?:(?P<insert>INSERT\s+INTO)|(?P<update>UPDATE)|(?P<delete>DELETE\s+FROM)"
    r"|(?P<other>[A-Za-z]+))\s*(?P<table>[A-Za-z_][A-Za-z0-9_.]*)?",
    re.IGNORECASE,
)
_FROM = re.compile(r"\bFROM\s+(?P<table>[A-Za-z_][A-Za-z0-9_.]*)(?!\s*\()", re.IGNORECASE)


def statement_kind(statement: str | None) -> str:
    """E.g. ``an INSERT into configuration_audit_logs``, ``a SELECT``; never the text itself."""
    match = _KIND.match(statement or "")
    if match is None:
        return "a statement"
    table = match.group("table")
    if match.group("insert"):
        return f"an INSERT into {table}"
    if match.group("update"):
        return f"an UPDATE of {table}"
    if match.group("delete"):
        return f"a DELETE from {table}"
    word = match.group("other").upper()
    if word in ("SELECT", "WITH"):
        source = _FROM.search(statement or "")
        reading = f" (reading {source.group('table')})" if source else ""
        return f"a query{reading}"
    return f"a {word} statement"


def _server_message(exc: BaseException, url: URL | str | None) -> str:
    """The server's one-line primary message, else the driver's text on one line; masked."""
    diag = getattr(exc, "diag", None)
    primary = getattr(diag, "message_primary", None) if diag is not None else None
    text = primary or " ".join(str(exc).split()) or type(exc).__name__
    return mask_credentials(text, url)


def _user(url: URL | str | None) -> str | None:
    if url is None:
        return None
    with contextlib.suppress(sa.exc.ArgumentError, ValueError):
        return make_url(url).username
    return None


def _at(url: URL | str | None) -> str:
    if url is None:
        return ""
    with contextlib.suppress(sa.exc.ArgumentError, ValueError):
        return f" ({display_url(url)})"
    return ""


def _message(exc: BaseException, url: URL | str | None) -> str:
    text = mask_credentials(" ".join(str(exc).split()) or type(exc).__name__, url)
    return f"database unavailable{_at(url)}: {text}"
