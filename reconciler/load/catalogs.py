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

from reconciler.diagnostics import Severity
from reconciler.model.enums import Platform

STRIPE_WILDCARD = "*"
PROPERTY_CHANGE = "propertyChange"

KNOWN_MISTAKES = {
    "invoice.payed": "invoice.paid",
    "customer.subscription.canceled": "customer.subscription.deleted",
    "payment_intent.failed": "payment_intent.payment_failed",
    "charge.refund": "charge.refunded",
    "contact.created": "contact.creation",
    "contact.updated": "contact.propertyChange:<property>",
    "deal.stageChange": "deal.propertyChange:dealstage",
}
"""Common misspellings of Stripe and HubSpot event names and what was meant (RCN-WH-4)."""


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


def unknown_event(
    event: str, catalog: frozenset[str], platform: Platform, extra: str = ""
) -> tuple[str, str, Severity]:
    """RCN-WH-4 for a name not in ``catalog``, with the likely intended name when there is one."""
    guess = KNOWN_MISTAKES.get(event) or suggest(event, catalog)
    hint = f"; did you mean {guess!r}?" if guess else ""
    return (
        "RCN-WH-4",
        f"{event!r} is not a {platform.value.title()} event{extra}{hint}",
        Severity.ERROR,
    )
