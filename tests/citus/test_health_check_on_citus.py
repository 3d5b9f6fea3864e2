"""tests/integration/test_health_check.py, unchanged, on a Citus cluster."""

from tests.integration.test_health_check import *  # noqa: F403
