"""tests/e2e/test_database_recorded_writes.py on a Citus cluster.

Expected to fail until services writing through row-level security work on Citus (see
docs/citus.md, "Known limits"): the service role's ``app.tenant_id`` does not reach the
workers, and the policy's grants lookup is refused on a shard. Kept so the gap stays visible.
"""

import pytest

from tests.e2e.test_database_recorded_writes import *  # noqa: F403

pytestmark = [
    pytest.mark.citus,
    pytest.mark.xfail(
        reason="services writing through row-level security are not supported on Citus yet",
        strict=False,
    ),
]
