"""tests/integration/test_import_roundtrip.py, unchanged, on a Citus cluster."""

from tests.integration.test_import_roundtrip import *  # noqa: F403
