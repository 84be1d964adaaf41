"""A local server that speaks the OpenAI chat-completions wire protocol, for tests.

What lives here: ``FakeOpenAIServer`` (real HTTP on 127.0.0.1, an ephemeral port, a
daemon thread), the script it answers from (``Reply``, ``ToolCall``, ``Failure``), the
``RecordedRequest`` log, and a small CLI (``python -m agent_magic.testing --script
replies.json``) for driving a notebook or another process.

It is stdlib only, so any test can use it without pulling in a client library, and it
knows nothing about the magic or the conversation loop: it only serves the wire. The
pytest fixtures (``openai_server``, ``openai_env``) live in ``agent_magic.pytest_plugin``.

    with FakeOpenAIServer() as server:
        server.enqueue("Hello!", Reply(tool_calls=[ToolCall("run", {"code": "1+1"})]))
        client = openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0)
        ...
        assert server.requests[-1].messages[-1]["content"] == "hi"
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import math
import re
import signal
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeAlias
from urllib.parse import parse_qsl, unquote, urlsplit

__all__ = [
    "NO_REPLY_LEFT",
    "Failure",
    "FakeOpenAIServer",
    "RecordedRequest",
    "Reply",
    "ReplyItem",
    "ToolCall",
    "main",
    "replies_from_json",
]

NO_REPLY_LEFT = "FakeOpenAIServer: no scripted reply left"
DEFAULT_MODELS = ("fake-model",)
_AZURE_CHAT = re.compile(r"^/openai/deployments/(?P<name>[^/]+)/chat/completions$")
# Gone clients (a test's timeout, a cut stream) and stopped servers show up as these;
# they are expected, not bugs to print.
_GONE = (ConnectionError, socket.timeout)


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

    def __post_init__(self) -> None:
        if self.pieces is not None:
            object.__setattr__(self, "pieces", tuple(self.pieces))
        calls = tuple(self.tool_calls)
        for call in calls:
            if not isinstance(call, ToolCall):
                raise TypeError(f"Reply.tool_calls holds ToolCall objects, not {call!r}")
        # A tuple keeps the frozen reply from sharing a list the test may go on mutating.
        object.__setattr__(self, "tool_calls", calls)


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
    ``n_ctx``). ``body`` replaces the whole error body (Ollama sends ``{"error": "..."}``).

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
Responder: TypeAlias = "Callable[[RecordedRequest], ReplyItem]"


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server saw it. Header names are lower-cased.

    ``path`` excludes the query string, which is parsed into ``query``. ``json`` is the
    parsed body, or None when the body is empty or not JSON. ``time`` is
    ``time.monotonic()`` at arrival, for asserting on gaps (retries, backoff).
    """

    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes
    json: Any
    time: float

    @property
    def messages(self) -> list[dict[str, Any]]:
        if isinstance(self.json, dict) and isinstance(self.json.get("messages"), list):
            return self.json["messages"]
        return []

    @property
    def deployment(self) -> str | None:
        """The Azure deployment named in the path, if this is an Azure-style request."""
        match = _AZURE_CHAT.match(self.path)
        return unquote(match["name"]) if match else None

    @property
    def model(self) -> str | None:
        """The model asked for: Azure's deployment name, else the body's ``model``."""
        if self.deployment is not None:
            return self.deployment
        model = self.json.get("model") if isinstance(self.json, dict) else None
        return model if isinstance(model, str) else None

    @property
    def stream(self) -> bool:
        return isinstance(self.json, dict) and bool(self.json.get("stream"))

    @property
    def include_usage(self) -> bool:
        options = self.json.get("stream_options") if isinstance(self.json, dict) else None
        return isinstance(options, dict) and bool(options.get("include_usage"))


