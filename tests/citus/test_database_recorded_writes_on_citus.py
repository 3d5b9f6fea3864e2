"""tests/e2e/test_database_recorded_writes.py, unchanged, on a Citus cluster."""

from tests.e2e.test_database_recorded_writes import *  # noqa: F403
