"""What comes over the wire and what it means: server-sent events, replies, usage,
thinking (the :data:`REASONING_FIELDS`, and inline ``<think>`` split off by
:mod:`agent_magic.thinking`), cut-off replies (:data:`CUT_INCOMPLETE`), and the request
body sent (surrogates escaped). Not here: which errors are which and the line each gets
(:mod:`.errors`), the SDK's clients (:mod:`.sdk`).

Every scan here is linear in its input: SSE lines are split once.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from ..conversation import ChatError, ChatReply, ThinkingDelta, ToolCallRequest, Usage
from ..thinking import ThinkingSplitter, without_thinking
from .config import Endpoint
from .errors import not_json_error, stream_error


class EmptyStream(Exception):
    """A stream that ended with nothing in it: no delta, no finish reason (a bare
    [DONE] at most).

    llama-cpp-python's server answers a failed streamed request like this (a request
    over its context window among them: the error goes to its log only), and ends a
    stream with a bare [DONE] when another request queues behind it. So the request is
    asked once more without streaming, which waits its turn and gets the reply or the
    server's real error.
    """


CUT_INCOMPLETE = "incomplete stream"
_CUT_REASONS = ("length", "content_filter")


# Where servers put a reply's thinking beside its content, in the order looked at: DeepSeek's
# API, llama.cpp's server (--reasoning-format deepseek, its default), LM Studio and vLLM
# before 0.10 send reasoning_content; Ollama's OpenAI-compatible endpoint, OpenRouter and
# newer vLLM send reasoning (vLLM may send both, the same text: only the first is taken).
REASONING_FIELDS = ("reasoning_content", "reasoning")


def _reasoning(message: Mapping[str, Any]) -> str:
    for name in REASONING_FIELDS:
        text = message.get(name)
        if isinstance(text, str) and text:
            return text
    return ""


class StreamState:
    """What a stream has said so far: the text, the thinking, the tool calls, how (and if)
    it ended."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.thinking: list[str] = []  # from the reasoning fields
        self.inline = ThinkingSplitter()  # <think> in the content, told apart as it comes
        self.calls: dict[int, dict[str, str]] = {}
        self.usage: Usage | None = None
        self.finish: str | None = None
        self.done = False  # [DONE] arrived
        self.broken = False  # the connection broke (or stalled) after the reply began

    @property
    def begun(self) -> bool:
        return bool(self.parts or self.calls or self.thinking)

    def take(self, chunk: Mapping[str, Any]) -> list[str | ThinkingDelta]:
        """Fold one chunk in; returns its deltas to show: answer text as ``str``, thinking
        (a reasoning field's, or inline ``<think>``) as :class:`ThinkingDelta`.

        Parts of the wrong type (a proxy's, a server's bug) are skipped, not raised.
        """
        out: list[str | ThinkingDelta] = []
        choices = chunk.get("choices")
        for choice in choices if isinstance(choices, list) else ():
            if not isinstance(choice, dict):
                continue
            finish = choice.get("finish_reason")
            self.finish = finish if isinstance(finish, str) and finish else self.finish
            delta = choice.get("delta")
            if not isinstance(delta, dict):
                continue
            thought = _reasoning(delta)
            if thought:
                self.thinking.append(thought)
                out.append(ThinkingDelta(thought))
            content = delta.get("content")
            if isinstance(content, str) and content:
                self.parts.append(content)
                out.extend(_shown(self.inline.feed(content)))
            calls = delta.get("tool_calls")
            for call in calls if isinstance(calls, list) else ():
                if not isinstance(call, dict):
                    continue
                index = call.get("index")
                slot = self.calls.setdefault(
                    index if isinstance(index, int) else 0, {"id": "", "name": "", "arguments": ""}
                )
                if isinstance(call.get("id"), str) and call["id"]:
                    slot["id"] = call["id"]
                function = call.get("function")
                if isinstance(function, dict):
                    slot["name"] += _text(function.get("name"))
                    slot["arguments"] += _text(function.get("arguments"))
        return out

    def rest(self) -> list[str | ThinkingDelta]:
        """What the inline splitter held back (a tag's first characters), at the end."""
        return _shown(self.inline.end())

    def reply(self, model: str, label: str) -> ChatReply:
        tool_calls = tuple(
            ToolCallRequest(slot["id"] or f"call_{i}", slot["name"], slot["arguments"])
            for i, slot in sorted(self.calls.items())
        )
        if self.finish in _CUT_REASONS:
            cut_off: str | None = self.finish
        elif self.broken or self.finish is None or not self.done:
            cut_off = CUT_INCOMPLETE
        else:
            cut_off = None
        reply = ChatReply(
            "".join(self.parts),
            tool_calls,
            self.usage,
            model,
            label,
            self.finish,
            cut_off=cut_off,
            thinking="".join(self.thinking),
        )
        return without_thinking(reply)


def _shown(pieces: list[tuple[bool, str]]) -> list[str | ThinkingDelta]:
    return [ThinkingDelta(text) if thinking else text for thinking, text in pieces if text]


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def send_escaped(create: Any, body: dict[str, Any]) -> Any:
    """``create(body)``; a body holding lone surrogates (text decoded from bytes that were
    not UTF-8, e.g. ``os.fsdecode`` of an odd file name) is sent with them escaped as
    ``\\udcXX`` text instead of failing to encode. Clean bodies cost nothing extra."""
    try:
        return create(body)
    except UnicodeEncodeError:
        return create(_escape_surrogates(body))