class FakeOpenAIServer:
    """An OpenAI-compatible chat server on a local port that answers from a script.

    ``enqueue`` replies (``str``, ``Reply`` or ``Failure``); each chat request takes the
    next one. When the queue is empty, ``responder(request)`` is asked, if set; else the
    answer is a 500 saying "FakeOpenAIServer: no scripted reply left". With ``api_key``
    set, other keys get 401; with ``models`` set, other models get 404.

    Like real servers, it can also refuse before the script is consulted:
    ``context_window`` (tokens, counted roughly as characters / 4 of the messages)
    fails every request over it with :meth:`Failure.context_length` in
    ``context_style``, streamed or not; ``reject_stream_options`` answers 400 to a
    request carrying ``stream_options`` (older Azure API versions, some proxies).

    Serves ``POST /v1/chat/completions`` (JSON or SSE), Azure's
    ``POST /openai/deployments/{name}/chat/completions`` and ``GET /v1/models``, whose
    entries get the fields in ``model_fields[id]`` (vLLM's ``max_model_len``...).
    ``routes`` answers other paths with JSON: ``{("GET", "/props"): {...}}`` (a value
    may be a ``Failure``, or a callable taking the ``RecordedRequest``), to stand in for
    llama.cpp's ``/props`` or Ollama's ``/api/ps`` and ``/api/show``.
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        models: Collection[str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        responder: Responder | None = None,
        context_window: int | None = None,
        context_style: str = "openai",
        reject_stream_options: bool = False,
        model_fields: Mapping[str, Mapping[str, Any]] | None = None,
        routes: Mapping[tuple[str, str], Any] | None = None,
    ) -> None:
        self.api_key = api_key
        self.models = frozenset(models) if models is not None else None
        self.host = host
        self.port = port
        self.responder = responder
        self.context_window = context_window
        self.context_style = context_style
        Failure.context_length(context_style)  # an unknown style fails here, not mid-test
        self.reject_stream_options = reject_stream_options
        self.model_fields = {k: dict(v) for k, v in (model_fields or {}).items()}
        self.routes = dict(routes or {})
        self._lock = threading.Lock()
        self._queue: deque[ReplyItem] = deque()
        self._requests: list[RecordedRequest] = []
        self._ids = itertools.count(1)
        self._stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._url: str | None = None

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> FakeOpenAIServer:
        if self._httpd is not None:
            raise RuntimeError("FakeOpenAIServer is already running at " + self.base_url)
        self._stopping.clear()
        httpd = _HTTPServer((self.host, self.port), _Handler, self)
        host, port = httpd.server_address[:2]
        self._url = f"http://{host}:{port}"
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"FakeOpenAIServer:{port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and drop open connections; safe to call twice."""
        self._stopping.set()
        httpd, thread = self._httpd, self._thread
        if httpd is None:
            return
        self._httpd = self._thread = None
        httpd.shutdown()
        httpd.server_close()
        # Keep-alive connections would otherwise hold their handler threads until the
        # client hangs up; shutting the sockets ends them now.
        httpd.drop_connections()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._httpd is not None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``: the root, e.g. for Azure's ``azure_endpoint``."""
        if self._url is None:
            raise RuntimeError("FakeOpenAIServer is not started: use start() or `with`")
        return self._url

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``: what ``openai.OpenAI(base_url=...)`` wants."""
        return self.url + "/v1"

    # -- the script and the log ------------------------------------------------------

    def enqueue(self, *items: ReplyItem) -> None:
        for item in items:
            if not isinstance(item, (str, Reply, Failure)):
                raise TypeError(f"enqueue() takes str, Reply or Failure, not {item!r}")
        with self._lock:
            self._queue.extend(items)

    @property
    def pending(self) -> int:
        """How many enqueued replies have not been used yet."""
        with self._lock:
            return len(self._queue)

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request so far, oldest first (a copy; safe to keep)."""
        with self._lock:
            return list(self._requests)

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        """The chat-completions requests only: not ``GET /models`` or other routes a
        client asks about the server (its context window, its model list)."""
        return [
            r
            for r in self.requests
            if r.method == "POST" and (r.path == "/v1/chat/completions" or r.deployment is not None)
        ]

    def _record(self, request: RecordedRequest) -> int:
        with self._lock:
            self._requests.append(request)
            return len(self._requests)

    def _next_reply(self, request: RecordedRequest, number: int) -> ReplyItem:
        with self._lock:
            if self._queue:
                return self._queue.popleft()
            responder = self.responder
        if responder is None:
            # Retrying cannot help an empty script, and the SDK's retries would only
            # slow the failing test down, so tell it not to.
            return Failure(
                500,
                f"{NO_REPLY_LEFT} for request #{number} ({request.method} {request.path}); "
                "enqueue() more replies or set .responder",
                should_retry=False,
            )
        try:
            item = responder(request)
        except Exception as exc:  # the test should see the responder's bug, not a hang
            return Failure(
                500,
                f"FakeOpenAIServer: the responder raised {exc.__class__.__name__}: {exc}",
                should_retry=False,
            )
        if not isinstance(item, (str, Reply, Failure)):
            return Failure(
                500,
                f"FakeOpenAIServer: the responder returned {item!r}; "
                "expected str, Reply or Failure",
                should_retry=False,
            )
        return item

    def _refusal(self, request: RecordedRequest) -> Failure | None:
        """The error a real endpoint would give before looking at the model's answer."""
        if self.api_key is not None:
            given = _bearer(request.headers.get("authorization")) or request.headers.get("api-key")
            if not given:
                return Failure(
                    401,
                    "You didn't provide an API key. You need to provide your API key in an "
                    "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                    code="invalid_api_key",
                )
            if given != self.api_key:
                return Failure(
                    401,
                    f"Incorrect API key provided: {_mask(given)}. You can find your API key "
                    "at https://platform.openai.com/account/api-keys.",
                    code="invalid_api_key",
                )
        return None

    def _invalid_chat(self, request: RecordedRequest) -> Failure | None:
        if not isinstance(request.json, dict):
            return Failure(
                400,
                "We could not parse the JSON body of your request. (HINT: This likely means "
                "you aren't using your HTTP library correctly.)",
            )
        if request.model is None:
            return Failure(400, "you must provide a model parameter", param="model")
        if not isinstance(request.json.get("messages"), list):
            return Failure(400, "Missing required parameter: 'messages'.", param="messages")
        if self.models is not None and request.model not in self.models:
            return Failure(
                404,
                f"The model `{request.model}` does not exist or you do not have access to it.",
                code="model_not_found",
            )
        if self.reject_stream_options and "stream_options" in request.json:
            return Failure(
                400, "Unrecognized request argument supplied: stream_options", param=None
            )
        if self.context_window is not None:
            tokens = _rough_tokens(_prompt_text(request.messages))
            if tokens > self.context_window:
                return Failure.context_length(
                    self.context_style, window=self.context_window, requested=tokens
                )
        return None

    def _pause(self, seconds: float) -> bool:
        """Sleep, but wake when the server stops; False means stop answering."""
        if seconds > 0:
            self._stopping.wait(seconds)
        return not self._stopping.is_set()

    def _next_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):04d}"


