"""CLI commands: ``reconciler keys status | rotate | adopt-tokens | generate`` (the keyring)."""

from __future__ import annotations

import base64
import os
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any

import click

from reconciler.cli.cmd_audit import format_table
from reconciler.cli.exit_codes import ExitCode
from reconciler.cli.options import database_url_option, handle_errors, output_options
from reconciler.context import resolve_actor, user_agent
from reconciler.crypto.aead import FieldCipher
from reconciler.crypto.audit_key import load_audit_key
from reconciler.crypto.fingerprint import MIN_KEY_BYTES
from reconciler.crypto.keyring import KEYRING_ENV, KEYRING_FILE_ENV, Keyring
from reconciler.crypto.legacy_tokens import LAYOUTS, LEGACY_KEY_ENV, decoder, load_legacy_key
from reconciler.crypto.local_keys import load_keys_for_target
from reconciler.errors import KeyUnavailable
from reconciler.store.audit import AuditContext
from reconciler.store.database import (
    check_connection,
    create_engine,
    ensure_schema_current,
    resolve_database_url,
    translate_db_errors,
)
from reconciler.store.rotate import (
    SECRET_TABLES,
    adopt_tokens,
    check_rotatable,
    key_usage,
    legacy_usage,
    rotate_keys,
)
from reconciler.store.session import Engine


@click.group("keys")
def keys_group() -> None:
    """The keyring that encrypts secrets in the database: status, rotation, new keys."""


@keys_group.command("status")
@output_options()
@database_url_option
@handle_errors
def status_cmd(database_url: str | None) -> None:
    """Rows per key version per table, and which version is active."""
    target = resolve_database_url(database_url)
    engine = create_engine(target, application_name="reconciler keys status")
    try:
        check_connection(engine)
        ensure_schema_current(engine, target)
        with translate_db_errors(engine.url), engine.connect() as conn:
            usage = key_usage(conn)
            legacy = legacy_usage(conn)
    finally:
        engine.dispose()
    problem = ""
    try:
        keyring: Keyring | None = load_keys_for_target(target)[0]
    except KeyUnavailable as exc:
        keyring, problem = None, str(exc)
    click.echo(target.describe())
    if keyring is None:
        click.echo(f"keyring: not available ({problem})")
    else:
        listed = ", ".join(map(str, keyring.versions))
        click.echo(f"keyring: versions {listed}; active (encrypts): {keyring.active_version}")
    click.echo()
    rows: list[tuple[object, ...]] = []
    for table in SECRET_TABLES:
        found = [u for u in usage if u.table == table.name]
        if not found:
            rows.append((table.name, "-", 0, ""))
        for item in found:
            rows.append((table.name, item.version, item.rows, _note(item.version, keyring)))
        for old in legacy:
            if old.table == table.name and old.rows:
                rows.append(
                    (f"{old.table}.{old.column}", "legacy", old.rows, "not in the managed format")
                )
    click.echo(format_table(("TABLE", "KEY VERSION", "ROWS", ""), rows))
    legacy_values = sum(u.rows for u in legacy)
    if keyring is not None:
        stale = sum(u.rows for u in usage if u.version != keyring.active_version)
        click.echo()
        if stale:
            click.echo(f"{stale} row(s) not under the active key: run `reconciler keys rotate`.")
        elif not legacy_values:
            click.echo("Every stored secret is under the active key.")
        else:
            click.echo("Every managed secret is under the active key.")
    if legacy_values:
        click.echo(
            f"{legacy_values} legacy OAuth token value(s) written before adoption (not rcn1): "
            "`reconciler keys adopt-tokens --from LAYOUT` brings them in."
        )


def _note(version: int | None, keyring: Keyring | None) -> str:
    if keyring is None:
        return ""
    if version is None or version not in keyring:
        return "NOT IN KEYRING"
    return "active" if version == keyring.active_version else "needs rotation"


@keys_group.command("rotate")
@output_options()
@click.option(
    "--batch-size",
    type=click.IntRange(1, 10_000),
    default=500,
    show_default=True,
    help="Rows per transaction.",
)
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
    """
    with _reencrypting(database_url, actor, "keys rotate") as (engine, cipher, context):
        with engine.connect() as conn:
            check_rotatable(key_usage(conn), cipher)
        with _Progress() as progress:
            result = rotate_keys(engine, cipher, context, batch_size=batch_size, progress=progress)
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
    if result.remaining:
        click.echo(
            f"{result.remaining} row(s) were held by other transactions and skipped: "
            "run `reconciler keys rotate` again.",
            err=True,
        )
        sys.exit(ExitCode.ERROR)


_ADOPT_HELP = """Store OAuth tokens written before adoption in the managed (rcn1) form.

