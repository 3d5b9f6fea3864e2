"""CLI commands: validate."""

from __future__ import annotations

from pathlib import Path

import click

from reconciler.cli.exit_codes import ExitCode
from reconciler.cli.options import handle_errors, make_selectors, manifests_option, selector_options
from reconciler.load.validate import validate_manifests
from reconciler.progress import QUIET, Progress
from reconciler.render.diagnostics import RENDERERS
from reconciler.settings import load_settings


def register(group: click.Group) -> None:
    """Add this module's commands to the root group."""
    group.add_command(validate)


@click.command()
@click.argument(
    "paths", nargs=-1, type=click.Path(exists=True, path_type=Path), metavar="[PATH]..."
)
@manifests_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(sorted(RENDERERS)),
    default="text",
    show_default=True,
    help="text: one line per problem; json: machine-readable; github: workflow annotations.",
)
@click.option("--strict", is_flag=True, help="Warnings fail the run too.")
@selector_options
@handle_errors
def validate(
    paths: tuple[Path, ...],
    manifests_dir: str | None,
    fmt: str,
    strict: bool,
    tenants: tuple[str, ...],
    platforms: tuple[str, ...],
    exclude_tenants: tuple[str, ...],
) -> None:
    """Check manifests (syntax, schema, domain rules, secrets); no database needed.

    PATHs are manifest files or directories (default: the manifests directory). Secrets are
    decrypted with the age key from SOPS_AGE_KEY_FILE / SOPS_AGE_KEY when one is available;
    without a key everything else is still checked. Exit 0 when valid, 1 when not.
    """
    configured = load_settings().manifests_dir
    default = configured if configured != Path("manifests") else None
    selectors = make_selectors(tenants, platforms, exclude_tenants)
    # A live bar on a terminal only: the output of validate in CI logs stays as it was.
    progress = Progress()
    with (progress if progress.live else QUIET).stage("Loading manifests", unit="file") as stage:
        report = validate_manifests(
            paths,
            manifests_dir=Path(manifests_dir) if manifests_dir else default,
            selectors=selectors,
            strict=strict,
            progress=stage,
        )
        stage["detail"] = f"{report.files} files"
    click.echo(RENDERERS[fmt](report), nl=False)
    if not report.valid:
        raise SystemExit(ExitCode.ERROR)