# -- what goes on the wire -------------------------------------------------------------


def _bearer(value: str | None) -> str | None:
    if value and value[:7].lower() == "bearer ":
        return value[7:].strip()
    return None


def _mask(key: str) -> str:
    return key[:3] + "*" * 4 + key[-4:] if len(key) > 8 else "*" * len(key)


def _rough_tokens(text: str) -> int:
    return math.ceil(len(text) / 4)


def _prompt_text(messages: Iterable[Any]) -> str:
    parts: list[str] = []
    for message in messages:
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts.extend(str(p.get("text", "")) for p in content if isinstance(p, dict))
        for call in message.get("tool_calls") or ():
            if isinstance(call, dict) and isinstance(call.get("function"), dict):
                parts.append(str(call["function"].get("arguments", "")))
    return "".join(parts)


def _usage(reply: Reply, request: RecordedRequest) -> dict[str, int]:
    if reply.usage is not None:
        prompt, completion = reply.usage
    else:
        prompt = _rough_tokens(_prompt_text(request.messages))
        answer = (reply.content or "") + "".join(c.arguments_json for c in reply.tool_calls)
        completion = _rough_tokens(answer)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _finish_reason(reply: Reply) -> str:
    if reply.finish_reason is not None:
        return reply.finish_reason
    return "tool_calls" if reply.tool_calls else "stop"


def _content_pieces(text: str) -> list[str]:
    # Word-sized pieces with their leading space, like a tokenizer's; "".join gives text.
    return re.findall(r"\s*\S{1,8}|\s+", text)


def _argument_pieces(arguments: str) -> list[str]:
    return [arguments[i : i + 8] for i in range(0, len(arguments), 8)] or [""]


