"""What the loader knows about each platform: one module per platform, behind
:class:`PlatformRules`.

Everything common to all platforms (the envelope, integrations, URLs, retry bounds, secrets
being encrypted, duplicate events...) lives in :mod:`reconciler.load.rules`; what differs
from one platform to another is asked of the platform's module through :func:`rules_for`.
To add a platform: add its member to :class:`~reconciler.model.enums.Platform`, its config
model family to :mod:`reconciler.load.manifest_model`, its event catalog to
``reconciler/catalogs/``, and a module here listed in :data:`PLATFORMS`, whose rules class
subclasses :class:`PlatformRules` and overrides the hooks it needs (the others add nothing).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol

from reconciler.diagnostics import Severity
from reconciler.load.findings import FieldPath, Finding
from reconciler.model.enums import Platform

if TYPE_CHECKING:
    from reconciler.load.file_types import AppEndpoint

Environments = Sequence[tuple[str, Mapping[str, Any]]]
"""``(name, environment)`` for each well-formed environment of a (merged) document."""

EventProblem = tuple[str, str, Severity]
"""``(rule id, message, severity)`` for one event name."""


AccountIds = Mapping[str, Any]
"""How a declared OAuth account is identified in the desired state: the field table's name
of the account id and of the platform's own account fields (those with an ``oauth_tokens``
column) -> value; a field the platform does not have is left out."""


class PlatformRules(Protocol):
    """The platform-specific part of loading a manifest.

    The hooks with a body are optional: their defaults find nothing to report.

    Attributes:
        platform: the platform this module speaks for.
        signature_key_hint: what the webhook's signing secret holds (RCN-WH-3's message).
        account_id_field: the field of ``oauth_accounts[]`` that identifies an account.
        app_kind: who owns inbound webhooks when they belong to an app rather than a tenant
            ("HubSpot app"), for RCN-WH-10; ``None`` when each tenant owns its endpoints.
        events_description: the ``events`` field's description in the manifest JSON Schema.
    """

    platform: Platform
    signature_key_hint: str
    account_id_field: str
    app_kind: str | None
    events_description: str

    def check_event(self, event: str, payload_format: str) -> EventProblem | None:
        """RCN-WH-4/6/7 for one event name (duplicates are checked by the caller)."""
        ...

    def events_json_schema(self) -> dict[str, Any]:
        """JSON Schema of one event name (editor completion and checking)."""
        ...

    def webhook_findings(
        self, path: FieldPath, hook: Mapping[str, Any], inbound: bool
    ) -> list[Finding]:
        """Rules on one webhook beyond the common ones."""
        return []

    def account_findings(
        self, path: FieldPath, acct: Mapping[str, Any], env_name: str
    ) -> list[Finding]:
        """Rules on one declared OAuth account (``path`` is the account's) beyond RCN-OA-1."""
        return []

    def duplicate_reported_elsewhere(self, env_name: str, first_env: str) -> bool:
        """True when an account declared in both environments is one of this platform's
        rules to explain rather than RCN-OA-1's."""
        return False

    def document_findings(self, environments: Environments) -> list[Finding]:
        """Rules across the environments of one manifest."""
        return []

    def secret_finding(self, env_name: str, field: str, plaintext: str) -> Finding | None:
        """Rules on one decrypted secret; the message never holds the value."""
        return None

    def app_endpoints(self, environments: Environments) -> Iterable[AppEndpoint]:
        """Inbound endpoints that belong to an app rather than a tenant (RCN-WH-10)."""
        return ()

    def account_ids(self, acct: Any) -> AccountIds:
        """How a validated OAuth account (the platform's pydantic model) is identified."""
        ...


def _registry() -> Mapping[Platform, PlatformRules]:
    from reconciler.load.platforms import hubspot, quickbooks, stripe

    modules: tuple[PlatformRules, ...] = (stripe.RULES, hubspot.RULES, quickbooks.RULES)
    return MappingProxyType({m.platform: m for m in modules})


PLATFORMS: Mapping[Platform, PlatformRules] = _registry()
"""Every platform's rules, by platform."""


def rules_for(platform: Platform) -> PlatformRules:
    """The rules of ``platform``."""
    return PLATFORMS[platform]
