"""tests/e2e/test_database_recorded_writes.py, unchanged, on a Citus cluster."""

import pytest

from tests.e2e.test_database_recorded_writes import *  # noqa: F403

pytestmark = pytest.mark.citus
