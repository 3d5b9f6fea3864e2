"""``--revision`` reads git's objects; ``--changed-from`` compares the working tree."""

from __future__ import annotations

from click.testing import CliRunner

from reconciler.cli.main import cli


def test_revision_does_not_combine_with_changed_from() -> None:
    for verb in ("plan", "apply"):
        result = CliRunner().invoke(cli, [verb, "--revision", "HEAD", "--changed-from", "main"])
        assert result.exit_code == 1 and "does not combine with --revision" in result.output
