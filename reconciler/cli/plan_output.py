"""How ``plan``, ``apply`` and ``drift`` print a plan: the formats, the one renderer call and
the question asked before applying one."""

from __future__ import annotations

import sys
from collections.abc import Callable

import click

from reconciler.errors import ConfigError
from reconciler.model.plan import Plan

PLAN_FORMATS = ("text", "json", "markdown", "github")


def render_plan_output(plan: Plan, fmt: str, *, color: bool, show_notices: bool = False) -> str:
    """``plan`` in ``fmt`` (one of :data:`PLAN_FORMATS`)."""
    # Imported here: the renderers are only needed once a plan exists.
    from reconciler.render.plan_formats import render_plan

    return render_plan(plan, fmt, color=color, show_notices=show_notices)


def terminal_confirm(verb: str, *, color: bool, no_terminal: str) -> Callable[[Plan], bool]:
    """A ``confirm`` for the API: show the plan in text and ask "<verb> these changes?";
    only ``yes`` agrees.

    Raises:
        ConfigError: ``no_terminal``, when there is no terminal to ask on (checked now, before
            anything is read).
    """
    if not sys.stdin.isatty():
        raise ConfigError(no_terminal)

    def confirm(plan: Plan) -> bool:
        click.echo(render_plan_output(plan, "text", color=color), nl=False)
        answer: str = click.prompt(
            f"{verb} these changes? Only 'yes' is accepted", default="", show_default=False
        )
        return answer.strip() == "yes"

    return confirm
