"""A session reads right: interrupts and ends said in words, on lines of their own; step
numbers that agree between the cells, ``%agent cells``, the inserted cell and the record;
an export that opens clean. Scripted conversations through a real InteractiveShell
against the local server.
"""

from __future__ import annotations

import io
import sys

import pytest

from agent_magic.testing import Reply


def code(src: str) -> str:
    return f"Next step:\n```python\n{src}\n```"


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
