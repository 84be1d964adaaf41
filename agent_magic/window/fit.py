"""Making a conversation fit a model's context window, and estimating its size in tokens.

Here: :func:`estimate_tokens` (a cheap, conservative token count for text, one message
or a request) and :func:`fit` (the messages to send so that the request leaves room for
the reply), with :class:`Fitted`, its result. Pure functions over chat-completions
message dicts: no IPython, no openai, no tokenizer, nothing kept between calls.

Not here: where the window comes from (the endpoint), what to do when a server still
says the request is too long (the loop trims harder and retries), and the history
itself: the loop keeps every message and a parallel list of :data:`Kind` labels, and
calls :func:`fit` before each request. ``fit`` never changes what it is given.

How ``fit`` trims, and why it trims in steps. A server's prompt cache (llama.cpp,
vLLM, OpenAI) reuses the work for the longest prefix a request shares with the one
before. Trimming a little every turn would change an early message every turn and
throw that away, so ``fit`` replays the history as it grew, one message at a time:
whenever the request would pass the budget (``window - reply_room``), it cuts down to a
low-water mark (65% of the budget) in whole chunks: first every older message takes
its short form (step outputs shortened to their head and tail, images left out, old
tasks without their variables summary), then the oldest turns are folded, whole, into
one marked summary message. Between those rare points a request only appends to the
one before it. The replay is a function of the messages alone, so the loop keeps no
trimming state and a fit of the same history is the same every time.

Always kept: system messages, the latest task and the latest turn (the reply being
answered and its step results). A reply with ``tool_calls`` and the ``tool`` messages
answering it are one turn, so they are kept or folded together: the API rejects one
without the other. Only when even those do not fit are they shortened too (the task's
variables summary first, then the latest outputs), and :attr:`Fitted.note` says so.
"""

from __future__ import annotations

import json
import math
import re
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

Kind = Literal["system", "task", "reply", "output", "feedback", "summary"]
KINDS: tuple[Kind, ...] = ("system", "task", "reply", "output", "feedback", "summary")

# The line that starts the variables summary in a task message (magic.py writes it).
NAMESPACE_HEADER = "Variables in the session now:"

# -- the estimate ------------------------------------------------------------------------

# Tokens a chat template adds around one message (ChatML: "<|im_start|>role\n" and
# "<|im_end|>\n" are 5; Llama 3's headers 5-6; OpenAI documents 3-4), and around the
# whole request (the assistant's opening, a BOS token).
MESSAGE_OVERHEAD = 8
REQUEST_OVERHEAD = 8
TOOL_CALL_OVERHEAD = 16  # per tool call: the template's wrapper and the call's id
# An image part, whatever its size. OpenAI's high detail costs 85 + 170 per 512-px tile
# (765 for a 1024x1024 figure, 425 for matplotlib's 640x480), LLaVA 1.5 576.
IMAGE_TOKENS = 1000

# Tokens per byte of each kind of byte: a linear fit (see estimate_tokens) that keeps the
# estimate at or above real counts. Digits weigh most: Qwen2.5's and SmolLM2's
# tokenizers make every digit a token, and the spaces between numbers tokens too.
_PER_DIGIT = 1.5
_PER_LOWER = 0.32
_PER_UPPER = 0.91
_PER_SPACE = 0.15  # spaces and tabs; most merge into the word after them
_PER_NEWLINE = 0.3
_PER_PUNCT = 0.93
_PER_HIGH = 0.5  # each byte of a non-ASCII character

_DIGITS = b"0123456789"
_LOWER = bytes(range(ord("a"), ord("z") + 1))
_UPPER = bytes(range(ord("A"), ord("Z") + 1))
_SPACES = b" \t"
_NEWLINES = b"\r\n"
_HIGH = bytes(range(128, 256))


