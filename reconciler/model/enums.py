"""Enumerations shared by manifests, the database schema and plans.

The string values are the PostgreSQL enum labels (see ``store/tables.py``); changing one is
a migration.
"""

from __future__ import annotations

import enum
import operator
from collections.abc import Callable
from typing import Any


class Platform(enum.StrEnum):
    """An integration platform. Manifest file names use the lower-case form."""

    HUBSPOT = "HUBSPOT"
    STRIPE = "STRIPE"
    QUICKBOOKS = "QUICKBOOKS"

    @property
    def file_stem(self) -> str:
        """``stripe`` for ``manifests/tenants/<tenant>/stripe.yaml``."""
        return self.value.lower()


class Environment(enum.StrEnum):
    """Deployment environment. Manifests key environments by the lower-case form."""

    PRODUCTION = "PRODUCTION"
    SANDBOX = "SANDBOX"
    STAGING = "STAGING"
    DEVELOPMENT = "DEVELOPMENT"

    @property
    def manifest_key(self) -> str:
        return self.value.lower()


class ConfigType(enum.StrEnum):
    API_KEY = "API_KEY"
    WEBHOOK = "WEBHOOK"
    OAUTH = "OAUTH"
    SETTINGS = "SETTINGS"


class SyncDirection(enum.StrEnum):
    INBOUND = "INBOUND"
    OUTBOUND = "OUTBOUND"
    BIDIRECTIONAL = "BIDIRECTIONAL"


class HealthStatus(enum.StrEnum):
    HEALTHY = "HEALTHY"
    DEGRADED = "DEGRADED"
    UNHEALTHY = "UNHEALTHY"
    UNKNOWN = "UNKNOWN"


class WebhookType(enum.StrEnum):
    INBOUND = "INBOUND"
    OUTBOUND = "OUTBOUND"


class AuthType(enum.StrEnum):
    NONE = "NONE"
    SIGNATURE = "SIGNATURE"
    BEARER = "BEARER"
    API_KEY = "API_KEY"
    BASIC = "BASIC"
    CUSTOM = "CUSTOM"


class CircuitBreakerStatus(enum.StrEnum):
    CLOSED = "CLOSED"
    OPEN = "OPEN"
    HALF_OPEN = "HALF_OPEN"


_Comparison = Callable[["RiskLevel", object], Any]
"""A rich comparison: a bool, or ``NotImplemented`` for another type."""


def _by_rank(compare: Callable[[int, int], bool]) -> _Comparison:
    """A comparison of risk levels by rank (another type: ``NotImplemented``)."""

    def method(self: RiskLevel, other: object) -> Any:
        if not isinstance(other, RiskLevel):
            return NotImplemented
        return compare(_RANKS[self], _RANKS[other])

    return method


class RiskLevel(enum.StrEnum):
    """Risk of a change, ordered LOW < MEDIUM < HIGH < CRITICAL (as is the PostgreSQL enum)."""

    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"
    CRITICAL = "CRITICAL"

    @property
    def rank(self) -> int:
        return _RANKS[self]

    # str defines every comparison, so all four must be overridden (total_ordering would
    # keep str's alphabetical ones, where "HIGH" < "LOW").
    __lt__ = _by_rank(operator.lt)
    __le__ = _by_rank(operator.le)
    __gt__ = _by_rank(operator.gt)
    __ge__ = _by_rank(operator.ge)

    @property
    def requires_review(self) -> bool:
        """HIGH and CRITICAL changes are marked for review in the audit log."""
        return self.rank >= 2


_RISK_ORDER = (RiskLevel.LOW, RiskLevel.MEDIUM, RiskLevel.HIGH, RiskLevel.CRITICAL)
_RANKS = {level: rank for rank, level in enumerate(_RISK_ORDER)}
"""Each level's rank (compared for every reason of every change a plan scores)."""


class AuditAction(enum.StrEnum):
    """What an audit row records."""

    CREATE = "CREATE"
    UPDATE = "UPDATE"
    DELETE = "DELETE"
    REVOKE = "REVOKE"
    ROTATE = "ROTATE"
    REVIEW = "REVIEW"
    """A reviewer's decision on an earlier row (``changes`` names it); chained like every row."""


class EntityType(enum.StrEnum):
    """The kind of row an audit entry is about."""

    INTEGRATION_CONFIG = "INTEGRATION_CONFIG"
    WEBHOOK_CONFIGURATION = "WEBHOOK_CONFIGURATION"
    OAUTH_TOKEN = "OAUTH_TOKEN"  # noqa: S105 - an entity type, not a password


class ReviewDecision(enum.StrEnum):
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"


class ApplyOutcome(enum.StrEnum):
    """How an apply run ended (``apply_runs.outcome``)."""

    APPLIED = "APPLIED"
    NO_CHANGES = "NO_CHANGES"
