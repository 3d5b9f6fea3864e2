"""reconciler: GitOps configuration-as-code for multi-tenant integration configuration.

Engineers change YAML manifests (one file per tenant and platform, secrets encrypted with
SOPS/age) in a pull request; CI runs ``reconciler validate`` and ``reconciler plan``; after
merge a deploy job runs ``reconciler apply``, which writes every change to PostgreSQL in one
transaction with a risk-scored audit entry per change.

The pipeline, one package per stage::

    load (YAML + SOPS) -> validate -> DesiredState
    store.read -> ActualState
    core.diff / core.risk / core.order -> Plan  (pure, no I/O)
    render (text | json | markdown | github)  /  store.apply (one transaction)
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
