"""What comes over the wire and what it means: server-sent events, replies, usage,
cut-off replies, and which errors are which (tools refused, stream_options refused,
context length exceeded, worth the next endpoint) with the one line each gets.

Every scan here is linear in its input: SSE lines are split once, and the error
regexes only see bounded text (:func:`_status_text`).
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

from ..conversation import ChatError, ChatReply, ToolCallRequest, Usage
from .config import Endpoint, shown_url


class _EmptyStream(Exception):
    """A stream that ended with nothing in it: no delta, no finish reason, no [DONE].

    llama-cpp-python's server answers a failed streamed request like this (a request
    over its context window among them: the error goes to its log only), so the
    request is asked once more without streaming, which gets the server's real error.
    """


CUT_INCOMPLETE = "incomplete stream"
_CUT_REASONS = ("length", "content_filter")


class _StreamState:
    """What a stream has said so far: the text, the tool calls, how (and if) it ended."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.calls: dict[int, dict[str, str]] = {}
        self.usage: Usage | None = None
        self.finish: str | None = None
        self.done = False  # [DONE] arrived
        self.broken = False  # the connection broke (or stalled) after the reply began

    @property
    def begun(self) -> bool:
        return bool(self.parts or self.calls)

    def take(self, chunk: Mapping[str, Any]) -> str:
        """Fold one chunk in; returns its text delta ("" when it has none).

        Parts of the wrong type (a proxy's, a server's bug) are skipped, not raised.
        """
        text = ""
        choices = chunk.get("choices")
        for choice in choices if isinstance(choices, list) else ():
            if not isinstance(choice, dict):
                continue
            finish = choice.get("finish_reason")
            self.finish = finish if isinstance(finish, str) and finish else self.finish
            delta = choice.get("delta")
            if not isinstance(delta, dict):
                continue
            content = delta.get("content")
            if isinstance(content, str) and content:
                self.parts.append(content)
                text += content
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
        return text

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
        return ChatReply(
            "".join(self.parts), tool_calls, self.usage, model, label, self.finish, cut_off=cut_off
        )


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _send(create: Any, body: dict[str, Any]) -> Any:
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


def _reply_from_completion(completion: Any, endpoint: Endpoint) -> ChatReply:
    choices = completion.get("choices") if isinstance(completion, dict) else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        if isinstance(completion, dict) and completion.get("error"):
            raise _stream_error(completion["error"], endpoint)
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
    return ChatReply(
        _text(message.get("content")),
        calls,
        _usage(completion.get("usage")),
        model if isinstance(model, str) and model else endpoint.model,
        endpoint.label,
        finish,
        cut_off=finish if finish in _CUT_REASONS else None,
    )


def _usage(usage: Any) -> Usage | None:
    """The reply's usage, or None when the server sent no counts (never a zero Usage)."""
    if not isinstance(usage, Mapping):
        return None
    prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
    if not isinstance(prompt, int) and not isinstance(completion, int):
        return None
    return Usage(prompt if isinstance(prompt, int) else 0, completion or 0)


def _error_text(error: Any) -> str:
    if isinstance(error, dict):
        error = error.get("message") or error
    return " ".join(str(error)[:2000].split())[:300]


def _stream_error(error: Any, endpoint: Endpoint) -> ChatError:
    """The error a server put inside a 200 answer (llama.cpp's server, vLLM, proxies)."""
    window = _context_error_in(error, _error_text(error))
    if window is not False:
        return _ContextInBody(window)
    return ChatError(f"{endpoint.label}: the server sent an error: {_error_text(error)}")


class _ContextInBody(ChatError):
    """A context-length error found in a stream or body; OpenAIChat words it."""

    def __init__(self, window: int | None) -> None:
        super().__init__("context window exceeded")
        self.window = window


def _sse_events(
    lines: Iterator[str], state: _StreamState | None = None
) -> Iterator[dict[str, Any]]:
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


def _http() -> Any:
    """The HTTP library the openai SDK is built on: httpx, or its fork httpx2 (openai 3.x).

    Its exception and response classes are the ones to test against and ask for.
    """
    import openai._base_client as base

    return getattr(base, "httpx2", None) or base.httpx


def _broken_connection(error: BaseException) -> bool:
    """A transport failure while reading a body: a cut connection or a stall."""
    import openai

    httpx = _http()

    return isinstance(error, (httpx.TransportError, openai.APIConnectionError))


def _status_text(error: BaseException) -> str:
    """What a status error says, bounded (the regexes below then stay linear)."""
    return (_detail(error) or str(error))[:2000]


def _rejects_tools(error: BaseException) -> bool:
    """A 400/422/501 that blames the tools: servers and models without tool calling.

    Only messages that say tools are unsupported or invalid: any other 400 (a context
    too long, a bad message) is the user's to see, not a reason to ask again.
    """
    import openai

    if not isinstance(error, openai.APIStatusError) or error.status_code not in (400, 422, 501):
        return False
    return bool(_TOOLS_REJECTED.search(_status_text(error)))


_TOOLS_REJECTED = re.compile(
    r"\b(tools?|tool_choice|function calling)\b.{0,40}\b(not |un)"
    r"(supported|available|allowed|recognized|permitted|enabled)"
    r"|\b(does not|doesn't|do not|cannot|can't) (support|use|accept|take) (tools?|function)"
    r"|\bunsupported\b.{0,40}\b(tools?|tool_choice|function[ _]call)"
    r"|\b(unrecognized|unknown|unexpected|extra|invalid)\b.{0,30}\b(tools|tool_choice)\b"
    r"|\btools(\[\d*\]|\.\d|\b.{0,20}\bextra (fields|inputs) (are )?not permitted)"
    r"|\btools? (param|parameter|choice|calling)\b.{0,20}\brequires\b"  # vLLM, llama.cpp
    r"|enable-auto-tool-choice",
    re.IGNORECASE | re.DOTALL,
)


