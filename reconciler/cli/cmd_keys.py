"""CLI commands: ``reconciler keys status | rotate | adopt-tokens | generate`` (the keyring)."""

from __future__ import annotations

import sys
from contextlib import ExitStack
from typing import Any

import click

from reconciler.cli.exit_codes import ExitCode
from reconciler.cli.options import (
    database_url_option,
    handle_errors,
    output_options,
    quiet_requested,
)
from reconciler.commands.keys import (
    LAYOUTS,
    LEGACY_KEY_ENV,
    adopt_tokens,
    generate_key,
    key_status,
    rotate_keys,
)
from reconciler.crypto.fingerprint import MIN_KEY_BYTES
from reconciler.crypto.keyring import KEYRING_ENV, KEYRING_FILE_ENV
from reconciler.render.keys import render_key_status


@click.group("keys")
def keys_group() -> None:
    """The keyring that encrypts secrets in the database: status, rotation, new keys."""


_batch_size_option = click.option(
    "--batch-size",
    type=click.IntRange(1, 10_000),
    default=500,
    show_default=True,
    help="Rows per transaction.",
)


@keys_group.command("status")
@output_options()
@database_url_option
@handle_errors
def status_cmd(database_url: str | None) -> None:
    """Rows per key version per table, and which version is active.

    \b
    Example:
      reconciler keys status --database-url "$DATABASE_URL"
    """
    click.echo(render_key_status(key_status(database_url=database_url)), nl=False)


@keys_group.command("rotate")
@output_options()
@_batch_size_option
@click.option("--actor", default=None, help="Who rotates (audit). Default: $RECONCILER_ACTOR...")
@database_url_option
@handle_errors
def rotate_cmd(batch_size: int, actor: str | None, database_url: str | None) -> None:
    """Re-encrypt every stored secret under the active (highest) key version.

    \b
    Safe while the system is live: each batch is one transaction that skips rows other
    transactions hold; run it again to pick those up. Resumable: after an interruption,
    run it again and it continues where it stopped. One ROTATE audit row per row.
    OAuth tokens still in the application's own (legacy) form are reported and left as
    they are (see `reconciler keys adopt-tokens`).

    \b
    Example:
      reconciler keys generate >> keyring.txt      # then deploy the new keyring
      reconciler keys rotate --actor ops --batch-size 1000
      reconciler keys status
    """
    with _Progress(enabled=not quiet_requested()) as progress:
        result = rotate_keys(
            batch_size=batch_size, actor=actor, database_url=database_url, progress=progress
        )
    per_table = ", ".join(f"{name} {count}" for name, count in result.rotated.items())
    click.echo(
        f"Re-encrypted {result.total} row(s) under key version {result.active_version} "
        f"in {result.batches} batch(es): {per_table}."
    )
    if result.legacy:
        click.echo(
            f"{result.legacy} OAuth token row(s) hold legacy values written before adoption "
            "and were left as they are: `reconciler keys adopt-tokens --from LAYOUT` brings "
            "them in.",
            err=True,
        )
    _exit_when_rows_left(
        result.remaining, "row(s) were held by other transactions and skipped", "keys rotate"
    )


def _exit_when_rows_left(remaining: int, why: str, command: str) -> None:
    """Exit 1 when ``remaining`` rows were left (``why``); running ``command`` again does them."""
    if remaining:
        click.echo(f"{remaining} {why}: run `reconciler {command}` again.", err=True)
        sys.exit(ExitCode.ERROR)


_ADOPT_HELP = (
    """Store OAuth tokens written before adoption in the managed (rcn1) form.

Every oauth_tokens value that is not in the reconciler's form is read with the layout
--from names and encrypted under the active key version, bound to its row; one LOW ROTATE
audit row per token row. A value that cannot be read (another layout, another key,
damaged) is reported and left as it is; the rest go ahead (exit 0). One transaction per
batch, skipping rows other transactions hold (then it exits 1: run it again).

Run it once the application itself reads tokens in the rcn1 form: it cannot read an
adopted token in its old layout any more.

\b
Examples:
  reconciler keys adopt-tokens --from {first} --dry-run
  reconciler keys adopt-tokens --from {first} --actor ops

\b
Layouts:
""".replace("{first}", sorted(LAYOUTS)[0])
    + "\n".join(f"  {name}: {layout.summary}" for name, layout in sorted(LAYOUTS.items()))
)


