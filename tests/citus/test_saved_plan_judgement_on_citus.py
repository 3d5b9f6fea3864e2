"""tests/e2e/test_saved_plan_judgement.py, unchanged, on a Citus cluster."""

from tests.e2e.test_saved_plan_judgement import *  # noqa: F403
