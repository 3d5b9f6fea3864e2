"""The ``reconciler`` command: a click group whose commands live one module per verb group.

Each command parses options, calls one function of the Python API, renders the result and
returns an exit code from :mod:`reconciler.cli.exit_codes`.

Command modules are imported only when their command runs (or its help is asked for), so
``reconciler --version`` and ``reconciler --help`` do not import the database driver, the
crypto libraries or the loader. The one-line help in the command list is kept here for the
same reason; a test checks it matches each command's own.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from reconciler import __version__
from reconciler.cli.exit_codes import ExitCode

COMMANDS: dict[str, tuple[str, str]] = {
    "validate": (
        "cmd_validate",
        "Check manifests (syntax, schema, domain rules, secrets); no database needed.",
    ),
    "plan": ("cmd_plan", "Show what apply would change, with a risk level for every change."),
    "show": ("cmd_show", "Render a saved plan file; needs no database and no keys."),
    "apply": (
        "cmd_plan",
        "Apply the manifests to the database in ONE transaction, with an audit row per change.",
    ),
    "drift": (
        "cmd_drift",
        "Report how the database differs from git (read-only), for scheduled jobs.",
    ),
    "history": (
        "cmd_history",
        "Apply history: recent runs, one run in detail, or the timeline of one object.",
    ),
    "approve": (
        "cmd_approve",
        "Approve a saved plan (from `reconciler plan --out`) so that `apply PLAN` may write it.",
    ),
    "db": (
        "cmd_db",
        "Manage the database: schema migrations (shipped with the reconciler) and roles.",
    ),
    "secrets": (
        "cmd_secrets",
        "Encrypt, decrypt and edit SOPS files with age keys (compatible with sops).",
    ),
    "keys": (
        "cmd_keys",
        "The keyring that encrypts secrets in the database: status, rotation, new keys.",
    ),
    "audit": ("cmd_audit", "Read, review and verify the hash-chained audit log."),
    "schema": (
        "cmd_schema",
        "JSON Schemas of the manifest, template and plan formats (for editors and CI).",
    ),
    "import": (
        "cmd_import",
        "Write a tenant's configuration from the database as SOPS-encrypted manifests.",
    ),
    "fmt": (
        "cmd_fmt",
        "Rewrite manifests and templates in the canonical layout.",
    ),
    "report": ("cmd_report", "Read-only reports on runtime health"),
    "health": (
        "cmd_health",
        "Integration health checks (writes runtime-owned health fields only).",
    ),
}
"""Command name -> (module under ``reconciler.cli``, short help for the command list; empty:
the module is imported to ask)."""

ROOT_FORMATS = ("text", "json", "markdown", "github")


class LazyGroup(click.Group):
    """The root group: loads a command's module on first use; maps usage errors to 64."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        return load_command(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name, (_, short) in COMMANDS.items():
            if not short:
                command = load_command(name)
                short = command.get_short_help_str(formatter.width - 6 - len(name))
            rows.append((name, short))
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0] if args else ""
        if name and not name.startswith("-") and name not in COMMANDS:
            import difflib

            close = difflib.get_close_matches(name, list(COMMANDS), n=2)
            hint = f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""
            raise click.UsageError(f"no such command {name!r}{hint}", ctx)
        return super().resolve_command(ctx, args)

    def main(self, *args: Any, **kwargs: Any) -> Any:
        """Run the command; usage errors exit 64 (never 2, which means "changes present")."""
        kwargs["standalone_mode"] = False
        try:
            result = super().main(*args, **kwargs)
        except click.UsageError as exc:
            exc.show()
            sys.exit(ExitCode.USAGE)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except (click.Abort, EOFError, KeyboardInterrupt) as exc:
            # click turns Ctrl-C and end of input at a prompt into Abort; tell them apart.
            if isinstance(exc, KeyboardInterrupt) or isinstance(exc.__cause__, KeyboardInterrupt):
                click.echo("Interrupted: nothing was committed.", err=True)
                sys.exit(ExitCode.INTERRUPTED)
            click.echo("Aborted: nothing was committed.", err=True)
            sys.exit(ExitCode.ERROR)
        sys.exit(result if isinstance(result, int) else ExitCode.OK)


def load_command(name: str) -> click.Command:
    """Import the module of ``name`` and return its click command."""
    scratch = click.Group()
    _module(COMMANDS[name][0]).register(scratch)
    return scratch.commands[name]


def _module(name: str) -> Any:
    """The command module ``name``, imported now (plain imports: none of them is optional)."""
    match name:
        case "cmd_validate":
            from reconciler.cli import cmd_validate

            return cmd_validate
        case "cmd_plan":
            from reconciler.cli import cmd_plan

            return cmd_plan
        case "cmd_drift":
            from reconciler.cli import cmd_drift

            return cmd_drift
        case "cmd_history":
            from reconciler.cli import cmd_history

            return cmd_history
        case "cmd_approve":
            from reconciler.cli import cmd_approve

            return cmd_approve
        case "cmd_show":
            from reconciler.cli import cmd_show

            return cmd_show
        case "cmd_db":
            from reconciler.cli import cmd_db

            return cmd_db
        case "cmd_secrets":
            from reconciler.cli import cmd_secrets

            return cmd_secrets
        case "cmd_keys":
            from reconciler.cli import cmd_keys

            return cmd_keys
        case "cmd_audit":
            from reconciler.cli import cmd_audit

            return cmd_audit
        case "cmd_schema":
            from reconciler.cli import cmd_schema

            return cmd_schema
        case "cmd_import":
            from reconciler.cli import cmd_import

            return cmd_import
        case "cmd_report":
            from reconciler.cli import cmd_report

            return cmd_report
        case "cmd_fmt":
            from reconciler.cli import cmd_fmt

            return cmd_fmt
        case "cmd_health":
            from reconciler.cli import cmd_health

            return cmd_health
        case _:
            raise KeyError(name)


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, prog_name="reconciler")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors (for bug reports).")
@click.option("--quiet", "-q", is_flag=True, help="No progress lines on stderr.")
@click.option("--no-color", is_flag=True, help="Plain text output (also: a non-empty NO_COLOR).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(ROOT_FORMATS),
    default=None,
    help="Output format for the command (each command lists the formats it supports).",
)
@click.pass_context
def cli(ctx: click.Context, debug: bool, quiet: bool, no_color: bool, fmt: str | None) -> None:
    """Reconcile integration configuration (Stripe, HubSpot, QuickBooks) from git to PostgreSQL.

    \b
    Typical flow:
      reconciler validate                 # check every manifest (no database needed)
      reconciler plan --out plan.json     # what would change, how risky, what policy says
      reconciler show plan.json --format markdown   # the reviewed plan, no database needed
      reconciler apply plan.json          # write exactly that plan: one transaction, audited
    \b
    --debug, --quiet, --no-color and --format work before or after the command name.
    \b
    Exit codes: 0 ok / no changes, 1 error, 2 changes present (--detailed-exitcode),
    3 saved plan is stale, 4 blocked by policy, 64 usage error (bad option, selector that
    matches nothing), 130 interrupted.
    """
    ctx.ensure_object(dict)
    ctx.obj.update(debug=debug, quiet=quiet, no_color=no_color, format=fmt)


def main() -> None:
    """Console-script entry point."""
    cli.main(prog_name="reconciler")


if __name__ == "__main__":  # pragma: no cover
    main()
