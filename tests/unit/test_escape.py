"""printable: stored free text cannot start a new output line or a terminal escape."""

from __future__ import annotations

import pytest

from reconciler.escape import printable


@pytest.mark.parametrize(
    ("stored", "shown"),
    [
        ("deploy-bot", "deploy-bot"),
        ("Zoë Ångström", "Zoë Ångström"),
        ("bob\n::error::forged", "bob\\n::error::forged"),
        ("a\r\tb", "a\\r\\tb"),
        ("\x1b[2Jclear", "\\x1b[2Jclear"),
        ("rtl\u202eevil", "rtl\\u202eevil"),
        ("line\u2028sep", "line\\u2028sep"),
        ("back\\slash", "back\\\\slash"),
    ],
)
def test_printable_escapes_what_could_forge_a_line(stored: str, shown: str) -> None:
    assert printable(stored) == shown
    assert "\n" not in printable(stored) and "\r" not in printable(stored)
