"""fleet_chain_lock: a write to many tenants takes one lock instead of one per tenant.

Revision ID: fleet_chain_lock
Revises: citus_runtime
Create Date: 2026-12-02

Every writer that extends tenants' audit chains locks them first: the reconciler before it
appends its keyed rows, and ``record_configuration_write()`` (the recording trigger) before
it records a service's write. Until now each took one advisory lock per tenant it wrote, all
held to the end of the transaction. PostgreSQL keeps those in a shared lock table sized by
``max_locks_per_transaction`` (64 × connections by default, a few thousand slots for the
whole server), so a transaction writing tens of thousands of tenants (the first ``apply`` of
a large fleet, or a service inserting a batch of tokens) failed with "out of shared memory".

Now every chain writer first takes the *fleet chain lock*, the advisory lock keyed by the
first 8 bytes of ``sha256('reconciler/audit-chains')``:

* writing at most ``FLEET_THRESHOLD`` tenants, it takes the fleet lock **shared**, then each
  tenant's lock exclusively in key order, as before: writers of different tenants still run
  side by side;
* writing more, it takes the fleet lock **exclusively** and no tenant locks: it waits for
  every chain writer in progress and keeps new ones out until it ends.

Either way two writers of the same tenant exclude each other, and no transaction holds more
than ``FLEET_THRESHOLD`` + 1 chain locks. The reconciler (``reconciler.store.audit_write``)
follows the same protocol with the same key.

Upgrade amends ``record_configuration_write()`` in place (as ``runtime_functions`` does);
downgrade reverses the amendment exactly. No table or row changes either way.
"""

from __future__ import annotations

import textwrap

from alembic import op

from reconciler.migrations.support import amend_function, undo_amendment

revision: str = "fleet_chain_lock"
down_revision: str | None = "citus_runtime"

RECORDING = "record_configuration_write()"
FLEET_THRESHOLD = 256
"""Above this many tenants in one statement, the fleet lock is taken exclusively."""

_FLEET_KEY = (
    "('x' || left(encode(sha256(convert_to('reconciler/audit-chains', 'UTF8')), 'hex'), 16))"
    "::bit(64)::bigint"
)

_TENANT_LOCKS = """
    -- One chain lock per tenant, in key order (the order the reconciler takes them in).
    PERFORM pg_advisory_xact_lock(k)
       FROM (SELECT DISTINCT ('x' || left(encode(sha256(convert_to(
                    'reconciler/audit-chain/' || (r ->> 't'), 'UTF8')), 'hex'), 16))
                    ::bit(64)::bigint AS k
               FROM jsonb_array_elements(changed_rows) r) keys
      ORDER BY k;
"""

_FLEET_THEN_TENANT_LOCKS = f"""
    -- The fleet chain lock first (fleet_chain_lock): exclusive for a write to more than
    -- {FLEET_THRESHOLD} tenants, which then takes no tenant locks; shared otherwise.
    IF (SELECT count(DISTINCT r ->> 't') FROM jsonb_array_elements(changed_rows) r)
       > {FLEET_THRESHOLD} THEN
        PERFORM pg_advisory_xact_lock({_FLEET_KEY});
    ELSE
        PERFORM pg_advisory_xact_lock_shared({_FLEET_KEY});
{textwrap.indent(_TENANT_LOCKS.strip(chr(10)), "    ")}
    END IF;
"""

AMENDMENTS = ((_TENANT_LOCKS, _FLEET_THEN_TENANT_LOCKS),)


def upgrade() -> None:
    op.execute(amend_function(revision, RECORDING, AMENDMENTS))


def downgrade() -> None:
    op.execute(undo_amendment(revision, RECORDING, AMENDMENTS))
