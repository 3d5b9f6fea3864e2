"""How ``plan``, ``apply`` and ``drift`` print a plan: the formats and the one renderer call."""

from __future__ import annotations

from reconciler.model.plan import Plan

PLAN_FORMATS = ("text", "json", "markdown", "github")


def render_plan_output(plan: Plan, fmt: str, *, color: bool, show_notices: bool = False) -> str:
    """``plan`` in ``fmt`` (one of :data:`PLAN_FORMATS`)."""
    # Imported here: the renderers are only needed once a plan exists.
    from reconciler.render.plan_formats import render_plan

    return render_plan(plan, fmt, color=color, show_notices=show_notices)
