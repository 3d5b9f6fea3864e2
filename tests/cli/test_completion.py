"""Shell completion (click's): tenant ids complete from the manifests directory."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from reconciler.cli.main import cli

REPO = Path(__file__).resolve().parents[2]


def _complete(words: str, cwd: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    monkeypatch.chdir(cwd)
    result = CliRunner().invoke(
        cli,
        [],
        prog_name="reconciler",
        env={
            "_RECONCILER_COMPLETE": "bash_complete",
            "COMP_WORDS": words,
            "COMP_CWORD": str(len(words.split()) - (0 if words.endswith(" ") else 1)),
        },
    )
    assert result.exit_code == 0, result.output
    # bash format: one "type,value" line per candidate
    return [line.split(",", 1)[1] for line in result.stdout.splitlines() if line]


def test_tenants_complete_from_the_manifests_directory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert _complete("reconciler plan --tenant ac", REPO, monkeypatch) == ["acme-robotics"]
    assert _complete("reconciler validate --exclude-tenant ", REPO, monkeypatch) == [
        "acme-robotics",
        "globex-logistics",
        "initech-health",
    ]


def test_the_manifests_option_is_followed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "other" / "tenants" / "zeta-corp").mkdir(parents=True)
    (tmp_path / "other" / "tenants" / "not a tenant").mkdir()
    words = "reconciler plan --manifests other --tenant "
    assert _complete(words, tmp_path, monkeypatch) == ["zeta-corp"]
    assert _complete("reconciler plan --tenant ", tmp_path, monkeypatch) == []  # no manifests/