@keys_group.command("adopt-tokens", help=_ADOPT_HELP)
@output_options()
@click.option(
    "--from",
    "layout_name",
    type=click.Choice(sorted(LAYOUTS)),
    required=True,
    help="How the application stored its tokens (see the layouts below).",
)
@click.option(
    "--legacy-key-env",
    metavar="VAR",
    default=LEGACY_KEY_ENV,
    show_default=True,
    help="Environment variable holding the application's token key (64 hex digits or "
    "base64 of 32 bytes), for the encrypted layouts. The key itself is never an option.",
)
@click.option("--dry-run", is_flag=True, help="Read and re-encrypt everything, then roll back.")
@_batch_size_option
@click.option("--actor", default=None, help="Who adopts (audit). Default: $RECONCILER_ACTOR...")
@database_url_option
@handle_errors
def adopt_tokens_cmd(
    layout_name: str,
    legacy_key_env: str,
    dry_run: bool,
    batch_size: int,
    actor: str | None,
    database_url: str | None,
) -> None:
    """Store OAuth tokens written before adoption in the managed (rcn1) form (see --help)."""
    with _Progress(enabled=not quiet_requested()) as progress:
        result = adopt_tokens(
            layout=layout_name,
            legacy_key_env=legacy_key_env,
            dry_run=dry_run,
            batch_size=batch_size,
            actor=actor,
            database_url=database_url,
            progress=progress,
        )
    for refused in result.refused:
        click.echo(f"refused: {refused.describe()}", err=True)
    verb = "Would adopt" if dry_run else "Adopted"
    click.echo(
        f"{verb} {result.adopted} OAuth token row(s) from {layout_name} into the managed form "
        f"under key version {result.active_version}; {len(result.refused)} refused"
        + (" (dry run: nothing written)." if dry_run else ".")
    )
    _exit_when_rows_left(
        result.remaining,
        "legacy row(s) were held by other transactions or written meanwhile",
        "keys adopt-tokens",
    )


class _Progress(ExitStack):
    """A progress bar on a terminal, else one line per batch (both on stderr); nothing with
    ``--quiet``. Used as a context manager: leaving it closes the bar."""

    def __init__(self, *, enabled: bool = True) -> None:
        super().__init__()
        self._enabled = enabled
        self._tty = sys.stderr.isatty()
        self._bar: Any = None
        self._done = 0
        self._total = 0

    def start(self, total: int) -> None:
        self._total = total
        if not self._enabled:
            return
        if total == 0:
            click.echo("Nothing to re-encrypt.", err=True)
        elif self._tty:
            self._bar = self.enter_context(
                click.progressbar(length=total, label="Re-encrypting", file=sys.stderr)
            )
        else:
            click.echo(f"Re-encrypting {total} row(s).", err=True)

    def advance(self, table: str, rows: int) -> None:
        self._done += rows
        if not self._enabled:
            return
        if self._bar is not None:
            self._bar.update(rows)
        else:
            total = max(self._total, self._done)
            click.echo(f"{table}: {rows} row(s) re-encrypted ({self._done}/{total})", err=True)


@keys_group.command("generate")
@output_options()
@click.option(
    "--version",
    "version",
    type=click.IntRange(1),
    default=None,
    help="Version of the new entry. Default: one above the configured keyring's newest, else 1.",
)
@click.option(
    "--fingerprint-key",
    is_flag=True,
    help=f"Print a new value for $RECONCILER_FINGERPRINT_KEY ({MIN_KEY_BYTES} random bytes).",
)
@handle_errors
def generate_cmd(version: int | None, fingerprint_key: bool) -> None:
    """Print a new random keyring entry VERSION:BASE64 (a secret: store it like one).

    \b
    Rotation: append the entry to $RECONCILER_KEYRING or $RECONCILER_KEYRING_FILE
    everywhere the reconciler runs, then run `reconciler keys rotate`.

    \b
    Examples:
      reconciler keys generate                       # next version of the keyring
      reconciler keys generate --version 3
      reconciler keys generate --fingerprint-key     # for $RECONCILER_FINGERPRINT_KEY
    """
    generated = generate_key(version=version, fingerprint_key=fingerprint_key)
    click.echo(generated.value)
    if fingerprint_key or quiet_requested():
        return
    click.echo(
        f"Add it to ${KEYRING_ENV} (comma-separated) or ${KEYRING_FILE_ENV} (one per line), "
        "then run `reconciler keys rotate`.",
        err=True,
    )


def register(group: click.Group) -> None:
    """Add this module's commands to the root group."""
    group.add_command(keys_group)
