"""CLI commands: schema."""

from __future__ import annotations

from pathlib import Path

import click

from reconciler.cli.exit_codes import ExitCode
from reconciler.cli.options import handle_errors, output_options, path_option
from reconciler.schemas_export import export_schemas, stale_schemas


def register(group: click.Group) -> None:
    """Add this module's commands to the root group."""
    group.add_command(schema)


@click.group()
def schema() -> None:
    """JSON Schemas of the manifest, template and plan formats (for editors and CI)."""


@schema.command("export")
@output_options()
@path_option(
    "--out",
    "out_dir",
    "Directory to write the schemas to.",
    metavar=None,
    directory=True,
    default="schemas",
)
@click.option(
    "--check", is_flag=True, help="Write nothing; exit 1 if a schema in --out is out of date."
)
@handle_errors
def export(out_dir: Path, check: bool) -> None:
    """Write manifest.v1.json, template.v1.json and plan.v1.json, generated from the code.

    \b
    Examples:
      reconciler schema export --out schemas/
      reconciler schema export --check        # in CI: exit 1 when a schema is out of date
    """
    if check:
        stale = stale_schemas(out_dir)
        for path in stale:
            click.echo(f"out of date: {path} (run `reconciler schema export --out {out_dir}`)")
        if stale:
            raise SystemExit(ExitCode.ERROR)
        click.echo(f"schemas in {out_dir} are up to date")
        return
    for path in export_schemas(out_dir):
        click.echo(f"wrote {path}")
