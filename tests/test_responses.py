"""The Responses API, reasoning effort, reasoning tokens and prices, as a user meets them:
a real shell running ``%%agent`` against the local server over HTTP (``/v1/responses``
in JSON and SSE, and OpenAI's 404 for a Responses-only model on chat completions)."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from pathlib import Path

import openai
import pytest
from conftest import code
from IPython.core.error import UsageError

from agent_magic.llm import Endpoint, OpenAIChat, cost
from agent_magic.testing import FakeOpenAIServer, Reply, ToolCall
from agent_magic.testing.responses_wire import RESPONSES_ONLY

CODEX = "gpt-5-codex"
NOTICE = f"agent: {CODEX} is served by the Responses API only"


def magics_of(shell):
    return shell.magics_manager.registry["AgentMagics"]


def stopped(shell, line: str, task: str) -> str:
    """The cell's one-line stop, with nobody to ask (a spent budget is asked about in an
    attended cell: see tests/test_run_all.py)."""
    session = magics_of(shell).session
    session.frontend, before = (lambda: "headless"), session.frontend
    try:
        with pytest.raises(UsageError) as info:
            shell.run_cell_magic("agent", line, task)
    finally:
        session.frontend = before
    return str(info.value)


def go_offline(server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Stop the model and leave no key: any live call would fail loudly."""
    server.stop()
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")


def input_items(request) -> list[dict]:
    return request.json["input"]


# --- a Responses-only model -----------------------------------------------------------


def test_a_responses_only_model_works_with_no_configuration_and_replays_offline(
    shell, openai_env, monkeypatch, capsys
) -> None:
    openai_env.responses_only = frozenset({CODEX})
    openai_env.enqueue(
        Reply(code("x = 41"), reasoning_summary="Set x first.", reasoning_tokens=12),
        "x is set. TERMINATE",
        Reply(code("y = x + 1"), reasoning_summary="Then add one."),
        "y is 42. TERMINATE",
    )
    before = set(shell.user_ns)
    shell.run_cell_magic("agent", f"--mode never --model {CODEX}", "set x to 41")
    shell.run_cell_magic("agent", f"--mode never --model {CODEX}", "add one into y")
    out = capsys.readouterr().out
    assert shell.user_ns["x"] == 41 and shell.user_ns["y"] == 42

    # The 404 was paid once in this kernel, and said once, in one line.
    assert len(openai_env.chat_requests) == 1
    assert len(openai_env.responses_requests) == 4
    assert out.count(NOTICE) == 1
    # Stateless: the whole conversation each time, nothing kept on the server.
    first, second = openai_env.responses_requests[:2]
    for request in openai_env.responses_requests:
        assert request.json["store"] is False and "previous_response_id" not in request.json
        assert request.json["include"] == ["reasoning.encrypted_content"]
        assert request.model == CODEX and request.stream
    assert "instructions" in first.json and input_items(first)[-1]["role"] == "user"
    assert len(input_items(second)) > len(input_items(first))
    # The encrypted reasoning went back untouched, before the reply it led to.
    reasoning = [i for i in input_items(second) if i.get("type") == "reasoning"]
    assert len(reasoning) == 1 and reasoning[0]["encrypted_content"].startswith("gAAAA-fake")
    assert reasoning[0]["summary"] == [{"type": "summary_text", "text": "Set x first."}]
    after = input_items(second)[input_items(second).index(reasoning[0]) + 1]
    assert after["role"] == "assistant" and "x = 41" in after["content"]
    # ...and never to chat completions, which does not know it.
    usage = magics_of(shell)._usage()[0]
    assert "reasoning" in usage.splitlines()[0]

    # The recording replays offline, with no key and no server.
    for name in set(shell.user_ns) - before:
        shell.user_ns.pop(name, None)
    asked = len(openai_env.requests)
    go_offline(openai_env, monkeypatch)
    shell.run_cell_magic("agent", f"--mode never --new --replay --model {CODEX}", "set x to 41")
    shell.run_cell_magic("agent", f"--mode never --replay --model {CODEX}", "add one into y")
    assert shell.user_ns["x"] == 41 and shell.user_ns["y"] == 42
    assert len(openai_env.requests) == asked
    usage = magics_of(shell)._usage()[0]
    assert "replay" in usage and "live" not in usage


