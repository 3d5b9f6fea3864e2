"""DesiredState: what the manifests say, validated and (where keys allow) decrypted.

Produced by ``reconciler.load`` and consumed by the pure core. Its objects are declared with
the field table (``model/fields.py``), in its order, named like the database columns they
reconcile against, so the diff can compare like with like. Runtime-owned columns (health,
sync timestamps, circuit-breaker state and counters, token material, row versions) have no
field here: manifests cannot set them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reconciler.model.fields import (
    DesiredIntegration,
    DesiredOAuthAccount,
    DesiredWebhook,
    RetryPolicy,
)
from reconciler.model.values import JSONValue, SecretValue, Source

__all__ = [
    "NO_ROWS",
    "DesiredIntegration",
    "DesiredOAuthAccount",
    "DesiredState",
    "DesiredWebhook",
    "EncodedRows",
    "JSONValue",
    "RetryPolicy",
    "Row",
    "SecretValue",
    "Source",
]


@dataclass(frozen=True, slots=True)
class DesiredState:
    """Everything the selected manifests declare.

    Attributes:
        tenants: every selected tenant that has at least one manifest file, of any platform
            (used by the mass-deletion breaker to tell "a tenant disappeared" from "a tenant
            changed"; platform selectors do not narrow it).
        manifests_digest: SHA-256 over the selected manifest files' bytes (path-sorted); a
            saved plan records it and apply refuses a plan whose manifests moved.
    """

    integrations: tuple[DesiredIntegration, ...] = ()
    webhooks: tuple[DesiredWebhook, ...] = ()
    oauth_accounts: tuple[DesiredOAuthAccount, ...] = ()
    tenants: frozenset[str] = frozenset()
    manifests_digest: str = ""


Row = tuple[Any, ...]
"""One declared integration or webhook, encoded: a position per field of its entity in the
field table (``model/fields.py``), in the table's order, then anything (the manifest cache
adds the source path). Enums are their labels, secrets their fingerprints (``None``:
absent), lists tuples, mappings dicts."""


@dataclass(frozen=True, slots=True)
class EncodedRows:
    """Declared integrations and webhooks as :data:`Row` values, not yet desired objects
    (the manifest cache's unchanged files, kept encoded until the plan needs them)."""

    integrations: tuple[Row, ...] = ()
    webhooks: tuple[Row, ...] = ()


NO_ROWS = EncodedRows()
"""No encoded rows (nothing deferred)."""
