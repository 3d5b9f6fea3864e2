"""tests/e2e/test_database_recorded_writes.py on a Citus cluster.

Expected to fail (see docs/citus.md, "Known limits"): these services write the tables
directly with ``app.tenant_id`` set by ``set_config()`` for the session, which stays on the
coordinator, so the policy evaluated on the shards sees no tenant. Services calling the
runtime functions are covered by test_runtime_functions_on_citus.py. Kept so the gap stays
visible.
"""

import pytest

from tests.e2e.test_database_recorded_writes import *  # noqa: F403

pytestmark = [
    pytest.mark.citus,
    pytest.mark.xfail(
        reason="direct service writes with a session-level app.tenant_id do not reach the shards",
        strict=False,
    ),
]
