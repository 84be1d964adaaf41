"""The stdlib transport under the SDK for http:// endpoints (agent_magic.llm.transport).

The behaviour every request relies on (streams, cut bodies, timeouts, status errors,
reuse of one connection) is tested through it by test_llm_client.py and the rest of
the suite, which talk to the scripted server over http://; here, what is its own: a
connection the server closed while idle is never used again, proxies from the
environment still apply, and failures come as the SDK's errors of the same kind.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import openai
import pytest

from agent_magic import llm
from agent_magic.conversation import ChatError
from agent_magic.llm import Endpoint, OpenAIChat
from agent_magic.testing import Failure, FakeOpenAIServer

ANSWER = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 0,
    "model": "m",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "hello"}, "finish_reason": "stop"}
    ],
}


class _Answers(BaseHTTPRequestHandler):
    """Answers every POST with ANSWER, keeping the connection alive (HTTP/1.1)."""

    protocol_version = "HTTP/1.1"
    seen: list[tuple[str, tuple[str, int]]] = []
    closed = threading.Event()
    close_after_answer = False
    set_cookie = False

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        self.rfile.read(int(self.headers["Content-Length"]))
        type(self).seen.append((self.requestline, self.client_address))
        type(self).cookies.append(self.headers.get("Cookie"))
        body = json.dumps(ANSWER).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if type(self).set_cookie:
            self.send_header("Set-Cookie", "session=abc; Path=/")
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()
        if type(self).close_after_answer:
            # Closed with no "Connection: close": the client learns it only from the socket.
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            type(self).closed.set()

    def log_message(self, *args: Any) -> None:
        pass


@contextlib.contextmanager
def _serving(
    close_after_answer: bool = False, set_cookie: bool = False
) -> Iterator[tuple[str, type[_Answers]]]:
    handler = type("Handler", (_Answers,), {"seen": [], "cookies": [], "closed": threading.Event()})
    handler.close_after_answer = close_after_answer
    handler.set_cookie = set_cookie
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", handler
    finally:
        server.shutdown()
        server.server_close()


def _ask(chat: OpenAIChat) -> str:
    reply = list(chat.stream([{"role": "user", "content": "hi"}]))[-1]
    assert llm.sdk.WORKERS.wait_idle(10.0)
    return reply.content


def test_a_connection_the_server_closed_while_idle_is_not_used_again() -> None:
    with _serving(close_after_answer=True) as (url, handler):
        chat = OpenAIChat([Endpoint("m", "sk-test-idle-0000", url)], stream=False, max_retries=0)
        assert _ask(chat) == "hello"
        assert handler.closed.wait(10)
        # No retries allowed: the second request must not go out on the closed connection.
        assert _ask(chat) == "hello"
    assert len(handler.seen) == 2
    assert handler.seen[0][1] != handler.seen[1][1]  # a new connection


def test_a_kept_alive_connection_carries_the_next_request() -> None:
    with _serving() as (url, handler):
        chat = OpenAIChat([Endpoint("m", "sk-test-kept-0000", url)], stream=False, max_retries=0)
        assert [_ask(chat) for _ in range(3)] == ["hello"] * 3
    assert len({address for _, address in handler.seen}) == 1


def test_a_proxy_from_the_environment_still_carries_the_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with _serving() as (proxy, handler):
        monkeypatch.setenv("HTTP_PROXY", proxy.removesuffix("/v1"))
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        # A host nobody resolves: only the proxy can answer for it.
        target = "http://model-server.invalid:8000/v1"
        chat = OpenAIChat(
            [Endpoint("m", "sk-test-proxy-0000", target)], stream=False, max_retries=0
        )
        assert _ask(chat) == "hello"
    assert handler.seen[0][0].startswith(
        "POST http://model-server.invalid:8000/v1/chat/completions "
    )


def test_a_refused_connection_is_the_sdk_s_connection_error_in_one_line() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    chat = OpenAIChat([Endpoint("m", "sk-test-refused-0000", url)], stream=True, max_retries=0)
    with pytest.raises(ChatError) as raised:
        _ask(chat)
    assert "\n" not in str(raised.value)
    assert f"127.0.0.1:{port}" in str(raised.value)


def test_a_silent_server_times_out_as_the_sdk_s_timeout() -> None:
    with socket.socket() as listening:  # accepts (the kernel's backlog) and never answers
        listening.bind(("127.0.0.1", 0))
        listening.listen(1)
        url = f"http://127.0.0.1:{listening.getsockname()[1]}/v1"
        chat = OpenAIChat(
            [Endpoint("m", "sk-test-silent-0000", url)], stream=True, max_retries=0, timeout=0.5
        )
        with pytest.raises(ChatError) as raised:
            _ask(chat)
    assert "timed out" in str(raised.value).lower()


def test_a_host_no_proxy_names_is_reached_directly(monkeypatch: pytest.MonkeyPatch) -> None:
    with _serving() as (url, handler):
        monkeypatch.setenv("HTTP_PROXY", "http://proxy.invalid:3128")
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        chat = OpenAIChat([Endpoint("m", "sk-test-noproxy-0000", url)], stream=False, max_retries=0)
        assert _ask(chat) == "hello"
    assert handler.seen[0][0].startswith("POST /v1/chat/completions ")


# -- the head learnt from the SDK (transport.Shortcut) ------------------------------------


@pytest.fixture
def sdk_posts(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths of the requests the SDK itself built (its own post, called through)."""
    built: list[str] = []
    original = openai.OpenAI.post

    def post(client: Any, path: str, *args: Any, **kwargs: Any) -> Any:
        built.append(path)
        return original(client, path, *args, **kwargs)

    monkeypatch.setattr(openai.OpenAI, "post", post)
    return built