@dataclass(frozen=True)
class _Answer:
    """A reply bound to one request: the ids and model it goes out with."""

    reply: Reply
    request: RecordedRequest
    id: str
    created: int
    model: str
    tool_call_ids: tuple[str, ...] = ()

    def completion(self) -> dict[str, Any]:
        reply = self.reply
        message: dict[str, Any] = {
            "role": "assistant",
            # OpenAI sends null content beside tool calls when there is no text.
            "content": (reply.content or None) if reply.tool_calls else reply.content,
            "refusal": None,
        }
        if reply.tool_calls:
            message["tool_calls"] = [
                {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments_json},
                }
                for call, call_id in zip(reply.tool_calls, self.tool_call_ids, strict=True)
            ]
        completion: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": []
            if reply.no_choices
            else [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": _finish_reason(reply) if reply.send_finish else None,
                }
            ],
        }
        if reply.send_usage:
            completion["usage"] = _usage(reply, self.request)
        return completion

    def chunk(
        self, delta: dict[str, Any] | None, finish_reason: str | None = None
    ) -> dict[str, Any]:
        """One ``chat.completion.chunk``; ``delta=None`` makes the trailing usage chunk."""
        chunk: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": []
            if delta is None
            else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
        }
        if self.request.include_usage and self.reply.send_usage:
            chunk["usage"] = _usage(self.reply, self.request) if delta is None else None
        return chunk

    def stream(self) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
        """(role chunk, content and tool-call chunks, finish and usage chunks)."""
        reply = self.reply
        if reply.no_choices:
            usage = [self.chunk(None)] if self.request.include_usage and reply.send_usage else []
            return self.chunk(None), [], usage
        first = self.chunk({"role": "assistant", "content": "", "refusal": None})
        pieces = reply.pieces if reply.pieces is not None else _content_pieces(reply.content or "")
        body = [self.chunk({"content": piece}) for piece in pieces]
        for index, (call, call_id) in enumerate(
            zip(reply.tool_calls, self.tool_call_ids, strict=True)
        ):
            pieces = _argument_pieces(call.arguments_json)
            opening = {
                "index": index,
                "id": call_id,
                "type": "function",
                "function": {"name": call.name, "arguments": ""},
            }
            body.append(self.chunk({"tool_calls": [opening]}))
            body.extend(
                self.chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
                for piece in pieces
                if piece
            )
        last = [self.chunk({}, _finish_reason(reply))] if reply.send_finish else []
        if self.request.include_usage and reply.send_usage:
            last.append(self.chunk(None))
        return first, body, last


def _sse(data: dict[str, Any] | str) -> bytes:
    text = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    return f"data: {text}\n\n".encode()


