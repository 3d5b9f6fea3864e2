"""atomic_write: the one way files are replaced."""

from __future__ import annotations

import stat
from pathlib import Path

from reconciler.files import atomic_write


def test_private_write_replaces_the_file_with_mode_0600(tmp_path: Path) -> None:
    target = tmp_path / "cache"
    target.write_bytes(b"old")
    target.chmod(0o644)
    atomic_write(target, b"new\r\n", keep_mode=False)
    assert target.read_bytes() == b"new\r\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["cache"]


def test_text_is_written_as_utf8_with_line_endings_untouched(tmp_path: Path) -> None:
    target = tmp_path / "plan.json"
    atomic_write(target, "päß\r\n")
    assert target.read_bytes() == "päß\r\n".encode()
