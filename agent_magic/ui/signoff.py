"""The sign-off marker, kept out of what a person reads.

The model ends its last message with a marker (``TERMINATE`` unless
``AgentMagics.termination_marker`` says otherwise) so the loop knows it is done. The
marker is for the loop: the widget and the terminal show the answer without it, while
the conversation and its record keep the reply exactly as the model sent it.

:func:`without_marker` cleans a whole reply; :class:`MarkerFilter` cleans a streamed one
as it arrives, holding back only a tail that could still turn out to be the marker.
Which replies count as signed off is :func:`agent_magic.codeblocks.is_termination`'s
call; this module only agrees with it on where the marker sits.
"""

from __future__ import annotations

# What may follow the marker at the end of a reply (as is_termination allows).
_TRAILING = "`~*_.!\"' \t\n\r"
_EMPHASIS = "*_`~"


# A word small models close their answer with, on a line of its own: never prose either.
_END = "END"


def without_marker(text: str, marker: str) -> str:
    """``text`` without a closing ``marker`` (and the emphasis or stop wrapped round it),
    without a line that holds only the marker, and without a closing ``END`` line."""
    while True:
        shorter = _without_lines(_without_closing(text, marker), marker)
        if shorter == text:
            return text
        text = shorter


def _without_lines(text: str, marker: str) -> str:
    """``text`` without lines that are only the marker, and without a last line ``END``."""
    lines = text.split("\n")
    kept = [line for line in lines if not marker or _bare(line) != marker]
    body = list(kept)
    while body and not body[-1].strip():
        body.pop()
    if body and _bare(body[-1]) == _END:
        kept = body[:-1]
    if len(kept) == len(lines):
        return text
    return "\n".join(kept).rstrip()


def _bare(line: str) -> str:
    return line.strip(_TRAILING + _EMPHASIS)


def _without_closing(text: str, marker: str) -> str:
    if not marker:
        return text
    stripped = text.rstrip()
    tail = stripped.rstrip(_TRAILING)
    if not tail.endswith(marker):
        return text
    body = tail[: -len(marker)]
    after = stripped[len(tail) :]
    # "**TERMINATE**" or "`TERMINATE`": drop the opening half of the wrapping too.
    wrap = body[len(body.rstrip(_EMPHASIS)) :]
    if wrap and after.startswith(wrap[::-1]):
        body = body[: -len(wrap)]
    return body.rstrip()


class MarkerFilter:
    """Streams text through, holding back a tail that may be the start of the marker.

    ``feed`` returns what can be shown now; ``end`` returns the rest once the reply is
    complete, without the marker if the reply closed with it.
    """

    def __init__(self, marker: str) -> None:
        self.marker = marker
        self._held = ""
        self._before = ""  # the last character shown: a closing END must start a line

    def feed(self, text: str) -> str:
        if not self.marker:
            return text
        pending = self._held + text
        keep = min(undecided_tail(self._before + pending, self.marker), len(pending))
        self._held = pending[len(pending) - keep :] if keep else ""
        shown = pending[: len(pending) - keep]
        self._before = shown[-1:] or self._before
        return shown

    def end(self) -> str:
        rest, self._held = self._held, ""
        return without_marker(rest, self.marker)


def undecided_tail(text: str, marker: str) -> int:
    """How many closing characters could still be (part of) a closing marker, or of a
    closing ``END`` line."""
    held = 0
    while held < len(text):  # a marker and a closing END, in either order, wait together
        rest = text[: len(text) - held]
        # Before a held marker or END only a whole one waits: "E TERMINATE" has no END.
        whole = held > 0
        more = max(_marker_tail(rest, marker, whole), _end_tail(rest, whole))
        if not more:
            break
        held += more
    return min(held, len(text))


def _end_tail(text: str, whole: bool = False) -> int:
    stripped = text.rstrip(_TRAILING)
    start = stripped.rfind("\n") + 1
    word = stripped[start:].lstrip(_EMPHASIS + " \t")
    if word and (word == _END if whole else _END.startswith(word)) and start > 0:
        return len(text) - start + 1  # from the newline before it
    return 0


def _marker_tail(text: str, marker: str, whole: bool = False) -> int:
    if not marker:
        return 0
    stripped = text.rstrip(_TRAILING)
    trailing = len(text) - len(stripped)
    if stripped.endswith(marker):
        return len(marker) + trailing + _wrap_length(stripped[: -len(marker)])
    if whole:
        return 0
    if trailing:  # only a complete marker may follow punctuation or space, but emphasis
        return _wrap_length(text)  # at the very end may open one: "**TERMINATE**"

    for size in range(min(len(marker) - 1, len(text)), 0, -1):
        if marker.startswith(text[-size:]):
            return size + _wrap_length(text[:-size])
    return 0


def _wrap_length(before: str) -> int:
    return len(before) - len(before.rstrip(_EMPHASIS))
