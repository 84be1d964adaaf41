"""The script a fake server answers from: :class:`Reply`, :class:`ToolCall`, :class:`Failure`.

Frozen records a test enqueues: a scripted assistant turn and how to misbehave while
sending it (:class:`Reply`), a function call in it (:class:`ToolCall`), an HTTP error
answer with OpenAI's body (:class:`Failure`, with each server's context-length error in
:meth:`Failure.context_length`), and :func:`replies_from_json` for scripts kept in JSON.
Not here: serving them (:mod:`.server`, :mod:`.handler`), the wire format of an answer
(:mod:`.wire`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias


@dataclass(frozen=True)
class ToolCall:
    """A function call the fake model makes; a dict ``arguments`` is sent as JSON text."""

    name: str
    arguments: str | Mapping[str, Any] = "{}"
    id: str | None = None

    @property
    def arguments_json(self) -> str:
        if isinstance(self.arguments, str):
            return self.arguments
        return json.dumps(self.arguments)


@dataclass(frozen=True)
class Reply:
    """One scripted assistant turn, plus how to misbehave while sending it.

    ``usage`` is (prompt, completion) tokens; by default a rough count of characters / 4.
    ``model`` defaults to the request's model; ``finish_reason`` to "tool_calls" when there
    are tool calls, else "stop". ``delay`` sleeps before answering and ``chunk_delay``
    between stream chunks. ``cut_after=N`` closes the connection after N content (or
    tool-argument) chunks, without a finish chunk or ``[DONE]``; for a JSON answer it
    drops the connection halfway through the body. ``malformed`` answers 200 with a body
    that is not valid JSON (streaming: one broken ``data:`` line after the first chunk).

    How a stream ends, to script the ways real servers cut replies short:
    ``done=False`` leaves out ``data: [DONE]`` (the body still ends cleanly);
    ``send_finish=False`` sends no chunk with a finish reason; ``send_usage=False``
    sends no usage at all, even when asked (llama.cpp's server in streams).
    ``no_choices`` answers with ``"choices": []``. ``pieces`` sets the exact streamed
    content deltas (default: word-sized pieces of ``content``), e.g. one 1 MB delta.
    ``stall_after=N`` with ``stall=S`` goes silent for S seconds after N content chunks
    (a stream that stalls mid-reply), then carries on.

    A reasoning model's thinking: ``thinking`` is its text and ``thinking_field`` where it
    goes, as each server family sends it: ``"reasoning_content"`` (DeepSeek, llama.cpp's
    server, LM Studio, older vLLM), ``"reasoning"`` (Ollama's OpenAI endpoint,
    OpenRouter, newer vLLM), both in the streamed deltas (word-sized pieces before the
    content, ``chunk_delay`` between each) and in the JSON message; ``"think"`` puts it
    inline, ``<think>...</think>`` before the content (llama.cpp with
    ``--reasoning-format none``, older Ollama, vLLM without a reasoning parser);
    ``"think-unopened"`` the same without the opening tag (Qwen3-style templates open it
    in the prompt). ``reasoning_tokens`` goes in ``completion_tokens_details`` (default:
    the thinking's rough count, which the completion tokens include). With thinking, the
    stream's chunk counts above (``cut_after``, ``stall_after``) count its chunks too.

    Over ``/v1/responses`` the same reply goes out as Responses output items and events;
    ``finish_reason`` "length" or "content_filter" makes it ``status: "incomplete"``.
    """

    content: str | None = ""
    tool_calls: Sequence[ToolCall] = ()
    usage: tuple[int, int] | None = None
    model: str | None = None
    finish_reason: str | None = None
    delay: float = 0.0
    chunk_delay: float = 0.0
    cut_after: int | None = None
    malformed: bool = False
    done: bool = True
    send_finish: bool = True
    send_usage: bool = True
    no_choices: bool = False
    pieces: Sequence[str] | None = None
    stall_after: int | None = None
    stall: float = 0.0
    thinking: str = ""
    thinking_field: str = "reasoning_content"
    # The Responses API (POST /v1/responses): a reasoning item with this summary (and,
    # when the request includes "reasoning.encrypted_content", encrypted content) comes
    # before the message; "" sends one without a summary. ``reasoning_tokens`` are
    # counted among the completion (output) tokens on both APIs (chat completions: by
    # default the thinking's rough count).
    reasoning_summary: str | None = None
    reasoning_tokens: int = 0

    def __post_init__(self) -> None:
        if self.thinking_field not in THINKING_FIELDS:
            raise ValueError(
                f"Reply.thinking_field is one of {', '.join(THINKING_FIELDS)}, "
                f"not {self.thinking_field!r}"
            )
        if self.pieces is not None:
            object.__setattr__(self, "pieces", tuple(self.pieces))
        calls = tuple(self.tool_calls)
        for call in calls:
            if not isinstance(call, ToolCall):
                raise TypeError(f"Reply.tool_calls holds ToolCall objects, not {call!r}")
        # A tuple keeps the frozen reply from sharing a list the test may go on mutating.
        object.__setattr__(self, "tool_calls", calls)


# Where Reply.thinking goes: a field of its own, or inline in the content.
THINKING_FIELDS = ("reasoning_content", "reasoning", "think", "think-unopened")

# status -> (type, code, message) as api.openai.com sends them.
_ERROR_DEFAULTS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Bad request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: ("permission_error", None, "You are not allowed to sample from this model."),
    404: ("invalid_request_error", None, "Not found."),
    408: ("timeout", None, "Request timed out."),
    409: ("invalid_request_error", None, "Conflict."),
    422: ("invalid_request_error", None, "Unprocessable entity."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached. Please try again later."),
    500: ("server_error", None, "The server had an error while processing your request."),
    502: ("server_error", None, "Bad gateway."),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
}


@dataclass(frozen=True)
class Failure:
    """An HTTP error answer with OpenAI's body: ``{"error": {message, type, param, code}}``.

    ``message``, ``type`` and ``code`` default to what OpenAI sends for the status.
    ``retry_after`` sets the Retry-After header (seconds; the SDK accepts fractions).
    ``should_retry`` sets ``x-should-retry``, which the openai SDK obeys over its own rules.
    ``extra`` adds fields beside ``message`` in the error object (llama.cpp's server sends
    ``n_ctx``). ``body`` replaces the whole error body (Ollama sends ``{"error": "..."}``);
    with ``content_type``, a str ``body`` goes out as it is, under that type: a proxy's
    login page is ``Failure(200, body="<!DOCTYPE html>...", content_type="text/html")``.
    ``hang_up`` resets the connection without answering at all (the status is unused):
    llama-cpp-python's server does so on a keep-alive connection behind a failed stream.

    ``in_stream`` says how a *streamed* request fails: None (default) answers the
    status as usual; "event" answers 200 and puts ``data: {"error": {...}}`` in the
    stream, then ends it without ``[DONE]`` (llama.cpp's server, vLLM); "empty" answers
    200 with an event stream that ends at once, with nothing in it, as
    llama-cpp-python's server does when the request fails (the error only in its log).
    A request that is not streamed gets the status either way.
    See :meth:`context_length` for each server's context-length error.
    """

    status: int
    message: str | None = None
    retry_after: float | None = None
    code: str | None = None
    type: str | None = None
    delay: float = 0.0
    param: str | None = None
    should_retry: bool | None = None
    extra: Mapping[str, Any] | None = None
    body: Any = None
    in_stream: str | None = None
    content_type: str | None = None
    hang_up: bool = False

    def __post_init__(self) -> None:
        if self.in_stream not in (None, "event", "empty"):
            raise ValueError(
                f'Failure.in_stream is None, "event" or "empty", not {self.in_stream!r}'
            )

    @classmethod
    def context_length(
        cls, style: str = "openai", *, window: int = 1024, requested: int = 1091
    ) -> Failure:
        """A context-length error as ``style`` sends it (for the request over ``window``).

        Styles, from the servers' source: "openai" (api.openai.com: 400,
        ``code: context_length_exceeded``); "llama-cpp-python" (its 400 after its error
        formatter rewrote the message OpenAI's way); "llama-cpp-python-raw" (the
        message llama_cpp raises, "Requested tokens (N) exceed context window of W",
        as a 500 where no formatter catches it); "llama-cpp-python-stream" (a streamed
        request: 200 and an empty stream; a request asked again without streaming gets
        the 400); "llama-server" (llama.cpp's own server: ``exceed_context_size_error``
        with ``n_ctx``; streamed, an error event); "ollama" (``{"error": "..."}``, no
        size); "vllm" (400 "This model's maximum context length is W tokens...").
        """
        openai_words = (
            f"This model's maximum context length is {window} tokens. However, your "
            f"messages resulted in {requested} tokens. Please reduce the length of the "
            "messages."
        )
        llama_cpp_python = (
            f"This model's maximum context length is {window} tokens. However, you "
            f"requested {requested} tokens ({requested} in the messages, None in the "
            "completion). Please reduce the length of the messages or completion."
        )
        styles: dict[str, Failure] = {
            "openai": cls(400, openai_words, code="context_length_exceeded", param="messages"),
            "llama-cpp-python": cls(
                400, llama_cpp_python, code="context_length_exceeded", param="messages"
            ),
            "llama-cpp-python-raw": cls(
                500, f"Requested tokens ({requested}) exceed context window of {window}"
            ),
            "llama-cpp-python-stream": cls(
                400,
                llama_cpp_python,
                code="context_length_exceeded",
                param="messages",
                in_stream="empty",
            ),
            "llama-server": cls(
                400,
                f"request ({requested} tokens) exceeds the available context size "
                f"({window} tokens), try increasing it",
                type="exceed_context_size_error",
                extra={"n_prompt_tokens": requested, "n_ctx": window},
                in_stream="event",
            ),
            "ollama": cls(
                400,
                body={
                    "error": "the prompt is longer than the context length currently "
                    "available to the model; shorten the prompt, adjust the context "
                    "length in settings, or use a model with a longer context length"
                },
            ),
            "vllm": cls(
                400,
                f"This model's maximum context length is {window} tokens. However, you "
                f"requested {requested} tokens in the messages, Please reduce the length "
                "of the messages.",
                type="BadRequestError",
            ),
        }
        if style not in styles:
            raise ValueError(f"context_length style is one of {sorted(styles)}, not {style!r}")
        return styles[style]

    def error_body(self) -> Any:
        if self.body is not None:
            return self.body
        fallback = "server_error" if self.status >= 500 else "invalid_request_error"
        kind, code, message = _ERROR_DEFAULTS.get(
            self.status, (fallback, None, f"HTTP {self.status} from FakeOpenAIServer.")
        )
        return {
            "error": {
                "message": self.message if self.message is not None else message,
                "type": self.type if self.type is not None else kind,
                "param": self.param,
                "code": self.code if self.code is not None else code,
                **(self.extra or {}),
            }
        }

    def headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        if self.retry_after is not None:
            # Whole seconds go out as "1", like real servers; fractions as "0.5".
            after = self.retry_after
            headers["Retry-After"] = str(int(after)) if after == int(after) else str(after)
        if self.should_retry is not None:
            headers["x-should-retry"] = "true" if self.should_retry else "false"
        return headers


ReplyItem: TypeAlias = "str | Reply | Failure"


def replies_from_json(data: Any) -> list[ReplyItem]:
    """Script items from JSON: a list of strings, ``Reply`` fields or ``Failure`` fields.

    ``{"content": "...", "tool_calls": [{"name": ..., "arguments": ...}]}`` is a Reply
    (tool calls may also be in OpenAI's ``{"id", "function": {...}}`` shape);
    ``{"status": 429, "retry_after": 1}`` is a Failure.
    """
    if not isinstance(data, list):
        raise TypeError("a reply script is a JSON list")
    items: list[ReplyItem] = []
    for number, entry in enumerate(data, 1):
        try:
            items.append(_item_from_json(entry))
        except (TypeError, ValueError) as exc:
            raise TypeError(f"reply #{number}: {exc}") from None
    return items


def _item_from_json(entry: Any) -> ReplyItem:
    if isinstance(entry, str):
        return entry
    if not isinstance(entry, dict):
        raise TypeError(f"expected a string or an object, got {entry!r}")
    if "status" in entry:
        return Failure(**entry)
    fields = dict(entry)
    calls = []
    for call in fields.pop("tool_calls", None) or ():
        if isinstance(call, dict) and isinstance(call.get("function"), dict):
            call = {"id": call.get("id"), **call["function"]}
        calls.append(ToolCall(**call))
    if fields.get("usage") is not None:
        fields["usage"] = tuple(fields["usage"])
    return Reply(tool_calls=calls, **fields)