def estimate_tokens(value: str | Mapping[str, Any] | Iterable[Mapping[str, Any]]) -> int:
    """An upper estimate of the tokens in a text, one message, or a request's messages.

    A text is counted by the kinds of bytes in its UTF-8 form, each with its weight
    (digits 1.5, lower-case letters 0.32, capitals 0.91, spaces 0.15, line ends 0.3,
    other ASCII 0.93, non-ASCII bytes 0.5). A message adds :data:`MESSAGE_OVERHEAD` and
    its tool calls; an image part is :data:`IMAGE_TOKENS` whatever its size (its base64
    is not text the model reads); a list of messages adds :data:`REQUEST_OVERHEAD`.
    Linear: seven C passes over the bytes (about 20 ms a megabyte on a shared 2-core
    machine); long texts are remembered, so the same history costs little the next turn.

    Calibrated against the tokenizers of SmolLM2 (49k vocabulary) and Qwen2.5 (151k)
    as llama.cpp loads them from their GGUF files, and OpenAI's cl100k_base and
    o200k_base, on 400- and 3000-character pieces of: this project's code, tests and
    docs, pandas' and numpy's source, Python's pydoc topics and licence, a notebook's
    JSON, pandas frames (numeric and mixed), numpy arrays, tracebacks, CSV, log lines,
    paths and URLs, a Markdown answer, JSON, a namespace summary. On all of those the
    estimate is at or above the real count: 1.0-1.6 times it on SmolLM2 and Qwen2.5
    (English and code about 1.3), 1.0-2.5 on the OpenAI ones, which pack digits three
    to a token. Content outside that set may come out lower: Chinese and Japanese on
    SmolLM2 about 0.9 of the real count, base64 0.9-1.0, emoji 0.9. A template's own
    text is covered by the overheads for ChatML and Llama-3 templates.
    """
    if isinstance(value, str):
        return _text_tokens(value)
    if isinstance(value, Mapping):
        return _message_tokens(value)
    return REQUEST_OVERHEAD + sum(_message_tokens(message) for message in value)


# Estimates of long texts, kept because the loop asks about the same history every turn.
# Bounded by the characters held; dropping it changes no result, only the time.
_CACHE: dict[str, int] = {}
_CACHE_LIMIT = 1 << 23  # characters
_CACHE_MIN = 24  # shorter texts are counted about as fast as they are looked up
_cached_chars = 0


def _text_tokens(text: str) -> int:
    global _cached_chars
    if len(text) < _CACHE_MIN:
        return _count(text)
    tokens = _CACHE.get(text)
    if tokens is None:
        tokens = _count(text)
        if _cached_chars + len(text) > _CACHE_LIMIT:
            _CACHE.clear()
            _cached_chars = 0
        if len(text) <= _CACHE_LIMIT // 4:
            _CACHE[text] = tokens
            _cached_chars += len(text)
    return tokens


def _count(text: str) -> int:
    if not text:
        return 0
    data = text.encode("utf-8", "surrogatepass")  # lone surrogates count, never raise
    low = data.translate(None, _HIGH)
    size = len(low)
    digits = size - len(low.translate(None, _DIGITS))
    lower = size - len(low.translate(None, _LOWER))
    upper = size - len(low.translate(None, _UPPER))
    spaces = size - len(low.translate(None, _SPACES))
    newlines = size - len(low.translate(None, _NEWLINES))
    punct = size - digits - lower - upper - spaces - newlines
    return math.ceil(
        digits * _PER_DIGIT
        + lower * _PER_LOWER
        + upper * _PER_UPPER
        + spaces * _PER_SPACE
        + newlines * _PER_NEWLINE
        + punct * _PER_PUNCT
        + (len(data) - size) * _PER_HIGH
    )


def _content_tokens(content: Any) -> int:
    if isinstance(content, str):
        return _text_tokens(content)
    if isinstance(content, list):
        total = 0
        for part in content:
            if not isinstance(part, Mapping):
                continue
            if part.get("type") == "text":
                total += _text_tokens(str(part.get("text") or ""))
            elif part.get("type") in ("image_url", "input_image", "image"):
                total += IMAGE_TOKENS
            else:
                total += _text_tokens(json.dumps(part, default=str))
        return total
    return 0 if content is None else _text_tokens(str(content))


