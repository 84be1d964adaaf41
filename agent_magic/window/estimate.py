"""The token estimate: :func:`estimate_tokens` and :func:`tools_tokens`, and their weights.

A cheap, conservative count for a text, one chat-completions message or a request, with
the per-message and per-request overheads (:data:`MESSAGE_OVERHEAD`,
:data:`REQUEST_OVERHEAD`, :data:`TOOL_CALL_OVERHEAD`, :data:`IMAGE_TOKENS`) and a
bounded cache of long texts' counts. Not here: cutting text to a count (:mod:`.cut`),
fitting a conversation (:mod:`.fit`); no tokenizer, no IPython, no openai.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

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
        return text_tokens(value)
    if isinstance(value, Mapping):
        return message_tokens(value)
    return REQUEST_OVERHEAD + sum(message_tokens(message) for message in value)


# Estimates of long texts, kept because the loop asks about the same history every turn.
# Bounded by the characters held; dropping it changes no result, only the time.
_CACHE: dict[str, int] = {}
CACHE_LIMIT = 1 << 23  # characters
_CACHE_MIN = 24  # shorter texts are counted about as fast as they are looked up
_cached_chars = 0


def text_tokens(text: str) -> int:
    global _cached_chars
    if len(text) < _CACHE_MIN:
        return _count(text)
    tokens = _CACHE.get(text)
    if tokens is None:
        tokens = _count(text)
        if _cached_chars + len(text) > CACHE_LIMIT:
            _CACHE.clear()
            _cached_chars = 0
        if len(text) <= CACHE_LIMIT // 4:
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


def content_tokens(content: Any) -> int:
    if isinstance(content, str):
        return text_tokens(content)
    if isinstance(content, list):
        total = 0
        for part in content:
            if not isinstance(part, Mapping):
                continue
            if part.get("type") == "text":
                total += text_tokens(str(part.get("text") or ""))
            elif part.get("type") in ("image_url", "input_image", "image"):
                total += IMAGE_TOKENS
            else:
                total += text_tokens(json.dumps(part, default=str))
        return total
    return 0 if content is None else text_tokens(str(content))


def message_tokens(message: Mapping[str, Any]) -> int:
    total = MESSAGE_OVERHEAD + content_tokens(message.get("content"))
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        total += TOOL_CALL_OVERHEAD
        total += text_tokens(str(function.get("name") or ""))
        total += text_tokens(str(function.get("arguments") or ""))
    return total


def tools_tokens(tools: Sequence[Mapping[str, Any]] | None) -> int:
    """What a request's ``tools`` list costs: templates render its JSON into the prompt."""
    if not tools:
        return 0
    return text_tokens(json.dumps(list(tools))) + MESSAGE_OVERHEAD
