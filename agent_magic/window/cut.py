"""Cutting text and messages down to a token count, for :func:`~.fit.fit`.

Text: :func:`_head_tail` (head and tail, the cut marked), :func:`cut_to` (to an
estimate), :func:`cut_lines` (whole first lines), :func:`split_namespace` (a task's
words and its variables summary, after :data:`NAMESPACE_HEADER`). Messages: the full
form a recent message is sent as (:func:`full_form`, capped) and the short form of an
older one after a trim (:func:`short_form`), images and tool-call arguments included.
Not here: the estimate itself (:mod:`.estimate`), the summary of folded turns
(:mod:`.recap`), deciding what to cut when (:mod:`.fit`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..text import cut_mark
from .estimate import CACHE_LIMIT, content_tokens, text_tokens

if TYPE_CHECKING:
    from .caps import Caps

# The line that starts the variables summary in a task message (the session writes it).
NAMESPACE_HEADER = "Variables in the session now:"
# How each block of the context after a task starts (agent_magic.context.block writes
# them): the task's words end before the first.
CONTEXT_HEADERS = (
    "Files the task names",
    NAMESPACE_HEADER,
    "Code run before this cell",
    "The Markdown cells of the notebook",
)


def _head_tail(text: str, limit: int) -> str:
    """``text`` within about ``limit`` characters: its head and tail, the cut marked.

    The cut falls on line ends where one is near, so kept lines stay whole. What a
    failing step needs most is the last to go: the last lines (a traceback's last line
    names the error) and, in a traceback, the failing line (IPython's ``---->`` arrow,
    the last ``File ..., line N`` and its code, a ``^`` caret with the line above it).
    """
    if len(text) <= limit:
        return text
    keep = max(limit - 50, 16)
    tail = keep // 3
    start = len(text) - tail
    line_start = text.find("\n", start, start + tail // 3)
    if line_start >= 0:
        start = line_start + 1
    last_line = text.rstrip("\n").rfind("\n") + 1
    if start > last_line and len(text) - last_line <= keep // 2:
        start = last_line  # the last line whole, whatever it costs of the head
    spans = [(start, len(text))]
    failing = _failing_line(text, start)
    if failing is not None:
        begin, end = failing
        room = max(keep - (len(text) - start), 0) // 2
        if end - begin > room:
            end = begin + room
        if end > begin:
            spans.insert(0, (begin, end))
    head = keep - sum(b - a for a, b in spans)
    line_end = text.rfind("\n", head * 2 // 3, head)
    if line_end > 0:
        head = line_end
    spans.insert(0, (0, max(head, 0)))
    pieces: list[str] = []
    at = 0
    for begin, end in spans:
        if begin > at:
            marker = f"{cut_mark(begin - at, why=FIT_WHY)}\n"
            pieces.append(f"\n{marker}" if pieces else marker)
        begin = max(begin, at)
        if end > begin:
            pieces.append(text[begin:end])
            at = end
    if at < len(text):  # cannot happen (the tail ends the text); kept as a guard
        pieces.append(text[at:])
    cut = "".join(pieces)
    return cut if len(cut) < len(text) else text


# The lines that locate a failure in a traceback: IPython's arrow, Python's "File ...,
# line N" (and IPython's "Cell In[3], line N"), and a SyntaxError's caret.
_LOCATION = re.compile(
    r'^(?:-+> *\d+ |\s*File "[^"\n]*", line \d+|\s*Cell In\[\d+\], line \d+|\s*\^+ *$)',
    re.M,
)
# Each of _LOCATION's forms holds one of these; without any, the regex (~13 ms a megabyte,
# tried at every position) need not run.
_LOCATION_NEEDLES = ("->", 'File "', "Cell In[", "^")


def _failing_line(text: str, before: int) -> tuple[int, int] | None:
    """Where the last failing-line marker before ``before`` is: the line and its
    neighbour (the code after a location, the code above a caret), as (start, end)."""
    found = None
    if not any(text.find(needle, 0, before) >= 0 for needle in _LOCATION_NEEDLES):
        return None
    for match in _LOCATION.finditer(text, 0, before):
        found = match
    if found is None:
        return None
    begin = found.start()
    end = text.find("\n", found.end())
    end = len(text) if end < 0 else end
    marker = found.group().strip()
    if marker.startswith("^"):  # the code is the line above the caret
        begin = text.rfind("\n", 0, max(begin - 1, 0)) + 1
    elif not marker.startswith("-"):  # the code is the line after the location
        after = text.find("\n", end + 1)
        end = len(text) if after < 0 else after
        caret = text.find("\n", end + 1)
        next_line = text[end + 1 : caret if caret >= 0 else len(text)]
        if next_line.strip() and set(next_line.strip()) <= {"^", "~"}:
            end = len(text) if caret < 0 else caret
    return begin, min(end, before)


# Why the window cut something: the end of its cut marks.
FIT_WHY = "to fit the context window"

_CUTS: dict[tuple[str, int], str] = {}  # like _CACHE: the same cuts are asked every turn
_cut_chars = 0


def cut_to(text: str, tokens: int) -> str:
    """``text`` cut (head and tail) so that its estimate is at most ``tokens``."""
    global _cut_chars
    have = text_tokens(text)
    if have <= tokens:
        return text
    key = (text, tokens)
    cut = _CUTS.get(key)
    if cut is None:
        cut = _cut(text, tokens, have)
        if _cut_chars + len(text) > CACHE_LIMIT:
            _CUTS.clear()
            _cut_chars = 0
        if len(text) <= CACHE_LIMIT // 4:
            _CUTS[key] = cut
            _cut_chars += len(text)
    return cut


def _cut(text: str, tokens: int, have: int) -> str:
    limit = len(text)
    for _ in range(6):  # the estimate per character varies along the text: converge
        limit = max(int(limit * tokens / max(have, 1)) - 1, 0)
        text_cut = _head_tail(text, limit)
        have = text_tokens(text_cut)
        if have <= tokens or limit == 0:
            return text_cut
    return text_cut


def split_namespace(text: str) -> tuple[str, str]:
    """A task's own words and the context sent after them (``""`` when it has none)."""
    found = [at for at in (text.find("\n\n" + head) for head in CONTEXT_HEADERS) if at >= 0]
    if not found:
        return text, ""
    at = min(found)
    return text[:at], text[at:]