def _message_tokens(message: Mapping[str, Any]) -> int:
    total = MESSAGE_OVERHEAD + _content_tokens(message.get("content"))
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        total += TOOL_CALL_OVERHEAD
        total += _text_tokens(str(function.get("name") or ""))
        total += _text_tokens(str(function.get("arguments") or ""))
    return total


def tools_tokens(tools: Sequence[Mapping[str, Any]] | None) -> int:
    """What a request's ``tools`` list costs: templates render its JSON into the prompt."""
    if not tools:
        return 0
    return _text_tokens(json.dumps(list(tools))) + MESSAGE_OVERHEAD


# -- cutting text ------------------------------------------------------------------------


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
    marker = f"\n[... {cut} characters cut to fit the context window ...]\n"
    return text[:head] + marker + text[start:]


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


# -- the result --------------------------------------------------------------------------


@dataclass(frozen=True)
class Fitted:
    """The messages to send, and what was done to make them fit.

    ``messages`` is a new list; messages sent unchanged are the caller's own dicts
    (do not mutate them), changed ones are new dicts. ``kinds`` labels each of them,
    with ``"summary"`` for the folded-turns message. ``trimmed`` is True when anything
    was shortened or folded; ``folded`` counts the input messages replaced by summaries,
    ``shortened`` those sent shortened (older ones in their short form, and any message
    capped to a share of the window). ``estimate`` is :func:`estimate_tokens` of the
    request (messages and tools); ``fits`` says it is within the budget. ``trims``
    counts the points where the replay cut back: from one request to the next it grows
    exactly when the later one does not start with the earlier one (a server's prompt
    cache starts over there), unless the squeeze below ran. ``note`` is empty when
    nothing was trimmed, else one line saying what was done (and, when even what is
    always kept did not fit, that it was shortened too).
    """

    messages: list[dict[str, Any]]
    kinds: tuple[Kind, ...]
    trimmed: bool
    folded: int
    note: str
    shortened: int = 0
    estimate: int = 0
    fits: bool = True
    trims: int = 0


# -- fitting ----------------------------------------------------------------------------

LOW_WATER = 0.65  # after a trim the request is at most this share of the budget

_FULL, _SHORT, _FOLDED = 0, 1, 2
_SUMMARY_HEAD = "[{n} earlier messages folded to fit the context window. What happened in them:"
_SUMMARY_ELIDED = "- ... {n} more ..."
# A fenced block's opening line and the first non-blank line after it: enough for a gist
# (codeblocks.extract_code_blocks finds whole blocks, at many times the cost).
_FENCE = re.compile(r"^ {0,3}(?:`{3,}|~{3,})[^\n`]*\n(?:[ \t]*\n)*([^\n]*)", re.MULTILINE)
_CLOSING = re.compile(r" {0,3}(?:`{3,}|~{3,})[ \t]*$")
_OUTCOME = re.compile(
    r"^(?:Block \d+ of \d+ \([^)\n]*\): )?(It ran successfully\.|It failed\.|Not run)",
    re.MULTILINE,
)


