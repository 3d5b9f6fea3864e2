"""The order of changes in a plan, written down once.

Creates, updates and revokes of declared objects come first, sorted by tenant, platform,
environment, kind (integration, webhook, OAuth account) and name. Deletions and revocations
of undeclared objects come last, kinds in reverse (an account's token is revoked before its
webhooks and integrations are deleted), so a reader sees what is added before what goes
away and apply removes dependants before what they depend on. The order is total, so plans
and their renderings are byte-for-byte reproducible.
"""

from __future__ import annotations

from collections.abc import Iterable

from reconciler.model.plan import Action, Change, ResourceKind

_KIND_ORDER = {ResourceKind.INTEGRATION: 0, ResourceKind.WEBHOOK: 1, ResourceKind.OAUTH_ACCOUNT: 2}


def _key(change: Change) -> tuple[int, str, str, str, int, str, str]:
    a = change.address
    removal = change.action is Action.DELETE or (
        change.action is Action.REVOKE and not change.source
    )
    kind_rank = _KIND_ORDER[a.kind]
    if removal:
        kind_rank = len(_KIND_ORDER) - kind_rank
    env = a.environment.value if a.environment else ""
    return (int(removal), a.tenant, a.platform.value, env, kind_rank, a.name, change.action.value)


def order_changes(changes: Iterable[Change]) -> tuple[Change, ...]:
    """Return ``changes`` in plan order (see module docstring)."""
    return tuple(sorted(changes, key=_key))
