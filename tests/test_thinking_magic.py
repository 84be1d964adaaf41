"""Thinking models over the wire: a real InteractiveShell running ``%%agent`` against the
scripted server, which sends the thinking as each server family does (inline ``<think>``
with and without its opening tag, ``reasoning_content``, ``reasoning``).

A destructive draft in the thinking (deleting a folder, setting a sentinel) never runs,
in any mode; the thinking is never sent back; it is recorded, shown by ``%agent log``,
reproduced by ``--replay``; a model still thinking outlasts the request timeout."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import answers

from agent_magic.testing import Reply

ANSWER = "Counting them.\n```python\nrows = 3\n```"
FIELDS = ["think", "think-unopened", "reasoning_content", "reasoning"]


def draft(folder: Path) -> str:
    """The thinking: a destructive step the model itself rejects."""
    return (
        "Maybe start clean:\n```python\nimport shutil\n"
        f"shutil.rmtree({str(folder)!r})\nsentinel = 'the thinking ran'\n```\n"
        "No, don't delete anything. Just count."
    )


def magics_of(shell):
    return shell.magics_manager.registry["AgentMagics"]


def records(shell, event: str) -> list[dict]:
    path = Path(magics_of(shell).recording)
    kept = [json.loads(line) for line in path.read_text().splitlines()]
    return [r for r in kept if r["event"] == event]


def say_yes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    return answers(monkeypatch, rest="")  # Enter to every question


@pytest.fixture
def data(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "keep.csv").write_text("a,b\n1,2\n")
    return folder


@pytest.mark.parametrize("field", FIELDS)
@pytest.mark.parametrize("mode", ["always", "terminate", "never"])
def test_a_destructive_draft_in_the_thinking_never_runs(
    shell, openai_env, monkeypatch, data, mode, field
) -> None:
    thinking = draft(data)
    openai_env.enqueue(Reply(ANSWER, thinking=thinking, thinking_field=field), "Done. TERMINATE")
    say_yes(monkeypatch)
    shell.run_cell_magic("agent", f"--mode {mode}", "count the rows")
    assert (data / "keep.csv").exists()
    assert "sentinel" not in shell.user_ns
    assert shell.user_ns["rows"] == 3  # the answer's step ran
    (proposed, *_) = records(shell, "decision")
    assert [b["code"] for b in proposed["proposed"]] == ["rows = 3"]
    # Never sent back: the next request holds the answer only.
    sent = json.dumps(openai_env.chat_requests[1].messages)
    assert "rmtree" not in sent and "think>" not in sent and "Counting them." in sent
    # Kept in the recording, marked as thinking.
    (reply, *_) = records(shell, "reply")
    assert "rmtree" in reply["thinking"] and "rmtree" not in reply["content"]


def test_the_terminal_shows_the_answer_and_one_line_of_thinking(
    shell, openai_env, capsys, data
) -> None:
    openai_env.enqueue(Reply(ANSWER, thinking=draft(data)), "Done. TERMINATE")
    shell.run_cell_magic("agent", "--mode never", "count the rows")
    shown = capsys.readouterr().out
    assert "Counting them." in shown and "rows = 3" in shown
    assert "rmtree" not in shown and "\r" not in shown  # captured output: no animation
    assert "[step 1: thought for " in shown and "the thinking is in %agent log]" in shown


def test_thinking_without_its_opening_tag_is_said_to_be_thinking_once_it_ends(
    shell, openai_env, capsys, data
) -> None:
    """Until </think> arrives nothing tells the thinking from an answer, so it streams as
    text; once the reply is complete the terminal says so and shows the answer alone."""
    openai_env.enqueue(
        Reply(ANSWER, thinking=draft(data), thinking_field="think-unopened"), "Done. TERMINATE"
    )
    shell.run_cell_magic("agent", "--mode never", "count the rows")
    shown = capsys.readouterr().out
    said = shown.split("[that began with the model's thinking, never run; its answer:]\n")[1]
    assert said.startswith("Counting them.") and "rmtree" not in said
    assert "sentinel" not in shell.user_ns and (data / "keep.csv").exists()


def test_a_json_reply_splits_the_same(shell, openai_env, data) -> None:
    for field in ("think-unopened", "reasoning"):
        openai_env.enqueue(Reply(ANSWER, thinking=draft(data), thinking_field=field), "TERMINATE")
        shell.run_cell_magic("agent", "--mode never --no-stream --new", "count the rows")
        assert (data / "keep.csv").exists() and "sentinel" not in shell.user_ns
        assert shell.user_ns.pop("rows") == 3


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
def test_a_model_still_thinking_outlasts_the_request_timeout(shell, openai_env, field) -> None:
    """Thinking flows for ~3 s against a 1 s timeout (and retry budget): the timeout
    bounds silence, so the reply completes and its step runs."""
    magics = magics_of(shell)
    magics.timeout = magics.retry_budget = 1.0
    thinking = " ".join(f"thought{n}" for n in range(30))
    openai_env.enqueue(
        Reply(ANSWER, thinking=thinking, thinking_field=field, chunk_delay=0.1), "TERMINATE"
    )
    shell.run_cell_magic("agent", "--mode never", "count the rows")
    assert shell.user_ns["rows"] == 3
    (reply, *_) = records(shell, "reply")
    assert reply["cut_off"] is None and reply["thinking"] == thinking
    assert reply["thinking_seconds"] >= 1.0


def test_a_model_silent_while_thinking_is_cut_off(shell, openai_env) -> None:
    magics_of(shell).timeout = 1.0
    openai_env.enqueue(
        Reply(ANSWER, thinking="first then", stall_after=2, stall=5), "Done. TERMINATE"
    )
    shell.run_cell_magic("agent", "--mode never", "count the rows")
    assert "rows" not in shell.user_ns
    (reply, *_) = records(shell, "reply")
    assert reply["cut_off"] == "incomplete stream" and reply["thinking"] == "first then"


def test_thinking_is_logged_replayed_and_summed_up(shell, openai_env, capsys, data) -> None:
    openai_env.enqueue(
        Reply(ANSWER, thinking=draft(data), reasoning_tokens=41, usage=(100, 60)),
        "Done. TERMINATE",
    )
    shell.run_cell_magic("agent", "--mode never", "count the rows")
    (reply, *_) = records(shell, "reply")
    assert reply["usage"] == {"prompt_tokens": 100, "completion_tokens": 60, "reasoning_tokens": 41}
    capsys.readouterr()
    shell.run_line_magic("agent", "log")
    log = capsys.readouterr().out
    assert "assistant's thinking (thought for" in log and "rmtree" in log

    # Replayed offline: the same thinking, still never run.
    shell.user_ns.pop("rows")
    openai_env.stop()
    shell.run_cell_magic("agent", "--mode never --new --replay", "count the rows")
    assert shell.user_ns["rows"] == 3 and (data / "keep.csv").exists()
    replayed = magics_of(shell).session.history.replies[0]
    assert replayed.thinking == reply["thinking"] and replayed.source == "replay"
    assert replayed.usage is not None and replayed.usage.reasoning_tokens == 41


def test_the_export_keeps_one_line_of_thinking(shell, openai_env, tmp_path, data) -> None:
    openai_env.enqueue(Reply(ANSWER, thinking=draft(data)), "Done. TERMINATE")
    shell.run_cell_magic("agent", "--mode never", "count the rows")
    target = tmp_path / "out.ipynb"
    shell.run_line_magic("agent", f"export {target}")
    text = target.read_text()
    assert "(thought" in text and "rmtree" not in text


def test_the_fake_server_sends_each_field(openai_env) -> None:
    """The scripted wire itself, as users' own tests see it."""
    import urllib.request

    def ask(reply: Reply, stream: bool) -> bytes:
        openai_env.enqueue(reply)
        body = json.dumps({"model": "m", "messages": [], "stream": stream}).encode()
        request = urllib.request.Request(
            openai_env.base_url + "/chat/completions",
            body,
            {"Content-Type": "application/json", "Authorization": "Bearer x"},
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.read()

    whole = json.loads(ask(Reply("hi", thinking="hmm", thinking_field="reasoning"), False))
    message = whole["choices"][0]["message"]
    assert message["reasoning"] == "hmm" and message["content"] == "hi"
    assert whole["usage"]["completion_tokens_details"] == {"reasoning_tokens": 1}
    streamed = ask(Reply("hi", thinking="hmm", thinking_field="reasoning_content"), True)
    assert b'"reasoning_content":"hmm"' in streamed
    inline = json.loads(ask(Reply("hi", thinking="hmm", thinking_field="think-unopened"), False))
    assert inline["choices"][0]["message"]["content"] == "hmm\n</think>\n\nhi"
    with pytest.raises(ValueError):
        Reply("hi", thinking="hmm", thinking_field="thoughts")
