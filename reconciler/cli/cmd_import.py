"""CLI command: ``reconciler import`` (database to SOPS-encrypted manifests)."""

from __future__ import annotations

from pathlib import Path

import click

from reconciler.cli.options import (
    database_url_option,
    handle_errors,
    output_options,
    path_option,
)
from reconciler.commands.importing import import_manifests
from reconciler.model.enums import Platform
from reconciler.progress import Progress


@click.command("import")
@output_options()
@click.option(
    "--tenant",
    "tenants",
    multiple=True,
    required=True,
    metavar="T",
    help="Tenant to import (repeatable).",
)
@path_option(
    "--out",
    "out_dir",
    "Manifests directory to write tenants/<tenant>/<platform>.yaml into. "
    "Default: the manifests directory of reconciler.yaml, else ./manifests.",
    metavar="DIR",
    directory=True,
)
@click.option(
    "--platform",
    "platforms",
    multiple=True,
    type=click.Choice([p.file_stem for p in Platform], case_sensitive=False),
    help="Only this platform (repeatable). Default: every platform the tenant has rows for.",
)
@click.option("--force", is_flag=True, help="Replace manifest files that already exist.")
@click.option("--quiet", "-q", is_flag=True, help="No progress lines on stderr.")
@database_url_option
@handle_errors
def import_cmd(
    tenants: tuple[str, ...],
    out_dir: Path | None,
    platforms: tuple[str, ...],
    force: bool,
    quiet: bool,
    database_url: str | None,
) -> None:
    """Write a tenant's configuration from the database as SOPS-encrypted manifests.

    Reads the tenant's integrations, webhooks and connected OAuth accounts, decrypts the
    stored secrets with the keyring and writes one manifest per platform, its secret
    fields encrypted for the recipients of the matching .sops.yaml creation rule.
    Afterwards `reconciler plan` shows no changes for the tenant.

    Values the database does not store (for example the Intuit app_id of an inbound
    QuickBooks webhook) are left out and listed as warnings naming file and field: fill
    them in before committing. Existing files are never replaced without --force.

    \b
    Examples:
      reconciler import --tenant acme-robotics
      reconciler import --tenant acme-robotics --platform stripe --out manifests --force
    """
    result = import_manifests(
        tenants=tenants,
        out_dir=out_dir,
        platforms=tuple(Platform(p.upper()) for p in platforms),
        force=force,
        database_url=database_url,
        progress=Progress(enabled=not quiet),
    )
    for note in result.notes:
        click.echo(note.format(str(result.out_dir)), err=True)
    for written in result.written:
        verb = "Replaced" if written.replaced else "Wrote"
        click.echo(f"{verb} {written.path} ({written.secrets} secret(s) encrypted)")
    if result.notes:
        click.echo(
            f"{len(result.notes)} field(s) need attention (warnings above); then run "
            "`reconciler validate` and `reconciler plan`."
        )
    else:
        click.echo("Next: `reconciler validate` and `reconciler plan` (expect no changes).")


def register(cli: click.Group) -> None:
    """Add the command to the ``reconciler`` group."""
    cli.add_command(import_cmd)
