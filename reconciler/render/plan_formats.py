"""One entry point for the plan formats: ``text``, ``json``, ``markdown``, ``github``.

Used by ``plan``, ``drift`` and ``show`` so a saved plan renders exactly as a fresh one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from reconciler.model.plan import Plan

PLAN_FORMATS = ("text", "json", "markdown", "github")


def render_plan(plan: Plan, fmt: str, *, color: bool = False, show_notices: bool = False) -> str:
    """Render ``plan`` in ``fmt`` (one of :data:`PLAN_FORMATS`).

    ``show_notices`` lists every notice in text and markdown (default: counted by kind).
    """
    match fmt:
        case "json":
            from reconciler.render.plan_json import render_json

            return render_json(plan)
        case "markdown":
            from reconciler.render.plan_markdown import render_markdown

            return render_markdown(plan, show_notices=show_notices)
        case "github":
            from reconciler.render.plan_github import render_github

            return render_github(plan, show_notices=show_notices)
        case "text":
            from reconciler.render.plan_text import render_text

            return render_text(plan, color=color, show_notices=show_notices)
        case _:
            raise ValueError(f"unknown plan format {fmt!r}")
