"""The local OpenAI-compatible server for tests: :class:`FakeOpenAIServer`.

Its lifecycle (real HTTP on 127.0.0.1, an ephemeral port, a daemon thread), the queue
of scripted replies and the ``responder``, the request log, and the refusals a real
endpoint makes before the model answers (wrong key, unknown model, over the context
window). Not here: the script's records (:mod:`.scripting`), the HTTP handler
(:mod:`.handler`), the wire format (:mod:`.chat_wire`), the CLI (:mod:`.cli`).
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from collections.abc import Callable, Collection, Mapping
from typing import Any, TypeAlias

from .chat_wire import RecordedRequest, prompt_text, rough_tokens
from .handler import Handler, HTTPServer
from .responses_wire import RESPONSES_PATHS, input_text, responses_only_failure
from .scripting import Failure, Reply, ReplyItem

NO_REPLY_LEFT = "FakeOpenAIServer: no scripted reply left"

Responder: TypeAlias = "Callable[[RecordedRequest], ReplyItem]"


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

    A :class:`Reply` may carry a reasoning model's thinking, sent as each server family
    sends it (``reasoning_content``, ``reasoning``, or inline ``<think>`` with or without
    its opening tag; see :class:`Reply`), with ``reasoning_tokens`` in the usage.

    Serves ``POST /v1/chat/completions`` (JSON or SSE), Azure's
    ``POST /openai/deployments/{name}/chat/completions`` and ``GET /v1/models``, whose
    entries get the fields in ``model_fields[id]`` (vLLM's ``max_model_len``...).
    ``routes`` answers other paths with JSON: ``{("GET", "/props"): {...}}`` (a value
    may be a ``Failure``, or a callable taking the ``RecordedRequest``), to stand in for
    llama.cpp's ``/props`` or Ollama's ``/api/ps`` and ``/api/show``.

    Also the Responses API: ``POST /v1/responses`` (and Azure's ``/openai/responses``),
    JSON or the event stream, from the same script (see :mod:`.responses_wire`). Models in
    ``responses_only`` get OpenAI's 404 "This model is only supported in v1/responses
    and not in v1/chat/completions." on chat completions, as gpt-5-codex does.
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
        responses_only: Collection[str] = (),
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
        self.responses_only = frozenset(responses_only)
        self._lock = threading.Lock()
        self._queue: deque[ReplyItem] = deque()
        self._requests: list[RecordedRequest] = []
        self._ids = itertools.count(1)
        self._stopping = threading.Event()
        self._httpd: HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._url: str | None = None

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> FakeOpenAIServer:
        if self._httpd is not None:
            raise RuntimeError("FakeOpenAIServer is already running at " + self.base_url)
        self._stopping.clear()
        httpd = HTTPServer((self.host, self.port), Handler, self)
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

    @property
    def responses_requests(self) -> list[RecordedRequest]:
        """The Responses API requests only (``POST /v1/responses``)."""
        return [r for r in self.requests if r.method == "POST" and r.path in RESPONSES_PATHS]

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
        if request.model in self.responses_only:
            return responses_only_failure()
        if self.reject_stream_options and "stream_options" in request.json:
            return Failure(
                400, "Unrecognized request argument supplied: stream_options", param=None
            )
        if self.context_window is not None:
            tokens = rough_tokens(prompt_text(request.messages))
            if tokens > self.context_window:
                return Failure.context_length(
                    self.context_style, window=self.context_window, requested=tokens
                )
        return None

    def _invalid_response_request(self, request: RecordedRequest) -> Failure | None:
        body = request.json
        if not isinstance(body, dict):
            return Failure(400, "We could not parse the JSON body of your request.")
        if request.model is None:
            return Failure(400, "Missing required parameter: 'model'.", param="model")
        if not isinstance(body.get("input"), (list, str)):
            return Failure(400, "Missing required parameter: 'input'.", param="input")
        if self.models is not None and request.model not in self.models:
            return Failure(
                404,
                f"The model `{request.model}` does not exist or you do not have access to it.",
                code="model_not_found",
            )
        if self.context_window is not None:
            tokens = rough_tokens(input_text(request))
            if tokens > self.context_window:
                return Failure.context_length(
                    "openai", window=self.context_window, requested=tokens
                )
        return None

    def _pause(self, seconds: float) -> bool:
        """Sleep, but wake when the server stops; False means stop answering."""
        if seconds > 0:
            self._stopping.wait(seconds)
        return not self._stopping.is_set()

    def _next_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):04d}"


def _bearer(value: str | None) -> str | None:
    if value and value[:7].lower() == "bearer ":
        return value[7:].strip()
    return None


def _mask(key: str) -> str:
    return key[:3] + "*" * 4 + key[-4:] if len(key) > 8 else "*" * len(key)
