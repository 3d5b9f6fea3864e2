"""A database error no layer anticipated is one line that says nothing was applied."""

from __future__ import annotations

from tests.e2e.workspace import Workspace, stripe_manifest


def test_unanticipated_database_error_is_one_line(ws: Workspace) -> None:
    # The server refuses the audit INSERT with an error class nothing in the reconciler maps
    # (as a distributed database refusing a query plan does).
    ws.sql(
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "RAISE EXCEPTION 'this server cannot plan that' USING ERRCODE = '0A000'; END $$"
    )
    ws.sql(
        "CREATE TRIGGER refuse BEFORE INSERT ON configuration_audit_logs "
        "FOR EACH STATEMENT EXECUTE FUNCTION refuse()"
    )
    ws.write("acme", "stripe", stripe_manifest("acme"))
    result = ws.run("apply", "--auto-approve")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert errors == [
        "Error: the database refused an INSERT into configuration_audit_logs: this server "
        "cannot plan that (SQLSTATE 0A000); the transaction was rolled back, nothing was "
        "applied (--debug shows the details)"
    ], result.stderr
    assert ws.sql("SELECT count(*) FROM integration_configs") == [(0,)]
    debug = ws.run("--debug", "apply", "--auto-approve")
    assert "Traceback" in debug.stderr and "FeatureNotSupported" in debug.stderr
