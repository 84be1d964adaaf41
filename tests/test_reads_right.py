"""A session reads right: interrupts and ends said in words, on lines of their own; step
numbers that agree between the cells, ``%agent cells``, the inserted cell and the record;
an export that opens clean. Scripted conversations through a real InteractiveShell
against the local server.
"""

from __future__ import annotations

import io
import sys

import pytest
from conftest import code

from agent_magic.testing import Reply
from agent_magic.transcript import Record


class InterruptOn(io.StringIO):
    """stdout that raises KeyboardInterrupt (as the interrupt button would) the moment
    ``word`` is written: mid-stream, with no timing involved."""

    def __init__(self, word: str) -> None:
        super().__init__()
        self.word = word

    def write(self, text: str) -> int:
        written = super().write(text)
        if self.word and self.word in text:
            self.word = ""
            raise KeyboardInterrupt
        return written


def test_an_interrupt_mid_stream_is_one_plain_line_of_its_own(
    shell, openai_env, monkeypatch
) -> None:
    openai_env.enqueue(Reply("Let me look halfway and then write the code", stall_after=3))
    out = InterruptOn("halfway")
    monkeypatch.setattr(sys, "stdout", out)
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    result = shell.run_cell("%%agent --mode never\nlook")
    shown = out.getvalue() + err.getvalue()
    assert "UsageError" not in shown and "Traceback" not in shown
    assert "\nagent: Interrupted; the conversation so far is kept.\n" in shown
    assert shown.count("Interrupted") == 1
    assert "halfway" in shown.split("\nagent: Interrupted")[0]  # after the half-streamed text
    assert result.error_in_exec is not None  # still an error: Run All stops here


@pytest.mark.parametrize(
    "replies, flags, said",
    [
        (["I would rather not.", "Still no."], "--mode never", "replied without code"),
        ([code("a = 1"), code("b = 2")], "--mode never --max-turns 2", "turn limit"),
        (["Done. TERMINATE"], "--mode never", "The assistant finished."),
    ],
)
def test_the_terminal_says_how_a_conversation_ended_in_words(
    shell, openai_env, capsys, replies, flags, said
) -> None:
    openai_env.enqueue(*replies)
    shell.run_cell_magic("agent", flags, "task")
    out = capsys.readouterr().out
    assert said in out
    for label in ("[no_code]", "[max_turns]", "[terminated]", "no_code", "max_turns"):
        assert label not in out
    log = shell.run_line_magic("agent", "log")
    shown = str(getattr(log, "data", log))
    assert "no_code" not in shown and "max_turns" not in shown


# --- step numbers agree -------------------------------------------------------------------


def records(shell, event: str) -> list[Record]:
    magics = shell.magics_manager.registry["AgentMagics"]
    return [r for r in magics.recorder.transcript() if r.event == event]


@pytest.mark.parametrize("failure", ["no key", "server down"])
def test_a_cell_that_fails_before_its_first_reply_takes_no_step(
    shell, openai_env, monkeypatch, failure
) -> None:
    from IPython.core.error import UsageError

    from agent_magic.testing import Failure

    if failure == "no key":
        monkeypatch.delenv("OPENAI_API_KEY")
    else:
        openai_env.enqueue(Failure(500, "down"))
    with pytest.raises(UsageError):
        shell.run_cell_magic("agent", "--mode never", "set a")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    openai_env.enqueue(code("a = 1"), "a is 1. TERMINATE")
    shell.run_cell_magic("agent", "--mode never", "set a")
    assert [r.step for r in records(shell, "code")] == [1]
    assert [r.step for r in records(shell, "reply")] == [1, 2]


def test_agent_cells_numbers_steps_as_the_record_does(shell, openai_env, capsys) -> None:
    openai_env.enqueue(
        code("a = 2"),
        code("raise ValueError('no')"),
        "a is 2. TERMINATE",
        code("b = a + 3"),
        "b is 5. TERMINATE",
    )
    shell.run_cell_magic("agent", "--mode never", "set a")
    shell.run_cell_magic("agent", "--mode never", "set b")
    assert [(r.step, r.ok) for r in records(shell, "code")] == [
        (1, True),
        (2, False),
        (4, True),
    ]
    shell.rl_next_input = None
    capsys.readouterr()
    shell.run_line_magic("agent", "cells")
    assert "the code of 2 steps" in capsys.readouterr().out
    assert shell.rl_next_input == "# step 1\na = 2\n\n# step 4\nb = a + 3"


# --- the export opens clean ---------------------------------------------------------------


def export(shell, tmp_path) -> tuple[str, dict]:
    import json

    path = tmp_path / "exported.ipynb"
    shell.run_line_magic("agent", f"export {path}")
    text = path.read_text(encoding="utf-8")
    return text, json.loads(text)


@pytest.mark.parametrize("server_usage", [True, False])
def test_the_export_round_trips_and_says_no_sign_off(
    shell, openai_env, tmp_path, server_usage
) -> None:
    nbformat = pytest.importorskip("nbformat")
    openai_env.enqueue(
        Reply(code("x = 6 * 7\nprint(x)"), usage=(120, 12), send_usage=server_usage),
        Reply("x is **42**.\n\nTERMINATE", usage=(160, 6), send_usage=server_usage),
    )
    shell.run_cell_magic("agent", "--mode never", "compute x")
    text, nb = export(shell, tmp_path)
    # As Jupyter writes it: nbformat's layout and a trailing newline; read and written
    # again, not one byte changes (so Lab does not mark it modified on open).
    assert nbformat.writes(nbformat.reads(text, 4)) + "\n" == text
    again = tmp_path / "again.ipynb"
    nbformat.write(nbformat.read(tmp_path / "exported.ipynb", 4), again)
    assert again.read_text(encoding="utf-8") == text
    assert all(cell.get("id") for cell in nb["cells"]) and nb["nbformat_minor"] >= 5
    assert nb["metadata"]["language_info"]["file_extension"] == ".py"  # as the kernel says
    assert "ipykernel" in nb["metadata"]["kernelspec"]["display_name"]
    last = "".join(nb["cells"][-1]["source"])
    assert last.endswith("x is **42**.") and "TERMINATE" not in text.split('"source"')[-1]
    assert not any("TERMINATE" in "".join(c["source"]) for c in nb["cells"])
    usage = nb["metadata"]["agent_magic"]["usage"]
    if server_usage:  # the servers' own numbers, not marked
        assert usage == {"prompt_tokens": 280, "completion_tokens": 18}
    else:  # an estimate, marked as one: never 0/0
        assert usage["estimated"] is True and usage["estimated_replies"] == 2
        assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0
        cell_usage = nb["cells"][-1]["metadata"]["agent_magic"]["usage"]
        assert cell_usage["estimated"] is True and cell_usage["prompt_tokens"] > 0


def test_at_the_seam_a_failed_first_request_gives_its_step_back() -> None:
    from agent_magic.conversation import ChatError, Conversation, drive
    from agent_magic.testing import ScriptedChat

    class Nothing:
        def run(self, block, *, step=None):
            raise AssertionError("nothing should run")

    chat = ScriptedChat(ChatError("no key configured"), "Hello. TERMINATE")
    conversation = Conversation(chat, Nothing(), mode="never")
    assert drive(conversation.run("hi"), lambda event: None).reason == "error"
    assert conversation.steps_taken == 0
    assert [m["role"] for m in conversation.messages] == ["system"]  # no half turn
    assert drive(conversation.run("hi"), lambda event: None).reason == "terminated"
    assert conversation.steps_taken == 1
