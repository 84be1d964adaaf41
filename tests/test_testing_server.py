"""FakeOpenAIServer against the real openai SDK over real HTTP: what it sends must parse."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from agent_magic.pytest_plugin import TEST_API_KEY
from agent_magic.testing import (
    NO_REPLY_LEFT,
    Failure,
    FakeOpenAIServer,
    RecordedRequest,
    Reply,
    ToolCall,
)

pytest_plugins = ["pytester"]

HI = [{"role": "user", "content": "hi"}]
LONG = "The answer is 42, because six times seven is forty-two; see the cell below."


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as running:
        yield running


def client_for(server: FakeOpenAIServer, **options: object) -> openai.OpenAI:
    settings: dict = {"api_key": "sk-test", "max_retries": 0, **options}
    return openai.OpenAI(base_url=server.base_url, **settings)


def http_error(url: str, data: bytes | None = None) -> tuple[int, dict]:
    """Status and JSON body of an error answer, fetched without the SDK."""
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=5)
    with info.value as error:
        return error.code, json.load(error)


def ask(server: FakeOpenAIServer, **options: object) -> openai.types.chat.ChatCompletion:
    return client_for(server, **options).chat.completions.create(model="m", messages=HI)


# -- JSON answers ------------------------------------------------------------------------


def test_plain_reply_is_an_assistant_message(server: FakeOpenAIServer) -> None:
    server.enqueue("Hello there!")
    completion = ask(server)
    choice = completion.choices[0]
    assert (choice.message.role, choice.message.content) == ("assistant", "Hello there!")
    assert choice.finish_reason == "stop"
    assert choice.message.tool_calls is None
    assert completion.model == "m"
    assert completion.id.startswith("chatcmpl-")
    assert completion._request_id is not None and completion._request_id.startswith("req_")


def test_usage_scripted_or_counted_roughly(server: FakeOpenAIServer) -> None:
    server.enqueue(Reply(content="four", usage=(10, 5)), "x" * 40)
    scripted, counted = ask(server).usage, ask(server).usage
    assert (scripted.prompt_tokens, scripted.completion_tokens, scripted.total_tokens) == (
        10,
        5,
        15,
    )
    assert (counted.prompt_tokens, counted.completion_tokens, counted.total_tokens) == (1, 10, 11)


def test_model_and_finish_reason_can_be_scripted(server: FakeOpenAIServer) -> None:
    server.enqueue(Reply("cut off", model="gpt-4o-2024-08-06", finish_reason="length"))
    completion = ask(server)
    assert completion.model == "gpt-4o-2024-08-06"
    assert completion.choices[0].finish_reason == "length"


def test_tool_calls_in_a_json_answer(server: FakeOpenAIServer) -> None:
    server.enqueue(
        Reply(
            tool_calls=[
                ToolCall("run_code", {"code": "print(6 * 7)"}),
                ToolCall("lookup", '{"name": "df"}', id="call_mine"),
            ]
        )
    )
    choice = ask(server).choices[0]
    first, second = choice.message.tool_calls
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None  # as OpenAI sends it beside tool calls
    assert first.type == "function" and first.id.startswith("call_")
    assert first.function.name == "run_code"
    assert json.loads(first.function.arguments) == {"code": "print(6 * 7)"}
    assert (second.id, second.function.arguments) == ("call_mine", '{"name": "df"}')


# -- streaming -----------------------------------------------------------------------------


def test_streamed_text_reassembles_and_ends_with_usage(server: FakeOpenAIServer) -> None:
    server.enqueue(Reply(LONG, usage=(12, 34)))
    stream = client_for(server).chat.completions.create(
        model="m", messages=HI, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    pieces = [
        c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content
    ]
    assert "".join(pieces) == LONG
    assert len(pieces) >= 8  # small pieces, so consumers really see a stream
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == []
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (12, 34)
    assert all(c.usage is None for c in chunks[:-1])
    assert {c.object for c in chunks} == {"chat.completion.chunk"}


def test_stream_without_include_usage_has_no_usage_chunk(server: FakeOpenAIServer) -> None:
    server.enqueue("short")
    chunks = list(ask_stream(server))
    assert all(c.choices for c in chunks)
    assert all(c.usage is None for c in chunks)


def ask_stream(server: FakeOpenAIServer, **options: object) -> openai.Stream:
    return client_for(server, **options).chat.completions.create(
        model="m", messages=HI, stream=True
    )


def test_streamed_tool_calls_reassemble_in_the_sdk(server: FakeOpenAIServer) -> None:
    arguments = {"code": "import numpy as np\nprint(np.linalg.det([[1, 2], [3, 4]]))"}
    server.enqueue(
        Reply("Let me compute it.", tool_calls=[ToolCall("run_code", arguments), ToolCall("done")])
    )
    with client_for(server).chat.completions.stream(model="m", messages=HI) as stream:
        argument_deltas = [e for e in stream if e.type == "tool_calls.function.arguments.delta"]
        final = stream.get_final_completion()
    message = final.choices[0].message
    assert message.content == "Let me compute it."
    assert [c.function.name for c in message.tool_calls] == ["run_code", "done"]
    assert json.loads(message.tool_calls[0].function.arguments) == arguments
    assert message.tool_calls[1].function.arguments == "{}"
    assert final.choices[0].finish_reason == "tool_calls"
    assert len(argument_deltas) > 3  # the arguments really arrived in pieces


def test_chunk_delay_spreads_the_stream_out(server: FakeOpenAIServer) -> None:
    server.enqueue(Reply("one two three four", chunk_delay=0.05))
    arrivals = [time.monotonic() for _ in ask_stream(server)]
    assert arrivals[-1] - arrivals[0] >= 0.15


# -- failures --------------------------------------------------------------------------------


def test_429_raises_rate_limit_error_with_retry_after(server: FakeOpenAIServer) -> None:
    server.enqueue(Failure(429, "slow down", retry_after=1))
    with pytest.raises(openai.RateLimitError) as info:
        ask(server)
    error = info.value
    assert error.status_code == 429
    assert error.response.headers["retry-after"] == "1"
    assert error.body == {
        "message": "slow down",
        "type": "requests",
        "param": None,
        "code": "rate_limit_exceeded",
    }


def test_sdk_retries_a_429_after_retry_after(server: FakeOpenAIServer) -> None:
    server.enqueue(Failure(429, retry_after=0.5), "made it")
    start = time.monotonic()
    assert ask(server, max_retries=1).choices[0].message.content == "made it"
    assert time.monotonic() - start >= 0.5
    first, second = server.requests
    assert second.time - first.time >= 0.5
    assert second.headers["x-stainless-retry-count"] == "1"


def test_failure_on_a_stream_request_raises_before_streaming(server: FakeOpenAIServer) -> None:
    server.enqueue(Failure(503))
    with pytest.raises(openai.InternalServerError, match="overloaded"):
        ask_stream(server)


def test_wrong_or_missing_api_key_gets_401() -> None:
    with FakeOpenAIServer(api_key="sk-right-key-1234") as server:
        server.enqueue("welcome")
        with pytest.raises(openai.AuthenticationError) as info:
            ask(server, api_key="sk-wrong-key-9876")
        assert info.value.code == "invalid_api_key"
        assert "sk-****9876" in info.value.message and "wrong" not in info.value.message
        assert ask(server, api_key="sk-right-key-1234").choices[0].message.content == "welcome"
        assert server.pending == 0  # the refused request did not use up the reply
        status, body = http_error(server.base_url + "/models")
        assert status == 401 and "didn't provide an API key" in body["error"]["message"]


def test_unknown_model_gets_404_model_not_found() -> None:
    with FakeOpenAIServer(models=["gpt-4o-mini"]) as server:
        with pytest.raises(openai.NotFoundError) as info:
            ask(server)
        assert info.value.code == "model_not_found"
        assert "`m` does not exist" in info.value.message
        ids = [model.id for model in client_for(server).models.list()]
        assert ids == ["gpt-4o-mini"]


def test_malformed_json_body_escapes_as_a_json_decode_error(server: FakeOpenAIServer) -> None:
    # The SDK does not wrap it: code catching only openai.APIError will not see it.
    server.enqueue(Reply("broken", malformed=True))
    with pytest.raises(json.JSONDecodeError):
        ask(server)


def test_malformed_stream_line_raises_json_decode_error(server: FakeOpenAIServer) -> None:
    server.enqueue(Reply("broken stream", malformed=True))
    stream = ask_stream(server)
    with pytest.raises(json.JSONDecodeError):
        list(stream)


def test_cut_stream_raises_connection_error_after_the_first_pieces(
    server: FakeOpenAIServer,
) -> None:
    server.enqueue(Reply("alpha beta gamma delta epsilon", cut_after=2))
    seen: list[str] = []
    with pytest.raises(openai.APIConnectionError) as info:
        for chunk in ask_stream(server):
            seen.append(chunk.choices[0].delta.content or "")
    assert "".join(seen) == "alpha beta"
    assert "incomplete chunked read" in str(info.value.__cause__)


def test_cut_json_answer_raises_connection_error(server: FakeOpenAIServer) -> None:
    server.enqueue(Reply("never whole", cut_after=0))
    with pytest.raises(openai.APIConnectionError):
        ask(server)


def test_slow_reply_trips_the_client_timeout(server: FakeOpenAIServer) -> None:
    server.enqueue(Reply("too late", delay=2), "on time")
    start = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        ask(server, timeout=0.3)
    assert time.monotonic() - start < 1.5
    assert ask(server).choices[0].message.content == "on time"


def test_empty_script_is_a_clear_500_that_the_sdk_does_not_retry(
    server: FakeOpenAIServer,
) -> None:
    with pytest.raises(openai.InternalServerError, match=NO_REPLY_LEFT) as info:
        ask(server, max_retries=2)
    assert "request #1" in info.value.message
    assert info.value.response.headers["x-should-retry"] == "false"
    assert len(server.requests) == 1


def test_responder_answers_when_the_queue_is_empty(server: FakeOpenAIServer) -> None:
    def echo(request: RecordedRequest) -> str:
        if request.messages[-1]["content"] == "boom":
            raise ValueError("no booms")
        return "echo: " + request.messages[-1]["content"]

    server.enqueue("scripted first")
    server.responder = echo
    assert ask(server).choices[0].message.content == "scripted first"
    assert ask(server).choices[0].message.content == "echo: hi"
    with pytest.raises(openai.InternalServerError, match="responder raised ValueError: no booms"):
        client_for(server).chat.completions.create(
            model="m", messages=[{"role": "user", "content": "boom"}]
        )


def test_enqueue_rejects_what_it_cannot_send(server: FakeOpenAIServer) -> None:
    with pytest.raises(TypeError, match="str, Reply or Failure"):
        server.enqueue({"content": "a dict"})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="ToolCall"):
        Reply(tool_calls=[{"name": "f"}])  # type: ignore[list-item]


# -- the log, other paths, Azure -----------------------------------------------------------


def test_requests_are_recorded_in_order(server: FakeOpenAIServer) -> None:
    server.enqueue("one", "two")
    client = client_for(server)
    client.chat.completions.create(model="m", messages=HI)
    client.chat.completions.create(
        model="m", messages=[*HI, {"role": "assistant", "content": "one"}], temperature=0
    )
    first, second = server.requests
    assert (first.method, first.path, first.query) == ("POST", "/v1/chat/completions", {})
    assert first.headers["authorization"] == "Bearer sk-test"
    assert first.messages == HI
    assert json.loads(first.body) == first.json == {"model": "m", "messages": HI}
    assert second.json["temperature"] == 0
    assert [m["content"] for m in second.messages] == ["hi", "one"]
    assert first.time <= second.time
    assert not first.stream and first.model == "m"


def test_unknown_path_and_unparsable_body_get_openai_shaped_errors(
    server: FakeOpenAIServer,
) -> None:
    status, body = http_error(server.url + "/v1/embeddings")
    assert (status, body["error"]["message"]) == (404, "Invalid URL (GET /v1/embeddings)")
    status, body = http_error(server.base_url + "/chat/completions", data=b"{not json")
    assert status == 400 and "could not parse the JSON body" in body["error"]["message"]
    assert server.requests[-1].json is None and server.requests[-1].body == b"{not json"


def test_azure_client_uses_the_deployment_path() -> None:
    with FakeOpenAIServer(api_key="azure-key") as server:
        server.enqueue("from azure")
        client = openai.AzureOpenAI(
            azure_endpoint=server.url,
            api_version="2024-06-01",
            api_key="azure-key",
            max_retries=0,
        )
        completion = client.chat.completions.create(model="my-gpt4o", messages=HI)
        assert completion.choices[0].message.content == "from azure"
        assert completion.model == "my-gpt4o"
        (request,) = server.requests
        assert request.path == "/openai/deployments/my-gpt4o/chat/completions"
        assert request.query == {"api-version": "2024-06-01"}
        assert request.headers["api-key"] == "azure-key"
        assert request.deployment == request.model == "my-gpt4o"


def test_stop_ends_a_sleeping_answer_and_frees_the_port() -> None:
    server = FakeOpenAIServer().start()
    server.enqueue(Reply("never", delay=30))
    errors: list[Exception] = []

    def call() -> None:
        with client_for(server, timeout=10) as client:
            try:
                client.chat.completions.create(model="m", messages=HI)
            except openai.APIError as exc:
                errors.append(exc)

    caller = threading.Thread(target=call)
    caller.start()
    while not server.requests:
        time.sleep(0.01)
    start = time.monotonic()
    server.stop()
    caller.join(timeout=5)
    assert time.monotonic() - start < 2
    assert [type(e) for e in errors] == [openai.APIConnectionError]
    with pytest.raises(openai.APIConnectionError):
        ask(server)
    server.stop()  # twice is fine


# -- the pytest fixtures and the CLI ---------------------------------------------------------


@pytest.fixture
def developer_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "a-real-azure-key")
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", "https://example.openai.azure.com")
    monkeypatch.setenv("OAI_CONFIG_LIST", "/home/me/OAI_CONFIG_LIST")


def test_openai_env_points_the_sdk_at_the_server(
    developer_settings: None, openai_env: FakeOpenAIServer
) -> None:
    import os

    openai_env.enqueue("from the environment")
    completion = openai.OpenAI(max_retries=0).chat.completions.create(model="m", messages=HI)
    assert completion.choices[0].message.content == "from the environment"
    assert openai_env.requests[0].headers["authorization"] == f"Bearer {TEST_API_KEY}"
    leftovers = [n for n in os.environ if n.startswith("AZURE_OPENAI_") or n == "OAI_CONFIG_LIST"]
    assert leftovers == []


def test_fixtures_come_from_the_installed_entry_point(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        seen = []

        def test_uses_it(openai_server):
            assert openai_server.running
            seen.append(openai_server)

        def test_it_was_stopped():
            assert not seen[0].running
        """
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def start_cli(script: Path, *options: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "agent_magic.testing", "--script", str(script), *options]
        + ["--parent-pid", str(os.getpid())],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def stop(process: subprocess.Popen[str]) -> None:
    """SIGTERM the CLI by its pid; kill it if it does not go within 5 s."""
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def test_cli_serves_a_script_and_prints_its_base_url(tmp_path: Path) -> None:
    script = tmp_path / "replies.json"
    script.write_text(
        json.dumps(
            [
                "first",
                {"content": None, "tool_calls": [{"name": "f", "arguments": {"x": 1}}]},
                {"status": 429, "message": "scripted limit"},
            ]
        )
    )
    with start_cli(script, "--max-seconds", "30") as process:
        try:
            base_url = process.stdout.readline().strip()
            assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1")
            client = openai.OpenAI(base_url=base_url, api_key="sk-test", max_retries=0)
            create = client.chat.completions.create
            assert create(model="m", messages=HI).choices[0].message.content == "first"
            call = create(model="m", messages=HI).choices[0].message.tool_calls[0]
            assert (call.function.name, call.function.arguments) == ("f", '{"x": 1}')
            with pytest.raises(openai.RateLimitError, match="scripted limit"):
                create(model="m", messages=HI)
        finally:
            stop(process)
    assert process.returncode == 0  # SIGTERM is a clean stop


