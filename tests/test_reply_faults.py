"""Faults in what the model sends, through a real InteractiveShell against the local
server: tool-call arguments that are not JSON, a stream that stalls before the reply is
complete, a body that is not JSON at all (a proxy's login page), a reply of megabytes.
"""

from __future__ import annotations

import builtins

import pytest

from agent_magic.testing import FakeOpenAIServer, Reply, ToolCall


def magics(shell):
    return shell.magics_manager.registry["AgentMagics"]


def tool_messages(server: FakeOpenAIServer, request: int) -> list[str]:
    return [m["content"] for m in server.requests[request].messages if m["role"] == "tool"]


def answers(monkeypatch: pytest.MonkeyPatch, *typed: str) -> list[str]:
    """``input()`` answers the terminal review with ``typed``; the prompts it was shown."""
    prompts: list[str] = []
    queue = list(typed)

    def fake_input(prompt: str = "") -> str:
        prompts.append(prompt)
        return queue.pop(0)

    monkeypatch.setattr(builtins, "input", fake_input)
    return prompts


@pytest.mark.parametrize(
    "arguments, why",
    [
        ("{'code': 'ran = True'}", "not valid JSON (Expecting property name"),  # a dict literal
        ('{"code": "ran = Tr', "not valid JSON (Unterminated string"),  # cut mid-JSON
        ('["ran = True"]', 'not a JSON object with a "code" string'),
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
