"""The summary that stands for folded turns: one gist line per unit, within a cap.

:func:`gist_line` says in a line (or a few) what a folded task or turn held (the code it
ran and how that went, what the user said); :func:`summary_message` joins the gists into the
one marked message, keeping the first and the latest when they do not all fit. Not
here: choosing which turns to fold (:mod:`.fit`), cutting text (:mod:`.cut`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from .caps import SUMMARY_ELIDED, SUMMARY_HEAD, Caps, Unit
from .cut import split_namespace
from .estimate import text_tokens

# A fenced block's opening line and the first non-blank line after it: enough for a gist
# (codeblocks.extract_code_blocks finds whole blocks, at many times the cost).
_FENCE = re.compile(r"^ {0,3}(?:`{3,}|~{3,})[^\n`]*\n(?:[ \t]*\n)*([^\n]*)", re.MULTILINE)
_CLOSING = re.compile(r" {0,3}(?:`{3,}|~{3,})[ \t]*$")
_OUTCOME = re.compile(
    r"^(?:Block \d+ of \d+ \([^)\n]*\): )?(It ran successfully\.|It failed\.|Not run)",
    re.MULTILINE,
)


def first_line(text: str, limit: int = 100) -> str:
    for line in text.splitlines():
        line = line.strip()
        if line:
            return line if len(line) <= limit else line[: limit - 3] + "..."
    return ""


def _text_of(message: Mapping[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            str(p.get("text") or "")
            for p in content
            if isinstance(p, Mapping) and p.get("type") == "text"
        )
    return ""


def _code_of(message: Mapping[str, Any]) -> str:
    """The first line of the code a reply proposed (its first tool call or code block)."""
    for call in message.get("tool_calls") or ():
        arguments = str((call.get("function") or {}).get("arguments") or "")
        try:
            parsed = json.loads(arguments)
        except ValueError:
            return first_line(arguments, 80)
        if isinstance(parsed, dict):
            code = parsed.get("code") or parsed.get("command") or ""
            return first_line(str(code), 80)
        return first_line(arguments, 80)
    fence = _FENCE.search(_text_of(message))
    if fence is None or _CLOSING.match(fence.group(1)):
        return ""
    return first_line(fence.group(1), 80)


def gist_line(messages: Sequence[Mapping[str, Any]], kinds: Sequence[str], unit: Unit) -> str:
    """One line (or a few) saying what a folded unit held."""
    first = messages[unit.start]
    if unit.kind == "task":
        words, _ = split_namespace(_text_of(first))
        line = f"- task: {first_line(words)}"
    elif unit.kind == "summary":
        return _text_of(first).strip()
    elif unit.kind == "turn":
        code = _code_of(first)
        outcomes: set[str] = set()
        said = ""
        for index in range(unit.start + 1, unit.end):
            text = _text_of(messages[index])
            outcomes.update(match.group(1) for match in _OUTCOME.finditer(text))
            if text.startswith("I skipped that step"):
                outcomes.add("skipped")
            if kinds[index] == "feedback" and not said:
                said = first_line(text, 80)
        if "It failed." in outcomes:
            outcome = "failed"
        elif "It ran successfully." in outcomes:
            outcome = "ok"
        elif "skipped" in outcomes:
            outcome = "skipped"
        elif "Not run" in outcomes:
            outcome = "not run"
        else:
            outcome = ""
        if code:
            line = f"- ran `{code}`" if outcome in ("ok", "failed") else f"- proposed `{code}`"
            line += f": {outcome}" if outcome else ""
        else:
            line = f"- replied: {first_line(_text_of(first), 80)}"
        if said:
            line += f"; the user said: {said}"
    else:
        line = f"- the user said: {first_line(_text_of(first), 80)}"
    return line


def summary_message(
    items: list[str], count: int, caps: Caps, costs: list[int] | None = None
) -> dict[str, Any]:
    """The one message standing for ``count`` folded messages, within the summary cap.

    ``costs`` are the items' ``text_tokens(item) + 1`` when the caller has them (the
    replay does: a long run's gists are mostly short, too short to be cached)."""
    if costs is None:
        costs = [text_tokens(item) + 1 for item in items]
    if sum(costs) > caps.summary:
        # Keep the first and the latest items: the start of the work and where it got to.
        head: list[str] = []
        tail: list[str] = []
        used = 0
        lo, hi = 0, len(items) - 1
        while lo <= hi:
            take_tail = len(tail) < 2 * len(head) + 1
            index = hi if take_tail else lo
            if used + costs[index] > caps.summary:
                break
            used += costs[index]
            if take_tail:
                tail.append(items[index])
                hi -= 1
            else:
                head.append(items[index])
                lo += 1
        left = hi - lo + 1
        items = [*head, SUMMARY_ELIDED.format(n=left), *reversed(tail)]
    body = "\n".join(items)
    return {"role": "user", "content": f"{SUMMARY_HEAD.format(n=count)}\n{body}\n]"}