def test_cli_serves_a_responses_only_model(tmp_path: Path) -> None:
    script = tmp_path / "replies.json"
    script.write_text(json.dumps([{"content": "hi", "reasoning_summary": "say hi"}]))
    with start_cli(script, "--responses-only", "gpt-5-codex", "--max-seconds", "30") as process:
        try:
            base_url = process.stdout.readline().strip()
            client = openai.OpenAI(base_url=base_url, api_key="sk-test", max_retries=0)
            with pytest.raises(openai.NotFoundError, match="only supported in v1/responses"):
                client.chat.completions.create(model="gpt-5-codex", messages=HI)
            answer = client.responses.create(model="gpt-5-codex", input="hello")
            assert answer.output_text == "hi" and answer.output[0].type == "reasoning"
        finally:
            stop(process)


def test_cli_exits_by_itself_after_max_seconds(tmp_path: Path) -> None:
    script = tmp_path / "replies.json"
    script.write_text('["only"]')
    with start_cli(script, "--max-seconds", "0.2") as process:
        try:
            assert process.wait(timeout=10) == 0
            assert process.stdout.read().startswith("http://127.0.0.1:")
        finally:
            stop(process)


# -- how streams end, and what real servers add ---------------------------------------------


def raw_stream(server: FakeOpenAIServer, **body: object) -> list[str]:
    """The data lines of a streamed answer, read without the SDK."""
    payload = json.dumps({"model": "m", "messages": HI, "stream": True, **body}).encode()
    request = urllib.request.Request(
        server.base_url + "/chat/completions",
        data=payload,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5) as answer:
        assert answer.status == 200
        text = answer.read().decode()
    return [line[6:] for line in text.splitlines() if line.startswith("data: ")]


