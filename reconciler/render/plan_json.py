"""Plan as JSON, and the one record set every plan renderer reads.

:func:`plan_record` is ``Plan.to_dict()`` after a fail-closed check that no sensitive field
carries anything but the mask. The text, Markdown and GitHub renderers read only this
record, so a human view can never show more than the JSON does. The JSON form is described
by ``schemas/plan.v1.json`` (see :mod:`reconciler.render.plan_schema`).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from reconciler.model.plan import SENSITIVE_MASK

if TYPE_CHECKING:
    from reconciler.model.plan import Plan

_MASKED_VALUES = (SENSITIVE_MASK, None)


class UnmaskedSensitiveValue(ValueError):
    """A sensitive field carries a value other than the mask: a bug in the plan's producer.

    The message names the address and field, never the value.
    """


def plan_record(plan: Plan) -> dict[str, Any]:
    """Return the JSON-able record of a plan, refusing any unmasked sensitive field.

    Args:
        plan: the plan to serialize.

    Returns:
        ``plan.to_dict()``; every renderer reads this and nothing else.

    Raises:
        UnmaskedSensitiveValue: a field marked sensitive has a ``before`` or ``after`` other
            than ``"(sensitive)"`` or ``None``. Refusing is safer than masking here: a
            producer that leaks into the plan may leak elsewhere too.
    """
    record = plan.to_dict()
    for change in record["changes"]:
        for fc in change["fields"]:
            if fc["sensitive"] and (
                fc["before"] not in _MASKED_VALUES or fc["after"] not in _MASKED_VALUES
            ):
                raise UnmaskedSensitiveValue(
                    f"sensitive field {fc['field']!r} of {change['address']} is not masked"
                )
    return record


def render_json(plan: Plan) -> str:
    """Render a plan as JSON (``schemas/plan.v1.json``), keys in model order.

    Args:
        plan: the plan to render.

    Returns:
        Indented JSON text ending in a newline. ``Plan.from_dict(json.loads(text))`` gives
        back an equal plan.
    """
    return json.dumps(plan_record(plan), indent=2, sort_keys=False) + "\n"
