"""Faults in what the model sends, through a real InteractiveShell against the local
server: tool-call arguments that are not JSON, a stream that stalls before the reply is
complete, a body that is not JSON at all (a proxy's login page), a reply of megabytes.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import answers
from IPython.core.error import UsageError

from agent_magic.testing import Failure, FakeOpenAIServer, Reply, ToolCall


def magics(shell):
    return shell.magics_manager.registry["AgentMagics"]


def tool_messages(server: FakeOpenAIServer, request: int) -> list[str]:
    return [m["content"] for m in server.requests[request].messages if m["role"] == "tool"]


@pytest.mark.parametrize(
    "arguments, why",
    [
        ("{'code': 'ran = True'}", "not valid JSON (Expecting property name"),  # a dict literal
        ('{"code": "ran = Tr', "not valid JSON (Unterminated string"),  # cut mid-JSON
        ('["ran = True"]', 'not a JSON object with a non-empty "code" string'),
    ],
)
@pytest.mark.parametrize("mode", ["never", "always"])
def test_tool_arguments_that_are_not_json_never_run(
    shell, openai_env: FakeOpenAIServer, capsys, monkeypatch, arguments: str, why: str, mode: str
) -> None:
    openai_env.enqueue(
        Reply(tool_calls=[ToolCall("run_python", arguments, id="c1")]),
        Reply(tool_calls=[ToolCall("run_python", {"code": "fixed = 1"}, id="c2")]),
        "Done. TERMINATE",
    )
    # Mode always: only the call asked for again comes up for review (and is run), and
    # the final answer is accepted.
    prompts = answers(monkeypatch, "", "")
    shell.run_cell_magic("agent", f"--mode {mode} --tools --no-context", "Set a flag.")
    assert "ran" not in shell.user_ns  # the unreadable call never ran
    assert shell.user_ns["fixed"] == 1  # the call asked for again did
    assert len(prompts) == (2 if mode == "always" else 0)
    [told] = tool_messages(openai_env, 1)
    assert told.startswith("Not run: the arguments of your run_python call are " + why[:12])
    assert why in told and "\n" not in told and "successfully" not in told
    out = capsys.readouterr().out
    assert "[step 1 not run] the arguments of your run_python call" in out


@pytest.mark.parametrize(
    "content",
    ["Let me look at the data first, then I will write", "Step:\n```python\nran = True\n```\nand"],
)
def test_a_stream_that_stalls_before_the_reply_is_complete_is_said_cut_off(
    shell, openai_env: FakeOpenAIServer, capsys, content: str
) -> None:
    # Silent for longer than the timeout after a few words (before any code, or after
    # it): what arrived is a cut-off reply, never a finished answer nor a step to run.
    openai_env.enqueue(Reply(content, stall_after=3, stall=30), "Done. TERMINATE")
    magics(shell).timeout = 1.0
    shell.run_cell_magic("agent", "--mode never --no-context", "Look at the data.")
    assert "ran" not in shell.user_ns
    assert len(openai_env.requests) == 2  # the model was asked again
    told = openai_env.requests[1].messages[-1]["content"]
    assert told.startswith("Your last reply was cut off (the stream ended before the reply")
    out = capsys.readouterr().out
    assert "[step 1 not run] Your last reply was cut off" in out
    assert "replied without code; finished" not in out


LOGIN_PAGE = (
    "<!DOCTYPE html>\n<html><head><title>Sign in - Corporate Proxy</title></head>\n"
    "<body><form action='/login'><input name='user'></form></body></html>\n"
)


@pytest.mark.parametrize("stream", ["", "--no-stream"])
def test_a_proxys_html_login_page_is_one_line_naming_the_base_url(
    shell, openai_env: FakeOpenAIServer, stream: str
) -> None:
    page = Failure(200, body=LOGIN_PAGE, content_type="text/html; charset=utf-8")
    openai_env.enqueue(page, page)
    with pytest.raises(UsageError) as info:
        shell.run_cell_magic("agent", f"--mode never --no-context {stream}", "Hello.")
    message = str(info.value)
    assert "\n" not in message and "JSONDecodeError" not in message
    assert message.startswith(f"agent: gpt-4o-mini @ {openai_env.base_url}: the server answered")
    assert "a web page (HTML)" in message and "base URL" in message and "proxy" in message
    assert shell.run_cell("1 + 1").result == 2


def test_a_400_on_the_first_config_entry_falls_through_to_the_next(
    shell, openai_env: FakeOpenAIServer, tmp_path
) -> None:
    openai_env.enqueue(
        Failure(400, "Unsupported parameter: 'temperature' is not supported with this model.")
    )
    with FakeOpenAIServer() as second:
        second.enqueue("```python\nanswered_by = 'm2'\n```", "Done. TERMINATE")
        config = tmp_path / "OAI_CONFIG_LIST.json"
        entries = [
            {"model": "m1", "base_url": openai_env.base_url, "api_key": "sk-one"},
            {"model": "m2", "base_url": second.base_url, "api_key": "sk-two"},
        ]
        config.write_text(json.dumps(entries))
        shell.run_line_magic("config", f"AgentMagics.config_list = {str(config)!r}")
        shell.run_cell_magic("agent", "--mode never --no-context", "Who answers?")
        assert shell.user_ns["answered_by"] == "m2"
        assert [r.model for r in second.requests] == ["m2", "m2"]
    # A context-window 400 is not passed on: the next entry would get the same history.
    openai_env.enqueue(Failure.context_length("openai"), Failure.context_length("openai"))
    with pytest.raises(UsageError, match="context window"):
        shell.run_cell_magic("agent", "--mode never --no-context --new", "Again.")


@pytest.mark.parametrize("stream", ["", "--no-stream"])
def test_a_huge_reply_is_shown_within_the_display_bound_and_recorded_whole(
    shell, openai_env: FakeOpenAIServer, capsys, stream: str
) -> None:
    words = "".join(f"word{i} " for i in range(20_000))  # ~150,000 characters
    openai_env.enqueue(
        Reply(
            words + "TERMINATE",
            pieces=[words[i : i + 5000] for i in range(0, len(words), 5000)] + ["TERMINATE"],
        )
    )
    shell.run_line_magic("config", "AgentMagics.max_display_chars = 10000")
    shell.run_cell_magic("agent", f"--mode never --no-context {stream}", "Talk a lot.")
    out = capsys.readouterr().out
    assert words[:10_000] in out and words[10_000:10_100] not in out
    assert "the rest of this reply" in out and "the recording keeps it whole" in out
    assert len(out) < 12_000
    shell.run_line_magic("agent", "log")
    log = capsys.readouterr().out
    assert words[:10_000] in log and words[10_000:10_100] not in log
    assert "the rest of this reply (" in log and len(log) < 15_000
    recording = Path(magics(shell).recording).read_text(encoding="utf-8")
    assert words in recording  # the recording keeps it whole


def test_a_ten_megabyte_reply_is_shown_within_the_default_bound(
    shell, openai_env: FakeOpenAIServer, capsys
) -> None:
    piece = "x" * 1_000_000 + "\n"
    openai_env.enqueue(Reply(piece * 10, pieces=[piece] * 10))
    shell.run_cell_magic("agent", "--mode never --no-context --max-turns 1", "Say a lot.")
    out = capsys.readouterr().out
    assert 2_000_000 <= len(out) < 2_100_000  # the bound of a step's shown output
    assert "the rest of this reply is not shown" in out


def test_a_connection_reset_behind_an_empty_stream_is_asked_again(
    shell, openai_env: FakeOpenAIServer
) -> None:
    # llama-cpp-python over its window: a streamed request gets an empty stream, and the
    # server resets the connection behind it, which the question asked again without
    # streaming may go out on (seen in the real tier: "cannot reach" a running server).
    openai_env.enqueue(
        Failure.context_length("llama-cpp-python-stream"),  # streamed: 200, nothing in it
        Failure(0, hang_up=True),  # asked again whole, on the reset connection
        Failure.context_length("llama-cpp-python"),  # asked once more: the real error
        "It fits now. TERMINATE",  # trimmed and asked again
    )
    shell.run_cell_magic("agent", "--mode never --no-context", "Go on.")
    assert magics(shell).history.replies[-1].content == "It fits now. TERMINATE"
    assert [r.stream for r in openai_env.requests] == [True, False, False, True]
