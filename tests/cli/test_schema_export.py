"""``reconciler schema export``: the committed schemas are what the code generates."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from reconciler.cli.main import cli
from reconciler.schemas_export import REGISTRY, export_schemas, stale_schemas

REPO = Path(__file__).resolve().parents[2]


def test_committed_schemas_are_up_to_date() -> None:
    stale = stale_schemas(REPO / "schemas")
    assert stale == [], "run `reconciler schema export` and commit schemas/"


def test_export_writes_every_schema(tmp_path: Path) -> None:
    written = export_schemas(tmp_path / "out")
    names = {p.name for p in written}
    assert names == set(REGISTRY) == {"manifest.v1.json", "template.v1.json", "plan.v1.json"}
    assert stale_schemas(tmp_path / "out") == []


def test_cli_export_and_check(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "schemas"
    assert runner.invoke(cli, ["schema", "export", "--out", str(out), "--check"]).exit_code == 1
    result = runner.invoke(cli, ["schema", "export", "--out", str(out)])
    assert result.exit_code == 0 and "manifest.v1.json" in result.output
    assert runner.invoke(cli, ["schema", "export", "--out", str(out), "--check"]).exit_code == 0
    (out / "manifest.v1.json").write_text("{}\n")
    check = runner.invoke(cli, ["schema", "export", "--out", str(out), "--check"])
    assert check.exit_code == 1 and "out of date" in check.output