def _head(request: Any) -> dict[str, str]:
    return {k: v for k, v in request.headers.items() if k != "content-length"}


@pytest.mark.parametrize("stream", [True, False])
def test_once_the_sdk_built_two_alike_the_head_is_sent_again_unchanged(
    stream: bool, sdk_posts: list[str]
) -> None:
    with FakeOpenAIServer() as server:
        server.enqueue("one", "two", "three", "four")
        chat = OpenAIChat(
            [Endpoint("m", "sk-test-head-0000", server.base_url)], stream=stream, max_retries=0
        )
        replies = [_ask(chat) for _ in range(4)]
        sent = server.chat_requests
    assert replies == ["one", "two", "three", "four"]
    assert len(sdk_posts) == 2  # the last two went out with the learnt head
    assert all(_head(r) == _head(sent[0]) for r in sent)
    assert all(r.json["messages"] == [{"role": "user", "content": "hi"}] for r in sent)
    assert all(r.json.get("stream", False) is stream for r in sent)


@pytest.mark.parametrize("stream", [True, False])
def test_an_error_after_the_head_was_learnt_is_the_sdk_s_and_sent_once(
    stream: bool, sdk_posts: list[str]
) -> None:
    with FakeOpenAIServer() as server:
        server.enqueue("one", "two", Failure(400, "bad request: the messages"))
        chat = OpenAIChat(
            [Endpoint("m", "sk-test-err-0000", server.base_url)], stream=stream, max_retries=0
        )
        assert [_ask(chat) for _ in range(2)] == ["one", "two"]
        with pytest.raises(ChatError) as raised:
            _ask(chat)
        assert len(server.chat_requests) == 3  # the failed one was not sent again
    assert "bad request: the messages" in str(raised.value)
    assert "\n" not in str(raised.value)
    assert len(sdk_posts) == 3  # the SDK judged the answer the learnt head got


def test_a_retried_failure_after_the_head_was_learnt_is_retried_by_the_sdk(
    sdk_posts: list[str],
) -> None:
    with FakeOpenAIServer() as server:
        server.enqueue("one", "two", Failure(503, retry_after=0.01), "three", "four", "five", "six")
        chat = OpenAIChat(
            [Endpoint("m", "sk-test-retry-0000", server.base_url)], stream=True, max_retries=1
        )
        replies = [_ask(chat) for _ in range(6)]
        counts = [r.headers["x-stainless-retry-count"] for r in server.chat_requests]
    assert replies == ["one", "two", "three", "four", "five", "six"]
    # The 503 came to the learnt head; the SDK retried it (its count says so). What is
    # learnt is the SDK's first attempt (the one the 503 was handed to), the same head
    # again: the requests after it take it (not the retry's, which differs).
    assert counts == ["0", "0", "0", "1", "0", "0", "0"]
    assert len(sdk_posts) == 3


def test_a_server_gone_after_the_head_was_learnt_is_the_sdk_s_connection_error() -> None:
    server = FakeOpenAIServer().start()
    server.enqueue("one", "two")
    chat = OpenAIChat(
        [Endpoint("m", "sk-test-gone-0000", server.base_url)], stream=True, max_retries=0
    )
    try:
        assert [_ask(chat) for _ in range(2)] == ["one", "two"]
    finally:
        server.stop()
    with pytest.raises(ChatError) as raised:
        _ask(chat)
    assert "cannot reach" in str(raised.value)


def test_a_head_that_carries_cookies_is_never_learnt(sdk_posts: list[str]) -> None:
    with _serving(set_cookie=True) as (url, handler):
        chat = OpenAIChat([Endpoint("m", "sk-test-cookie-0000", url)], stream=False, max_retries=0)
        assert [_ask(chat) for _ in range(4)] == ["hello"] * 4
    assert len(sdk_posts) == 4  # every request built by the SDK, its cookie jar in charge
    assert handler.cookies == [None, "session=abc", "session=abc", "session=abc"]
