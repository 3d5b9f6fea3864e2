"""The revision template (``script.py.mako``) and the shared migration helpers (no database)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

from reconciler.migrations import support
from reconciler.store import migrate


@pytest.fixture
def scripts(tmp_path: Path) -> Config:
    """A copy of the migrations directory, so new revisions can be generated into it."""
    copy = tmp_path / "migrations"
    shutil.copytree(migrate.SCRIPT_LOCATION, copy, ignore=shutil.ignore_patterns("__pycache__"))
    config = Config()
    config.set_main_option("script_location", str(copy))
    return config


def test_a_new_revision_has_only_the_names_it_needs(scripts: Config) -> None:
    command.revision(scripts, message="next step", rev_id="next_step")
    path = next(Path(scripts.get_main_option("script_location") or "").glob("versions/*next_step*"))
    text = path.read_text()
    assert 'revision: str = "next_step"' in text.replace("'", '"')
    assert "down_revision: str | None = " in text
    assert "branch_labels" not in text
    assert "depends_on" not in text
    compile(text, str(path), "exec")
    assert ScriptDirectory.from_config(scripts).get_heads() == ["next_step"]


def test_a_branch_label_is_written_when_given(scripts: Config) -> None:
    command.revision(
        scripts, message="side", rev_id="side_step", head="base", branch_label="side", splice=True
    )
    script = ScriptDirectory.from_config(scripts).get_revision("side_step")
    assert script is not None
    assert script.branch_labels == {"side"}


def test_undo_amendment_reverses_the_pairs() -> None:
    pairs = [("a", "b"), ("c", "d")]
    assert support.undo_amendment("r", "f()", pairs) == support.amend_function(
        "r", "f()", [("d", "c"), ("b", "a")]
    )


def test_released_revisions_keep_their_ids_and_order() -> None:
    scripts = ScriptDirectory.from_config(migrate.alembic_config())
    order = [s.revision for s in reversed(list(scripts.walk_revisions()))]
    assert order == [
        "baseline",
        "add_configuration_management",
        "keyed_audit_chain",
        "least_privilege_roles",
        "database_recorded_writes",
        "managed_tokens",
        "runtime_functions",
        "run_provenance",
        "approvals",
        "citus_distribution",
        "citus_runtime",
        "fleet_chain_lock",
    ]
    assert all(not s.branch_labels and not s.dependencies for s in scripts.walk_revisions())


def test_the_head_is_read_from_the_scripts_without_running_them(
    scripts: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    shipped = ScriptDirectory.from_config(migrate.alembic_config()).get_current_head()
    assert migrate.shipped_head() == shipped
    # A revision made from the template is read the same way; a second head is left to
    # Alembic (None: the schema check then asks it).
    location = Path(scripts.get_main_option("script_location") or "")
    monkeypatch.setattr(migrate, "SCRIPT_LOCATION", location)
    migrate.shipped_head.cache_clear()
    try:
        command.revision(scripts, message="next step", rev_id="next_step")
        assert migrate.shipped_head() == "next_step"
        migrate.shipped_head.cache_clear()
        command.revision(scripts, message="side", rev_id="side", head="base", splice=True)
        assert len(ScriptDirectory.from_config(scripts).get_heads()) == 2
        assert migrate.shipped_head() is None
    finally:
        migrate.shipped_head.cache_clear()
