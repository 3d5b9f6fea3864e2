"""CLI command: show (render a saved plan; no database, no keys)."""

from __future__ import annotations

from pathlib import Path

import click

from reconciler.cli.options import handle_errors, output_options, use_color
from reconciler.commands.show import show
from reconciler.render.plan_formats import PLAN_FORMATS, render_plan


def register(group: click.Group) -> None:
    """Add ``show`` to the root group."""
    group.add_command(show_cmd)


@click.command("show")
@click.argument("plan_file", type=click.Path(dir_okay=False, path_type=Path), metavar="PLAN")
@click.option(
    "--show-notices",
    is_flag=True,
    help="List every notice; by default text and markdown count them by kind.",
)
@output_options(formats=PLAN_FORMATS)
@handle_errors
def show_cmd(plan_file: Path, show_notices: bool, fmt: str, quiet: bool, no_color: bool) -> None:
    """Render a saved plan file; needs no database and no keys.

    PLAN is a file from `reconciler plan --out`. The pull request shows exactly the plan
    the deploy job will apply. The policy verdict (what apply would refuse) is derived
    again from the plan's changes, never taken from the file.

    \b
    Examples:
      reconciler plan --out plan.json --quiet
      reconciler show plan.json                          # text, as `plan` prints it
      reconciler show plan.json --format markdown > comment.md
      reconciler show plan.json --format markdown >> "$GITHUB_STEP_SUMMARY"
      reconciler show plan.json --format github          # annotations on the PR's files
    """
    shown = show(plan_file)
    for warning in shown.warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(
        render_plan(shown.plan, fmt, color=use_color(no_color), show_notices=show_notices),
        nl=False,
    )
