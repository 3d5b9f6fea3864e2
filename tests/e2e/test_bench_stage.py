"""A stage of the fleet benchmark runs as a command does, in a process of its own, and
reports what it did."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from benchmarks.fleet import byte_compile, settle_database
from tests.e2e.workspace import Workspace, stripe_manifest

_ROOT = Path(__file__).resolve().parents[2]


def _stage(ws: Workspace, **spec: object) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.stage", json.dumps(spec)],
        cwd=ws.root,
        env={**ws.env, "PYTHONPATH": os.pathsep.join([str(_ROOT), ws.env.get("PYTHONPATH", "")])},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(done.stdout.splitlines()[-1])  # type: ignore[no-any-return]


def test_a_stage_applies_and_reports_its_time_and_changes(ws: Workspace) -> None:
    for tenant in ("acme", "globex"):
        ws.write(tenant, "stripe", stripe_manifest(tenant))
    applied = _stage(ws, verb="apply", database_url=ws.database_url, progress=True)
    assert applied["changes"] == 4  # an integration and a webhook per tenant
    stages = applied["stages"]
    assert isinstance(stages, dict) and any(t.startswith("Applying") for t in stages)
    assert isinstance(applied["seconds"], float) and applied["seconds"] > 0
    assert len(ws.sql("SELECT id FROM integration_configs")) == 2
    again = _stage(ws, verb="plan", database_url=ws.database_url, tenants=["acme"])
    assert again["changes"] == 0
    # The clock counts the command's work, not its imports.
    assert applied["imported_while_timed"] == []
    assert again["imported_while_timed"] == []


def test_the_stages_after_the_initial_load_find_the_database_vacuumed_and_analyzed(
    engine: Engine,
) -> None:
    settle_database(engine)
    with engine.connect() as conn:
        unsettled = conn.execute(
            sa.text(
                "SELECT relname FROM pg_stat_user_tables"
                " WHERE last_vacuum IS NULL OR last_analyze IS NULL"
            )
        ).scalars()
        assert list(unsettled) == []


def test_the_stages_import_the_package_from_bytecode_as_an_installed_one_does() -> None:
    source = _ROOT / "reconciler" / "commands" / "planning.py"
    cached = Path(importlib.util.cache_from_source(str(source)))
    cached.unlink(missing_ok=True)
    byte_compile()
    assert cached.is_file()
