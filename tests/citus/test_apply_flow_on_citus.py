"""The end-to-end apply flow (tests/e2e/test_apply_flow.py), unchanged, on a Citus cluster."""

import pytest

from tests.e2e.test_apply_flow import *  # noqa: F403

pytestmark = pytest.mark.citus
