"""Shared click options and the one place that turns exceptions into exit codes."""

from __future__ import annotations

import functools
import os
import sys
import traceback
from collections.abc import Callable
from typing import Any, TypeVar

import click

from reconciler.cli.exit_codes import ExitCode
from reconciler.errors import (
    ManifestInvalid,
    PlanStale,
    PolicyViolation,
    ReconcilerError,
)
from reconciler.load.manifests import check_selectors
from reconciler.model.enums import Platform
from reconciler.model.plan import Selectors
from reconciler.redaction import redact
from reconciler.render.diagnostics import safe_diagnostic
from reconciler.store.database import DRIVER_ERRORS, mask_credentials, unanticipated_error

F = TypeVar("F", bound=Callable[..., Any])

database_url_option = click.option(
    "--database-url",
    metavar="URL",
    default=None,
    help="PostgreSQL URL. Default: $RECONCILER_DATABASE_URL, else $DATABASE_URL, "
    "else an embedded PostgreSQL under .reconciler/ (or $RECONCILER_DATA_DIR).",
)

manifests_option = click.option(
    "--manifests",
    "manifests_dir",
    metavar="DIR",
    default=None,
    type=click.Path(file_okay=False, path_type=str),
    help="Manifest directory (holds tenants/ and templates/). Default: ./manifests.",
)


def selector_options(func: F) -> F:
    """``--tenant`` / ``--platform`` (repeatable) and ``--exclude-tenant``."""
    func = click.option(
        "--exclude-tenant",
        "exclude_tenants",
        multiple=True,
        metavar="T",
        help="Leave this tenant out (repeatable).",
    )(func)
    func = click.option(
        "--platform",
        "platforms",
        multiple=True,
        type=click.Choice([p.file_stem for p in Platform], case_sensitive=False),
        help="Only this platform (repeatable).",
    )(func)
    return click.option(
        "--tenant", "tenants", multiple=True, metavar="T", help="Only this tenant (repeatable)."
    )(func)


def make_selectors(
    tenants: tuple[str, ...], platforms: tuple[str, ...], exclude_tenants: tuple[str, ...]
) -> Selectors:
    """The selectors of ``--tenant``/``--platform``/``--exclude-tenant``.

    Raises:
        ConfigError: a tenant selector is not a tenant id (it would become a path); call this
            before opening a database or reading a file, so a bad flag costs nothing.
    """
    selectors = Selectors(
        tenants=tuple(sorted(set(tenants))),
        platforms=tuple(sorted({Platform(p.upper()) for p in platforms})),
        exclude_tenants=tuple(sorted(set(exclude_tenants))),
    )
    check_selectors(selectors)
    return selectors


def exit_code_for(exc: ReconcilerError) -> ExitCode:
    """Map an exception of the documented tree to its exit code."""
    if isinstance(exc, PlanStale):
        return ExitCode.PLAN_STALE
    if isinstance(exc, PolicyViolation):
        return ExitCode.POLICY_BLOCKED
    return ExitCode.ERROR


def handle_errors(func: F) -> F:
    """Run a command; print a ReconcilerError as one line (no traceback) and exit with its code.

    ``--debug`` on the root group (or ``RECONCILER_DEBUG=1``) also prints the traceback; the
    exit code stays the documented one. Both go through
    :func:`~reconciler.store.database.mask_credentials`.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ManifestInvalid as exc:
            for diagnostic in exc.diagnostics.sorted():
                click.echo(safe_diagnostic(diagnostic).format(), err=True)
            click.echo(f"Error: {redact(str(exc))}", err=True)
            sys.exit(ExitCode.ERROR)
        except ReconcilerError as exc:
            # Masked as a last line of defence: a chained driver error in the traceback, or a
            # message built from one, may quote a database URL or connection string.
            if _debug():
                click.echo(mask_credentials(traceback.format_exc()), err=True, nl=False)
            click.echo(f"Error: {redact(mask_credentials(str(exc)))}", err=True)
            sys.exit(exit_code_for(exc))
        except DRIVER_ERRORS as exc:
            # A database error no layer anticipated: still one line (and the traceback only
            # with --debug), never the statement text or its parameters.
            error = unanticipated_error(exc)
            if _debug():
                click.echo(mask_credentials(traceback.format_exc()), err=True, nl=False)
            click.echo(f"Error: {redact(mask_credentials(str(error)))}", err=True)
            sys.exit(exit_code_for(error))
        except KeyboardInterrupt:
            click.echo("Interrupted: nothing was committed.", err=True)
            sys.exit(130)

    return wrapper  # type: ignore[return-value]


def _debug() -> bool:
    ctx = click.get_current_context(silent=True)
    root = ctx.find_root() if ctx else None
    if root is not None and root.obj and root.obj.get("debug"):
        return True
    return os.environ.get("RECONCILER_DEBUG") == "1"
