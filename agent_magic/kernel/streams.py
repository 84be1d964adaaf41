"""What a step printed, as the recording and the exported notebook keep it: bounded.

A step's printed text reaches the notebook (up to the display limit) and the model's
digest (:class:`~.tee.HeadTail`) on its own path; the step's nbformat outputs keep its
first :data:`HEAD_CHARS` characters of stream text in order, interleaved with its
displays, then only the last :data:`TAIL_CHARS`, with a cut mark between. Without the
tail, a step alternating stdout and stderr (a progress bar on stderr beside prints)
started a new output at every switch and kept all of it in memory, and a long print kept
its first characters and lost its end.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from ..text import cut_mark

HEAD_CHARS = 100_000  # stream text kept in order from the start of the step
TAIL_CHARS = 50_000  # stream text kept from its end, once the head is full


class StreamTail:
    """The last ``limit`` characters written to stdout and stderr, in order.

    Pieces are trimmed from the front once they hold twice the limit, so a write costs
    about a deque append however many there are; :meth:`outputs` trims to the limit.
    """

    def __init__(self, limit: int = TAIL_CHARS) -> None:
        self.limit = limit
        self.cut = 0  # characters dropped from the front
        self._pieces: deque[list[str]] = deque()  # [name, text], adjacent names merged
        self._size = 0

    def add(self, name: str, text: str) -> None:
        pieces = self._pieces
        if pieces and pieces[-1][0] == name and len(pieces[-1][1]) < self.limit:
            pieces[-1][1] += text
        else:
            pieces.append([name, text])
        self._size += len(text)
        if self._size > 2 * self.limit:
            self._trim()

    def _trim(self) -> None:
        pieces = self._pieces
        while self._size > self.limit:
            excess = self._size - self.limit
            name, text = pieces[0]
            if len(text) <= excess:
                pieces.popleft()
                self._size -= len(text)
                self.cut += len(text)
            else:
                pieces[0][1] = text[excess:]
                self._size -= excess
                self.cut += excess

    def outputs(self) -> list[dict[str, Any]]:
        """The tail as nbformat stream outputs, after a mark saying how much was cut."""
        self._trim()
        kept: list[dict[str, Any]] = []
        for name, text in self._pieces:
            if kept and kept[-1]["name"] == name:
                kept[-1]["text"] += text
            else:
                kept.append({"output_type": "stream", "name": name, "text": text})
        if self.cut:
            mark = {
                "output_type": "stream",
                "name": "stdout",
                "text": f"\n{cut_mark(f'{self.cut:,}', 'characters of output')}\n",
            }
            kept.insert(0, mark)
        return kept
