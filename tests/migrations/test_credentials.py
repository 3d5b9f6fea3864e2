"""Database credentials never reach output: URL userinfo, ``password``/``sslpassword``
parameters of a URL or a libpq keyword string, plain or percent-encoded."""

from __future__ import annotations

from urllib.parse import quote, quote_plus

import pytest
import sqlalchemy as sa

from reconciler.errors import ConfigError
from reconciler.store.database import (
    DatabaseSource,
    mask_credentials,
    normalize_url,
    resolve_database_url,
)

USER_PASSWORD = "Us3r p@ss%w0rd"
QUERY_PASSWORD = "Qu3ryPassw0rd"
SSL_PASSWORD = "SslKeyPassw0rd"
KEYWORD_PASSWORD = "K3yword s3cret"
SECRETS = (USER_PASSWORD, QUERY_PASSWORD, SSL_PASSWORD, KEYWORD_PASSWORD)


def spellings(secret: str) -> set[str]:
    return {secret, quote(secret, safe=""), quote(secret), quote_plus(secret)}


def assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        for spelling in spellings(secret):
            assert spelling not in text, f"{spelling!r} leaked"
    # Fragments too: a password split at a parsing boundary must not show half of itself.
    for fragment in ("Us3r", "p@ss", "Qu3ry", "SslKey", "K3yword", "s3cret"):
        assert fragment not in text, f"{fragment!r} leaked"


@pytest.fixture(autouse=True)
def no_env_database(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RECONCILER_DATABASE_URL", "DATABASE_URL", "RECONCILER_DEBUG"):
        monkeypatch.delenv(name, raising=False)


# -- the masking function ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("postgresql://app:hunter22@db/x", "postgresql://app:***@db/x"),
        ("postgres://app:hunter22@db/x?sslmode=require", "postgres://app:***@db/x?sslmode=require"),
        ("postgresql://app@db/x?password=hunter22&sslmode=require", None),
        ("postgresql://db/x?sslpassword=hunter22", "postgresql://db/x?sslpassword=***"),
        ("host=db password=hunter22 dbname=x", "host=db password=*** dbname=x"),
        ("host=db password = 'hunter 22' dbname=x", "host=db password = *** dbname=x"),
        ("host=db sslpassword='a\\'b hunter22' dbname=x", "host=db sslpassword=*** dbname=x"),
        ("PGPASSWORD=hunter22 psql", "PGPASSWORD=*** psql"),
    ],
)
def test_mask_credentials_in_free_text(text: str, expected: str | None) -> None:
    masked = mask_credentials(text)
    assert "hunter" not in masked
    if expected is not None:
        assert masked == expected


def test_masking_twice_changes_nothing_more() -> None:
    once = mask_credentials("failed: postgresql://a:b1@h/x?sslpassword=c2 gone")
    assert once == "failed: postgresql://a:***@h/x?sslpassword=*** gone"
    assert mask_credentials(once) == once
    shown = "database unavailable (postgresql://a:***@h/x?sslpassword=***): gone"
    assert mask_credentials(shown) == shown


def test_mask_credentials_masks_the_given_urls_secrets_in_every_spelling() -> None:
    url = "postgresql://app:Xy%40z%20w@db/x?sslpassword=Ab%2Fc"
    for text in ("Xy@z w", "Xy%40z%20w", "Xy%40z+w", "Ab/c", "Ab%2Fc"):
        assert mask_credentials(f"driver said: {text}!", url) == "driver said: ***!"


def test_a_common_word_as_password_does_not_garble_messages() -> None:
    url = "postgresql://app:postgres@db/x"
    text = 'database unavailable (postgresql://app:***@db/x): password "postgres" refused'
    assert mask_credentials(text, url) == (
        'database unavailable (postgresql://app:***@db/x): password "***" refused'
    )


def test_resolved_urls_secrets_are_masked_without_the_url() -> None:
    normalize_url("postgresql://app:Remembered-9z@db/x", DatabaseSource.OPTION)
    assert mask_credentials("echo Remembered-9z echo") == "echo *** echo"


# -- describe() and the URL forms ---------------------------------------------------------------


def test_describe_masks_query_and_ssl_passwords() -> None:
    target = resolve_database_url(
        f"postgresql://app:{quote(USER_PASSWORD, safe='')}@db:5432/config"
        f"?sslmode=require&password={QUERY_PASSWORD}&sslpassword={SSL_PASSWORD}"
    )
    assert target.describe() == (
        "database: postgresql://app:***@db:5432/config"
        "?password=***&sslmode=require&sslpassword=*** (from --database-url)"
    )
    assert_no_secret(repr(target))
    # The password is decoded once and reaches the driver intact.
    assert sa.make_url(target.url).password == USER_PASSWORD


def test_keyword_connection_strings_are_accepted_and_masked() -> None:
    target = resolve_database_url(
        f"host=db.internal port=6432 dbname=config user=app password='{KEYWORD_PASSWORD}' "
        f"sslmode=verify-full sslpassword={SSL_PASSWORD}"
    )
    url = sa.make_url(target.url)
    assert (url.host, url.port, url.database, url.username) == (
        "db.internal",
        6432,
        "config",
        "app",
    )
    assert url.password == KEYWORD_PASSWORD
    assert dict(url.query) == {"sslmode": "verify-full", "sslpassword": SSL_PASSWORD}
    assert target.describe() == (
        "database: postgresql://app:***@db.internal:6432/config"
        "?sslmode=verify-full&sslpassword=*** (from --database-url)"
    )


@pytest.mark.parametrize(
    "given",
    [
        f"host=db password={KEYWORD_PASSWORD}",  # unquoted space: libpq quotes the rest
        f"host=db password='{KEYWORD_PASSWORD}",  # unterminated quote
        f"postgresql://app:{USER_PASSWORD}@db/x",  # '@' and ' ' not percent-encoded
        f"postgresql://app:{QUERY_PASSWORD}@db:port/x",
    ],
    ids=["unquoted-space", "unterminated", "raw-at-sign", "bad-port"],
)
def test_malformed_connection_strings_do_not_echo_the_password(given: str) -> None:
    with pytest.raises(ConfigError) as info:
        resolve_database_url(given)
    assert "--database-url" in str(info.value)
    assert_no_secret(str(info.value))
    # Nor does anything --debug would print: the parser's exception is not chained.
    error = info.value
    assert error.__cause__ is None and (error.__context__ is None or error.__suppress_context__)