def test_the_responses_api_without_streaming(shell, openai_env) -> None:
    magics_of(shell).api = "responses"
    openai_env.enqueue(Reply(code("w = 7"), reasoning_summary="Easy."), "Done. TERMINATE")
    shell.run_cell_magic("agent", "--mode never --no-stream --model gpt-5", "set w")
    assert shell.user_ns["w"] == 7
    assert openai_env.chat_requests == []
    assert [r.stream for r in openai_env.responses_requests] == [False, False]
    reply = magics_of(shell).history.replies[0]
    assert reply.thinking == "Easy." and "```python" not in reply.thinking
    assert reply.reasoning_items[0]["encrypted_content"].startswith("gAAAA-fake")


@pytest.mark.parametrize("stream", [True, False])
def test_tools_round_trip_over_responses(shell, openai_env, stream) -> None:
    magics_of(shell).api = "responses"
    openai_env.enqueue(
        Reply(tool_calls=[ToolCall("run_python", {"code": "z = 5\nprint('z is', z)"})]),
        "z is 5. TERMINATE",
    )
    line = "--mode never --tools --model gpt-4.1" + ("" if stream else " --no-stream")
    shell.run_cell_magic("agent", line, "set z")
    assert shell.user_ns["z"] == 5
    first, second = openai_env.responses_requests
    names = [t["name"] for t in first.json["tools"]]
    assert names == ["run_python", "run_shell"]
    assert all(t["type"] == "function" and "parameters" in t for t in first.json["tools"])
    assert "reasoning" not in first.json  # not a reasoning model, no effort asked
    call = next(i for i in input_items(second) if i.get("type") == "function_call")
    output = next(i for i in input_items(second) if i.get("type") == "function_call_output")
    assert call["name"] == "run_python" and json.loads(call["arguments"])["code"].startswith("z")
    assert output["call_id"] == call["call_id"] and "z is 5" in output["output"]
    assert "id" not in call  # no server-side item ids with store=false


@pytest.mark.parametrize("stream", [True, False])
def test_a_cut_off_reply_over_responses_never_runs_unasked(
    shell, openai_env, stream, capsys
) -> None:
    magics_of(shell).api = "responses"
    openai_env.enqueue(
        Reply(code("import os\nhalf = 1  # and then it got cut"), finish_reason="length")
    )
    line = "--mode never --model gpt-5-mini" + ("" if stream else " --no-stream")
    with contextlib.suppress(UsageError):  # the cell may end with the cut-off's line
        shell.run_cell_magic("agent", line, "do a long thing")
    assert "half" not in shell.user_ns
    reply = magics_of(shell).history.replies[0]
    assert reply.cut_off == "length" and reply.finish_reason == "length"
    assert "token limit" in capsys.readouterr().out


def test_api_chat_forces_chat_and_names_the_cause(shell, openai_env) -> None:
    openai_env.responses_only = frozenset({"o3-pro"})
    magics_of(shell).api = "chat"
    message = stopped(shell, "--mode never --model o3-pro", "hi")
    assert message == (
        f"agent: o3-pro @ {openai_env.base_url}: model 'o3-pro' is served by the Responses "
        "API only, not chat completions (404); set %config AgentMagics.api = 'responses' "
        "(or 'auto', which switches by itself)"
    )
    assert "not found" not in message
    assert openai_env.responses_requests == [] and len(openai_env.chat_requests) == 1


def test_a_server_without_the_responses_api_says_so(shell, openai_env) -> None:
    openai_env.routes[("POST", "/v1/responses")] = lambda r: _no_such_path(r)
    magics_of(shell).api = "responses"
    message = stopped(shell, "--mode never --model llama3.1", "hi")
    assert "this server has no Responses API (404 on /responses)" in message
    assert "AgentMagics.api = 'chat'" in message and "\n" not in message


