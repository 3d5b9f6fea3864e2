"""An error inside the apply transaction always tells the user it was rolled back.

Whether to add that notice depends on the error, never on its text: a message that merely
contains the word "nothing" (here, in the lock holder's name) still gets it.
"""

from __future__ import annotations

import psycopg
import pytest

from reconciler.store.locks import APPLY_LOCK_KEY
from tests.e2e.workspace import Workspace, libpq_url, stripe_manifest

pytestmark = pytest.mark.slow


def test_lock_timeout_naming_nothing_still_says_rolled_back(ws: Workspace) -> None:
    ws.write("acme", "stripe", stripe_manifest("acme"))
    with psycopg.connect(libpq_url(ws.database_url), autocommit=True) as holder:
        holder.execute("SET application_name = 'nothing-to-see'")
        holder.execute("SELECT pg_advisory_lock(%s)", (APPLY_LOCK_KEY,))
        result = ws.run("apply", "--auto-approve", "--lock-timeout", "1")
    assert result.returncode == 1
    assert "nothing-to-see" in result.stderr
    assert "; rolled back, nothing applied" in result.stderr
    assert "Traceback" not in result.stderr
    assert ws.sql("SELECT count(*) FROM integration_configs") == [(0,)]
