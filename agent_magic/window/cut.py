"""Cutting text and messages down to a token count, for :func:`~.fit.fit`.

Text: :func:`_head_tail` (head and tail, the cut marked), :func:`_cut_to` (to an
estimate), :func:`_cut_lines` (whole first lines), :func:`_split_namespace` (a task's
words and its variables summary, after :data:`NAMESPACE_HEADER`). Messages: the full
form a recent message is sent as (:func:`_full_form`, capped) and the short form of an
older one after a trim (:func:`_short_form`), images and tool-call arguments included.
Not here: the estimate itself (:mod:`.estimate`), the summary of folded turns
(:mod:`.summary`), deciding what to cut when (:mod:`.fit`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..text import cut_mark
from .estimate import _CACHE_LIMIT, _content_tokens, _text_tokens

if TYPE_CHECKING:
    from .fit import _Caps

# The line that starts the variables summary in a task message (magic.py writes it).
NAMESPACE_HEADER = "Variables in the session now:"


def _head_tail(text: str, limit: int) -> str:
    """``text`` within about ``limit`` characters: its head and tail, the cut marked.

    The cut falls on line ends where one is near, so kept lines stay whole. A local
    cutter; the shared ``text.head_tail`` will replace it.
    """
    if len(text) <= limit:
        return text
    keep = max(limit - 50, 16)
    head = keep * 2 // 3
    tail = keep - head
    line_end = text.rfind("\n", head * 2 // 3, head)
    if line_end > 0:
        head = line_end
    start = len(text) - tail
    line_start = text.find("\n", start, start + tail // 3)
    if line_start >= 0:
        start = line_start + 1
    if start <= head:
        return text
    cut = start - head
    marker = f"\n{cut_mark(cut, why=FIT_WHY)}\n"
    return text[:head] + marker + text[start:]


# Why the window cut something: the end of its cut marks.
FIT_WHY = "to fit the context window"

_CUTS: dict[tuple[str, int], str] = {}  # like _CACHE: the same cuts are asked every turn
_cut_chars = 0


def _cut_to(text: str, tokens: int) -> str:
    """``text`` cut (head and tail) so that its estimate is at most ``tokens``."""
    global _cut_chars
    have = _text_tokens(text)
    if have <= tokens:
        return text
    key = (text, tokens)
    cut = _CUTS.get(key)
    if cut is None:
        cut = _cut(text, tokens, have)
        if _cut_chars + len(text) > _CACHE_LIMIT:
            _CUTS.clear()
            _cut_chars = 0
        if len(text) <= _CACHE_LIMIT // 4:
            _CUTS[key] = cut
            _cut_chars += len(text)
    return cut


def _cut(text: str, tokens: int, have: int) -> str:
    limit = len(text)
    for _ in range(6):  # the estimate per character varies along the text: converge
        limit = max(int(limit * tokens / max(have, 1)) - 1, 0)
        text_cut = _head_tail(text, limit)
        have = _text_tokens(text_cut)
        if have <= tokens or limit == 0:
            return text_cut
    return text_cut


def _split_namespace(text: str) -> tuple[str, str]:
    """A task's own words and its variables summary (``""`` when it has none)."""
    at = text.find("\n\n" + NAMESPACE_HEADER)
    if at < 0:
        return text, ""
    return text[:at], text[at:]


def _cut_lines(text: str, tokens: int, what: str) -> str:
    """The first lines of ``text`` that fit ``tokens``, and how many lines were left out."""
    if _text_tokens(text) <= tokens:
        return text
    lines = text.split("\n")
    kept: list[str] = []
    used = _text_tokens(what) + 8
    for line in lines:
        cost = _text_tokens(line) + 1
        if used + cost > tokens:
            break
        kept.append(line)
        used += cost
    if not kept and lines:  # one huge line: cut it instead
        return _cut_to(text, max(tokens - _text_tokens(what) - 8, 1)) + what.format(0)
    left = len(lines) - len(kept)
    return "\n".join(kept) + what.format(left)


