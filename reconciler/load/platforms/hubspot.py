"""HubSpot: what differs for ``tenants/<tenant>/hubspot.yaml``.

Inbound HubSpot webhooks belong to the app (``oauth_accounts[].app_id``), which delivers to
one URL; event names are subscription types, and a property change names its property.
Production and sandbox are different HubSpot accounts.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from reconciler.diagnostics import Severity
from reconciler.load import catalogs
from reconciler.load.file_types import AppEndpoint
from reconciler.load.findings import Finding
from reconciler.load.platforms import AccountIds, Environments, EventProblem, PlatformRules
from reconciler.model.enums import Platform
from reconciler.model.fields import ACCOUNT_ID, ENDPOINT_URL, HUBSPOT_APP, HUBSPOT_USER

_PROPERTY_NAME = re.compile(r"^[A-Za-z0-9_]+$")


class HubSpotRules(PlatformRules):
    """The HubSpot :class:`~reconciler.load.platforms.PlatformRules`."""

    platform = Platform.HUBSPOT
    signature_key_hint = "the HubSpot app's client secret"
    account_id_field = "portal_id"
    app_kind = "HubSpot app"
    events_description = (
        "HubSpot subscription types such as `contact.creation`; a property change names its "
        "property: `contact.propertyChange:email`."
    )

    def check_event(self, event: str, payload_format: str) -> EventProblem | None:
        """RCN-WH-4 and RCN-WH-7 (generic ``object.*`` and ``propertyChange`` grammar)."""
        catalog = catalogs.hubspot_events()
        base, sep, prop = event.partition(":")
        objects = catalogs.hubspot_property_objects()
        if base.startswith("object.") and base in catalog:
            return (
                "RCN-WH-7",
                f"{event!r}: generic object.* subscriptions need an objectTypeId, which "
                "manifests do not support; subscribe to the specific object (e.g. "
                "contact.creation)",
                Severity.ERROR,
            )
        if base.endswith("." + catalogs.PROPERTY_CHANGE) and base in catalog:
            if not sep:
                return (
                    "RCN-WH-7",
                    f"{event!r} must name the property it watches, e.g. '{base}:email'",
                    Severity.ERROR,
                )
            if not _PROPERTY_NAME.match(prop):
                return (
                    "RCN-WH-7",
                    f"{event!r}: property name {prop!r} must be a HubSpot internal name "
                    "(letters, digits, underscores)",
                    Severity.ERROR,
                )
            return None
        if sep and base in catalog:
            return (
                "RCN-WH-7",
                f"{event!r}: only <object>.propertyChange takes a ':property' suffix "
                f"({', '.join(sorted(objects))})",
                Severity.ERROR,
            )
        if not sep and event in catalog:
            return None
        return catalogs.unknown_event(event, catalog, self.platform)

    def events_json_schema(self) -> dict[str, Any]:
        plain = sorted(
            e
            for e in catalogs.hubspot_events()
            if not e.endswith("." + catalogs.PROPERTY_CHANGE) and not e.startswith("object.")
        )
        objects = "|".join(sorted(catalogs.hubspot_property_objects()))
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

    def duplicate_reported_elsewhere(self, env_name: str, first_env: str) -> bool:
        # A HubSpot portal in both production and sandbox is RCN-ENV-6's to explain.
        return {env_name, first_env} == {"production", "sandbox"}

    def document_findings(self, environments: Environments) -> list[Finding]:
        """RCN-ENV-6: production does not reuse a sandbox portal id."""
        sandbox: set[int] = set()
        for env_name, env in environments:
            accounts = env.get("oauth_accounts")
            if env_name == "sandbox" and isinstance(accounts, list):
                for acct in accounts:
                    if isinstance(acct, dict) and type(acct.get("portal_id")) is int:
                        sandbox.add(acct["portal_id"])
        found: list[Finding] = []
        for env_name, env in environments:
            if env_name != "production":
                continue
            accounts = env.get("oauth_accounts")
            for i, acct in enumerate(accounts if isinstance(accounts, list) else []):
                portal = acct.get("portal_id") if isinstance(acct, dict) else None
                if type(portal) is int and portal in sandbox:  # any YAML value may stand here
                    found.append(
                        Finding(
                            "RCN-ENV-6",
                            f"portal {acct['portal_id']} is also declared in sandbox; production "
                            "and sandbox are different HubSpot accounts with different portal ids",
                            ("environments", "production", "oauth_accounts", i, "portal_id"),
                        )
                    )
        return found

    def app_endpoints(self, environments: Environments) -> Iterable[AppEndpoint]:
        """Each inbound webhook, once per app of the environment's OAuth accounts."""
        # Runs on documents that may have failed the schema: every section is shape-checked
        # (a list or scalar where a mapping belongs is the schema's diagnostic, not a crash).
        for env_name, env in environments:
            apps: set[str] = set()
            accounts = env.get("oauth_accounts")
            if isinstance(accounts, list):
                for acct in accounts:
                    if isinstance(acct, dict) and type(acct.get("app_id")) is int:
                        apps.add(str(acct["app_id"]))
            hooks = env.get("webhooks")
            for name, hook in hooks.items() if isinstance(hooks, dict) else ():
                if not isinstance(hook, dict) or hook.get("type") != "INBOUND":
                    continue
                url = hook.get(ENDPOINT_URL.manifest)
                for app in apps:
                    if isinstance(url, str):
                        path = ("environments", env_name, "webhooks", name, ENDPOINT_URL.manifest)
                        yield AppEndpoint(self.platform, app, env_name, url, path)

    def account_ids(self, acct: Any) -> AccountIds:
        return {
            ACCOUNT_ID.name: str(acct.portal_id),
            HUBSPOT_APP.name: str(acct.app_id),
            HUBSPOT_USER.name: str(acct.user_id) if acct.user_id is not None else None,
        }


RULES = HubSpotRules()
