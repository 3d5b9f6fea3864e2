"""tests/cli/test_audit_cli.py, unchanged, on a Citus cluster."""

from tests.cli.test_audit_cli import *  # noqa: F403
