"""The llm side as a user meets it in %%agent: a real shell, the local server over HTTP.

What the magic does with a cut-off reply or a window is not tested here (the
conversation's and the magic's tests); here: what reaches the user from llm's errors.
"""

from __future__ import annotations

import json

import pytest
from IPython.core.error import UsageError

from agent_magic.testing import Failure, FakeOpenAIServer, Reply

SECRET = "sk-proj-topsecret-0123456789abcdef"


def test_a_config_list_object_is_refused_without_its_key(shell) -> None:
    entry = json.dumps({"model": "gpt-4o", "api_key": SECRET})
    shell.run_line_magic("config", f"AgentMagics.config_list = {entry!r}")
    with pytest.raises(UsageError, match=r"one JSON object, not a list: wrap it in \[ \]") as info:
        shell.run_cell_magic("agent", "--mode never", "hi")
    assert SECRET not in str(info.value) and "topsecret" not in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "style", ["llama-cpp-python-stream", "llama-server", "openai", "ollama", "vllm"]
)
def test_a_conversation_over_the_window_says_so_and_names_the_way_on(shell, style) -> None:
    """Today's user of llama-cpp-python saw "the stream ended before any reply arrived"."""
    with FakeOpenAIServer(context_window=40, context_style=style) as server:
        with pytest.raises(UsageError) as info:
            shell.run_cell_magic("agent", f"--mode never --base-url {server.base_url}", "hi " * 100)
        text = str(info.value)
    assert "no longer fits the model's context window" in text
    assert "--new or %agent reset" in text and "stream ended" not in text


def test_no_usage_in_streams_is_unknown_in_the_reply_never_zero(shell, openai_env) -> None:
    openai_env.enqueue(Reply("no code here. TERMINATE", send_usage=False))
    shell.run_cell_magic("agent", "--mode never", "hi")
    reply = shell.magics_manager.registry["AgentMagics"].history.replies[-1]
    assert reply.usage is None
    assert openai_env.chat_requests[-1].include_usage  # it was asked for


def test_every_endpoint_failing_is_one_line_naming_each(shell, openai_env, tmp_path) -> None:
    openai_env.enqueue(Failure(503, "overloaded"))
    config = tmp_path / "OAI_CONFIG_LIST.json"
    entries = [
        {"model": "m1", "base_url": openai_env.base_url, "api_key": SECRET},
        {"model": "m2", "base_url": "http://127.0.0.1:9/v1", "api_key": SECRET},
    ]
    config.write_text(json.dumps(entries))
    shell.run_line_magic("config", f"AgentMagics.config_list = {str(config)!r}")
    words = r"all 2 endpoints failed: \[1\] m1 @ .*\[2\] cannot reach"
    with pytest.raises(UsageError, match=words) as info:
        shell.run_cell_magic("agent", "--mode never", "hello")
    assert "topsecret" not in str(info.value) and "\n" not in str(info.value)
