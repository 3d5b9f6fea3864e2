"""``reconciler fmt``: the canonical layout, idempotent, never changing a value."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from reconciler.cli.main import cli
from reconciler.errors import ConfigError
from reconciler.fmt import format_text
from reconciler.yaml_source import parse_documents

REPO = Path(__file__).resolve().parents[2]

MESSY = """\
# yaml-language-server: $schema=../../schemas/manifest.v1.json
apiVersion: reconciler/v1
tenant: 'acme'
environments:
  production:
    events: [invoice.paid, 'charge.refunded']
    retry: {max_attempts: 3, multiplier: 2.5}
    # the accounts
    accounts:
    - id: acct_1
      livemode: true
      note: |
        two
        lines
    country: 'no'
    octal: '0755'
    empty: {}
    nothing:
    quoted_null: 'null'
    when: 2024-01-02
"""

CANONICAL = """\
# yaml-language-server: $schema=../../schemas/manifest.v1.json
apiVersion: reconciler/v1
tenant: acme
environments:
    production:
        events:
            - invoice.paid
            - charge.refunded
        retry:
            max_attempts: 3
            multiplier: 2.5
        # the accounts
        accounts:
            - id: acct_1
              livemode: true
              note: |
                two
                lines
        country: "no"
        octal: "0755"
        empty: {}
        nothing:
        quoted_null: "null"
        when: 2024-01-02
"""


def test_canonical_layout() -> None:
    assert format_text(MESSY, source="m") == CANONICAL
    assert parse_documents(CANONICAL) == parse_documents(MESSY)


def test_idempotent() -> None:
    assert format_text(CANONICAL, source="c") == CANONICAL


def test_multiple_documents_and_strings_needing_quotes() -> None:
    text = "a: 'x: y'\nb: \"tab\\there\"\n---\nc: [1, '2']\n"
    out = format_text(text, source="t")
    assert out == 'a: "x: y"\nb: "tab\\there"\n---\nc:\n    - 1\n    - "2"\n'
    assert parse_documents(out) == parse_documents(text)


def test_invalid_yaml_is_an_error() -> None:
    with pytest.raises(ConfigError, match=r"t\.yaml: invalid YAML"):
        format_text("a: [\n", source="t.yaml")


def test_cli_check_lists_files_and_exits_1_then_fmt_fixes_them(tmp_path: Path) -> None:
    messy = tmp_path / "tenants" / "a.yaml"
    messy.parent.mkdir()
    messy.write_text(MESSY)
    tidy = tmp_path / "tenants" / "b.yaml"
    tidy.write_text(CANONICAL)
    runner = CliRunner()
    check = runner.invoke(cli, ["fmt", "--check", "--quiet", str(tmp_path)])
    assert check.exit_code == 1
    assert check.stdout.splitlines() == [str(messy)]
    assert "1 file(s) not formatted" in check.stderr
    assert messy.read_text() == MESSY

    fix = runner.invoke(cli, ["fmt", str(tmp_path)])
    assert fix.exit_code == 0, fix.output
    assert messy.read_text() == CANONICAL
    assert "Formatting 2 file(s)... 1 to change" in fix.stderr
    assert runner.invoke(cli, ["fmt", "--check", str(tmp_path)]).exit_code == 0


def test_the_repository_manifests_are_formatted() -> None:
    result = CliRunner().invoke(cli, ["fmt", "--check", "--quiet", str(REPO / "manifests")])
    assert result.exit_code == 0, result.output
