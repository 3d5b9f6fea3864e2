"""Event catalogs: the event names each platform can deliver, loaded once per process.

The catalogs ship as package data in ``reconciler/catalogs/`` (one name per line):

* ``events-stripe.txt``: Stripe ``enabled_events`` (the wildcard ``*`` is handled apart).
* ``events-hubspot.txt``: HubSpot webhook subscription types; ``<object>.propertyChange``
  is written ``<object>.propertyChange:<property>`` in manifests.
* ``events-quickbooks.txt``: legacy QuickBooks ``Entity.Operation`` names.
* ``events-quickbooks-cloudevents.txt``: QuickBooks CloudEvents ``type`` values. Sources
  disagree between ``.void.v1`` and ``.voided.v1``, so both spellings are accepted.
"""

from __future__ import annotations

import difflib
from functools import cache
from importlib import resources
from typing import Any

from reconciler.model.enums import Platform

STRIPE_WILDCARD = "*"
PROPERTY_CHANGE = "propertyChange"


def _read(name: str) -> frozenset[str]:
    text = resources.files("reconciler").joinpath("catalogs", name).read_text("utf-8")
    return frozenset(line.strip() for line in text.splitlines() if line.strip())


@cache
def stripe_events() -> frozenset[str]:
    """Stripe event names (without ``*``)."""
    return _read("events-stripe.txt")


@cache
def hubspot_events() -> frozenset[str]:
    """HubSpot subscription types as in HubSpot's API (``contact.propertyChange`` bare)."""
    return _read("events-hubspot.txt")


@cache
def quickbooks_events(payload_format: str = "legacy") -> frozenset[str]:
    """QuickBooks event names for a payload format (``legacy`` or ``cloudevents``)."""
    if payload_format != "cloudevents":
        return _read("events-quickbooks.txt")
    names = _read("events-quickbooks-cloudevents.txt")
    both = {n.replace(".void.v1", ".voided.v1") for n in names if n.endswith(".void.v1")}
    return names | both


@cache
def hubspot_property_objects() -> frozenset[str]:
    """Objects whose ``propertyChange`` subscription names a property (``contact``, ...)."""
    return frozenset(
        e.split(".")[0]
        for e in hubspot_events()
        if e.endswith("." + PROPERTY_CHANGE) and not e.startswith("object.")
    )


def suggest(name: str, candidates: frozenset[str]) -> str | None:
    """The closest catalog name to a misspelt ``name``, or ``None``."""
    matches = difflib.get_close_matches(name, sorted(candidates), n=1, cutoff=0.6)
    return matches[0] if matches else None


def events_json_schema(platform: Platform) -> dict[str, Any]:
    """JSON Schema of one event name of ``platform`` (editor completion and checking)."""
    if platform is Platform.STRIPE:
        return {"enum": [STRIPE_WILDCARD, *sorted(stripe_events())]}
    if platform is Platform.HUBSPOT:
        plain = sorted(
            e
            for e in hubspot_events()
            if not e.endswith("." + PROPERTY_CHANGE) and not e.startswith("object.")
        )
        objects = "|".join(sorted(hubspot_property_objects()))
        return {
            "anyOf": [
                {"enum": plain},
                {
                    "type": "string",
                    "pattern": rf"^({objects})\.propertyChange:[A-Za-z0-9_]+$",
                    "description": "A property change names its property.",
                },
            ]
        }
    return {"enum": sorted(quickbooks_events("legacy") | quickbooks_events("cloudevents"))}
