"""A reply's thinking, told apart from its answer: :func:`split_thinking` and
:class:`ThinkingSplitter`.

Reasoning models behind servers that do not parse their thinking out (llama.cpp with
``--reasoning-format none``, older Ollama, vLLM without a reasoning parser, LM Studio,
several hosted providers) put it inline, before the answer::

    <think>Maybe shutil.rmtree('data')? No, don't.</think>
    ```python
    print(len(df))
    ```

Qwen3-style chat templates open the tag in the prompt, so the content starts with the
thinking and only ``</think>`` ends it; DeepSeek-R1 does the same. Some models write
``<thinking>`` instead. :func:`split_thinking` takes the whole text apart (the loop's
word on what is code); :class:`ThinkingSplitter` does it piece by piece while a reply
streams (for the display only: without an opening tag it cannot know text is thinking
until ``</think>`` comes, so the finished reply, split whole, is authoritative).

The rules, the same for both:

* an opening tag (``<think>`` or ``<thinking>``, any case) counts at the start of the text
  or of a line, so a tag inside a line of code (``print("<think>")``) is left alone;
  a closing tag (``</think>``, ``</thinking>``) counts anywhere;
* text from an opening tag to the next closing tag is thinking; so is all the text
  before the first closing tag when no opening tag came before it (the template opened
  it);
* an opening tag with no closing tag after it makes the rest thinking, and the reply
  *unfinished*: it ended while the model was still thinking, so it is treated as cut off;
* any other closing tag is left in the answer as written, and a text with no tag at all
  is all answer, unchanged.

No IPython here, and nothing else from the package (a :class:`ChatReply` is only a
type to :func:`without_thinking`): pure functions, linear in the text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .conversation.seams import ChatReply

# One scan finds every tag; which ones count is decided by the rules above.
_TAG = re.compile(r"<(/?)think(?:ing)?>", re.IGNORECASE)
_LONGEST_TAG = len("</thinking>")
# Why a reply that ended inside its thinking counts as cut off (ChatReply.cut_off).
UNFINISHED = "unfinished thinking"


@dataclass(frozen=True)
class Split:
    """A reply's text taken apart: ``thinking`` (its blocks joined by blank lines),
    ``answer`` (everything else), ``unfinished`` when it ended inside its thinking."""

    thinking: str
    answer: str
    unfinished: bool = False


def split_thinking(text: str, *, unopened: bool = True) -> Split:
    """``text`` taken apart into thinking and answer (see the module's rules).

    ``unopened`` False: the text cannot start inside thinking (its thinking came apart
    already), so a closing tag before any opening one is left in the answer as written.
    """
    if "<" not in text:  # the common case: no tag at all, nothing to scan
        return Split("", text)
    thinking: list[str] = []
    answer: list[str] = []
    inside = False
    seen_tag = False
    at = 0  # where the text not yet placed begins
    scanned, line_blank = 0, True  # whether only spaces stand before `scanned` on its line
    for match in _TAG.finditer(text):
        line_blank = _blank_after(text[scanned : match.start()], line_blank)
        scanned = match.end()
        closing = bool(match[1])
        if inside:
            if closing:
                thinking.append(text[at : match.start()])
                at, inside, line_blank = match.end(), False, True
            continue  # an opening tag inside the thinking is part of it
        if closing:
            if not seen_tag and unopened:
                # The template opened the tag: all the text so far was thinking.
                thinking.append(text[at : match.start()])
                at = match.end()
            else:  # a later stray closing tag stays in the answer as written
                line_blank = False
                continue
        elif line_blank:
            answer.append(text[at : match.start()])
            at, inside = match.end(), True
        else:
            continue  # written in a line of text or code: it stays there
        seen_tag = True
        line_blank = True  # a tag that counted stands for a line of its own
    if inside:
        thinking.append(text[at:])
    else:
        answer.append(text[at:])
    if not seen_tag:
        return Split("", text)
    return Split(
        "\n\n".join(part.strip() for part in thinking if part.strip()),
        "".join(answer).strip("\n"),
        inside,
    )


def _blank_after(text: str, blank: bool) -> bool:
    """Whether only spaces stand on the current line after ``text`` (``blank``: before)."""
    newline = text.rfind("\n")
    tail = text[newline + 1 :] if newline >= 0 else text
    return (newline >= 0 or blank) and not tail.strip(" \t")


class ThinkingSplitter:
    """:func:`split_thinking` for a stream: :meth:`feed` each piece of text as it
    arrives and get back ``(is_thinking, text)`` pieces to show; :meth:`end` gives
    what was held back.

    A few characters that could be the start of a tag are held back until the next
    piece says what they are, so the cost stays linear in the text. Text before a
    closing tag that had no opening tag was already handed on as answer when the tag
    arrives: :attr:`reclassified` turns True then, and a display that wants to be exact
    shows the finished reply (split whole) instead of what it streamed.
    """

    def __init__(self) -> None:
        self._held = ""
        self._inside = False
        self._seen_tag = False
        self._line_blank = True  # only spaces so far on the current line
        self.reclassified = False

    def feed(self, piece: str) -> list[tuple[bool, str]]:
        text, self._held = self._held + piece, ""
        if "<" not in text:  # no tag, nor a tag's beginning (most pieces): all goes on
            self._line_blank = _blank_after(text, self._line_blank)
            return [(self._inside, text)] if text else []
        out: list[tuple[bool, str]] = []
        self._scan(text, out)
        return _merged(out)

    def _scan(self, text: str, out: list[tuple[bool, str]]) -> None:
        at = scanned = 0  # text[:at] is handed on; text[:scanned] is read for blank lines
        for match in _TAG.finditer(text):
            self._line_blank = _blank_after(text[scanned : match.start()], self._line_blank)
            scanned = match.end()
            closing = bool(match[1])
            if self._inside and not closing:
                continue  # an opening tag inside the thinking is part of it
            if not self._inside and (
                (closing and self._seen_tag) or (not closing and not self._line_blank)
            ):
                self._line_blank = False  # a tag left as written, in a line of text
                continue
            self._emit(out, text[at : match.start()])
            at = match.end()
            if closing and not self._inside:
                self.reclassified = True  # the template opened the tag
            self._inside = not closing
            self._seen_tag = True
            self._line_blank = True  # a tag that counted stands for a line of its own
        # A tag's first characters at the very end wait for the next piece.
        cut = len(text)
        last = text.rfind("<", max(scanned, len(text) - _LONGEST_TAG + 1))
        if last >= 0 and _could_be_tag(text[last:]):
            cut, self._held = last, text[last:]
        self._line_blank = _blank_after(text[scanned:cut], self._line_blank)
        self._emit(out, text[at:cut])

    def end(self) -> list[tuple[bool, str]]:
        out: list[tuple[bool, str]] = []
        held, self._held = self._held, ""
        self._emit(out, held)
        return out

    @property
    def inside(self) -> bool:
        """The stream is in the model's thinking now (after an opening tag)."""
        return self._inside

    def _emit(self, out: list[tuple[bool, str]], text: str) -> None:
        if text:
            out.append((self._inside, text))


def _merged(pieces: list[tuple[bool, str]]) -> list[tuple[bool, str]]:
    """Neighbouring pieces of the same kind joined into one."""
    merged: list[tuple[bool, str]] = []
    run: list[str] = []
    for index, (kind, text) in enumerate(pieces):
        run.append(text)
        if index + 1 == len(pieces) or pieces[index + 1][0] != kind:
            merged.append((kind, "".join(run)))
            run = []
    return merged


def _could_be_tag(rest: str) -> bool:
    """``rest`` (shorter than the longest tag) is the beginning of one."""
    lowered = rest.lower()
    return any(
        tag.startswith(lowered) for tag in ("<think>", "<thinking>", "</think>", "</thinking>")
    )


def joined(*parts: str) -> str:
    """Pieces of thinking from several sources, joined by a blank line."""
    return "\n\n".join(part.strip() for part in parts if part and part.strip())


def without_thinking(reply: ChatReply) -> ChatReply:
    """``reply`` with any inline thinking moved out of its content into ``thinking``.

    A reply that ended inside its thinking is marked cut off (:data:`UNFINISHED`) unless
    it already was, so no code in it runs unasked. A reply with no tag is returned as it
    is; one already split (by the wire) splits to itself: a reply whose thinking is
    already known cannot begin inside thinking, so a stray ``</think>`` in its answer
    stays there.
    """
    split = split_thinking(reply.content, unopened=not reply.thinking)
    if not split.thinking and not split.unfinished and split.answer == reply.content:
        return reply
    return replace(
        reply,
        content=split.answer,
        thinking=joined(reply.thinking, split.thinking),
        cut_off=reply.cut_off or (UNFINISHED if split.unfinished else None),
    )
