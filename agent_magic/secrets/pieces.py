"""Finding pieces of known secret values: a key printed over two lines, a password a repr
cut short (pandas shows a long value as its first 47 characters and "...").

:class:`Pieces` hides every run of :data:`MIN_PIECE` or more characters of a known value,
wherever it stands. It indexes each value by its :data:`GRAM`-character substrings and
finds candidates in the text in one of two ways, whichever is cheaper for the secrets
known: with few, ``str.find`` (in C) for each value's grams at multiples of ``GRAM``
(every piece holds one); with many, one lookup of the text's gram every
``MIN_PIECE - GRAM + 1`` characters (every piece holds a gram starting at such a
position; a megabyte is about 150,000 lookups however many secrets are known). Either
way no piece is missed. A gram found is grown to the whole run of the value it belongs
to, and only runs of ``MIN_PIECE`` or more are hidden. A value that is a file path is
hidden whole only: its pieces are the folders every traceback names.

Not here: whole values and credential shapes (:class:`.redactor.Redactor`, which calls
this after replacing them).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MIN_PIECE = 12  # the shortest piece of a secret that is hidden
GRAM = 6  # the indexed substrings
_STRIDE = MIN_PIECE - GRAM + 1
_MOST_BLOCKS = 48  # above this many blocks, probing the text is the cheaper search
# A file path held under a secret name (GOOGLE_APPLICATION_CREDENTIALS=/home/me/...): the
# whole value is hidden, but its pieces ("/home/me/pro") are in every traceback.
_PATH = re.compile(r"(?:[/~]|\.{1,2}/|[A-Za-z]:[\\/])[^\s]*\Z")


class Pieces:
    """Hides runs of ``MIN_PIECE``+ characters of known values in text."""

    def __init__(self, values: Iterable[tuple[str, str]]) -> None:
        # gram -> (value, where in it, marker): a gram may occur in several values.
        self.index: dict[str, list[tuple[str, int, str]]] = {}
        blocks: set[str] = set()
        for value, marker in values:
            if len(value) < MIN_PIECE or _PATH.match(value):
                continue
            for at in range(len(value) - GRAM + 1):
                self.index.setdefault(value[at : at + GRAM], []).append((value, at, marker))
            blocks.update(value[at : at + GRAM] for at in range(0, len(value) - GRAM + 1, GRAM))
        # Every piece holds one of its value's grams at a multiple of GRAM: with few such
        # blocks, str.find for each (C, skipping ahead) beats probing every _STRIDE-th
        # position in Python; with many, probing costs the same however many there are.
        self.blocks = sorted(blocks) if len(blocks) <= _MOST_BLOCKS else None

    def __bool__(self) -> bool:
        return bool(self.index)

    def spans(self, text: str) -> list[tuple[int, int, str]]:
        """(start, end, marker) of every piece of a known value in ``text``, in order,
        not overlapping."""
        index = self.index
        if not index or len(text) < MIN_PIECE:
            return []
        if self.blocks is not None:
            probes = sorted(_occurrences(text, self.blocks))
        else:
            probes = [
                i for i in range(0, len(text) - GRAM + 1, _STRIDE) if text[i : i + GRAM] in index
            ]
        found: list[tuple[int, int, str]] = []
        reach = 0  # the end of the last piece found: probes inside it are done
        for i in probes:
            if i < reach:
                continue
            best: tuple[int, int, str] | None = None
            for value, at, marker in index[text[i : i + GRAM]]:
                start, end = _grow(text, i, value, at)
                if end - start >= MIN_PIECE and (best is None or end - start > best[1] - best[0]):
                    best = (start, end, marker)
            if best is not None:
                start = max(best[0], reach)
                found.append((start, best[1], best[2]))
                reach = best[1]
        return found


def _occurrences(text: str, blocks: list[str]) -> list[int]:
    """Where each block occurs in ``text``."""
    found = []
    for block in blocks:
        at = text.find(block)
        while at != -1:
            found.append(at)
            at = text.find(block, at + 1)
    return found


def _grow(text: str, i: int, value: str, at: int) -> tuple[int, int]:
    """The run of ``text`` around ``text[i:i+GRAM] == value[at:at+GRAM]`` that matches
    ``value``: (start, end) in ``text``."""
    left = 0
    while left < at and left < i and text[i - left - 1] == value[at - left - 1]:
        left += 1
    right, n, m = 0, len(text), len(value)
    while i + GRAM + right < n and at + GRAM + right < m:
        if text[i + GRAM + right] != value[at + GRAM + right]:
            break
        right += 1
    return i - left, i + GRAM + right