def _no_such_path(request):
    from agent_magic.testing import Failure

    return Failure(404, f"Invalid URL (POST {request.path})")


def test_a_config_list_entry_chooses_its_api_and_effort(shell, openai_env, tmp_path) -> None:
    entries = [
        {
            "model": "gpt-5",
            "base_url": openai_env.base_url,
            "api_key": "sk-test",
            "api": "responses",
            "reasoning_effort": "minimal",
        }
    ]
    config = tmp_path / "OAI_CONFIG_LIST.json"
    config.write_text(json.dumps(entries))
    magics_of(shell).config_list = str(config)
    openai_env.enqueue("Nothing to do. TERMINATE")
    shell.run_cell_magic("agent", "--mode never", "hi")
    magics_of(shell).reasoning_effort = "high"  # the entry's own is more specific
    openai_env.enqueue("Nothing to do. TERMINATE", "Nothing to do. TERMINATE")
    shell.run_cell_magic("agent", "--mode never", "hi")
    shell.run_cell_magic("agent", "--mode never --reasoning-effort low", "hi")  # the line wins
    efforts = [r.json["reasoning"]["effort"] for r in openai_env.responses_requests]
    assert efforts == ["minimal", "minimal", "low"]
    assert openai_env.responses_requests[0].json["reasoning"]["summary"] == "auto"
    entries[0]["api"] = "sideways"
    config.write_text(json.dumps(entries))
    message = stopped(shell, "--mode never", "hi")
    assert "config list entry 1: api must be one of auto, chat, responses" in message


# --- reasoning effort -----------------------------------------------------------------


def test_reasoning_effort_goes_in_each_api_and_is_absent_when_unset(shell, openai_env) -> None:
    openai_env.enqueue(*["Nothing to run. TERMINATE"] * 4)
    shell.run_cell_magic("agent", "--mode never --model gpt-5-mini", "plain")
    shell.run_cell_magic("agent", "--mode never --reasoning-effort low --model gpt-5-mini", "x")
    magics_of(shell).api = "responses"
    shell.run_cell_magic("agent", "--mode never --model gpt-5-mini", "plain")
    magics_of(shell).reasoning_effort = "high"
    shell.run_cell_magic("agent", "--mode never --model gpt-5-mini", "hard")
    plain, low = openai_env.chat_requests
    assert "reasoning_effort" not in plain.json and "reasoning" not in plain.json
    assert low.json["reasoning_effort"] == "low"
    unset, high = openai_env.responses_requests
    assert unset.json["reasoning"] == {"summary": "auto"}  # no effort: the server's own
    assert high.json["reasoning"] == {"effort": "high", "summary": "auto"}
    assert "reasoning_effort" not in high.json


def test_reasoning_effort_none_switches_thinking_off(shell, openai_env) -> None:
    """Ollama's OpenAI-compatible endpoint takes reasoning_effort "none" to stop thinking."""
    openai_env.enqueue("Nothing to run. TERMINATE")
    shell.run_cell_magic("agent", "--mode never --reasoning-effort none --model qwen3", "hi")
    assert openai_env.chat_requests[0].json["reasoning_effort"] == "none"
    with pytest.raises(UsageError, match="argument --reasoning-effort: invalid choice"):
        shell.run_cell_magic("agent", "--reasoning-effort max", "hi")


# --- usage and money --------------------------------------------------------------------


