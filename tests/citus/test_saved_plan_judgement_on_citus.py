"""tests/e2e/test_saved_plan_judgement.py, unchanged, on a Citus cluster."""

import pytest

from tests.e2e.test_saved_plan_judgement import *  # noqa: F403

pytestmark = pytest.mark.citus
