"""QuickBooks Online: what differs for ``tenants/<tenant>/quickbooks.yaml``.

Inbound QuickBooks webhooks belong to the Intuit app (``app_id``, required), which delivers
to one URL; event names depend on the app's payload format (legacy ``Entity.Operation`` or
CloudEvents types).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from reconciler.diagnostics import Severity
from reconciler.load import catalogs
from reconciler.load.file_types import AppEndpoint
from reconciler.load.findings import FieldPath, Finding
from reconciler.load.platforms import AccountIds, Environments, EventProblem, PlatformRules
from reconciler.model.enums import Platform
from reconciler.model.fields import ACCOUNT_ID, ENDPOINT_URL


class QuickBooksRules(PlatformRules):
    """The QuickBooks :class:`~reconciler.load.platforms.PlatformRules`."""

    platform = Platform.QUICKBOOKS
    signature_key_hint = "the Intuit app's verifier token"
    account_id_field = "realm_id"
    app_kind = "Intuit app"
    events_description = (
        "QuickBooks `Entity.Operation` names such as `Customer.Create`, or CloudEvents types "
        "(`qbo.customer.created.v1`) when `payload_format: cloudevents`."
    )

    def check_event(self, event: str, payload_format: str) -> EventProblem | None:
        """RCN-WH-4 against the catalog of the webhook's payload format."""
        catalog = catalogs.quickbooks_events(payload_format)
        if event in catalog:
            return None
        other = "cloudevents" if payload_format != "cloudevents" else "legacy"
        if event in catalogs.quickbooks_events(other):
            return (
                "RCN-WH-4",
                f"{event!r} is a {other} event name but payload_format is {payload_format}; "
                f"set payload_format: {other} or use the {payload_format} name",
                Severity.ERROR,
            )
        return catalogs.unknown_event(
            event, catalog, self.platform, f" ({payload_format} payload format)"
        )

    def events_json_schema(self) -> dict[str, Any]:
        return {
            "enum": sorted(
                catalogs.quickbooks_events("legacy") | catalogs.quickbooks_events("cloudevents")
            )
        }

    def webhook_findings(
        self, path: FieldPath, hook: Mapping[str, Any], inbound: bool
    ) -> list[Finding]:
        """RCN-WH-11: an inbound webhook names its Intuit app."""
        if inbound and hook.get("app_id") is None:
            return [
                Finding(
                    "RCN-WH-11",
                    "inbound QuickBooks webhooks belong to the Intuit app: set app_id so every "
                    f"tenant of that app can be checked for the same {ENDPOINT_URL.manifest}",
                    path,
                    at_key=True,
                )
            ]
        return []

    def app_endpoints(self, environments: Environments) -> Iterable[AppEndpoint]:
        """Each inbound webhook with its ``app_id``."""
        # Runs on documents that may have failed the schema: every section is shape-checked.
        for env_name, env in environments:
            hooks = env.get("webhooks")
            for name, hook in hooks.items() if isinstance(hooks, dict) else ():
                if not isinstance(hook, dict) or hook.get("type") != "INBOUND":
                    continue
                url = hook.get(ENDPOINT_URL.manifest)
                app = hook.get("app_id")  # any YAML value here, hashable or not
                if isinstance(app, str) and isinstance(url, str):
                    path = ("environments", env_name, "webhooks", name, ENDPOINT_URL.manifest)
                    yield AppEndpoint(self.platform, app, env_name, url, path)

    def account_ids(self, acct: Any) -> AccountIds:
        return {ACCOUNT_ID.name: acct.realm_id}


RULES = QuickBooksRules()
