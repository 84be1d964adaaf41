"""The last resort of a fit: :func:`squeeze_to_fit` shortens what is always kept (the context
after the task, the latest outputs, the summaries, the latest reply, the task's words,
the system prompt) until the request fits. Not here: which turns are kept, shortened or
folded first (:mod:`.fit`), how one text is cut (:mod:`.cut`).
"""

from __future__ import annotations

from typing import Any

from ..text import cut_mark
from .caps import Caps, Kind
from .cut import (
    FIT_WHY,
    cut_content,
    cut_lines,
    cut_to,
    split_namespace,
    with_content,
)
from .estimate import content_tokens, estimate_tokens, text_tokens


def squeeze_to_fit(
    messages: list[dict[str, Any]], kinds: list[Kind], caps: Caps, budget: int, extra: int
) -> tuple[list[dict[str, Any]], int]:
    """Shorten what is always kept until it fits: the context after the task, then the
    latest outputs, the summaries, the latest reply, the task's words, the system prompt.

    In two passes: the first cuts no message below its share of the window (``caps``),
    so each keeps some room; the second cuts as far as it takes. Outputs are cut by head
    and tail, keeping the error's last line and the failing line
    (:func:`.cut._head_tail`) to the last.
    """
    out = list(messages)

    def estimate() -> int:
        return estimate_tokens(out) + extra

    order: list[tuple[str, int]] = []
    for kind_wanted, part in (
        ("task", "namespace"),
        ("output", "text"),
        ("feedback", "text"),
        ("summary", "text"),
        ("reply", "text"),
        ("task", "words"),
        ("system", "text"),
    ):
        order.extend((part, i) for i, kind in enumerate(kinds) if kind == kind_wanted)
    for floors in (True, False):
        for part, index in order:
            over = estimate() - budget
            if over <= 0:
                return out, estimate()
            out[index] = _squeezed(out[index], kinds[index], part, over, caps, floors)
    return out, estimate()


def _squeezed(
    message: dict[str, Any], kind: Kind, part: str, over: int, caps: Caps, floors: bool
) -> dict[str, Any]:
    """``message`` shortened by about ``over`` tokens (no further than its share of the
    window while ``floors``)."""
    content = message.get("content")
    if part == "namespace":
        if not isinstance(content, str):
            return message
        words, namespace = split_namespace(content)
        if not namespace:
            return message
        keep = max(text_tokens(namespace) - over, caps.namespace if floors else 0)
        if keep >= text_tokens(namespace):
            return message
        namespace = (
            cut_lines(namespace, keep, "\n" + cut_mark("{}", "more lines", FIT_WHY))
            if keep > 24
            else "\n\n[The context sent with this task is left out to fit the context window.]"
        )
        return with_content(message, words + namespace)
    if floors and (part == "words" or kind in ("summary", "system")):
        return message  # these go only once the others are down to their share
    if part == "words" and isinstance(content, str):
        words, namespace = split_namespace(content)
        keep = max(text_tokens(words) - over, 16)
        return with_content(message, cut_to(words, keep) + namespace)
    if kind == "summary" and isinstance(content, str):
        # Its items go; its first line, the marker, stays.
        head = content.split("\n", 1)[0].replace(" What happened in them:", "]")
        return with_content(message, head)
    have = content_tokens(content)
    keep = max(have - over, caps.part if floors else 16)
    if keep < have:
        return cut_content(message, keep, images=False)  # type: ignore[return-value]
    return message
