"""tests/cli/test_report_cli.py, unchanged, on a Citus cluster."""

from tests.cli.test_report_cli import *  # noqa: F403
