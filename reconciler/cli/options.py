"""Shared click options and the one place that turns exceptions into exit codes."""

from __future__ import annotations

import functools
import inspect
import os
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
from click.shell_completion import CompletionItem

from reconciler.cli.exit_codes import ExitCode
from reconciler.errors import (
    ManifestInvalid,
    PlanStale,
    PolicyViolation,
    ReconcilerError,
    UsageProblem,
)
from reconciler.model.enums import Platform
from reconciler.model.plan import Selectors
from reconciler.redaction import redact
from reconciler.render.diagnostics import safe_diagnostic

if TYPE_CHECKING:
    from reconciler.settings import Settings

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


text_or_json_option = click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="text for people, json for machines.",
)
"""``--format text|json``: for the commands whose output is a report, not a plan."""


def path_option(
    flag: str,
    dest: str,
    help_text: str,
    *,
    metavar: str | None = "FILE",
    directory: bool = False,
    default: str | None = None,
) -> Callable[[F], F]:
    """An option naming one file (with ``directory``, one directory), as a
    :class:`~pathlib.Path`; with ``default``, shown in the help."""
    kind = click.Path(file_okay=not directory, dir_okay=directory, path_type=Path)
    return click.option(
        flag,
        dest,
        metavar=metavar,
        type=kind,
        default=default,
        show_default=default is not None,
        help=help_text,
    )


def manifests_and_database(func: F) -> F:
    """``--manifests`` and ``--database-url``: every command that reads both."""
    return manifests_option(database_url_option(func))


def manifests_path(settings: Settings, given: str | None) -> Path:
    """The manifest directory: ``--manifests`` when given, else the one in ``reconciler.yaml``."""
    return Path(given) if given else settings.manifests_dir


