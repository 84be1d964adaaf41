"""OpenAIChat against the local server over real HTTP: connections, cut-off replies,
usage, context-length errors, the server's window, the model list, odd text."""

from __future__ import annotations

import contextlib
import gzip
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent_magic import llm, warmup
from agent_magic.conversation import ChatError, ChatReply, ContextWindowExceeded, Usage
from agent_magic.llm import Endpoint, OpenAIChat, wire
from agent_magic.testing import Failure, FakeOpenAIServer, Reply
from agent_magic.testing.handler import Handler


@pytest.fixture
def connections(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every connection the local server accepts."""
    opened: list[Any] = []
    original = Handler.setup

    def setup(handler: Any) -> None:
        opened.append(handler.client_address)
        original(handler)

    monkeypatch.setattr(Handler, "setup", setup)
    return opened


@pytest.mark.parametrize("stream", [True, False])
def test_requests_reuse_one_connection(stream: bool, connections: list[Any]) -> None:
    with FakeOpenAIServer() as server:
        server.enqueue("one", "two", "three")
        chat = OpenAIChat(
            [Endpoint("m", "sk-test-reuse-0000", server.base_url)], stream=stream, max_retries=0
        )
        replies = []
        for _ in range(3):
            replies.append(list(chat.stream([{"role": "user", "content": "hi"}])))
            # A streamed reply is handed over before the worker has read its body's end
            # and put the connection back: the next request waits for that, not for luck.
            assert llm.sdk.WORKERS.wait_idle(10.0)
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


@contextlib.contextmanager
def _serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """A server of ``handler`` on 127.0.0.1 for the block; its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


def test_a_body_kept_open_after_done_does_not_hold_up_the_reply() -> None:
    with _serving(_HoldsTheBodyOpen) as url:
        try:
            chat = OpenAIChat([Endpoint("m", "sk-test-held-0000", url)], stream=True, max_retries=0)
            start = time.monotonic()
            items = list(chat.stream([{"role": "user", "content": "hi"}]))
            assert time.monotonic() - start < 5
            assert items[-1].content == "hello"
        finally:
            _HoldsTheBodyOpen.released.set()


def test_the_warm_up_builds_the_client_a_cell_will_use(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-warm-0000")
    monkeypatch.delenv("OAI_CONFIG_LIST", raising=False)
    url = "http://127.0.0.1:9/v1/warm"  # nothing is asked: the client is only built
    warmup.start(base_url=url, timeout=7.0, max_retries=1)
    for thread in threading.enumerate():
        if thread.name == "agent_magic-import":
            thread.join(60)
    chat = OpenAIChat([Endpoint("m", None, url)], timeout=7.0, max_retries=1)
    settings = chat._settings(chat.endpoints[0])
    assert settings in llm.sdk._CLIENTS
    assert chat._client(0, chat.endpoints[0]) is llm.sdk._CLIENTS[settings]
    other = OpenAIChat([Endpoint("m", None, url)], timeout=8.0, max_retries=1)
    assert other._client(0, other.endpoints[0]) is not llm.sdk._CLIENTS[settings]


def test_shared_clients_are_closed_at_exit_while_the_modules_are_there() -> None:
    import weakref

    settings = ("openai", "sk-test-exit-0000", "http://127.0.0.1:9/v1/exit", None, 5.0, 0)
    client = llm.sdk.shared_client(settings)
    client.chat.completions.with_raw_response  # noqa: B018  (a reference cycle, as in use)
    transport = weakref.ref(client._client)
    llm.sdk._close_clients()  # what atexit runs
    assert transport() is None  # closed and let go now, not at interpreter teardown
    assert settings not in llm.sdk._CLIENTS
    assert llm.sdk.shared_client(settings) is not client


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
    assert list(llm.wire.sse_events(iter(lines))) == [{"a": 1}, {"b": 2}]


def test_sse_event_cut_without_its_blank_line_still_counts() -> None:
    assert list(llm.wire.sse_events(iter(['data: {"last": true}']))) == [{"last": True}]


@pytest.mark.parametrize("api", ["chat", "responses"])
def test_line_separators_inside_a_streamed_reply_arrive_whole(api: str) -> None:
    # Servers send the JSON's text as UTF-8 (the scripted one too): a U+2028, U+2029 or
    # U+0085 in the reply is inside a JSON string, not the end of an SSE line (only CR
    # and LF end one), and a reply split into many events keeps each piece whole.
    content = "a\u2028b\u0085c\u2029d \x1c e\x0bf\x0cg \r\n h \u00e9\U0001f600 end"
    pieces = [content[i : i + 3] for i in range(0, len(content), 3)]
    with FakeOpenAIServer() as server:
        server.enqueue(Reply(content, pieces=pieces), Reply(content, pieces=pieces))
        endpoint = Endpoint("m", "sk-test-separators-0", server.base_url, api=api)
        chat = OpenAIChat([endpoint], max_retries=0)
        for _ in range(2):  # the second over the connection the first gave back
            items = list(chat.stream([{"role": "user", "content": "hi"}]))
            assert items[-1].content == content and items[-1].cut_off is None
            assert "".join(i for i in items if isinstance(i, str)) == content


class _Gzipped(BaseHTTPRequestHandler):
    """Streams a reply gzip-compressed (a proxy that compresses event streams)."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        pieces = ["caf\u00e9 ", "\u2028 ", "done"]
        events = [
            {"choices": [{"index": 0, "delta": {"content": p}, "finish_reason": None}]}
            for p in pieces
        ]
        events.append({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        text = "".join(f"data: {json.dumps(e, ensure_ascii=False)}\n\n" for e in events)
        body = gzip.compress((text + "data: [DONE]\n\n").encode())
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_a_compressed_stream_is_read_through_its_encoding() -> None:
    with _serving(_Gzipped) as url:
        chat = OpenAIChat([Endpoint("m", "sk-test-gzip-0000", url)], stream=True, max_retries=0)
        reply = list(chat.stream([{"role": "user", "content": "hi"}]))[-1]
    assert reply.content == "caf\u00e9 \u2028 done" and reply.cut_off is None


def test_sse_lines_end_at_cr_and_lf_only_wherever_the_chunks_split() -> None:
    body = "data: a\u2028\u0085b\r\n\r\ndata: \u00e9\rdata: c\n\ndata: last".encode()
    want = ["data: a\u2028\u0085b", "", "data: \u00e9", "data: c", "", "data: last"]
    for size in (1, 2, 3, 5, len(body)):
        chunks = [body[i : i + size] for i in range(0, len(body), size)]
        assert list(wire.sse_lines(iter(chunks))) == want, size
    # A line ended by CR alone, its LF in the next chunk: one line end, not two.
    assert list(wire.sse_lines(iter([b"data: x\r", b"\n\r", b"\n"]))) == ["data: x", ""]
    assert list(wire.sse_lines(iter([b"\xff data"]))) == ["\ufffd data"]


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
    assert llm.errors.rejects_tools(error) is rejects


# -- cut-off replies ------------------------------------------------------------------------


def _ask(server: FakeOpenAIServer, *items: Any, stream: bool = True, **options: Any) -> Any:
    """Enqueue items and ask once; the final ChatReply, or the ChatError raised."""
    server.enqueue(*items)
    key = options.pop("key", "sk-test-client-0000")
    text = options.pop("text", "hi")
    chat = OpenAIChat(
        [Endpoint("m", key, server.base_url)], stream=stream, max_retries=0, **options
    )
    try:
        return list(chat.stream([{"role": "user", "content": text}]))[-1]
    except ChatError as error:
        return error


@pytest.mark.parametrize("stream", [True, False])
@pytest.mark.parametrize("reason", ["length", "content_filter"])
def test_a_reply_stopped_by_its_finish_reason_is_cut_off(stream: bool, reason: str) -> None:
    with FakeOpenAIServer() as server:
        reply = _ask(server, Reply("```python\nx = [1,", finish_reason=reason), stream=stream)
    assert reply.cut_off == reason and reply.finish_reason == reason
    assert reply.content == "```python\nx = [1,"


@pytest.mark.parametrize("stream", [True, False])
def test_a_whole_reply_is_not_cut_off(stream: bool) -> None:
    with FakeOpenAIServer() as server:
        reply = _ask(server, "all of it", stream=stream)
    assert reply.cut_off is None and reply.finish_reason == "stop"


@pytest.mark.parametrize(
    "script",
    [
        Reply("print(1) and more", cut_after=2),  # the connection drops: no finish, no [DONE]
        Reply("print(1) and more", done=False),  # a clean end of body without [DONE]
        Reply("print(1) and more", send_finish=False),  # [DONE] but no finish reason
    ],
    ids=["connection-cut", "no-done", "no-finish-reason"],
)
def test_a_stream_that_ends_early_is_an_incomplete_reply(script: Reply) -> None:
    with FakeOpenAIServer() as server:
        reply = _ask(server, script)
    assert isinstance(reply, ChatReply)
    assert reply.cut_off == "incomplete stream"
    assert reply.content and "print(1) and more".startswith(reply.content)


def test_a_cut_stream_still_hands_over_what_arrived_as_deltas() -> None:
    with FakeOpenAIServer() as server:
        server.enqueue(Reply("one two three four", cut_after=2))
        chat = OpenAIChat([Endpoint("m", "sk-test-deltas-00", server.base_url)], max_retries=0)
        items = list(chat.stream([{"role": "user", "content": "hi"}]))
    assert "".join(i for i in items if isinstance(i, str)) == items[-1].content == "one two"


def test_a_stream_cut_before_anything_arrived_is_an_error() -> None:
    with FakeOpenAIServer() as server:
        error = _ask(server, Reply("one two", cut_after=0))
    assert isinstance(error, ChatError) and "connection broke before the reply began" in str(error)


# -- usage --------------------------------------------------------------------------------


def test_streams_ask_for_usage_and_keep_it() -> None:
    with FakeOpenAIServer() as server:
        reply = _ask(server, Reply("hello", usage=(12, 3)))
        assert server.requests[-1].include_usage
    assert reply.usage == Usage(12, 3)


@pytest.mark.parametrize("stream", [True, False])
def test_no_usage_from_the_server_is_none_not_zero(stream: bool) -> None:
    with FakeOpenAIServer() as server:
        reply = _ask(server, Reply("hello", send_usage=False), stream=stream)
    assert reply.usage is None


def test_an_endpoint_that_refuses_stream_options_is_asked_without_them_from_then_on() -> None:
    with FakeOpenAIServer(reject_stream_options=True) as server:
        server.enqueue("one", "two")
        chat = OpenAIChat([Endpoint("m", "sk-test-options-0", server.base_url)], max_retries=0)
        first = list(chat.stream([{"role": "user", "content": "hi"}]))[-1]
        second = list(chat.stream([{"role": "user", "content": "hi"}]))[-1]
        sent = [r.include_usage for r in server.requests]
    assert (first.content, second.content) == ("one", "two")
    assert sent == [True, False, False]  # refused once, then remembered
    assert first.usage is None  # the server was not asked for it


# -- context-length errors ------------------------------------------------------------------


@pytest.mark.parametrize("stream", [True, False])
@pytest.mark.parametrize(
    ("style", "window"),
    [
        ("openai", 5),
        ("llama-cpp-python", 5),
        ("llama-cpp-python-raw", 5),
        ("llama-server", 5),
        ("ollama", None),
        ("vllm", 5),
    ],
)
def test_context_length_errors_are_recognised(stream: bool, style: str, window: int | None) -> None:
    with FakeOpenAIServer(context_window=5, context_style=style) as server:
        error = _ask(server, "never sent", stream=stream, text="a long question " * 10)
    assert isinstance(error, ContextWindowExceeded), error
    assert error.window == window
    text = str(error)
    assert "context window" in text and "--new or %agent reset" in text and "\n" not in text
    assert "sk-test" not in text


def test_llama_cpp_python_s_empty_stream_is_asked_again_to_learn_why() -> None:
    """Its server ends a failed stream with nothing in it; today's user saw "the stream
    ended before any reply arrived". Asked again without streaming, it says why."""
    with FakeOpenAIServer(context_window=5, context_style="llama-cpp-python-stream") as server:
        error = _ask(server, text="a long question " * 10)
        asked = [r.stream for r in server.requests]
    assert isinstance(error, ContextWindowExceeded) and error.window == 5
    assert asked == [True, False]


def test_an_empty_stream_from_a_healthy_server_still_gets_the_reply() -> None:
    with FakeOpenAIServer() as server:
        reply = _ask(server, Failure(500, "boom", in_stream="empty"), "the answer")
    assert isinstance(reply, ChatReply) and reply.content == "the answer"


def test_a_stream_that_is_a_bare_done_is_asked_again_and_gets_the_reply() -> None:
    """llama-cpp-python ends a stream with a bare [DONE] when another request queues
    behind it (as one did right after an interrupted cell, in a fresh-clone CI run: the
    next cell failed with "the stream ended before any reply arrived"). Asked again
    without streaming, the request waits its turn and gets the reply."""
    with FakeOpenAIServer() as server:
        reply = _ask(server, Reply("unseen", no_choices=True), "the answer")
        asked = [r.stream for r in server.requests]
    assert isinstance(reply, ChatReply) and reply.content == "the answer"
    assert asked == [True, False]


def test_a_context_length_error_does_not_fall_through_to_the_next_entry() -> None:
    with FakeOpenAIServer(context_window=5) as first, FakeOpenAIServer() as second:
        second.enqueue("would be wrong")
        chat = OpenAIChat(
            [
                Endpoint("m", "sk-test-first-000", first.base_url),
                Endpoint("m", "sk-test-second-00", second.base_url),
            ],
            max_retries=0,
        )
        with pytest.raises(ContextWindowExceeded):
            list(chat.stream([{"role": "user", "content": "a long question " * 10}]))
        assert second.requests == []


def test_the_window_a_context_error_names_is_remembered_for_the_endpoint() -> None:
    with FakeOpenAIServer(context_window=5, context_style="llama-server") as server:
        endpoint = Endpoint("some-local-model", "sk-test-learn-00", server.base_url)
        chat = OpenAIChat([endpoint], max_retries=0)
        with pytest.raises(ContextWindowExceeded):
            list(chat.stream([{"role": "user", "content": "a long question " * 10}]))
        assert llm.context_window_for(endpoint, chat, ask_server=False) == 5
        assert chat.context_window() == 5


# -- the context window the server reports ---------------------------------------------------


def _probe(server: FakeOpenAIServer, model: str) -> tuple[int | None, list[str]]:
    window = llm.context_window_for(Endpoint(model, "sk-test-probe-000", server.base_url))
    return window, [r.path for r in server.requests]


def test_vllm_reports_max_model_len_in_its_model_list() -> None:
    fields = {"Qwen/Qwen2.5-7B": {"max_model_len": 4096, "root": "Qwen/Qwen2.5-7B"}}
    with FakeOpenAIServer(model_fields=fields, models=list(fields)) as server:
        assert _probe(server, "Qwen/Qwen2.5-7B") == (4096, ["/v1/models"])
        again = llm.context_window_for(Endpoint("Qwen/Qwen2.5-7B", "sk-x", server.base_url))
        assert again == 4096 and len(server.requests) == 1  # cached per endpoint


def test_llama_cpp_server_reports_n_ctx_in_props() -> None:
    props = {"default_generation_settings": {"n_ctx": 2048}, "total_slots": 1}
    # /v1/models's meta.n_ctx_train is the model's maximum, not the running window.
    fields = {"fake-model": {"meta": {"n_ctx_train": 131072, "n_vocab": 49152}}}
    with FakeOpenAIServer(routes={("GET", "/props"): props}, model_fields=fields) as server:
        assert _probe(server, "smollm2") == (2048, ["/v1/models", "/props"])


def test_ollama_reports_the_loaded_window_in_api_ps() -> None:
    ps = {
        "models": [{"name": "llama3.1:latest", "model": "llama3.1:latest", "context_length": 8192}]
    }
    with FakeOpenAIServer(routes={("GET", "/api/ps"): ps}) as server:
        window, paths = _probe(server, "llama3.1")
    assert window == 8192 and paths[-1] == "/api/ps"


def test_ollama_not_loaded_gives_its_maximum_capped_at_the_default_num_ctx() -> None:
    routes = {
        ("GET", "/api/ps"): {"models": []},
        ("POST", "/api/show"): {"model_info": {"llama.context_length": 131072}},
    }
    with FakeOpenAIServer(routes=routes) as server:
        window, paths = _probe(server, "llama3.2:3b")
        assert server.requests[-1].json == {"model": "llama3.2:3b"}
    assert window == llm.OLLAMA_DEFAULT_NUM_CTX and paths[-1] == "/api/show"


def test_llama_cpp_python_says_nothing_so_the_table_answers() -> None:
    # Its /v1/models entries are {"id", "object", "owned_by", "permissions"} only.
    with FakeOpenAIServer(model_fields={"fake-model": {"permissions": []}}) as server:
        assert _probe(server, "qwen2.5-coder-0.5b")[0] == 32_768
        assert _probe(server, "my-alias")[0] is None


def test_an_unreachable_server_is_asked_once_and_not_held_against_it() -> None:
    endpoint = Endpoint("my-alias", "sk-test-gone-0000", "http://127.0.0.1:9/v1")
    start = time.monotonic()
    assert llm.context_window_for(endpoint) is None
    assert time.monotonic() - start < 5
    assert llm.windows._window_key(endpoint) not in llm.windows._WINDOWS  # asked again next time


# -- the model list -----------------------------------------------------------------------


def test_list_models_returns_the_ids() -> None:
    with FakeOpenAIServer(models=["b-model", "a-model"]) as server:
        ids = llm.list_models(Endpoint("a-model", "sk-test-list-0000", server.base_url))
    assert ids == ["a-model", "b-model"]


def test_list_models_without_a_list_says_so_in_one_line() -> None:
    no_list = {("GET", "/v1/models"): Failure(404, "Not Found")}
    words = r"has no model list \(GET /models answered 404\)"
    with FakeOpenAIServer(routes=no_list) as server, pytest.raises(ChatError, match=words) as info:
        llm.list_models([Endpoint("m", "sk-test-list-0000", server.base_url)])
    assert "\n" not in str(info.value)


def test_list_models_unreachable_and_refused_key() -> None:
    with pytest.raises(ChatError, match="cannot reach http://127.0.0.1:9/v1"):
        llm.list_models(Endpoint("m", "sk-test-list-0000", "http://127.0.0.1:9/v1"))
    refused = pytest.raises(ChatError, match="authentication failed")
    with FakeOpenAIServer(api_key="sk-test-right-key-000") as server, refused as info:
        llm.list_models(Endpoint("m", "sk-test-wrong-key-111", server.base_url))
    assert "wrong-key" not in str(info.value)


def test_list_models_takes_the_first_endpoint_that_answers() -> None:
    with FakeOpenAIServer(models=["second-model"]) as server:
        ids = llm.list_models(
            [
                Endpoint("m", "sk-test-list-0000", "http://127.0.0.1:9/v1"),
                Endpoint("second-model", "sk-test-list-0000", server.base_url),
            ]
        )
    assert ids == ["second-model"]


# -- text that cannot be encoded, huge lines ---------------------------------------------------


@pytest.mark.parametrize("stream", [True, False])
def test_a_lone_surrogate_is_sent_escaped(stream: bool) -> None:
    with FakeOpenAIServer() as server:
        reply = _ask(server, "fine", stream=stream, text="name: caf\udcff.txt")
        sent = server.requests[-1].messages[-1]["content"]
    assert reply.content == "fine"
    assert sent == "name: caf\\udcff.txt"


@pytest.mark.parametrize("stream", [True, False])
def test_a_one_megabyte_reply_line_is_read_in_linear_time(stream: bool) -> None:
    line = "QUJD" * 250_000  # 1 MB of base64, no spaces, no newline
    with FakeOpenAIServer() as server:
        _ask(server, "warm up", stream=stream)
        start = time.monotonic()
        reply = _ask(server, Reply(line, pieces=[line]), stream=stream)
        took = time.monotonic() - start
    assert reply.content == line
    assert took < 3  # about 20 ms here; a quadratic scan would take minutes


def test_sse_events_over_a_one_megabyte_line() -> None:
    payload = json.dumps({"choices": [{"delta": {"content": "x" * 1_000_000}}]})
    start = time.monotonic()
    events = list(llm.wire.sse_events(iter([f"data: {payload}", "", "data: [DONE]", ""])))
    assert time.monotonic() - start < 2
    assert len(events[0]["choices"][0]["delta"]["content"]) == 1_000_000


# -- properties: whatever a server sends, a reply or one line --------------------------------

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)
_chunk = st.fixed_dictionaries(
    {},
    optional={
        "model": _json,
        "usage": _json,
        "choices": st.lists(
            st.fixed_dictionaries(
                {},
                optional={
                    "finish_reason": _json,
                    "delta": st.fixed_dictionaries(
                        {},
                        optional={
                            "content": _json,
                            "tool_calls": st.lists(
                                st.fixed_dictionaries(
                                    {}, optional={"index": _json, "id": _json, "function": _json}
                                )
                            )
                            | _json,
                        },
                    )
                    | _json,
                },
            )
            | _json,
            max_size=3,
        )
        | _json,
    },
)


@pytest.mark.slow  # fuzz: hundreds of generated inputs, 5-20 s
@settings(max_examples=100, deadline=None)
@given(st.lists(_chunk, max_size=6))
def test_any_chunks_fold_into_a_reply_without_raising(chunks) -> None:
    state = wire.StreamState()
    for chunk in chunks:
        state.take(chunk)
        state.usage = wire.completion_usage(chunk.get("usage")) or state.usage
    reply = state.reply("m", "label")
    assert isinstance(reply.content, str)
    assert reply.cut_off in ("incomplete stream", "length", "content_filter")


@pytest.mark.slow  # fuzz: hundreds of generated inputs, 5-20 s
@settings(max_examples=150, deadline=None)
@given(_json)
def test_any_json_answer_is_a_reply_or_one_line(completion) -> None:
    try:
        reply = wire.reply_from_completion(completion, Endpoint("m", None, "http://h/v1"))
    except ChatError as error:
        assert "\n" not in str(error)
    else:
        assert isinstance(reply.content, str)


def test_a_window_the_server_enforced_beats_a_larger_configured_one() -> None:
    with FakeOpenAIServer(context_window=5, context_style="vllm") as server:
        endpoint = Endpoint("big-claims", "sk-test-claim-000", server.base_url, context_window=8192)
        assert llm.context_window_for(endpoint) == 8192  # the config's word, until...
        with pytest.raises(ContextWindowExceeded):
            list(
                OpenAIChat([endpoint], max_retries=0).stream(
                    [{"role": "user", "content": "x " * 40}]
                )
            )
        assert llm.context_window_for(endpoint) == 5
        smaller = Endpoint("big-claims", "sk-test-claim-000", server.base_url, context_window=3)
        assert llm.context_window_for(smaller) == 3  # a smaller configured window stays


def test_deltas_that_come_together_are_handed_on_joined_and_the_reply_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A settle far longer than the test may take: only the reply's wake-up ends it.
    monkeypatch.setattr(llm.sdk, "SETTLE", 60.0)
    reply = ChatReply("hello world")
    both_queued = threading.Event()

    def produce() -> Iterator[Any]:
        yield "hello"
        yield " world"
        both_queued.wait(10)
        yield reply

    start = time.monotonic()
    items = []
    for item in llm.sdk.in_thread(produce, 0.05):
        items.append(item)
        both_queued.set()  # the main thread has shown the first delta and settles
    assert time.monotonic() - start < 30
    assert "".join(i for i in items if isinstance(i, str)) == "hello world"
    assert items[-1] is reply