Every oauth_tokens value that is not in the reconciler's form is read with the layout
--from names and encrypted under the active key version, bound to its row; one LOW ROTATE
audit row per token row. A value that cannot be read (another layout, another key,
damaged) is reported and left as it is; the rest go ahead (exit 0). One transaction per
batch, skipping rows other transactions hold (then it exits 1: run it again).

Run it once the application itself reads tokens in the rcn1 form: it cannot read an
adopted token in its old layout any more.

\b
Layouts:
""" + "\n".join(f"  {name}: {layout.summary}" for name, layout in sorted(LAYOUTS.items()))


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
@click.option(
    "--batch-size",
    type=click.IntRange(1, 10_000),
    default=500,
    show_default=True,
    help="Rows per transaction.",
)
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
    chosen = LAYOUTS[layout_name]
    key = load_legacy_key(os.environ, legacy_key_env) if chosen.needs_key else None
    decode = decoder(layout_name, key)
    with (
        _reencrypting(database_url, actor, "keys adopt-tokens") as (engine, cipher, context),
        _Progress() as progress,
    ):
        result = adopt_tokens(
            engine,
            cipher,
            context,
            layout=layout_name,
            decode=decode,
            batch_size=batch_size,
            dry_run=dry_run,
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
    if result.remaining:
        click.echo(
            f"{result.remaining} legacy row(s) were held by other transactions or written "
            "meanwhile: run `reconciler keys adopt-tokens` again.",
            err=True,
        )
        sys.exit(ExitCode.ERROR)


@contextmanager
def _reencrypting(
    database_url: str | None, actor: str | None, purpose: str
) -> Iterator[tuple[Engine, FieldCipher, AuditContext]]:
    """Keys, audit context and an engine for a command that re-encrypts stored secrets.

    The engine is checked (connection, schema revision) first and always disposed; driver
    errors inside the block become one-line errors.
    """
    target = resolve_database_url(database_url)
    cipher = FieldCipher(*load_keys_for_target(target))
    context = AuditContext(
        performed_by=resolve_actor(actor, os.environ),
        ip_address=None,
        user_agent=user_agent(os.environ),
        session_id=str(uuid.uuid4()),
        key=load_audit_key(target, create=True),
    )
    engine = create_engine(target, application_name=f"reconciler {purpose}")
    try:
        check_connection(engine)
        ensure_schema_current(engine, target)
        with translate_db_errors(engine.url):
            yield engine, cipher, context
    finally:
        engine.dispose()


class _Progress:
    """A progress bar on a terminal, else one line per batch (both on stderr)."""

    def __init__(self) -> None:
        self._tty = sys.stderr.isatty()
        self._bar: Any = None
        self._done = 0
        self._total = 0

    def __enter__(self) -> _Progress:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.__exit__(exc_type, exc, tb)

    def start(self, total: int) -> None:
        self._total = total
        if total == 0:
            click.echo("Nothing to re-encrypt.", err=True)
        elif self._tty:
            self._bar = click.progressbar(length=total, label="Re-encrypting", file=sys.stderr)
            self._bar.__enter__()
        else:
            click.echo(f"Re-encrypting {total} row(s).", err=True)

    def advance(self, table: str, rows: int) -> None:
        self._done += rows
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
    """
    if fingerprint_key:
        click.echo(base64.b64encode(os.urandom(MIN_KEY_BYTES)).decode("ascii"))
        return
    if version is None:
        current = Keyring.from_environ(os.environ)
        version = current.active_version + 1 if current is not None else 1
    click.echo(Keyring.generate_entry(version))
    click.echo(
        f"Add it to ${KEYRING_ENV} (comma-separated) or ${KEYRING_FILE_ENV} (one per line), "
        "then run `reconciler keys rotate`.",
        err=True,
    )


def register(group: click.Group) -> None:
    """Add this module's commands to the root group."""
    group.add_command(keys_group)