def complete_tenants(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """Shell completion of tenant ids: the folders of ``<manifests>/tenants/``.

    The manifests directory is ``--manifests`` when already typed, else the configured one.
    Completion must never fail loudly, so any problem completes nothing.
    """
    from reconciler.load.manifests import is_tenant_id
    from reconciler.settings import load_settings

    try:
        given = ctx.params.get("manifests_dir")
        root = Path(given) if given else load_settings().manifests_dir
        names = sorted(entry.name for entry in (root / "tenants").iterdir() if entry.is_dir())
    except (OSError, ReconcilerError):
        return []
    return [CompletionItem(n) for n in names if n.startswith(incomplete) and is_tenant_id(n)]


platform_option = click.option(
    "--platform",
    "platforms",
    multiple=True,
    type=click.Choice([p.file_stem for p in Platform], case_sensitive=False),
    help="Only this platform (repeatable).",
)
"""``--platform`` (repeatable), the platform part of :func:`selector_options`."""


def selector_options(func: F) -> F:
    """``--tenant`` / ``--platform`` (repeatable) and ``--exclude-tenant``."""
    func = click.option(
        "--exclude-tenant",
        "exclude_tenants",
        multiple=True,
        metavar="T",
        shell_complete=complete_tenants,
        help="Leave this tenant out (repeatable).",
    )(func)
    func = platform_option(func)
    return click.option(
        "--tenant",
        "tenants",
        multiple=True,
        metavar="T",
        shell_complete=complete_tenants,
        help="Only this tenant (repeatable).",
    )(func)


def make_selectors(
    tenants: tuple[str, ...], platforms: tuple[str, ...], exclude_tenants: tuple[str, ...]
) -> Selectors:
    """The selectors of ``--tenant``/``--platform``/``--exclude-tenant``.

    Raises:
        ConfigError: a tenant selector is not a tenant id (it would become a path); call this
            before opening a database or reading a file, so a bad flag costs nothing.
    """
    from reconciler.load.manifests import check_selectors

    selectors = Selectors(
        tenants=tuple(sorted(set(tenants))),
        platforms=tuple(sorted({Platform(p.upper()) for p in platforms})),
        exclude_tenants=tuple(sorted(set(exclude_tenants))),
    )
    check_selectors(selectors)
    return selectors


revision_option = click.option(
    "--revision",
    metavar="REV",
    help="Read the manifests as they were at git revision REV (from git's objects; the "
    "working tree is not touched): `apply --revision <good commit>` rolls back.",
)

changed_from_option = click.option(
    "--changed-from",
    metavar="REF",
    help="Only the tenants whose manifests differ from git REF (e.g. origin/main), for fast "
    "pull-request plans; a template change plans every tenant.",
)


@dataclass(frozen=True, slots=True)
class Target:
    """What a command that plans works on: ``--tenant``/``--platform``/``--exclude-tenant``,
    ``--manifests`` and ``--database-url``, as given (see :func:`target_options`), and for
    ``plan`` and ``apply`` also ``--revision`` and ``--changed-from`` (None elsewhere)."""

    tenants: tuple[str, ...]
    platforms: tuple[str, ...]
    exclude_tenants: tuple[str, ...]
    manifests_dir: str | None
    database_url: str | None
    revision: str | None = None
    changed_from: str | None = None

    @property
    def selecting(self) -> bool:
        """Whether any selector was given."""
        return bool(self.tenants or self.platforms or self.exclude_tenants)

    def selectors(self, tenants: tuple[str, ...] | None = None) -> Selectors:
        """The selectors (with ``tenants`` instead of ``--tenant`` when given); see
        :func:`make_selectors`."""
        chosen = self.tenants if tenants is None else tenants
        return make_selectors(chosen, self.platforms, self.exclude_tenants)

    def manifests(self, settings: Settings) -> Path:
        """The manifest directory; see :func:`manifests_path`."""
        return manifests_path(settings, self.manifests_dir)


def target_options(func: F) -> F:
    """:func:`selector_options` and :func:`manifests_and_database`, passed to the command as
    one ``target`` (a :class:`Target`) together with ``--revision`` and ``--changed-from``
    when the command declares them (:data:`revision_option`, :data:`changed_from_option`)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        kwargs["target"] = Target(
            tenants=kwargs.pop("tenants"),
            platforms=kwargs.pop("platforms"),
            exclude_tenants=kwargs.pop("exclude_tenants"),
            manifests_dir=kwargs.pop("manifests_dir"),
            database_url=kwargs.pop("database_url"),
            revision=kwargs.pop("revision", None),
            changed_from=kwargs.pop("changed_from", None),
        )
        return func(*args, **kwargs)

    return selector_options(manifests_and_database(wrapper))  # type: ignore[return-value]


def exit_code_for(exc: ReconcilerError) -> ExitCode:
    """Map an exception of the documented tree to its exit code."""
    if isinstance(exc, PlanStale):
        return ExitCode.PLAN_STALE
    if isinstance(exc, PolicyViolation):
        return ExitCode.POLICY_BLOCKED
    if isinstance(exc, UsageProblem):
        return ExitCode.USAGE
    return ExitCode.ERROR


def handle_errors(func: F) -> F:
    """Run a command; print a ReconcilerError as one line (no traceback) and exit with its code.

    ``--debug`` on the root group (or ``RECONCILER_DEBUG=1``) also prints the traceback; the
    exit code stays the documented one. Both go through
    :func:`~reconciler.store.database.mask_credentials`.

    The database driver is not imported here: commands that never open a database
    (``secrets``, ``fmt``, ``schema``) start without it, and a driver error can only come
    from a command that imported it.
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
            from reconciler.store.database import mask_credentials

            # Masked as a last line of defence: a chained driver error in the traceback, or a
            # message built from one, may quote a database URL or connection string.
            if _debug():
                click.echo(mask_credentials(traceback.format_exc()), err=True, nl=False)
            click.echo(f"Error: {redact(mask_credentials(str(exc)))}", err=True)
            sys.exit(exit_code_for(exc))
        except Exception as exc:
            if not isinstance(exc, _driver_errors()):
                raise
            from reconciler.store.database import mask_credentials, unanticipated_error

            # A database error no layer anticipated: still one line (and the traceback only
            # with --debug), never the statement text or its parameters.
            error = unanticipated_error(exc)
            if _debug():
                click.echo(mask_credentials(traceback.format_exc()), err=True, nl=False)
            click.echo(f"Error: {redact(mask_credentials(str(error)))}", err=True)
            sys.exit(exit_code_for(error))
        except KeyboardInterrupt:
            click.echo("Interrupted: nothing was committed.", err=True)
            sys.exit(ExitCode.INTERRUPTED)

    return wrapper  # type: ignore[return-value]


def _driver_errors() -> tuple[type[BaseException], ...]:
    """What the database driver raises, once the store has been imported (before that,
    nothing the driver defines can have been raised)."""
    if "reconciler.store.database" not in sys.modules:
        return ()
    from reconciler.store.database import DRIVER_ERRORS

    return DRIVER_ERRORS


def _debug() -> bool:
    return bool(_root_obj().get("debug")) or os.environ.get("RECONCILER_DEBUG") == "1"


def _root_obj() -> dict[str, Any]:
    ctx = click.get_current_context(silent=True)
    root = ctx.find_root() if ctx else None
    if root is None:
        return {}
    root.ensure_object(dict)
    obj: dict[str, Any] = root.obj
    return obj


def use_color(no_color: bool, environ: Any = None, *, isatty: bool | None = None) -> bool:
    """Whether to colour output: ``--no-color``, then no-color.org, then force-color.org.

    ``NO_COLOR`` disables colour only when set to a non-empty value (an empty ``NO_COLOR=``
    does nothing); a non-empty ``FORCE_COLOR`` colours even when stdout is not a terminal
    (CI logs render ANSI colours). Otherwise colour only on a terminal.
    """
    env = os.environ if environ is None else environ
    if no_color or env.get("NO_COLOR", ""):
        return False
    if env.get("FORCE_COLOR", ""):
        return True
    return sys.stdout.isatty() if isatty is None else isatty


def output_options(
    *, formats: tuple[str, ...] | None = None, default: str = "text"
) -> Callable[[F], F]:
    """The options every command that prints accepts: ``--quiet``, ``--no-color``,
    ``--debug`` and, with ``formats``, ``--format``.

    Each may also be given before the command name (``reconciler --quiet plan``); the value
    after the command wins, then the one before it. The wrapped function receives only the
    parameters (``quiet``, ``no_color``, ``fmt``) it declares; ``--debug`` is recorded for
    :func:`handle_errors`. A ``--format`` before the command also reaches a command that
    declares its own ``--format`` (when not given after the command). A ``--format`` before
    the command that the command does not support is a usage error (exit 64).
    """

    def decorate(func: F) -> F:
        accepted = set(inspect.signature(func).parameters)
        # Placed above a command's own options, this sees them: an option the command
        # already declares (its own --format, say) is kept, not declared twice.
        declared = {name for p in getattr(func, "__click_params__", ()) for name in p.opts}
        own_format = next(
            (p for p in getattr(func, "__click_params__", ()) if "--format" in p.opts), None
        )

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            root = _root_obj()
            quiet = bool(kwargs.pop("quiet", False) or root.get("quiet"))
            no_color = bool(kwargs.pop("no_color", False) or root.get("no_color"))
            debug = bool(kwargs.pop("debug", False) or root.get("debug"))
            root.update(quiet=quiet, no_color=no_color, debug=debug)
            if "quiet" in accepted:
                kwargs["quiet"] = quiet
            if "no_color" in accepted:
                kwargs["no_color"] = no_color
            if formats is not None and "--format" not in declared:
                fmt = kwargs.pop("fmt", None) or root.get("format") or default
                if fmt not in formats:
                    raise click.UsageError(
                        f"--format {fmt!r} is not supported here (choose from {', '.join(formats)})"
                    )
                if "fmt" in accepted:
                    kwargs["fmt"] = fmt
            elif own_format is not None and own_format.name and root.get("format"):
                _format_from_root(own_format, root["format"], kwargs)
            return func(*args, **kwargs)

        command: Any = wrapper
        if formats is not None and "--format" not in declared:
            command = click.option(
                "--format",
                "fmt",
                type=click.Choice(formats),
                default=None,
                help=f"Output format (default {default}).",
            )(command)
        if "--debug" not in declared:
            command = click.option(
                "--debug", is_flag=True, help="Show tracebacks for errors (for bug reports)."
            )(command)
        if "--no-color" not in declared:
            command = click.option(
                "--no-color",
                is_flag=True,
                help="Plain text output (also: a non-empty NO_COLOR; FORCE_COLOR forces colour).",
            )(command)
        if "--quiet" not in declared:
            command = click.option(
                "--quiet", "-q", is_flag=True, help="No progress lines on stderr."
            )(command)
        return command  # type: ignore[no-any-return]

    return decorate


def _format_from_root(param: click.Parameter, given: str, kwargs: dict[str, Any]) -> None:
    """Use ``reconciler --format X cmd`` for a command's own ``--format`` unless the option
    was given after the command name too (that one wins)."""
    ctx = click.get_current_context()
    assert param.name is not None
    if ctx.get_parameter_source(param.name) is not click.core.ParameterSource.DEFAULT:
        return
    choices = tuple(getattr(param.type, "choices", ()))
    if choices and given not in choices:
        raise click.UsageError(
            f"--format {given!r} is not supported here (choose from {', '.join(choices)})"
        )
    kwargs[param.name] = given


def quiet_requested() -> bool:
    """``--quiet`` given before or after the command (for commands without the parameter)."""
    return bool(_root_obj().get("quiet"))