@pytest.mark.parametrize("api", ["chat", "responses"])
def test_reasoning_tokens_show_in_usage_and_count_in_a_budget(shell, openai_env, api) -> None:
    magics_of(shell).api = api
    openai_env.enqueue(
        Reply(code("r = 1"), usage=(1000, 3000), reasoning_tokens=2500, model="gpt-5-mini")
    )
    message = stopped(shell, "--mode never --model gpt-5-mini --max-tokens 3500", "think")
    assert message == (
        "agent: the cell's token budget (--max-tokens 3500) is spent: 4,000 tokens so far; "
        "raise it or continue in a new cell"
    )
    assert shell.user_ns["r"] == 1 and len(openai_env.requests) == 1
    plain, markdown = magics_of(shell)._usage()
    head, first, total = plain.splitlines()[:3]
    assert head.split() == [
        "call", "model", "endpoint", "prompt", "completion", "reasoning", "total", "cost",
        "source",
    ]  # fmt: skip
    assert first.split()[-6:-2] == ["1000", "3000", "2500", "4000"]
    spent = cost("gpt-5-mini", magics_of(shell).history.replies[0].usage)
    assert spent == pytest.approx(1000 * 0.25e-6 + 3000 * 2e-6)
    assert f"${spent:.5f}" in first
    assert "gpt-5-mini 0.25 / 2 (genai-prices)" in plain
    assert "gpt-4o" not in plain and "o4-mini" not in plain  # only the prices that apply


def test_a_max_cost_stop_with_gpt_5(shell, openai_env) -> None:
    magics_of(shell).api = "responses"
    openai_env.enqueue(Reply(code("g = 5"), usage=(200_000, 20_000), reasoning_tokens=15_000))
    message = stopped(shell, "--mode never --model gpt-5 --max-cost 0.25", "go")
    spent = 200_000 * 1.25e-6 + 20_000 * 10e-6
    assert message == (
        f"agent: the cell's cost budget (--max-cost 0.25) is spent: ${spent:.4f} so far; "
        "raise it or continue in a new cell"
    )
    assert shell.user_ns["g"] == 5 and len(openai_env.responses_requests) == 1


def test_the_gpt_5_and_4_1_families_are_priced() -> None:
    from agent_magic.llm import price_of

    for model in ("gpt-5", "gpt-5-mini", "gpt-5-nano", "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano"):
        price = price_of(model)
        assert price is not None and price.input > 0 and price.output > price.input
    assert price_of("gpt-5-mini-2025-08-07") == price_of("gpt-5-mini")
    assert price_of("llama3.1") is None


def test_agentmagics_prices_add_and_override(shell, openai_env) -> None:
    magics = magics_of(shell)
    magics.prices = {"my-local-llama": {"input": 1, "output": 2}, "gpt-5-mini": [10, 20]}
    openai_env.enqueue(
        Reply("Nothing. TERMINATE", usage=(1_000_000, 0)),
        Reply("Nothing. TERMINATE", usage=(0, 1_000_000)),
    )
    shell.run_cell_magic("agent", "--mode never --model my-local-llama --max-cost 5", "a")
    shell.run_cell_magic("agent", "--mode never --model gpt-5-mini", "b")
    plain = magics._usage()[0]
    assert "$1.00000" in plain and "$20.00000" in plain
    assert "my-local-llama 1 / 2 (AgentMagics.prices)" in plain
    magics.prices = {"bad": {"input": "cheap"}}
    message = stopped(shell, "--mode never", "c")
    assert message.startswith("agent: AgentMagics.prices['bad'] must be US$ per million")


def test_load_ext_does_not_import_genai_prices(tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "ip = InteractiveShell.instance()\n"
        "ip.run_line_magic('load_ext', 'agent_magic')\n"
        "import agent_magic, agent_magic.llm\n"
        "print('genai_prices' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={**_env(), "PYTHONPATH": str(Path(__file__).parents[1])},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "False"


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "AZURE_"))}


# --- the server speaks the Responses API as the openai SDK reads it ----------------------


