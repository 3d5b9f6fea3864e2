"""``runtime_functions``: the services' functions come and go; the recording trigger function
is amended in place and restored exactly by the downgrade."""

from __future__ import annotations

from typing import Any

import psycopg

from reconciler.store import migrate
from reconciler.store.database import resolve_database_url
from tests.migrations.test_migrations import libpq

FUNCTIONS = ("reconciler_active_config", "reconciler_webhook_allow", "reconciler_webhook_record")


def _state(url: str) -> dict[str, Any]:
    with psycopg.connect(libpq(url), autocommit=True) as conn:
        definition = conn.execute(
            "SELECT pg_get_functiondef('record_configuration_write()'::regprocedure)"
        ).fetchone()
        functions = conn.execute(
            "SELECT proname FROM pg_proc WHERE proname = ANY(%s) ORDER BY 1", (list(FUNCTIONS),)
        ).fetchall()
        version_insert = conn.execute(
            "SELECT has_column_privilege('reconciler_app', 'oauth_tokens',"
            " 'encryption_key_version', 'INSERT')"
        ).fetchone()
    assert definition is not None and version_insert is not None
    return {
        "definition": definition[0],
        "functions": [f for (f,) in functions],
        "version_insert": version_insert[0],
    }


def test_upgrade_amends_and_downgrade_restores(empty_database_url: str) -> None:
    target = resolve_database_url(empty_database_url)
    migrate.upgrade(target, "managed_tokens")
    before = _state(empty_database_url)
    assert before["functions"] == [] and before["version_insert"] is False

    migrate.upgrade(target)
    upgraded = _state(empty_database_url)
    assert upgraded["functions"] == list(FUNCTIONS) and upgraded["version_insert"] is True
    assert "reconciler.runtime_call" in upgraded["definition"]
    # Owner, SET options and everything else of the function are kept.
    assert (
        upgraded["definition"].split("AS $function$")[0]
        == before["definition"].split("AS $function$")[0]
    )

    migrate.downgrade(target, "managed_tokens")
    assert _state(empty_database_url) == before
    migrate.upgrade(target)
    assert _state(empty_database_url) == upgraded