_SURROGATE = re.compile("[\ud800-\udfff]")


def _escape_surrogates(value: Any) -> Any:
    if isinstance(value, str):
        return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", value)
    if isinstance(value, dict):
        return {_escape_surrogates(k): _escape_surrogates(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_escape_surrogates(v) for v in value]
    return value


def json_body(response: Any, endpoint: Endpoint) -> Any:
    """A whole answer's JSON; a body that is not JSON (an HTML page) is one line."""
    try:
        return json.loads(response.content)
    except ValueError:
        not_json = not_json_error(response, endpoint)
        if not_json is None:
            raise
        raise not_json from None


def reply_from_completion(completion: Any, endpoint: Endpoint) -> ChatReply:
    choices = completion.get("choices") if isinstance(completion, dict) else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        if isinstance(completion, dict) and completion.get("error"):
            raise stream_error(completion["error"], endpoint)
        raise ChatError(f"{endpoint.label}: the reply had no choices")
    choice = choices[0]
    message = choice.get("message")
    message = message if isinstance(message, dict) else {}
    listed = message.get("tool_calls")
    calls = tuple(
        ToolCallRequest(
            _text(c.get("id")),
            _text(c["function"].get("name")),
            _text(c["function"].get("arguments")),
        )
        for c in (listed if isinstance(listed, list) else ())
        if isinstance(c, dict) and isinstance(c.get("function"), dict)
    )
    finish = choice.get("finish_reason")
    finish = finish if isinstance(finish, str) else None
    model = completion.get("model")
    reply = ChatReply(
        _text(message.get("content")),
        calls,
        completion_usage(completion.get("usage")),
        model if isinstance(model, str) and model else endpoint.model,
        endpoint.label,
        finish,
        cut_off=finish if finish in _CUT_REASONS else None,
        thinking=_reasoning(message),
    )
    return without_thinking(reply)


def completion_usage(usage: Any) -> Usage | None:
    """The reply's usage, or None when the server sent no counts (never a zero Usage).

    ``reasoning_tokens`` comes from ``completion_tokens_details`` (OpenAI, DeepSeek,
    vLLM, OpenRouter); 0 when the server does not say.
    """
    if not isinstance(usage, Mapping):
        return None
    prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
    if not isinstance(prompt, int) and not isinstance(completion, int):
        return None
    details = usage.get("completion_tokens_details")
    reasoning = details.get("reasoning_tokens") if isinstance(details, Mapping) else None
    return Usage(
        prompt if isinstance(prompt, int) else 0,
        completion if isinstance(completion, int) else 0,
        reasoning if isinstance(reasoning, int) and not isinstance(reasoning, bool) else 0,
    )


def sse_lines(chunks: Iterable[bytes]) -> Iterator[str]:
    """The lines of an event stream's body, read as it comes in ``chunks`` of bytes.

    A line ends at CR LF, LF or CR, as the SSE format says, and nowhere else: not at the
    other characters ``str.splitlines`` (and httpx's ``iter_lines``) end lines at, such
    as U+2028 and U+0085, which a JSON string from the server may hold as they are.
    Lines split across chunks are joined, in time linear in their length. A line is
    UTF-8 (bytes that are not become U+FFFD); CR and LF never occur inside a character.
    """
    parts: list[bytes] = []
    after_cr = False  # the last chunk ended with a CR: an LF right after it is its pair
    for chunk in chunks:
        if not chunk:
            continue
        if after_cr and chunk[:1] == b"\n":
            chunk = chunk[1:]
        after_cr = chunk[-1:] == b"\r"
        if b"\r" in chunk:
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        if b"\n" not in chunk:
            parts.append(chunk)
            continue
        lines = chunk.split(b"\n")
        if parts:
            parts.append(lines[0])
            lines[0] = b"".join(parts)
            parts.clear()
        parts.append(lines.pop())
        for line in lines:
            yield line.decode("utf-8", "replace")
    if any(parts):
        yield b"".join(parts).decode("utf-8", "replace")


def sse_events(lines: Iterator[str], state: StreamState | None = None) -> Iterator[dict[str, Any]]:
    """The JSON objects of a server-sent event stream, up to ``[DONE]``.

    Comments, event names and keep-alives are skipped, and so is a payload that is
    JSON but not an object (some proxies send ``data: null`` or a bare number).
    ``state.done`` is set when ``[DONE]`` arrives. Linear in the stream's length,
    however long a line is.
    """
    data: list[str] = []
    # A stream cut before its last blank line still ends its event.
    for line in itertools.chain(lines, [""]):
        if line.startswith("data:"):
            data.append(line[5:].lstrip())
            continue
        if line or not data:
            continue
        payload = "\n".join(data).strip()
        data = []
        if payload == "[DONE]":
            if state is not None:
                state.done = True
            return
        event = json.loads(payload)
        if isinstance(event, dict):
            yield event