def test_the_fake_server_speaks_responses_to_the_openai_sdk() -> None:
    with FakeOpenAIServer(responses_only={CODEX}) as server:
        server.enqueue(
            Reply("Hello there", reasoning_summary="Greet.", reasoning_tokens=3),
            Reply(tool_calls=[ToolCall("run_shell", {"command": "ls"})]),
            Reply("Hel", finish_reason="length"),
        )
        client = openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0)
        with pytest.raises(openai.NotFoundError, match="only supported in v1/responses"):
            client.chat.completions.create(model=CODEX, messages=[{"role": "user", "content": "x"}])
        events = list(
            client.responses.create(
                model=CODEX, input="hi", stream=True, include=["reasoning.encrypted_content"]
            )
        )
        kinds = [e.type for e in events]
        assert kinds[:2] == ["response.created", "response.in_progress"]
        assert "response.reasoning_summary_text.delta" in kinds
        assert kinds[-1] == "response.completed"
        done = events[-1].response
        assert done.output_text == "Hello there"
        assert done.usage.output_tokens_details.reasoning_tokens == 3
        assert done.output[0].type == "reasoning" and done.output[0].encrypted_content
        called = client.responses.create(model=CODEX, input="list files")
        assert called.output[0].type == "function_call" and called.output[0].name == "run_shell"
        cut = client.responses.create(model=CODEX, input="long")
        assert cut.status == "incomplete" and cut.incomplete_details.reason == "max_output_tokens"
    assert RESPONSES_ONLY.startswith("This model is only supported in v1/responses")


def test_the_chat_client_asks_once_then_remembers(monkeypatch) -> None:
    said: list[str] = []
    with FakeOpenAIServer(responses_only={CODEX}) as server:
        server.enqueue("one", "two")
        endpoint = Endpoint(CODEX, "sk-test", server.base_url)
        for _ in range(2):  # two clients, as two cells build: the kernel remembers
            chat = OpenAIChat([endpoint], max_retries=0, notice=said.append)
            assert [i for i in chat.stream([{"role": "user", "content": "x"}])][-1].content
        assert len(server.chat_requests) == 1 and len(server.responses_requests) == 2
    assert len(said) == 1


def test_azure_openai_responses_endpoint(shell, openai_env, tmp_path, monkeypatch) -> None:
    """A Responses-only deployment on Azure OpenAI: asked at /openai/responses, with an
    api-version that has the Responses API unless the entry gives its own."""
    monkeypatch.delenv("OPENAI_API_VERSION", raising=False)
    openai_env.responses_only = frozenset({"codex-deploy"})
    entry = {"model": "codex-deploy", "api_type": "azure", "base_url": openai_env.url}
    config = tmp_path / "OAI_CONFIG_LIST.json"
    config.write_text(json.dumps([{**entry, "api_key": "azure-test-key"}]))
    magics_of(shell).config_list = str(config)
    openai_env.enqueue(Reply(code("a = 3")), "a is 3. TERMINATE")
    shell.run_cell_magic("agent", "--mode never", "set a")
    assert shell.user_ns["a"] == 3
    [chat] = openai_env.chat_requests
    assert chat.deployment == "codex-deploy"
    first, _ = openai_env.responses_requests
    assert first.path == "/openai/responses" and first.model == "codex-deploy"
    assert first.query["api-version"] == "2025-04-01-preview"
    assert first.headers["api-key"] == "azure-test-key"


def test_an_unverified_organisation_is_asked_again_without_a_summary(shell, openai_env) -> None:
    """OpenAI gives reasoning summaries (and streams some models) only to verified
    organisations; a 400 saying so is asked again without, once per kernel."""
    from agent_magic.testing import Failure

    magics_of(shell).api = "responses"
    openai_env.enqueue(
        Failure(
            400,
            "Your organization must be verified to generate reasoning summaries.",
            param="reasoning.summary",
            code="unsupported_value",
        ),
        Failure(400, "Your organization must be verified to stream this model."),
        "Nothing to run. TERMINATE",
        "Still nothing. TERMINATE",
    )
    shell.run_cell_magic("agent", "--mode never --model o3-pro", "hi")
    shell.run_cell_magic("agent", "--mode never --model o3-pro", "again")
    asked = openai_env.responses_requests
    assert len(asked) == 4
    assert asked[0].json["reasoning"] == {"summary": "auto"} and asked[0].stream
    assert "reasoning" not in asked[1].json and asked[1].stream
    assert "reasoning" not in asked[2].json and not asked[2].stream
    assert "reasoning" not in asked[3].json and not asked[3].stream  # remembered
    assert asked[3].json["include"] == ["reasoning.encrypted_content"]


