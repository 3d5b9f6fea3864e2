"""ActualState: what PostgreSQL holds, read set-based by ``store.read``.

Secrets appear only as fingerprints (the ciphertext never leaves the store adapter), plus,
for each stored secret that is not provably the value its fingerprint describes, why not
(:class:`SecretDoubt`). Its objects are declared with the field table (``model/fields.py``),
a secret as its ``<column>_fingerprint``.
"""

from __future__ import annotations

from dataclasses import dataclass

from reconciler.model.fields import ActualIntegration, ActualToken, ActualWebhook
from reconciler.model.values import SecretDoubt

__all__ = ["ActualIntegration", "ActualState", "ActualToken", "ActualWebhook", "SecretDoubt"]


@dataclass(frozen=True, slots=True)
class ActualState:
    """The rows that the selected tenants and platforms have in the database."""

    integrations: tuple[ActualIntegration, ...] = ()
    webhooks: tuple[ActualWebhook, ...] = ()
    tokens: tuple[ActualToken, ...] = ()