def _rejects_stream_options(error: BaseException) -> bool:
    """A 400/422 that names stream_options (older Azure API versions, some proxies)."""
    import openai

    if not isinstance(error, openai.APIStatusError) or error.status_code not in (400, 422):
        return False
    text = _status_text(error).lower()
    return "stream_options" in text or "include_usage" in text


# Context-length errors, as each server words them. Kept to bounded text (_status_text),
# with no nested repetition: linear in the message.
_CONTEXT_WORDS = re.compile(
    r"context_length_exceeded"  # OpenAI's code, llama-cpp-python's 400
    r"|exceed_context_size_error"  # llama.cpp's server (llama-server) type
    r"|maximum context length"  # OpenAI, vLLM, llama-cpp-python, Ollama's MLX runner
    r"|exceeds? (the )?(context window|available context size)"  # llama.cpp, llama-server
    r"|longer than the (context length|maximum model length)"  # Ollama, vLLM
    r"|input length exceeds the context length"  # Ollama
    r"|(prompt|input) is too long"  # Anthropic's compatible API, proxies
    r"|context window (is )?(full|exceeded)",
    re.IGNORECASE,
)
_CONTEXT_SIZE = re.compile(
    r"maximum context length (?:is |of )?\(?(\d+)"  # "...is 8192 tokens", "(8192 tokens)"
    r"|context window of (\d+)"  # "Requested tokens (1091) exceed context window of 1024"
    r"|available context size \((\d+)"  # "...exceeds the available context size (4096 tokens)"
    r"|maximum model length (?:of |is )?(\d+)",  # vLLM: "...maximum model length of 8192"
    re.IGNORECASE,
)


def _context_error(error: BaseException) -> int | None | bool:
    """For a context-length error: the window it names, or None; False for other errors."""
    import openai

    if isinstance(error, _ContextInBody):
        return error.window
    if not isinstance(error, openai.APIStatusError):
        return False
    return _context_error_in(getattr(error, "body", None), _status_text(error))


def _context_error_in(body: Any, text: str) -> int | None | bool:
    fields = body if isinstance(body, dict) else {}
    if isinstance(fields.get("error"), dict):
        fields = fields["error"]
    marked = fields.get("code") == "context_length_exceeded" or (
        fields.get("type") == "exceed_context_size_error"
    )
    if not marked and not _CONTEXT_WORDS.search(text):
        return False
    n_ctx = fields.get("n_ctx")  # llama-server says it as a field too
    if isinstance(n_ctx, int) and n_ctx > 0:
        return n_ctx
    match = _CONTEXT_SIZE.search(text)
    if match:
        return int(next(g for g in match.groups() if g))
    return None


def _falls_through(error: BaseException) -> bool:
    """Errors after which the next endpoint is worth trying."""
    import openai

    if isinstance(error, (openai.APITimeoutError, openai.APIConnectionError)):
        return True
    if isinstance(error, openai.APIStatusError):
        return error.status_code in (401, 403, 404, 408, 429) or error.status_code >= 500
    if _broken_connection(error):
        return True
    return isinstance(error, ChatError)


def _explain(error: BaseException, endpoint: Endpoint, timeout: float | None = None) -> str:
    import openai

    httpx = _http()

    where = endpoint.label
    if isinstance(error, ChatError):
        return str(error)
    if isinstance(error, openai.APITimeoutError):
        return f"{where}: the request timed out; raise AgentMagics.timeout or try again"
    if isinstance(error, openai.APIConnectionError):
        return (
            f"cannot reach {shown_url(endpoint.base_url) or where}: is the server running? "
            "Check --base-url / OPENAI_BASE_URL"
        )
    if isinstance(error, httpx.TimeoutException):
        after = f" for {timeout:g} s" if timeout else ""
        return (
            f"{where}: the server stopped sending{after} before the reply began; "
            "raise AgentMagics.timeout or try again"
        )
    if isinstance(error, httpx.TransportError):
        return f"{where}: the connection broke before the reply began; try again"
    if isinstance(error, openai.APIStatusError):
        detail = _detail(error)
        status = error.status_code
        if status in (401, 403):
            return (
                f"{where}: authentication failed ({status}); check OPENAI_API_KEY "
                "or the config entry's api_key"
            )
        if status == 404:
            return (
                f"{where}: model {endpoint.model!r} not found (404); choose another with "
                "--model or %config AgentMagics.model"
            )
        if status == 429:
            return (
                f"{where}: rate limited (429) after retries; wait, raise "
                f"AgentMagics.max_retries, or add another endpoint. {detail}"
            ).strip()
        if status >= 500:
            return f"{where}: server error {status}. {detail}".strip()
        return f"{where}: request rejected ({status}): {detail}".strip()
    if isinstance(error, ValueError):  # JSON decoding of a malformed body
        return f"{where}: the server's reply could not be read ({type(error).__name__})"
    return f"{where}: {type(error).__name__}: {_error_text(str(error))}"


def _detail(error: Any) -> str:
    body = getattr(error, "body", None)
    if isinstance(body, dict):
        inner = body.get("error")
        message = body.get("message") or (
            inner.get("message") if isinstance(inner, dict) else inner
        )
        if message:
            return " ".join(str(message)[:2000].split())[:300]
    elif isinstance(body, str) and body:
        return " ".join(body[:2000].split())[:300]
    return ""