def test_an_error_inside_a_responses_stream_is_one_line(shell, openai_env) -> None:
    from agent_magic.testing import Failure

    magics_of(shell).api = "responses"
    openai_env.enqueue(Failure(500, "The model had an error while answering.", in_stream="event"))
    message = stopped(shell, "--mode never --model gpt-5", "hi")
    assert message == (
        f"agent: gpt-5 @ {openai_env.base_url}: the server sent an error: "
        "The model had an error while answering."
    )


def test_a_failed_or_unreadable_response_is_one_line() -> None:
    from agent_magic.conversation import ChatError
    from agent_magic.llm.responses_reply import ResponsesStream, reply_from_response

    endpoint = Endpoint("gpt-5", None, "http://127.0.0.1:9/v1")
    failed = {"status": "failed", "error": {"code": "server_error", "message": "It broke."}}
    with pytest.raises(ChatError, match=r"^gpt-5 @ .*: the model failed to answer: It broke\.$"):
        reply_from_response(failed, endpoint)
    with pytest.raises(ChatError, match="the model failed to answer: It broke"):
        ResponsesStream().take({"type": "response.failed", "response": failed}, endpoint)
    with pytest.raises(ChatError, match="could not be read"):
        reply_from_response(["not", "a", "response"], endpoint)


def test_chat_messages_become_responses_input_items() -> None:
    from agent_magic.llm.responses import chat_messages, responses_body

    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
    reasoning = {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "E"}
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "look"}, image]},
        {
            "role": "assistant",
            "content": "",
            "reasoning_items": [reasoning],
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "run_python", "arguments": "{}"},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "ok"},
        {"role": "system", "content": "(earlier turns, summarised)"},
    ]
    body = responses_body(messages, None, {"temperature": 0.2, "max_tokens": 50}, "gpt-4.1")
    assert body["instructions"] == "Be brief." and body["store"] is False
    assert body["input"] == [
        {
            "role": "user",
            "content": [
                {"type": "input_text", "text": "look"},
                {"type": "input_image", "image_url": "data:image/png;base64,AAAA"},
            ],
        },
        reasoning,
        {"type": "function_call", "call_id": "c1", "name": "run_python", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "ok"},
        {"role": "system", "content": "(earlier turns, summarised)"},
    ]
    assert body["temperature"] == 0.2 and body["max_output_tokens"] == 50
    assert "reasoning" not in body and "include" not in body
    # Chat completions never sees the reasoning items.
    assert "reasoning_items" not in chat_messages(messages)[2]
    assert chat_messages(messages)[2]["tool_calls"] == messages[2]["tool_calls"]


def test_seed_cache_and_reasoning_effort_key_over_responses(shell, openai_env) -> None:
    openai_env.responses_only = frozenset({CODEX})
    openai_env.enqueue("Forty-two. TERMINATE", "Harder. TERMINATE")
    line = f"--mode never --seed 42 --model {CODEX}"
    shell.run_cell_magic("agent", line, "the answer?")
    shell.run_cell_magic("agent", line + " --new", "the answer?")
    assert len(openai_env.responses_requests) == 1  # the same request and seed: a hit
    shell.run_cell_magic("agent", line + " --new --reasoning-effort high", "the answer?")
    assert len(openai_env.responses_requests) == 2  # another effort: another request
    sources = [r.source for r in magics_of(shell).history.replies]
    assert sources == ["live"]  # (--new: the last cell's conversation only)


def test_a_conversation_over_the_window_over_responses_says_so(shell, openai_env) -> None:
    magics_of(shell).api = "responses"
    openai_env.context_window = 40
    message = stopped(shell, "--mode never --model gpt-5", "hi " * 100)
    assert "no longer fits the model's context window" in message
    assert "--new or %agent reset" in message and "\n" not in message
