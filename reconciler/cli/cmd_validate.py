"""CLI commands: validate."""

from __future__ import annotations

from pathlib import Path

import click

from reconciler.cli.exit_codes import ExitCode
from reconciler.cli.options import (
    handle_errors,
    make_selectors,
    manifests_option,
    output_options,
    selector_options,
)
from reconciler.commands.preflight import check_manifests
from reconciler.errors import UsageProblem
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
@click.option("--strict", is_flag=True, help="Warnings fail the run too.")
@selector_options
@output_options(formats=tuple(sorted(RENDERERS)))
@handle_errors
def validate(
    paths: tuple[Path, ...],
    manifests_dir: str | None,
    fmt: str,
    strict: bool,
    tenants: tuple[str, ...],
    platforms: tuple[str, ...],
    exclude_tenants: tuple[str, ...],
    quiet: bool,
) -> None:
    """Check manifests (syntax, schema, domain rules, secrets); no database needed.

    PATHs are manifest files or directories (default: the manifests directory). Secrets are
    decrypted with the age key from SOPS_AGE_KEY_FILE / SOPS_AGE_KEY when one is available;
    without a key everything else is still checked. Exit 0 when valid, 1 when not, 64 when
    a selector or PATH matches no manifest (an empty run is not a passing one).

    \b
    Examples:
      reconciler validate
      reconciler validate --format github            # annotations on a pull request
      reconciler validate manifests/tenants/acme     # one tenant's files
      reconciler validate --tenant acme --strict     # warnings fail too
    """
    configured = load_settings().manifests_dir
    default = configured if configured != Path("manifests") else None
    selectors = make_selectors(tenants, platforms, exclude_tenants)
    root = Path(manifests_dir) if manifests_dir else default
    if not paths:
        check_manifests(root or Path("manifests"), selectors)
    # A live bar on a terminal only: the output of validate in CI logs stays as it was.
    progress = Progress()
    with (progress if progress.live and not quiet else QUIET).stage(
        "Loading manifests", unit="file"
    ) as stage:
        report = validate_manifests(
            paths, manifests_dir=root, selectors=selectors, strict=strict, progress=stage
        )
        stage["detail"] = f"{report.files} files"
    if report.files == 0 and not report.diagnostics:
        raise UsageProblem(
            "no manifest file matched "
            + (", ".join(str(p) for p in paths) if paths else "the selection")
            + "; nothing was validated"
        )
    rendered = RENDERERS[fmt](report)
    if quiet and fmt == "text" and report.valid:
        rendered = ""  # --quiet: a passing text run prints nothing; problems still print
    click.echo(rendered, nl=False)
    if not report.valid:
        raise SystemExit(ExitCode.ERROR)
