"""Text from the database made safe to print on one line of a terminal or a CI log.

Free text in audit rows and apply runs (names, notes, user agents) was written by whoever
could write those tables. Printed raw, a newline in it could forge an output line (or a
GitHub workflow command such as ``::error::``) and an escape sequence could rewrite the
terminal. Renderers of such text pass it through :func:`printable` first.
"""

from __future__ import annotations

import unicodedata

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\"}


def printable(text: str) -> str:
    """``text`` with backslashes and every control, format or line-separator character escaped."""
    if text.isprintable() and "\\" not in text:
        return text
    return "".join(_escape(ch) for ch in text)


def _escape(ch: str) -> str:
    if ch in _NAMED:
        return _NAMED[ch]
    if unicodedata.category(ch)[0] == "C" or ch in "\u2028\u2029":
        return f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}"
    return ch
