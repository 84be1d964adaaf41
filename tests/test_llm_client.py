"""OpenAIChat against the local server: what the per-step cost depends on."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from agent_magic import llm, testing
from agent_magic.conversation import ChatReply
from agent_magic.llm import Endpoint, OpenAIChat
from agent_magic.testing import FakeOpenAIServer


@pytest.fixture
def connections(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every connection the local server accepts."""
    opened: list[Any] = []
    original = testing._Handler.setup

    def setup(handler: Any) -> None:
        opened.append(handler.client_address)
        original(handler)

    monkeypatch.setattr(testing._Handler, "setup", setup)
    return opened


@pytest.mark.parametrize("stream", [True, False])
def test_requests_reuse_one_connection(stream: bool, connections: list[Any]) -> None:
    with FakeOpenAIServer() as server:
        server.enqueue("one", "two", "three")
        chat = OpenAIChat(
            [Endpoint("m", "sk-test-reuse-0000", server.base_url)], stream=stream, max_retries=0
        )
        replies = [list(chat.stream([{"role": "user", "content": "hi"}])) for _ in range(3)]
    assert [r[-1].content for r in replies] == ["one", "two", "three"]
    assert all(isinstance(r[-1], ChatReply) for r in replies)
    assert len(connections) == 1


class _HoldsTheBodyOpen(BaseHTTPRequestHandler):
    """Streams a reply and [DONE], then keeps the chunked body open (a misbehaving proxy)."""

    protocol_version = "HTTP/1.1"
    released = threading.Event()

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        chunk = {"choices": [{"index": 0, "delta": {"content": "hello"}, "finish_reason": "stop"}]}
        for event in (f"data: {json.dumps(chunk)}\n\n", "data: [DONE]\n\n"):
            data = event.encode()
            self.wfile.write(b"%X\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()
        self.released.wait(30)
        self.close_connection = True


def test_a_body_kept_open_after_done_does_not_hold_up_the_reply() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _HoldsTheBodyOpen)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/v1"
        chat = OpenAIChat([Endpoint("m", "sk-test-held-0000", url)], stream=True, max_retries=0)
        start = time.monotonic()
        items = list(chat.stream([{"role": "user", "content": "hi"}]))
        assert time.monotonic() - start < 5
        assert items[-1].content == "hello"
    finally:
        _HoldsTheBodyOpen.released.set()
        server.shutdown()
        server.server_close()


def test_the_warm_up_builds_the_client_a_cell_will_use(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-warm-0000")
    monkeypatch.delenv("OAI_CONFIG_LIST", raising=False)
    url = "http://127.0.0.1:9/v1/warm"  # nothing is asked: the client is only built
    llm.warm_import(base_url=url, timeout=7.0, max_retries=1)
    for thread in threading.enumerate():
        if thread.name == "agent_magic-import":
            thread.join(60)
    chat = OpenAIChat([Endpoint("m", None, url)], timeout=7.0, max_retries=1)
    settings = chat._settings(chat.endpoints[0])
    assert settings in llm._CLIENTS
    assert chat._client(0, chat.endpoints[0]) is llm._CLIENTS[settings]
    other = OpenAIChat([Endpoint("m", None, url)], timeout=8.0, max_retries=1)
    assert other._client(0, other.endpoints[0]) is not llm._CLIENTS[settings]


def test_shared_clients_are_closed_at_exit_while_the_modules_are_there() -> None:
    import weakref

    settings = ("openai", "sk-test-exit-0000", "http://127.0.0.1:9/v1/exit", None, 5.0, 0)
    client = llm._shared_client(settings)
    client.chat.completions.with_raw_response  # noqa: B018  (a reference cycle, as in use)
    transport = weakref.ref(client._client)
    llm._close_clients()  # what atexit runs
    assert transport() is None  # closed and let go now, not at interpreter teardown
    assert settings not in llm._CLIENTS
    assert llm._shared_client(settings) is not client


def test_sse_events_skip_what_is_not_an_event_object() -> None:
    lines = [
        ": keep-alive",
        "event: message",
        'data: {"a": 1}',
        "",
        "data: null",
        "",
        "data: 42",
        "",
        'data: {"b":',
        "data: 2}",  # one event over two data lines
        "",
        "data: [DONE]  ",
        "",
        'data: {"after": "done"}',
        "",
    ]
    assert list(llm._sse_events(iter(lines))) == [{"a": 1}, {"b": 2}]


def test_sse_event_cut_without_its_blank_line_still_counts() -> None:
    assert list(llm._sse_events(iter(['data: {"last": true}']))) == [{"last": True}]


@pytest.mark.parametrize(
    ("message", "rejects"),
    [
        ("registry.ollama.ai/library/gemma:2b does not support tools", True),
        ("Unrecognized request argument supplied: tools", True),
        ("'tools' is not supported with this model.", True),
        ("tools: Extra inputs are not permitted", True),
        ('"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser', True),
        ("tools param requires --jinja flag", True),
        ("tool_choice is not supported for this model", True),
        ("Function calling is not enabled for this model", True),
        ("This model's maximum context length is 8192 tokens", False),
        ("messages: a tool message must follow an assistant tool call", False),
        ("the tool output is too long", False),
    ],
)
def test_only_errors_that_blame_tools_drop_them(message: str, rejects: bool) -> None:
    import httpx
    import openai

    request = httpx.Request("POST", "http://127.0.0.1/v1/chat/completions")
    response = httpx.Response(400, request=request, json={"error": {"message": message}})
    error = openai.BadRequestError(message, response=response, body={"message": message})
    assert llm._rejects_tools(error) is rejects
