"""The ``reconciler`` command: a click group whose commands live one module per verb group.

Each command parses options, calls one function of the Python API, renders the result and
returns an exit code from :mod:`reconciler.cli.exit_codes`.
"""

from __future__ import annotations

import click

from reconciler import __version__
from reconciler.cli import (
    cmd_approve,
    cmd_audit,
    cmd_db,
    cmd_health,
    cmd_history,
    cmd_import,
    cmd_keys,
    cmd_plan,
    cmd_report,
    cmd_schema,
    cmd_secrets,
    cmd_validate,
)


@click.group(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, prog_name="reconciler")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors (for bug reports).")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Reconcile integration configuration (Stripe, HubSpot, QuickBooks) from git to PostgreSQL.

    \b
    Typical flow:
      reconciler validate                 # check every manifest (no database needed)
      reconciler plan                     # what would change, and how risky it is
      reconciler apply                    # write it: one transaction, audited
    \b
    Exit codes: 0 ok / no changes, 1 error, 2 changes present (--detailed-exitcode),
    3 saved plan is stale, 4 blocked by policy.
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


for _module in (
    cmd_validate,
    cmd_plan,
    cmd_history,
    cmd_approve,
    cmd_db,
    cmd_secrets,
    cmd_keys,
    cmd_audit,
    cmd_schema,
    cmd_import,
    cmd_report,
    cmd_health,
):
    _module.register(cli)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="reconciler")


if __name__ == "__main__":  # pragma: no cover
    main()
