"""What the model is told about the session, end to end through %%agent."""

from __future__ import annotations

import base64
import io
import json
from functools import partial

import numpy as np
import pandas as pd
import pytest
from conftest import answers, code
from IPython.core.error import UsageError

from agent_magic.testing import Failure, Reply, ToolCall

code = partial(code, words="")


def first_user_message(server) -> str:
    return next(m["content"] for m in server.requests[0].messages if m["role"] == "user")


def test_namespace_summary_is_sent_with_the_task(shell, openai_env) -> None:
    def area(width: float, height: float = 1.0) -> float:
        """Area of a rectangle."""
        return width * height

    shell.user_ns.update(
        sales=pd.DataFrame({"month": ["2024-01", "2024-02"], "revenue": [10.5, 12.0]}),
        grid=np.zeros((3, 4), dtype="float32"),
        area=area,
        settings={"retries": 3, "verbose": True},
        openai_api_key="sk-test-SENTINEL-context",
        _private=1,
    )
    openai_env.enqueue("ok TERMINATE")
    shell.run_cell_magic("agent", "--mode never", "plot revenue")
    sent = first_user_message(openai_env)
    assert "sales" in sent and "revenue" in sent and "(2, 2)" in sent and "float64" in sent
    assert "grid" in sent and "(3, 4)" in sent and "float32" in sent
    assert "area(width: float, height: float = 1.0)" in sent
    assert "settings" in sent and "retries" in sent
    assert "openai_api_key" in sent and "SENTINEL" not in sent
    assert "_private" not in sent


def test_no_context_flag(shell, openai_env) -> None:
    shell.user_ns["visible_thing"] = 123
    openai_env.enqueue("ok TERMINATE")
    shell.run_cell_magic("agent", "--mode never --no-context", "task")
    assert "visible_thing" not in first_user_message(openai_env)


def test_step_changes_are_reported(shell, openai_env) -> None:
    shell.user_ns.update(old_value=1, doomed=2)
    openai_env.enqueue(code("created = [1, 2]\nold_value = 'rebound'\ndel doomed"), "TERMINATE")
    shell.run_cell_magic("agent", "--mode never", "change things")
    report = openai_env.requests[1].messages[-1]["content"]
    assert "new created" in report
    assert "rebound old_value" in report
    assert "deleted: doomed" in report


def test_fix_starts_from_the_last_error(shell, openai_env) -> None:
    shell.run_cell("ratio = 1\nratio / 0\n", store_history=True)
    openai_env.enqueue("Divide by a non-zero value. TERMINATE")
    shell.run_line_magic("agent", "fix --mode never")
    sent = first_user_message(openai_env)
    assert "ZeroDivisionError" in sent
    assert "ratio / 0" in sent
    assert "\x1b[" not in sent


def test_fix_keeps_the_other_flags_and_words(shell, openai_env) -> None:
    shell.run_cell("ratio = 1\nratio / 0\n", store_history=True)
    openai_env.enqueue("Use a guard. TERMINATE")
    shell.run_line_magic("agent", "--model fixer-7b fix keep it short --mode never")
    request = openai_env.requests[0]
    assert request.json["model"] == "fixer-7b"
    assert first_user_message(openai_env).startswith("keep it short")


def test_max_turns_below_one_is_refused(shell, openai_env) -> None:
    with pytest.raises(UsageError, match="--max-turns must be at least 1"):
        shell.run_cell_magic("agent", "--max-turns 0 --mode never", "t")
    assert not openai_env.requests


def test_variable_interpolation(shell, openai_env) -> None:
    shell.user_ns["df"] = pd.DataFrame({"price": [1.0, 2.0]})
    openai_env.enqueue("ok TERMINATE")
    shell.run_cell_magic("agent", "--mode never --no-context", "Describe {df}; keep {{literal}}")
    sent = first_user_message(openai_env)
    assert "price" in sent and "{literal}" in sent and "{df}" not in sent


