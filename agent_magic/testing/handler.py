"""The HTTP side of :class:`~.server.FakeOpenAIServer`: routing, writing, dropping connections.

:class:`HTTPServer` (a threading server that tracks its connections so ``stop()`` can
end keep-alive ones) and :class:`Handler` (reads a request, records it, answers a
route, ``/v1/models`` or a chat completion as JSON or SSE, with the scripted faults).
Not here: the script and the queue (:mod:`.server`, :mod:`.scripting`), the JSON of an
answer (:mod:`.chat_wire`).
"""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import sys
import threading
import time
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlsplit

from .chat_wire import Answer, RecordedRequest, parse_json, sse
from .responses_wire import RESPONSES_PATHS, ResponseAnswer, sse_event
from .scripting import Failure, Reply, ReplyItem


class Script(Protocol):
    """What the HTTP side asks of the server it answers for (:class:`~.server.FakeOpenAIServer`
    is one): its settings, the next scripted item, the request log and ids."""

    models: frozenset[str] | None
    model_fields: dict[str, dict[str, Any]]
    routes: dict[tuple[str, str], Any]
    _stopping: threading.Event

    def _record(self, request: RecordedRequest) -> int: ...
    def _next_reply(self, request: RecordedRequest, number: int) -> ReplyItem: ...
    def _refusal(self, request: RecordedRequest) -> Failure | None: ...
    def _invalid_chat(self, request: RecordedRequest) -> Failure | None: ...
    def _invalid_response_request(self, request: RecordedRequest) -> Failure | None: ...
    def _pause(self, seconds: float) -> bool: ...
    def _next_id(self, prefix: str) -> str: ...


DEFAULT_MODELS = ("fake-model",)
# Gone clients (a test's timeout, a cut stream) and stopped servers show up as these;
# they are expected, not bugs to print.
_GONE = (ConnectionError, socket.timeout)


class HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    # Tests start and stop many servers; don't let a TIME_WAIT port block a fixed --port.
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], handler: type[Handler], fake: Script) -> None:
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


class Handler(BaseHTTPRequestHandler):
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
    server: HTTPServer

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
            json=parse_json(body),
            time=time.monotonic(),
        )
        number = fake._record(request)

        is_chat = url.path == "/v1/chat/completions" or request.deployment is not None
        route = fake.routes.get((self.command, url.path))
        if route is not None:
            self._route(request, route)
        elif self.command == "POST" and is_chat:
            self._chat(request, number)
        elif self.command == "POST" and url.path in RESPONSES_PATHS:
            self._responses(request, number)
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
            if reply.hang_up:  # a reset (RST), not a clean close: no answer at all
                with contextlib.suppress(OSError):
                    linger = struct.pack("ii", 1, 0)
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
                self.close_connection = True
                return
            if reply.in_stream is not None and request.stream:
                self._stream_failure(reply)
            else:
                self._failure(reply)
            return
        answer = Answer(
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

    def _responses(self, request: RecordedRequest, number: int) -> None:
        fake = self.server.fake
        item = fake._refusal(request) or fake._invalid_response_request(request)
        if item is None:
            item = fake._next_reply(request, number)
        reply = Reply(content=item) if isinstance(item, str) else item
        if not fake._pause(reply.delay):
            self.close_connection = True
            return
        if isinstance(reply, Failure):
            if reply.in_stream is not None and request.stream:
                self._responses_stream_failure(reply)
            else:
                self._failure(reply)
            return
        calls = len(reply.tool_calls)
        answer = ResponseAnswer(
            reply=reply,
            request=request,
            id=fake._next_id("resp_fake"),
            created=int(time.time()),
            model=reply.model or request.model or "fake-model",
            item_ids=(
                fake._next_id("rs_fake"),
                fake._next_id("msg_fake"),
                *(fake._next_id("fc_fake") for _ in range(calls)),
            ),
            call_ids=tuple(c.id or fake._next_id("call_fake") for c in reply.tool_calls),
        )
        if not request.stream:
            self._json(200, answer.response())
            return
        events = [sse_event(e) for e in answer.events()]
        if reply.cut_after is not None:
            events = events[: 2 + max(reply.cut_after, 0)]
        self._start(200, "text/event-stream; charset=utf-8", {"Cache-Control": "no-cache"})
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for i, event in enumerate(events):
            if i and not fake._pause(reply.chunk_delay):
                break
            self.wfile.write(b"%X\r\n%s\r\n" % (len(event), event))
        else:
            if reply.cut_after is None:
                self.wfile.write(b"0\r\n\r\n")
                return
        self.close_connection = True  # no terminating chunk: a stream cut short

    def _responses_stream_failure(self, failure: Failure) -> None:
        """A 200 Responses stream that fails inside: an ``error`` event, as the API
        sends one, or nothing at all."""
        events: list[bytes] = []
        if failure.in_stream == "event":
            body = failure.error_body()
            error = body.get("error", body) if isinstance(body, dict) else body
            error = error if isinstance(error, dict) else {"message": str(error)}
            fields = {k: v for k, v in error.items() if k != "type"}  # the kind says "error"
            events.append(sse_event({**fields, "type": "error", "sequence_number": 0}))
        self._start(200, "text/event-stream; charset=utf-8", {"Cache-Control": "no-cache"})
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for event in events:
            self.wfile.write(b"%X\r\n%s\r\n" % (len(event), event))
        self.wfile.write(b"0\r\n\r\n")

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
        if failure.content_type is not None and isinstance(failure.body, str):
            data = failure.body.encode()
            self._start(failure.status, failure.content_type, failure.headers())
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        self._json(failure.status, failure.error_body(), failure.headers())

    def _stream_failure(self, failure: Failure) -> None:
        """A 200 event stream that fails inside: an error event, or nothing at all."""
        events: list[bytes] = []
        if failure.in_stream == "event":
            body = failure.error_body()
            error = body.get("error", body) if isinstance(body, dict) else body
            events.append(sse({"error": error}))
        self._start(200, "text/event-stream; charset=utf-8", {"Cache-Control": "no-cache"})
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for event in events:
            self.wfile.write(b"%X\r\n%s\r\n" % (len(event), event))
        self.wfile.write(b"0\r\n\r\n")  # a clean end, without [DONE]

    def _completion(self, answer: Answer) -> None:
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

    def _stream(self, answer: Answer) -> None:
        reply = answer.reply
        first, body, last = answer.stream()
        events = [sse(first)]
        if reply.malformed:
            events.append(b'data: {"id": "' + answer.id.encode() + b'", "choices": [{"delta": \n\n')
        if reply.cut_after is not None:
            events.extend(sse(chunk) for chunk in body[: max(reply.cut_after, 0)])
        else:
            events.extend(sse(chunk) for chunk in [*body, *last])
            if reply.done:
                events.append(sse("[DONE]"))

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
