"""``apply --verify-connections/--no-verify-connections``: the option and what it overrides."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any, TypeVar

import click

from reconciler.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])


def verify_connections_option(func: F) -> F:
    """Add ``--verify-connections/--no-verify-connections`` (``None`` when not given)."""
    return click.option(
        "--verify-connections/--no-verify-connections",
        "verify_connections",
        default=None,
        help="Test every new, changed or activated credential against its platform before "
        "writing; a rejected one (HTTP 401/403) blocks the apply (exit 4), an unanswered one "
        "warns or blocks by apply.verify_connections_unreachable [default: "
        "apply.verify_connections in reconciler.yaml, else off].",
    )(func)


def with_verify_connections(settings: Settings, flag: bool | None) -> Settings:
    """``settings`` with the flag's choice, when it was given."""
    return settings if flag is None else replace(settings, verify_connections=flag)
