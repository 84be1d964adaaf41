"""The endpoint side of the fault matrix (docs/reliability.md): each fault a server can
commit, scripted on the local server over real HTTP, and the one line a user gets.

Every error here is one line, names what to change, and holds no key; the faults that
let the next endpoint of a config list have a go say so in ``falls_through``.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from agent_magic.conversation import ChatError, ChatReply
from agent_magic.llm import Endpoint, OpenAIChat
from agent_magic.testing import Failure, FakeOpenAIServer, Reply

KEY = "sk-test-faults-4242424242"
MESSAGES = [{"role": "user", "content": "hi"}]


def ask(server: FakeOpenAIServer, *items: Any, stream: bool = True, **options: Any) -> Any:
    server.enqueue(*items)
    chat = OpenAIChat(
        [Endpoint("m", KEY, server.base_url)],
        stream=stream,
        max_retries=options.pop("max_retries", 0),
        **options,
    )
    try:
        return list(chat.stream(MESSAGES))[-1]
    except ChatError as error:
        return error


def one_line(error: Any, *words: str) -> str:
    assert isinstance(error, ChatError), error
    text = str(error)
    assert "\n" not in text and KEY not in text and "faults-4242" not in text
    for word in words:
        assert word in text, text
    return text


@pytest.mark.parametrize("stream", [True, False])
@pytest.mark.parametrize(
    ("failure", "words"),
    [
        (Failure(401, f"Incorrect API key provided: {KEY}."), ["authentication failed (401)"]),
        (Failure(403, "You are not allowed to sample from this model"), ["(403)", "api_key"]),
        (Failure(404, "The model does not exist", code="model_not_found"), ["not found (404)"]),
        (Failure(500, "The server had an error"), ["server error 500", "The server had an error"]),
        (Failure(503, "The engine is currently overloaded"), ["server error 503", "overloaded"]),
        (Failure(429, "Rate limit reached"), ["rate limited (429) after retries"]),
        (Failure(400, "messages: bad role"), ["request rejected (400)", "bad role"]),
    ],
    ids=["401", "403", "404", "500", "503", "429", "400"],
)
def test_http_errors_are_one_line_without_the_key(stream: bool, failure: Failure, words) -> None:
    with FakeOpenAIServer() as server:
        one_line(ask(server, failure, stream=stream), *words)


def test_429_with_retry_after_waits_that_long_then_succeeds() -> None:
    with FakeOpenAIServer() as server:
        start = time.monotonic()
        reply = ask(server, Failure(429, "slow down", retry_after=1), "fine", max_retries=1)
        gap = server.requests[1].time - server.requests[0].time
    assert isinstance(reply, ChatReply) and reply.content == "fine"
    assert gap >= 0.9 and time.monotonic() - start < 5


def test_429_without_retry_after_is_retried_with_backoff_then_explained() -> None:
    with FakeOpenAIServer() as server:
        reply = ask(server, Failure(429, "slow down"), "fine", max_retries=1)
        assert isinstance(reply, ChatReply) and len(server.requests) == 2
        error = ask(server, Failure(429, "slow down"), Failure(429, "still"), max_retries=1)
    one_line(error, "rate limited (429) after retries", "AgentMagics.max_retries")


@pytest.mark.parametrize("status", [500, 503])
def test_a_5xx_is_retried_and_the_retry_answers(status: int) -> None:
    with FakeOpenAIServer() as server:
        reply = ask(server, Failure(status), "back again", max_retries=1)
    assert isinstance(reply, ChatReply) and reply.content == "back again"


@pytest.mark.parametrize("stream", [True, False])
def test_a_refused_connection_says_the_server_is_not_there(stream: bool) -> None:
    chat = OpenAIChat([Endpoint("m", KEY, "http://127.0.0.1:9/v1")], stream=stream, max_retries=0)
    with pytest.raises(ChatError) as info:
        list(chat.stream(MESSAGES))
    one_line(info.value, "cannot reach http://127.0.0.1:9/v1", "--base-url")


@pytest.mark.parametrize("stream", [True, False])
def test_a_server_that_never_answers_times_out(stream: bool) -> None:
    with FakeOpenAIServer() as server:
        start = time.monotonic()
        error = ask(server, Reply("late", delay=10), stream=stream, timeout=0.5)
        assert time.monotonic() - start < 5
    one_line(error, "timed out", "AgentMagics.timeout")


def test_a_stream_that_stalls_before_the_reply_begins_times_out() -> None:
    with FakeOpenAIServer() as server:
        start = time.monotonic()
        error = ask(server, Reply("slow words", chunk_delay=10), timeout=0.5)
        assert time.monotonic() - start < 5
    one_line(error, "stopped sending for 0.5 s before the reply began", "AgentMagics.timeout")


def test_a_stream_cut_mid_reply_is_an_incomplete_reply_not_an_error() -> None:
    with FakeOpenAIServer() as server:
        reply = ask(server, Reply("x = 1\ny = 2 and more words", cut_after=2))
    assert isinstance(reply, ChatReply) and reply.cut_off == "incomplete stream"


def test_a_json_answer_cut_halfway_is_an_error() -> None:
    with FakeOpenAIServer() as server:
        error = ask(server, Reply("a whole reply", cut_after=1), stream=False)
    one_line(error)


@pytest.mark.parametrize("stream", [True, False])
def test_malformed_json_is_one_line(stream: bool) -> None:
    with FakeOpenAIServer() as server:
        error = ask(server, Reply("broken", malformed=True), stream=stream)
    one_line(error, "the server's reply could not be read")


@pytest.mark.parametrize("stream", [True, False])
def test_empty_choices(stream: bool) -> None:
    # Streamed, the stream is a bare [DONE]: asked once more without streaming, which
    # has no choices either.
    with FakeOpenAIServer() as server:
        empty = [Reply("unseen", no_choices=True)] * (2 if stream else 1)
        one_line(ask(server, *empty, stream=stream), "the reply had no choices")
        assert [r.stream for r in server.requests] == ([True, False] if stream else [False])


def test_an_error_event_inside_a_stream_is_said() -> None:
    with FakeOpenAIServer() as server:
        error = ask(server, Failure(500, "slot unavailable", in_stream="event"))
    one_line(error, "the server sent an error: slot unavailable")


def test_every_config_entry_failing_names_each_failure() -> None:
    with FakeOpenAIServer() as first, FakeOpenAIServer(api_key="sk-test-other-key-99") as third:
        first.enqueue(Failure(503, "overloaded"))
        chat = OpenAIChat(
            [
                Endpoint("one", KEY, first.base_url),
                Endpoint("two", KEY, "http://127.0.0.1:9/v1"),
                Endpoint("three", KEY, third.base_url),
            ],
            max_retries=0,
        )
        with pytest.raises(ChatError) as info:
            list(chat.stream(MESSAGES))
    text = one_line(info.value, "all 3 endpoints failed", "[1] one @", "[2] cannot reach")
    assert "server error 503" in text and "[3] three @" in text and "authentication failed" in text
    assert "other-key" not in text


def test_after_a_failure_the_next_request_works() -> None:
    with FakeOpenAIServer() as server:
        one_line(ask(server, Failure(500, "down")))
        reply = ask(server, "back")
    assert isinstance(reply, ChatReply) and reply.content == "back"


def test_a_stream_that_stalls_mid_reply_keeps_what_arrived_as_an_incomplete_reply() -> None:
    with FakeOpenAIServer() as server:
        start = time.monotonic()
        reply = ask(server, Reply("first words then more", stall_after=2, stall=10), timeout=0.5)
        assert time.monotonic() - start < 5
    assert isinstance(reply, ChatReply) and reply.cut_off == "incomplete stream"
    assert reply.content == "first words"


def test_credentials_in_a_base_url_stay_out_of_labels_and_errors() -> None:
    url = "http://user:hunter2secret@127.0.0.1:9/v1?api-key=querysecret99"
    endpoint = Endpoint("m", KEY, url)
    assert endpoint.label == "m @ http://127.0.0.1:9/v1"
    chat = OpenAIChat([endpoint], max_retries=0)
    with pytest.raises(ChatError) as info:
        list(chat.stream(MESSAGES))
    text = one_line(info.value, "cannot reach http://127.0.0.1:9/v1")
    assert "hunter2" not in text and "querysecret" not in text
