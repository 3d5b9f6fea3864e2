"""Names written to audit rows are one line of printable text; stored text prints escaped."""

from __future__ import annotations

from tests.e2e.workspace import Workspace, stripe_manifest


def test_actor_with_a_newline_is_refused_before_anything_is_written(ws: Workspace) -> None:
    ws.write("acme", "stripe", stripe_manifest("acme"))
    before = ws.snapshot()

    flag = ws.run("apply", "--auto-approve", "--actor", "bob\n::error::forged")
    ws.env["RECONCILER_ACTOR"] = "bob\x1b[2J"
    env = ws.run("apply", "--auto-approve")

    for result, source in ((flag, "--actor"), (env, "$RECONCILER_ACTOR")):
        assert result.returncode == 1, result.stdout + result.stderr
        assert f"{source}: a name must be one line of printable text" in result.stderr
        assert "Traceback" not in result.stderr
        assert "::error::forged" not in result.stderr
    assert ws.snapshot() == before


def test_history_prints_stored_control_characters_escaped(ws: Workspace) -> None:
    ws.write("acme", "stripe", stripe_manifest("acme"))
    assert ws.run("apply", "--auto-approve").returncode == 0
    # Another writer of the table (or an older release) stored a name with a newline in it.
    ws.sql("UPDATE apply_runs SET actor = %s", "x\n::error::forged")

    shown = ws.run("history")

    assert shown.returncode == 0, shown.stderr
    assert not any(line.startswith("::") for line in shown.stdout.splitlines())
    assert "x\\n::error" in shown.stdout
