"""Interactive apply: on a terminal, apply shows the plan and needs the answer ``yes``."""

from __future__ import annotations

import os
import pty
import subprocess

import pytest

from tests.e2e.workspace import Workspace, stripe_manifest


def _apply_on_terminal(ws: Workspace, answer: str) -> tuple[int, str]:
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        ws.command("apply", "--quiet"),
        cwd=ws.root,
        env=ws.env,
        stdin=slave,
        stdout=slave,
        stderr=slave,
    )
    os.close(slave)
    os.write(master, answer.encode() + b"\n")
    output = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the terminal closes when the process exits
            break
        if not chunk:
            break
        output += chunk
    os.close(master)
    return proc.wait(timeout=60), output.decode(errors="replace")


@pytest.mark.parametrize(("answer", "code", "rows"), [("no", 1, 0), ("yes", 0, 1)])
def test_apply_asks_on_a_terminal(ws: Workspace, answer: str, code: int, rows: int) -> None:
    ws.write("acme", "stripe", stripe_manifest("acme"))
    status, output = _apply_on_terminal(ws, answer)
    assert "Apply these changes?" in output and "to create" in output
    assert status == code, output
    assert ws.sql("SELECT count(*) FROM integration_configs") == [(rows,)]
    if answer == "no":
        assert "apply cancelled; nothing written" in output
