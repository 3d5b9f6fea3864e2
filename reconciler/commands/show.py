"""``show``: read a saved plan file and prepare it for rendering; no database, no keys.

The pull request's reviewers see the plan the deploy job will apply: CI saves it with
``reconciler plan --out plan.json`` and renders the comment from that file. What the file
says about policy is not trusted: the verdict is derived again from its changes under the
permissions it records, and a summary that disagrees with the changes is reported.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler.core.planner import judgement_difference
from reconciler.core.policy import rederive_policy
from reconciler.errors import ConfigError
from reconciler.model.plan import Plan
from reconciler.model.plan_judgement import Judgement, SavedPlan


def read_plan_file(path: Path) -> SavedPlan:
    """Parse a plan file written by ``plan --out``.

    Raises:
        ConfigError: the file is missing or is not a plan of a supported format version.
    """
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
        return SavedPlan.from_dict(data)
    except FileNotFoundError:
        raise ConfigError(f"{path}: plan file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not a plan file") from None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(f"{path}: not a reconciler plan file ({exc})") from None


@dataclass(frozen=True, slots=True)
class ShownPlan:
    """A saved plan ready to render, and what did not add up in the file."""

    plan: Plan
    warnings: tuple[str, ...] = ()


def show(path: Path) -> ShownPlan:
    """Read ``path`` and derive its policy verdict again (the recorded one is not used).

    Raises:
        ConfigError: see :func:`read_plan_file`.
    """
    saved = read_plan_file(path)
    plan, edited = rederive_policy(saved.plan)
    warnings: list[str] = []
    if edited:
        warnings.append(
            f"{path}: the recorded policy verdict does not match the plan's changes; "
            "showing the verdict derived from them"
        )
    difference = judgement_difference(saved.recorded, Judgement.of(plan))
    if difference is not None:
        warnings.append(f"{path}: the recorded risk summary does not match ({difference})")
    return ShownPlan(plan, tuple(warnings))
