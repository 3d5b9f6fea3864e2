"""CLI command: ``reconciler fmt [--check] [PATH]...``."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from reconciler.cli.exit_codes import ExitCode
from reconciler.cli.options import handle_errors, output_options
from reconciler.commands.formatting import format_paths
from reconciler.progress import Progress
from reconciler.settings import load_settings


@click.command("fmt")
@output_options()
@click.argument(
    "paths", nargs=-1, type=click.Path(exists=True, path_type=Path), metavar="[PATH]..."
)
@click.option("--check", is_flag=True, help="Change nothing; exit 1 listing files to format.")
@click.option("--quiet", is_flag=True, help="No progress on stderr.")
@handle_errors
def fmt(paths: tuple[Path, ...], check: bool, quiet: bool) -> None:
    """Rewrite manifests and templates in the canonical layout.

    \b
    4-space indentation with list items indented under their key (the layout sops writes),
    block style for non-empty mappings and lists, strings quoted only when needed (in double
    quotes), multi-line strings as | blocks; comments are kept. Only the layout changes:
    values and their order never do, so encrypted files stay valid without the key.
    PATHs are files or directories (default: the manifests directory).

    With --check nothing is written; the files that would change are listed on stdout and
    the exit code is 1 (for CI and pre-commit).

    \b
    Examples:
      reconciler fmt                                  # the manifests directory
      reconciler fmt manifests/tenants/acme-robotics
      reconciler fmt --check                          # in CI or a pre-commit hook
    """
    targets = paths or (load_settings().manifests_dir,)
    report = format_paths(list(targets), write=not check, progress=Progress(enabled=not quiet))
    for error in report.errors:
        click.echo(f"Error: {error}", err=True)
    for path in report.changed:
        click.echo(str(path) if check else f"formatted {path}")
    if report.errors or (check and report.changed):
        if check and report.changed:
            click.echo(
                f"{len(report.changed)} file(s) not formatted; run: reconciler fmt", err=True
            )
        sys.exit(ExitCode.ERROR)


def register(group: click.Group) -> None:
    """Add this module's commands to the root group."""
    group.add_command(fmt)