def _parse_json(body: bytes) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    # Tests start and stop many servers; don't let a TIME_WAIT port block a fixed --port.
    allow_reuse_address = True

    def __init__(
        self, address: tuple[str, int], handler: type[_Handler], fake: FakeOpenAIServer
    ) -> None:
        self.fake = fake
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, handler)

    def track(self, connection: socket.socket, open_: bool) -> None:
        with self._connections_lock:
            if open_:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def drop_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, _GONE) or (
            isinstance(error, OSError) and self.fake._stopping.is_set()
        ):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.1 keeps connections alive between JSON answers (Content-Length) and streams
    # SSE with chunked encoding, as api.openai.com does; a cut stream is then a real
    # protocol error to the client rather than a quiet end of body.
    protocol_version = "HTTP/1.1"
    server_version = "FakeOpenAIServer/1"
    sys_version = ""
    # Headers and body go out in separate writes; without this, Nagle plus delayed ACKs
    # add ~40 ms to every keep-alive answer.
    disable_nagle_algorithm = True
    # An idle keep-alive connection must not hold a thread for ever.
    timeout = 60
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        pass  # tests read server.requests, not stderr

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, False)

    def do_GET(self) -> None:
        try:
            self._answer()
        except _GONE:
            self.close_connection = True

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    # -- routing -------------------------------------------------------------------------

    def _answer(self) -> None:
        fake = self.server.fake
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        request = RecordedRequest(
            method=self.command,
            path=url.path,
            query=dict(parse_qsl(url.query)),
            headers={name.lower(): value for name, value in self.headers.items()},
            body=body,
            json=_parse_json(body),
            time=time.monotonic(),
        )
        number = fake._record(request)

        is_chat = url.path == "/v1/chat/completions" or request.deployment is not None
        route = fake.routes.get((self.command, url.path))
        if route is not None:
            self._route(request, route)
        elif self.command == "POST" and is_chat:
            self._chat(request, number)
        elif self.command == "GET" and url.path.startswith("/v1/models"):
            self._models(request, url.path.removeprefix("/v1/models").strip("/"))
        else:
            self._failure(Failure(404, f"Invalid URL ({self.command} {url.path})"))

    def _route(self, request: RecordedRequest, route: Any) -> None:
        refusal = self.server.fake._refusal(request)
        if refusal is not None:
            self._failure(refusal)
            return
        answer = route(request) if callable(route) else route
        if isinstance(answer, Failure):
            self._failure(answer)
        else:
            self._json(200, answer)

    def _models(self, request: RecordedRequest, model_id: str) -> None:
        fake = self.server.fake
        refusal = fake._refusal(request)
        if refusal is not None:
            self._failure(refusal)
            return
        names = sorted(fake.models) if fake.models is not None else list(DEFAULT_MODELS)
        entries = [
            {
                "id": name,
                "object": "model",
                "created": 0,
                "owned_by": "fake-openai-server",
                **fake.model_fields.get(name, {}),
            }
            for name in names
        ]
        if not model_id:
            self._json(200, {"object": "list", "data": entries})
        elif fake.models is None or model_id in fake.models:
            self._json(200, {**entries[0], **fake.model_fields.get(model_id, {}), "id": model_id})
        else:
            message = f"The model `{model_id}` does not exist or you do not have access to it."
            self._failure(Failure(404, message, code="model_not_found"))

    def _chat(self, request: RecordedRequest, number: int) -> None:
        fake = self.server.fake
        item = fake._refusal(request) or fake._invalid_chat(request)
        if item is None:
            item = fake._next_reply(request, number)
        reply = Reply(content=item) if isinstance(item, str) else item
        if not fake._pause(reply.delay):
            self.close_connection = True
            return
        if isinstance(reply, Failure):
            if reply.in_stream is not None and request.stream:
                self._stream_failure(reply)
            else:
                self._failure(reply)
            return
        answer = _Answer(
            reply=reply,
            request=request,
            id=fake._next_id("chatcmpl-fake"),
            created=int(time.time()),
            model=reply.model or request.model or "fake-model",
            tool_call_ids=tuple(c.id or fake._next_id("call_fake") for c in reply.tool_calls),
        )
        if request.stream:
            self._stream(answer)
        else:
            self._completion(answer)

    # -- writing -------------------------------------------------------------------------

    def _start(
        self, status: int, content_type: str, headers: Mapping[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        # The SDK keeps this as `_request_id` on results and errors.
        self.send_header("x-request-id", self.server.fake._next_id("req_fake"))
        for name, value in (headers or {}).items():
            self.send_header(name, value)

    def _json(
        self,
        status: int,
        payload: Any,
        headers: Mapping[str, str] | None = None,
        *,
        raw: bytes = b"",
    ) -> None:
        data = raw or json.dumps(payload).encode()
        self._start(status, "application/json", headers)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _failure(self, failure: Failure) -> None:
        self._json(failure.status, failure.error_body(), failure.headers())

    def _stream_failure(self, failure: Failure) -> None:
        """A 200 event stream that fails inside: an error event, or nothing at all."""
        events: list[bytes] = []
        if failure.in_stream == "event":
            body = failure.error_body()
            error = body.get("error", body) if isinstance(body, dict) else body
            events.append(_sse({"error": error}))
        self._start(200, "text/event-stream; charset=utf-8", {"Cache-Control": "no-cache"})
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for event in events:
            self.wfile.write(b"%X\r\n%s\r\n" % (len(event), event))
        self.wfile.write(b"0\r\n\r\n")  # a clean end, without [DONE]

    def _completion(self, answer: _Answer) -> None:
        data = json.dumps(answer.completion()).encode()
        if answer.reply.malformed:
            self._json(200, None, raw=data[: len(data) // 2])
        elif answer.reply.cut_after is not None:
            self._start(200, "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.close_connection = True
        else:
            self._json(200, None, raw=data)

    def _stream(self, answer: _Answer) -> None:
        reply = answer.reply
        first, body, last = answer.stream()
        events = [_sse(first)]
        if reply.malformed:
            events.append(b'data: {"id": "' + answer.id.encode() + b'", "choices": [{"delta": \n\n')
        if reply.cut_after is not None:
            events.extend(_sse(chunk) for chunk in body[: max(reply.cut_after, 0)])
        else:
            events.extend(_sse(chunk) for chunk in [*body, *last])
            if reply.done:
                events.append(_sse("[DONE]"))

        self._start(200, "text/event-stream; charset=utf-8", {"Cache-Control": "no-cache"})
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        # events[0] is the role chunk; content chunk N is events[N] (malformed aside).
        stall_at = None if reply.stall_after is None else reply.stall_after + 1
        for i, event in enumerate(events):
            if i and not self.server.fake._pause(reply.chunk_delay):
                break
            if i == stall_at and not self.server.fake._pause(reply.stall):
                break
            self.wfile.write(b"%X\r\n%s\r\n" % (len(event), event))
        else:
            if reply.cut_after is None:
                self.wfile.write(b"0\r\n\r\n")
                return
        # No terminating chunk: the client sees the body end early, as when a proxy or
        # the provider drops a stream.
        self.close_connection = True


# -- scripts and the CLI ---------------------------------------------------------------


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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m agent_magic.testing",
        description="Serve scripted chat replies on a local OpenAI-compatible endpoint. "
        "Prints the base_url on one line, then serves until --max-seconds pass or it is "
        "sent SIGTERM / Ctrl-C.",
    )
    parser.add_argument(
        "--script",
        type=Path,
        required=True,
        help='JSON list of replies: "text", {"content": ..., "tool_calls": [...]} or '
        '{"status": 429, "retry_after": 1}',
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 (default) picks a free port")
    parser.add_argument("--api-key", default=None, help="answer 401 to any other key")
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=600.0,
        help="exit after this long, so a forgotten server never outlives its use (default 600)",
    )
    args = parser.parse_args(argv)
    try:
        items = replies_from_json(json.loads(args.script.read_text()))
    except (OSError, ValueError, TypeError) as exc:
        parser.error(f"--script {args.script}: {exc}")

    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    with FakeOpenAIServer(api_key=args.api_key, host=args.host, port=args.port) as server:
        server.enqueue(*items)
        print(server.base_url, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            done.wait(args.max_seconds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


# --- the seam fake ------------------------------------------------------------------------


@dataclass(frozen=True)
class ScriptedCall:
    """One request a :class:`ScriptedChat` was asked: the messages (copied) and tools."""

    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] | None


class ScriptedChat:
    """A scripted :class:`~agent_magic.conversation.ChatClient`: the loop's seam, faked.

    Like simonw/llm's ``MockModel``: enqueue the replies, run the loop, then read what it
    was asked. No HTTP, no openai; for tests of the conversation loop and of your own
    edges (a UI, an executor). For end-to-end tests of ``%%agent`` serve the wire with
    :class:`FakeOpenAIServer` instead.

    Each queued item answers one request, in order:

    * ``str``: a reply streamed in ``chunks`` deltas, then the whole
      :class:`~agent_magic.conversation.ChatReply`;
    * a ``ChatReply`` (tool calls, usage, a finish reason): yielded as it is;
    * an exception (e.g. ``ChatError("model down")``, ``KeyboardInterrupt()``): raised.

    A request with nothing queued raises ``ChatError`` naming the request. ``calls``
    keeps every request (``seen`` its messages only)::

        from agent_magic.conversation import Conversation, drive
        from agent_magic.testing import ScriptedChat

        chat = ScriptedChat("```python\\nx = 1\\n```", "x is 1. TERMINATE")
        conversation = Conversation(chat, my_executor, mode="never")
        finished = drive(conversation.run("set x"), lambda event: None)
        assert finished.reason == "terminated" and len(chat.calls) == 2
        assert "x = 1" in chat.calls[1].messages[-2]["content"]
    """

    def __init__(self, *replies: Any, model: str = "scripted", chunks: int = 2) -> None:
        self.model = model
        self.chunks = max(1, chunks)
        self.calls: list[ScriptedCall] = []
        self._queue: deque[Any] = deque()
        self.enqueue(*replies)

    def enqueue(self, *replies: Any) -> ScriptedChat:
        """Queue replies (str, ChatReply or an exception to raise); returns self."""
        self._queue.extend(replies)
        return self

    @property
    def seen(self) -> list[list[dict[str, Any]]]:
        """The messages of every request, in order."""
        return [call.messages for call in self.calls]

    @property
    def pending(self) -> int:
        """How many queued replies are still unused."""
        return len(self._queue)

    def stream(
        self, messages: list[dict[str, Any]], *, tools: list[dict[str, Any]] | None = None
    ) -> Iterable[Any]:
        from ..conversation import ChatError, ChatReply

        self.calls.append(ScriptedCall([dict(m) for m in messages], tools))
        if not self._queue:
            raise ChatError(f"ScriptedChat: no scripted reply left for request {len(self.calls)}")
        reply = self._queue.popleft()
        if isinstance(reply, BaseException):
            raise reply
        if isinstance(reply, str):
            size = -(-len(reply) // self.chunks) or 1
            for start in range(0, len(reply), size):
                yield reply[start : start + size]
            reply = ChatReply(reply, model=self.model)
        yield reply


__all__ += ["ScriptedCall", "ScriptedChat"]