def finishes(lines: list[str]) -> list[str | None]:
    events = [json.loads(line) for line in lines if line != "[DONE]"]
    return [c["finish_reason"] for e in events for c in e["choices"] if c["finish_reason"]]


def test_a_stream_can_end_without_done_or_without_a_finish_reason(server) -> None:
    server.enqueue(Reply("a b", done=False), Reply("a b", send_finish=False), "a b")
    no_done, no_finish, whole = raw_stream(server), raw_stream(server), raw_stream(server)
    assert no_done[-1] != "[DONE]" and finishes(no_done) == ["stop"]
    assert no_finish[-1] == "[DONE]" and finishes(no_finish) == []
    assert whole[-1] == "[DONE]" and finishes(whole) == ["stop"]


def test_send_usage_false_sends_none_even_when_asked(server) -> None:
    server.enqueue(Reply("a b", send_usage=False), Reply("a b", send_usage=False))
    lines = raw_stream(server, stream_options={"include_usage": True})
    assert all("usage" not in json.loads(line) for line in lines if line != "[DONE]")
    assert ask(server).usage is None


def test_no_choices_and_explicit_pieces(server) -> None:
    server.enqueue(Reply("x", no_choices=True), Reply("ignored", pieces=["one ", "big piece"]))
    assert ask(server).choices == []
    events = [json.loads(line) for line in raw_stream(server) if line != "[DONE]"]
    deltas = [c["delta"].get("content") for e in events for c in e["choices"]]
    assert [d for d in deltas if d] == ["one ", "big piece"]