def cut_lines(text: str, tokens: int, what: str) -> str:
    """The first lines of ``text`` that fit ``tokens``, and how many lines were left out."""
    if text_tokens(text) <= tokens:
        return text
    lines = text.split("\n")
    kept: list[str] = []
    used = text_tokens(what) + 8
    for line in lines:
        cost = text_tokens(line) + 1
        if used + cost > tokens:
            break
        kept.append(line)
        used += cost
    if not kept and lines:  # one huge line: cut it instead
        return cut_to(text, max(tokens - text_tokens(what) - 8, 1)) + what.format(0)
    left = len(lines) - len(kept)
    return "\n".join(kept) + what.format(left)


def with_content(message: Mapping[str, Any], content: Any) -> dict[str, Any]:
    changed = dict(message)
    changed["content"] = content
    return changed


def cut_content(message: Mapping[str, Any], tokens: int, *, images: bool) -> Mapping[str, Any]:
    """The message with its text cut to ``tokens`` (and its images left out unless kept);
    the message itself when that changes nothing."""
    content = message.get("content")
    if isinstance(content, str):
        if text_tokens(content) <= tokens:
            return message
        return with_content(message, cut_to(content, tokens))
    if not isinstance(content, list):
        return message
    parts: list[Any] = []
    dropped = 0
    for part in content:
        is_text = isinstance(part, Mapping) and part.get("type") == "text"
        if is_text:
            parts.append({**part, "text": cut_to(str(part.get("text") or ""), tokens)})
        elif images:
            parts.append(part)
        else:
            dropped += 1
    if images:
        return with_content(message, parts)
    text = "\n".join(str(p.get("text") or "") for p in parts)
    if dropped:
        plural = "s" if dropped > 1 else ""
        text += f"\n[{dropped} image{plural} left out to fit the context window]"
    return with_content(message, cut_to(text, tokens + 16))


def full_form(message: Mapping[str, Any], kind: str, caps: Caps) -> Mapping[str, Any]:
    """What the message is sent as while it is recent: itself. Nothing is shortened
    while the request fits; when it does not, older messages take their short form and
    fold (:mod:`.fit`), and only then is what is always kept squeezed."""
    return message


def short_form(message: Mapping[str, Any], kind: str, caps: Caps) -> Mapping[str, Any]:
    """What an older message is sent as after a trim."""
    if kind in ("system", "summary"):
        return message
    content = message.get("content")
    if kind == "task" and isinstance(content, str):
        words, namespace = split_namespace(content)
        text = cut_to(words, caps.short_text)
        if namespace:
            text += "\n\n[The context sent with this task (variables, files, cells) is left out.]"
        return with_content(message, text)
    tokens = caps.short_output if kind == "output" else caps.short_text
    has_images = isinstance(content, list) and any(
        isinstance(p, Mapping) and p.get("type") != "text" for p in content
    )
    if kind == "reply" and isinstance(content, str):
        # Code the model wrote is left out whole, never cut: a marker inside a code block
        # is what a model copies into its next step. Tool-call arguments stay as sent.
        return _short_reply(message, content, tokens)
    if has_images or content_tokens(content) > tokens:
        return cut_content(message, tokens, images=False)
    return message


_FENCED = re.compile(r"^(`{3,}|~{3,})[^\n]*\n.*?^\1[ \t]*$", re.M | re.S)


def _short_reply(message: Mapping[str, Any], content: str, tokens: int) -> Mapping[str, Any]:
    """An older reply within ``tokens``: its code blocks, largest first, replaced by a
    line outside any fence saying what was there; then its words cut."""
    if text_tokens(content) <= tokens:
        return message
    blocks = sorted(_FENCED.finditer(content), key=lambda m: m.end() - m.start(), reverse=True)
    text = content
    for block in blocks:
        lines = block.group().count("\n") - 1
        note = f"[a {lines}-line code block of this reply, left out to fit the context window]"
        text = text.replace(block.group(), note, 1)
        if text_tokens(text) <= tokens:
            return with_content(message, text)
    pieces = re.split(r"(\[a \d+-line code block of this reply, left out[^\]]*\])", text)
    if len(pieces) > 1:  # cut the words only: the notes stay whole and outside the code
        budget = max(tokens - sum(text_tokens(p) for p in pieces[1::2]), 16)
        share = max(budget // max(len(pieces[::2]), 1), 4)
        pieces[::2] = [cut_to(p, share) for p in pieces[::2]]
        return with_content(message, "".join(pieces))
    return with_content(message, cut_to(text, tokens))
