"""Terminal-safe text: what the commands print of users' input and stored data.

Escaping rule: C0 and C1 control characters, DEL, the Unicode bidirectional controls
(U+061C, U+200E, U+200F, U+202A-U+202E, U+2066-U+2069) and the line/paragraph separators
(U+2028, U+2029) are shown as visible escapes (``\\x1b``, ``\\u202e``; ``\\n``, ``\\r``,
``\\t``), and a backslash as ``\\\\``, so an escape shown is never mistaken for text that
only looks like one. No dependency: the Django management commands use it too.
"""

from __future__ import annotations

import re

__all__ = ["printable"]

_UNSAFE = re.compile(
    r"[\\\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]"
)
_SHORT = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escaped(match: re.Match[str]) -> str:
    char = match.group()
    short = _SHORT.get(char)
    if short is not None:
        return short
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def printable(value: object) -> str:
    """``str(value)`` with control, bidi and separator characters (and ``\\``) escaped."""
    return _UNSAFE.sub(_escaped, str(value))
