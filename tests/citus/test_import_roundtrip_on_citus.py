"""tests/integration/test_import_roundtrip.py, unchanged, on a Citus cluster."""

import pytest

from tests.integration.test_import_roundtrip import *  # noqa: F403

pytestmark = pytest.mark.citus