def _with_content(message: Mapping[str, Any], content: Any) -> dict[str, Any]:
    changed = dict(message)
    changed["content"] = content
    return changed


def _cut_content(message: Mapping[str, Any], tokens: int, *, images: bool) -> Mapping[str, Any]:
    """The message with its text cut to ``tokens`` (and its images left out unless kept);
    the message itself when that changes nothing."""
    content = message.get("content")
    if isinstance(content, str):
        if _text_tokens(content) <= tokens:
            return message
        return _with_content(message, _cut_to(content, tokens))
    if not isinstance(content, list):
        return message
    parts: list[Any] = []
    dropped = 0
    for part in content:
        is_text = isinstance(part, Mapping) and part.get("type") == "text"
        if is_text:
            parts.append({**part, "text": _cut_to(str(part.get("text") or ""), tokens)})
        elif images:
            parts.append(part)
        else:
            dropped += 1
    if images:
        return _with_content(message, parts)
    text = "\n".join(str(p.get("text") or "") for p in parts)
    if dropped:
        plural = "s" if dropped > 1 else ""
        text += f"\n[{dropped} image{plural} left out to fit the context window]"
    return _with_content(message, _cut_to(text, tokens + 16))


def _cut_arguments(message: Mapping[str, Any], tokens: int) -> Mapping[str, Any]:
    """Tool calls whose arguments are cut, still valid JSON objects."""
    long = any(
        _text_tokens(str((call.get("function") or {}).get("arguments") or "")) > tokens
        for call in message.get("tool_calls") or ()
    )
    if not long:
        return message
    calls = []
    for call in message.get("tool_calls") or ():
        function = dict(call.get("function") or {})
        arguments = str(function.get("arguments") or "")
        if _text_tokens(arguments) > tokens:
            try:
                parsed = json.loads(arguments)
            except ValueError:
                parsed = {"code": arguments}
            if not isinstance(parsed, dict):
                parsed = {"code": str(parsed)}
            parsed = {
                key: _cut_to(value, tokens) if isinstance(value, str) else value
                for key, value in parsed.items()
            }
            function["arguments"] = json.dumps(parsed)
        calls.append({**call, "function": function})
    changed = dict(message)
    changed["tool_calls"] = calls
    return changed


def _full_form(message: Mapping[str, Any], kind: str, caps: _Caps) -> Mapping[str, Any]:
    """What the message is sent as while it is recent: capped, so no one message can
    take the whole window. The caller's own dict when it needs no cap."""
    if kind == "system" or kind == "summary":
        return message
    content = message.get("content")
    if kind == "task" and isinstance(content, str):
        words, namespace = _split_namespace(content)
        if namespace:
            namespace = _cut_lines(
                namespace, caps.namespace, "\n" + cut_mark("{}", "more lines", FIT_WHY)
            )
        text = _cut_to(words, caps.part) + namespace
        return message if text == content else _with_content(message, text)
    if _content_tokens(content) <= caps.part:
        return message
    return _cut_content(message, caps.part, images=True)


def _short_form(message: Mapping[str, Any], kind: str, caps: _Caps) -> Mapping[str, Any]:
    """What an older message is sent as after a trim."""
    if kind in ("system", "summary"):
        return message
    content = message.get("content")
    if kind == "task" and isinstance(content, str):
        words, namespace = _split_namespace(content)
        text = _cut_to(words, caps.short_text)
        if namespace:
            text += "\n\n[The variables summary sent with this task is left out.]"
        return _with_content(message, text)
    tokens = caps.short_output if kind == "output" else caps.short_text
    has_images = isinstance(content, list) and any(
        isinstance(p, Mapping) and p.get("type") != "text" for p in content
    )
    short = (
        _cut_content(message, tokens, images=False)
        if has_images or _content_tokens(content) > tokens
        else message
    )
    if message.get("tool_calls"):
        short = _cut_arguments(short, caps.short_text)
    return short