def test_failures_inside_a_stream(server) -> None:
    server.enqueue(Failure(500, "slot gone", in_stream="event"), Failure(500, in_stream="empty"))
    [event] = raw_stream(server)
    assert json.loads(event)["error"]["message"] == "slot gone"
    assert raw_stream(server) == []
    server.enqueue(Failure(503, "plain", in_stream="event"))
    with pytest.raises(openai.InternalServerError):
        ask(server)  # not streamed: the status as usual


def test_context_window_refuses_long_requests_in_each_style() -> None:
    with FakeOpenAIServer(context_window=10, context_style="llama-server") as server:
        server.enqueue("short answer")
        assert ask(server).choices[0].message.content == "short answer"
        long = [{"role": "user", "content": "word " * 100}]
        with pytest.raises(openai.BadRequestError) as info:
            client_for(server).chat.completions.create(model="m", messages=long)
        assert info.value.body["n_ctx"] == 10 and "exceeds the available context" in str(info.value)
    for style in ("openai", "llama-cpp-python", "llama-cpp-python-raw", "ollama", "vllm"):
        assert Failure.context_length(style).status in (400, 500)
    with pytest.raises(ValueError, match="context_length style"):
        Failure.context_length("nope")


def test_reject_stream_options() -> None:
    with FakeOpenAIServer(reject_stream_options=True) as server:
        server.enqueue("fine")
        with pytest.raises(openai.BadRequestError, match="stream_options"):
            client_for(server).chat.completions.create(
                model="m", messages=HI, stream=True, stream_options={"include_usage": True}
            )
        assert [
            chunk
            for chunk in client_for(server).chat.completions.create(
                model="m", messages=HI, stream=True
            )
        ]


def test_model_fields_and_routes() -> None:
    fields = {"m": {"max_model_len": 4096}}
    routes = {("GET", "/props"): {"n_ctx": 2048}, ("GET", "/gone"): Failure(404, "no")}
    with FakeOpenAIServer(models=["m"], model_fields=fields, routes=routes) as server:
        [entry] = client_for(server).models.list().data
        assert entry.id == "m" and entry.model_extra["max_model_len"] == 4096
        with urllib.request.urlopen(server.url + "/props", timeout=5) as answer:
            assert json.load(answer) == {"n_ctx": 2048}
        assert http_error(server.url + "/gone")[0] == 404


def test_chat_requests_leave_out_the_other_routes(server) -> None:
    server.enqueue("one")
    client = client_for(server)
    client.models.list()
    client.chat.completions.create(model="m", messages=HI)
    assert [r.path for r in server.requests] == ["/v1/models", "/v1/chat/completions"]
    assert [r.path for r in server.chat_requests] == ["/v1/chat/completions"]
