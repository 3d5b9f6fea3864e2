"""tests/cli/test_keys_cli.py, unchanged, on a Citus cluster."""

from tests.cli.test_keys_cli import *  # noqa: F403
