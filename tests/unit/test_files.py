"""atomic_write: the one way files are replaced."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

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


def test_pieces_are_written_as_produced_and_a_failure_keeps_the_old_file(
    tmp_path: Path,
) -> None:
    target = tmp_path / "cache"
    atomic_write(target, (piece for piece in (b"one\n", b"two\n")), keep_mode=False)
    assert target.read_bytes() == b"one\ntwo\n"

    def failing() -> Iterator[bytes]:
        yield b"half"
        raise RuntimeError("encoding failed")

    with pytest.raises(RuntimeError):
        atomic_write(target, failing(), keep_mode=False)
    assert target.read_bytes() == b"one\ntwo\n"
    assert [p.name for p in tmp_path.iterdir()] == ["cache"]
