"""tests/integration/test_health_check.py, unchanged, on a Citus cluster."""

import pytest

from tests.integration.test_health_check import *  # noqa: F403

pytestmark = pytest.mark.citus
