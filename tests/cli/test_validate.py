"""``reconciler validate``: formats, exit codes, selectors, key handling."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from reconciler.cli.main import cli

REPO = Path(__file__).resolve().parents[2]
CASES = REPO / "tests" / "cases" / "invalid"
DEMO_KEY = REPO / "examples" / "demo-keys" / "age-key.txt"


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """A runner in the repository with no age key anywhere in its environment."""
    monkeypatch.chdir(REPO)
    for name in ("SOPS_AGE_KEY", "SOPS_AGE_KEY_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    return CliRunner()


def test_examples_valid_without_key_with_note(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["validate"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[-1] == "13 files valid"
    assert lines[0].startswith("note: secrets of ") and "SOPS_AGE_KEY_FILE" in lines[0]


def test_examples_valid_with_demo_key(runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(DEMO_KEY))
    result = runner.invoke(cli, ["validate", "--format", "json"])
    assert result.exit_code == 0, result.output
    record = json.loads(result.output)
    assert record == {
        "format_version": 1,
        "valid": True,
        "files": 13,
        "errors": 0,
        "warnings": 0,
        "skipped_decryption": [],
        "diagnostics": [],
    }


def test_text_format_and_exit_code(runner: CliRunner) -> None:
    case = CASES / "http-endpoint" / "manifests"
    result = runner.invoke(cli, ["validate", str(case)])
    assert result.exit_code == 1
    first, *_, last = result.output.splitlines()
    assert first.startswith(
        "tests/cases/invalid/http-endpoint/manifests/tenants/acme/stripe.yaml:19:31: "
        "environments.production.webhooks.billing-events.endpoint_url: endpoint_url must use "
        "https://"
    )
    assert first.endswith("[RCN-WH-1]")
    assert last == "1 error in 1 of 1 file"


def test_json_format(runner: CliRunner) -> None:
    case = CASES / "unknown-event-with-suggestion" / "manifests"
    result = runner.invoke(cli, ["validate", str(case), "--format", "json"])
    assert result.exit_code == 1
    record = json.loads(result.output)
    assert record["valid"] is False and record["errors"] == 1 and record["files"] == 1
    (diag,) = record["diagnostics"]
    assert diag["code"] == "RCN-WH-4"
    assert diag["path"] == "environments.production.webhooks.billing-events.events[0]"
    assert diag["line"] == 23 and diag["column"] == 23
    assert "did you mean 'invoice.paid'?" in diag["message"]


def test_github_format_line_and_column(runner: CliRunner) -> None:
    case = CASES / "bad-acct-id" / "manifests"
    result = runner.invoke(cli, ["validate", str(case), "--format", "github"])
    assert result.exit_code == 1
    annotation = result.output.splitlines()[0]
    assert annotation.startswith(
        "::error file=tests/cases/invalid/bad-acct-id/manifests/tenants/acme/stripe.yaml,"
        "line=26,col=34,title=RCN-ID-1::environments.production.oauth_accounts[0]"
        ".stripe_account_id: stripe_account_id must be"
    )


def test_github_escapes_and_warnings(runner: CliRunner) -> None:
    case = CASES / "stripe-wildcard-warning" / "manifests"
    result = runner.invoke(cli, ["validate", str(case), "--format", "github"])
    assert result.exit_code == 0
    assert result.output.startswith("::warning file=")
    assert ",title=RCN-WH-6::" in result.output


def test_strict_makes_warnings_fail(runner: CliRunner) -> None:
    case = str(CASES / "sync-interval-warning" / "manifests")
    assert runner.invoke(cli, ["validate", case]).exit_code == 0
    strict = runner.invoke(cli, ["validate", case, "--strict"])
    assert strict.exit_code == 1
    assert strict.output.splitlines()[-1] == "1 warning in 1 of 1 file"


def test_file_argument_and_selectors(runner: CliRunner) -> None:
    one = "manifests/tenants/acme-robotics/stripe.yaml"
    result = runner.invoke(cli, ["validate", one])
    assert result.exit_code == 0
    assert result.output.splitlines()[-1] == "3 files valid"  # the file and its two templates
    result = runner.invoke(cli, ["validate", "--tenant", "initech-health", "--platform", "stripe"])
    assert result.exit_code == 0
    assert result.output.splitlines()[-1] == "1 file valid"


def test_cross_file_error_names_the_other_file(runner: CliRunner) -> None:
    case = CASES / "cross-file-hubspot-endpoint" / "manifests"
    result = runner.invoke(cli, ["validate", str(case), "--format", "json"])
    (diag,) = json.loads(result.output)["diagnostics"]
    assert diag["file"].endswith("tenants/beta/hubspot.yaml")
    assert "tenants/acme/hubspot.yaml" in diag["message"]


def test_missing_manifests_directory(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(cli, ["validate", "--manifests", str(tmp_path / "nope")])
    assert result.exit_code == 1
    assert "does not exist" in result.output


def test_many_errors_all_reported(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["validate", str(CASES), "--format", "json"])
    assert result.exit_code == 1
    record = json.loads(result.output)
    files = {d["file"].split("/invalid/")[1].split("/")[0] for d in record["diagnostics"]}
    assert len(files) >= 70  # one run, every case directory reported


def test_manifests_directory_from_reconciler_yaml(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    shutil.copytree(REPO / "manifests", tmp_path / "config" / "manifests")
    (tmp_path / "reconciler.yaml").write_text("manifests: config/manifests\n")
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(cli, ["validate"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == "13 files valid"