def test_a_cell_and_its_result_in_the_task(shell, openai_env) -> None:
    shell.run_cell("%time total = 40 + 2", store_history=True)
    shell.run_cell("total", store_history=True)
    number = shell.execution_count - 1
    openai_env.enqueue("It adds two numbers. TERMINATE")
    task = f"Explain {{In[{number - 1}]}} and its result {{Out[{number}]}}"
    shell.run_cell_magic("agent", "--mode never --no-context", task)
    sent = openai_env.requests[0].messages[-1]["content"]
    assert "```python\n%time total = 40 + 2\n```" in sent  # as typed, not transformed
    assert f"`Out[{number}]` (42)" in sent


def _png(size: int) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (size, size // 2), "red").save(buffer, format="PNG")
    return buffer.getvalue()


def test_images_are_forwarded_downscaled(shell, openai_env) -> None:
    shell.user_ns["PNG_BYTES"] = _png(2000)
    openai_env.enqueue(
        code("from IPython.display import Image, display\ndisplay(Image(data=PNG_BYTES))"),
        "TERMINATE",
    )
    shell.run_cell_magic("agent", "--mode never --images --no-context", "show a picture")
    content = openai_env.requests[1].messages[-1]["content"]
    assert isinstance(content, list)
    image = next(part for part in content if part["type"] == "image_url")
    url = image["image_url"]["url"]
    assert url.startswith("data:image/png;base64,")
    from PIL import Image as PILImage

    with PILImage.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))) as shown:
        assert max(shown.size) <= 768


def test_images_are_not_sent_by_default(shell, openai_env) -> None:
    shell.user_ns["PNG_BYTES"] = _png(100)
    openai_env.enqueue(
        code("from IPython.display import Image, display\ndisplay(Image(data=PNG_BYTES))"),
        "TERMINATE",
    )
    shell.run_cell_magic("agent", "--mode never --no-context", "show a picture")
    content = openai_env.requests[1].messages[-1]["content"]
    assert isinstance(content, str) and "[image/png image]" in content


@pytest.mark.parametrize("stream", [True, False])
def test_native_tool_calls(shell, openai_env, stream) -> None:
    openai_env.enqueue(
        Reply(content="", tool_calls=[ToolCall("run_python", {"code": "tooled = 6 * 7"})]),
        Reply(content="", tool_calls=[ToolCall("run_shell", {"command": "echo via-shell"})]),
        "tooled is 42. TERMINATE",
    )
    flags = "--mode never --tools --no-context" + ("" if stream else " --no-stream")
    shell.run_cell_magic("agent", flags, "use tools")
    assert shell.user_ns["tooled"] == 42
    first = openai_env.requests[0].json
    assert {t["function"]["name"] for t in first["tools"]} == {"run_python", "run_shell"}
    assert bool(first.get("stream")) is stream
    second = openai_env.requests[1].messages
    assistant, tool = second[-2], second[-1]
    call_id = assistant["tool_calls"][0]["id"]
    assert tool == {"role": "tool", "tool_call_id": call_id, "content": tool["content"]}
    assert "It ran successfully" in tool["content"]
    assert "via-shell" in openai_env.requests[2].messages[-1]["content"]
    json.dumps(second)  # the history stays plain JSON


def test_an_endpoint_without_tool_calling_falls_back_to_fenced_blocks(shell, openai_env) -> None:
    openai_env.enqueue(
        Failure(400, message="registry.ollama.ai/library/gemma does not support tools"),
        code("fenced = 'ran'"),
        "Done. TERMINATE",
    )
    shell.run_cell_magic("agent", "--mode never --tools --no-context", "no tools here")
    assert shell.user_ns["fenced"] == "ran"
    first, retried, third = (r.json for r in openai_env.requests)
    assert "tools" in first and "tools" not in retried and "tools" not in third


def test_tool_call_in_always_mode_skip_answers_the_call(shell, openai_env, monkeypatch) -> None:
    answers(monkeypatch, "skip", "")
    openai_env.enqueue(
        Reply(content="", tool_calls=[ToolCall("run_python", {"code": "never_made = 1"})]),
        "fine, stopping. TERMINATE",
    )
    shell.run_cell_magic("agent", "--mode always --tools --no-context", "t")
    assert "never_made" not in shell.user_ns
    last = openai_env.requests[1].messages[-1]
    assert last["role"] == "tool" and "skipped" in last["content"]