@dataclass(frozen=True)
class _Caps:
    """Sizes in tokens, all from the budget alone, so a message's forms never change."""

    part: int  # the most any one message's text may take
    namespace: int  # a task's variables summary
    short_output: int  # an older step result
    short_text: int  # an older reply, task or feedback
    summary: int  # one summary's items
    summary_head: int  # one summary's own words, and its message overhead

    @classmethod
    def for_budget(cls, budget: int) -> _Caps:
        head = _SUMMARY_HEAD.format(n=10**6) + "\n]\n" + _SUMMARY_ELIDED.format(n=10**6)
        return cls(
            part=max(budget // 4, 32),
            namespace=max(budget // 5, 24),
            short_output=min(max(budget // 32, 60), 400),
            short_text=min(max(budget // 20, 60), 800),
            summary=min(max(budget // 10, 60), 1500),
            summary_head=MESSAGE_OVERHEAD + _text_tokens(head) + 2,
        )


@dataclass
class _Unit:
    """A stretch of messages kept or folded together: a task, or a reply and its results."""

    kind: str  # "system", "task", "turn", "summary", "loose"
    start: int
    end: int  # exclusive


def _units(messages: Sequence[Mapping[str, Any]], kinds: Sequence[str]) -> list[_Unit]:
    units: list[_Unit] = []
    for index, kind in enumerate(kinds):
        role = messages[index].get("role")
        opens = kind in ("system", "task", "summary") or (kind == "reply" and role != "tool")
        if not opens and units and units[-1].kind != "system":
            units[-1].end = index + 1  # results, tool messages and feedback join the turn
            continue
        unit_kind = {"reply": "turn"}.get(kind, kind) if opens else "loose"
        units.append(_Unit(unit_kind, index, index + 1))
    return units


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
                namespace, caps.namespace, "\n[... {} more lines cut to fit the context window]"
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


def _first_line(text: str, limit: int = 100) -> str:
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
            return _first_line(arguments, 80)
        if isinstance(parsed, dict):
            code = parsed.get("code") or parsed.get("command") or ""
            return _first_line(str(code), 80)
        return _first_line(arguments, 80)
    fence = _FENCE.search(_text_of(message))
    if fence is None or _CLOSING.match(fence.group(1)):
        return ""
    return _first_line(fence.group(1), 80)


def _gist(messages: Sequence[Mapping[str, Any]], kinds: Sequence[str], unit: _Unit) -> str:
    """One line (or a few) saying what a folded unit held."""
    first = messages[unit.start]
    if unit.kind == "task":
        words, _ = _split_namespace(_text_of(first))
        line = f"- task: {_first_line(words)}"
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
                said = _first_line(text, 80)
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
            line = f"- replied: {_first_line(_text_of(first), 80)}"
        if said:
            line += f"; the user said: {said}"
    else:
        line = f"- the user said: {_first_line(_text_of(first), 80)}"
    return line


def _summary(items: list[str], count: int, caps: _Caps) -> dict[str, Any]:
    """The one message standing for ``count`` folded messages, within the summary cap."""
    costs = [_text_tokens(item) + 1 for item in items]
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
        items = [*head, _SUMMARY_ELIDED.format(n=left), *reversed(tail)]
    body = "\n".join(items)
    return {"role": "user", "content": f"{_SUMMARY_HEAD.format(n=count)}\n{body}\n]"}


def fit(
    messages: Sequence[Mapping[str, Any]],
    kinds: Sequence[Kind],
    *,
    window: int,
    reply_room: int,
    tools: Sequence[Mapping[str, Any]] | None = None,
    low_water: float = LOW_WATER,
) -> Fitted:
    """The messages to send so the request fits ``window`` tokens with ``reply_room`` left.

    ``kinds[i]`` labels ``messages[i]`` (see :data:`KINDS`): ``"system"``, ``"task"``
    (the user's task, with its variables summary after :data:`NAMESPACE_HEADER`),
    ``"reply"`` (the assistant), ``"output"`` (step results, in user or ``tool``
    messages), ``"feedback"`` (the user's words during the work), ``"summary"`` (a
    summary an earlier :func:`fit` made). ``tools`` are the request's tool definitions,
    counted against the budget. See the module docstring for how it trims.

    Raises ValueError when ``kinds`` does not match ``messages`` or ``window`` is not
    positive; never for what the messages hold.
    """
    if len(kinds) != len(messages):
        raise ValueError(f"{len(kinds)} kinds for {len(messages)} messages")
    unknown = set(kinds) - set(KINDS)
    if unknown:
        raise ValueError(f"unknown message kinds: {sorted(unknown)}; use {', '.join(KINDS)}")
    if window <= 0 or reply_room < 0:
        raise ValueError("window must be positive and reply_room not negative")
    extra = tools_tokens(tools)
    budget = max(window - reply_room - extra, 1)
    low = int(budget * low_water)
    caps = _Caps.for_budget(budget)
    units = _units(messages, kinds)
    replay = _Replay(messages, kinds, units, caps, budget, low)
    replay.run()
    out, out_kinds, folded, shortened = replay.render()
    estimate = estimate_tokens(out) + extra
    note = ""
    if folded or shortened:
        note = (
            f"Folded {folded} earlier messages and shortened {shortened} to fit the "
            f"{window}-token context window."
            if folded
            else f"Shortened {shortened} messages to fit the {window}-token context window."
        )
    fits = estimate <= budget + extra
    if not fits:
        out, estimate = _squeeze(out, out_kinds, caps, budget + extra, extra)
        fits = estimate <= budget + extra
        need = "" if fits else f" (still about {estimate + reply_room} tokens)"
        note = (
            f"The task and its latest step did not fit the {window}-token context window "
            f"with {reply_room} tokens left for the reply, so they were shortened too{need}."
            " Use a model with a larger window, a shorter system prompt, or --new."
        )
    trimmed = bool(folded or shortened) or out != list(messages)
    return Fitted(
        out, tuple(out_kinds), trimmed, folded, note, shortened, estimate, fits, replay.trims
    )


class _Replay:
    """The history replayed message by message, trimming in chunks whenever it overflows.

    Decisions at message ``i`` depend on messages ``0..i`` only, so a longer history
    replays the shorter one's decisions exactly: that is what keeps the prefix stable.
    """

    def __init__(
        self,
        messages: Sequence[Mapping[str, Any]],
        kinds: Sequence[str],
        units: list[_Unit],
        caps: _Caps,
        budget: int,
        low: int,
    ) -> None:
        self.messages = messages
        self.kinds = kinds
        self.units = units
        self.caps = caps
        self.budget = budget
        self.low = low
        self.status = [_FULL] * len(units)
        self.full: list[Mapping[str, Any]] = [
            _full_form(m, k, caps) for m, k in zip(messages, kinds, strict=True)
        ]
        self.full_tokens = [_message_tokens(m) for m in self.full]
        self.short: dict[int, Mapping[str, Any]] = {}
        self.short_tokens: dict[int, int] = {}
        self.gists: dict[int, str] = {}
        self.size = REQUEST_OVERHEAD  # the request without its summaries
        self.runs = 0  # summaries (maximal stretches of folded units)
        self.gist_tokens = 0
        self.trims = 0

    def total(self) -> int:
        # An upper bound on the summaries: each is capped at caps.summary items.
        summaries = self.runs * self.caps.summary_head + min(
            self.gist_tokens, self.runs * self.caps.summary
        )
        return self.size + summaries

    def unit_tokens(self, u: int) -> int:
        unit = self.units[u]
        if self.status[u] == _SHORT:
            return sum(self.short_tokens_of(i) for i in range(unit.start, unit.end))
        return sum(self.full_tokens[unit.start : unit.end])

    def short_of(self, index: int) -> Mapping[str, Any]:
        form = self.short.get(index)
        if form is None:
            full = self.full[index]
            form = _short_form(full, self.kinds[index], self.caps)
            tokens = self.full_tokens[index] if form is full else _message_tokens(form)
            if tokens >= self.full_tokens[index]:  # a marker can outweigh a tiny cut
                form, tokens = full, self.full_tokens[index]
            self.short[index] = form
            self.short_tokens[index] = tokens
        return form

    def short_tokens_of(self, index: int) -> int:
        self.short_of(index)
        return self.short_tokens[index]

    def run(self) -> None:
        closed: deque[int] = deque()  # units that are no longer the latest, oldest first
        fresh: deque[int] = deque()  # closed units still in full form
        self.latest_task = -1
        for u, unit in enumerate(self.units):
            if u and self.units[u - 1].kind != "system":
                closed.append(u - 1)
                fresh.append(u - 1)
            if unit.kind == "task":
                self.latest_task = u
            for index in range(unit.start, unit.end):
                self.size += self.full_tokens[index]
                if self.total() > self.budget:
                    self.trim(closed, fresh)

    def trim(self, closed: deque[int], fresh: deque[int]) -> None:
        changed = False  # a trim that changes no message leaves the prefix as it was
        held: list[int] = []
        while fresh:  # first every older unit takes its short form...
            u = fresh.popleft()
            if u == self.latest_task:
                held.append(u)
                continue
            before = self.unit_tokens(u)
            self.status[u] = _SHORT
            self.size -= before - self.unit_tokens(u)
            unit = self.units[u]
            changed = changed or any(
                self.short_of(i) is not self.full[i] for i in range(unit.start, unit.end)
            )
        fresh.extendleft(held)
        held = []
        while closed and self.total() > self.low:  # ...then the oldest are folded
            u = closed.popleft()
            if u == self.latest_task:
                held.append(u)
                continue
            self.size -= self.unit_tokens(u)
            self.status[u] = _FOLDED
            gist = _gist(self.messages, self.kinds, self.units[u])
            self.gists[u] = gist
            self.gist_tokens += _text_tokens(gist) + 1
            left = u > 0 and self.status[u - 1] == _FOLDED
            right = u + 1 < len(self.units) and self.status[u + 1] == _FOLDED
            self.runs += 1 - left - right
            changed = True
        closed.extendleft(held)
        self.trims += changed

    def render(self) -> tuple[list[dict[str, Any]], list[Kind], int, int]:
        out: list[dict[str, Any]] = []
        out_kinds: list[Kind] = []
        folded = shortened = 0
        run: list[str] = []
        count = 0
        for u, unit in enumerate(self.units):
            if self.status[u] == _FOLDED:
                run.append(self.gists[u])
                count += unit.end - unit.start
                continue
            if run:
                out.append(_summary(run, count, self.caps))
                out_kinds.append("summary")
                folded += count
                run, count = [], 0
            for index in range(unit.start, unit.end):
                form = self.short_of(index) if self.status[u] == _SHORT else self.full[index]
                shortened += form is not self.messages[index]
                out.append(form)  # type: ignore[arg-type]
                out_kinds.append(self.kinds[index])  # type: ignore[arg-type]
        if run:  # only when the last units were folded, which the replay never does
            out.append(_summary(run, count, self.caps))
            out_kinds.append("summary")
            folded += count
        return out, out_kinds, folded, shortened


def _squeeze(
    messages: list[dict[str, Any]], kinds: list[Kind], caps: _Caps, budget: int, extra: int
) -> tuple[list[dict[str, Any]], int]:
    """Shorten what is always kept until it fits: the task's variables summary, then the
    latest outputs, the summaries, the latest reply, the task's words, the system prompt."""
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
    for part, index in order:
        over = estimate() - budget
        if over <= 0:
            break
        message = out[index]
        content = message.get("content")
        if part == "namespace":
            if not isinstance(content, str):
                continue
            words, namespace = _split_namespace(content)
            if not namespace:
                continue
            keep = max(_text_tokens(namespace) - over, 0)
            namespace = (
                _cut_lines(namespace, keep, "\n[... {} more lines cut to fit the context window]")
                if keep > 24
                else "\n\n[The variables summary is left out to fit the context window.]"
            )
            out[index] = _with_content(message, words + namespace)
            continue
        if part == "words" and isinstance(content, str):
            words, namespace = _split_namespace(content)
            keep = max(_text_tokens(words) - over, 16)
            out[index] = _with_content(message, _cut_to(words, keep) + namespace)
            continue
        if kinds[index] == "summary" and isinstance(content, str):
            # Its items go; its first line, the marker, stays.
            head = content.split("\n", 1)[0].replace(" What happened in them:", "]")
            out[index] = _with_content(message, head)
            continue
        have = _content_tokens(content)
        keep = max(have - over, 16)
        if keep < have:
            out[index] = _cut_content(message, keep, images=False)
    return out, estimate()
