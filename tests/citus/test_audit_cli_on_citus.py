"""tests/cli/test_audit_cli.py, unchanged, on a Citus cluster."""

import pytest

from tests.cli.test_audit_cli import *  # noqa: F403

pytestmark = pytest.mark.citus
