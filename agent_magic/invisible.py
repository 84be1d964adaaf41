"""Characters that make code read differently from what runs, found and shown escaped.

Bidirectional controls (U+202A-U+202E, U+2066-U+2069: "Trojan Source") reorder what an
editor shows, and zero-width and other format characters (Unicode category Cf), control
characters other than tab and newline, line and paragraph separators and the Hangul
fillers show as nothing at all. :func:`invisible_chars` finds them, :func:`describe`
names them in one line (a review's warning, the loop's reason to ask) and
:func:`escape` writes them as ``\\u202e`` so a review shows what runs.

Pure functions on text: no IPython, no widgets. Used by the loop
(:mod:`agent_magic.conversation.loop`, which asks about such a step in every mode) and
the reviews (:mod:`agent_magic.ui`).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

_ORDINARY = frozenset("\t\n")
_SUSPECT = re.compile(r"[^\t\n\x20-\x7e]")  # anything but printable ASCII, tab, newline
_PLAIN = bytes(range(0x20, 0x7F)) + b"\t\n"  # what _SUSPECT lets pass, as bytes
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0")  # Hangul fillers: letters, drawn blank
_MOST_NAMED = 5  # a description names this many kinds, then says how many more


@dataclass(frozen=True)
class Invisible:
    """One invisible character: where it is (1-based line) and what it is."""

    char: str
    line: int

    @property
    def code(self) -> str:
        return f"U+{ord(self.char):04X}"

    @property
    def name(self) -> str:
        return unicodedata.name(self.char, "") or _CONTROL_NAMES.get(self.char, "control")


_CONTROL_NAMES = {"\r": "CARRIAGE RETURN", "\x1b": "ESCAPE", "\x08": "BACKSPACE", "\0": "NULL"}


def is_invisible(char: str) -> bool:
    """True for a character that a review would not show as what it is."""
    if char in _ORDINARY:
        return False
    if char in _BLANK_LETTERS:
        return True
    return unicodedata.category(char) in ("Cf", "Cc", "Zl", "Zp")


def suspect(text: str) -> bool:
    """True when ``text`` holds anything but printable ASCII, tab and newline (what
    ``_SUSPECT`` matches). An ASCII string (known without reading it) is checked as bytes,
    by deleting the plain ones: ~1 ms for a megabyte, against ~12 ms for the regex."""
    if text.isascii():
        return bool(text.encode("ascii").translate(None, _PLAIN))
    return True


def invisible_chars(text: str) -> list[Invisible]:
    """Each invisible character in ``text`` (a ``\\r`` ending a line excepted), in order."""
    if not suspect(text):  # the common case
        return []
    found = []
    line = 1
    for i, char in enumerate(text):
        if char == "\n":
            line += 1
        elif is_invisible(char) and not (char == "\r" and text[i + 1 : i + 2] == "\n"):
            found.append(Invisible(char, line))
    return found


def describe(texts: Iterable[str]) -> str:
    """One line naming the invisible characters in ``texts`` (each a block), or ""."""
    found = [(n, c) for n, text in enumerate(texts, 1) for c in invisible_chars(text)]
    if not found:
        return ""
    kinds: dict[str, list[int]] = {}
    for _, item in found:
        kinds.setdefault(f"{item.code} {item.name}", []).append(item.line)
    named = [
        f"{kind} (line {', '.join(map(str, sorted(set(lines))[:3]))})"
        for kind, lines in list(kinds.items())[:_MOST_NAMED]
    ]
    more = len(kinds) - _MOST_NAMED
    if more > 0:
        named.append(f"{more} more kind{'s' if more > 1 else ''}")
    count = len(found)
    return f"holds {count} invisible character{'s' if count > 1 else ''}: {', '.join(named)}"


def escape(text: str) -> str:
    """``text`` with each invisible character written as a Python escape (``\\u202e``)."""
    if not suspect(text):
        return text
    out = []
    for i, char in enumerate(text):
        if is_invisible(char) and not (char == "\r" and text[i + 1 : i + 2] == "\n"):
            point = ord(char)
            out.append(f"\\x{point:02x}" if point < 0x100 else f"\\u{point:04x}")
            if point > 0xFFFF:
                out[-1] = f"\\U{point:08x}"
        else:
            out.append(char)
    return "".join(out)
