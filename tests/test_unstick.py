"""A refused repeat of failing code tells the model something it can act on."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent_magic.codeblocks import CodeBlock
from agent_magic.conversation import Conversation, StepOutcome, drive
from agent_magic.conversation.seams import StepError
from agent_magic.conversation.unstick import failing_line, repeat_help
from agent_magic.testing import ScriptedChat

PARSE = "import pandas as pd\ndf = pd.read_csv('sales.csv')\nprint(df['country'].sum())"
TRACEBACK = (
    "---------------------------------------------------------------------------\n"
    "KeyError                                  Traceback (most recent call last)\n"
    "Cell In[4], line 3\n"
    "      1 import pandas as pd\n"
    "      2 df = pd.read_csv('sales.csv')\n"
    "----> 3 print(df['country'].sum())\n"
    "File ~/pandas/core/frame.py:4102, in DataFrame.__getitem__(self, key)\n"
    "-> 4102 indexer = self.columns.get_loc(key)\n"
    "KeyError: 'country'"
)


class FailingParse:
    """Runs nothing: every step fails as reading sales.csv with the wrong separator does."""

    def __init__(self) -> None:
        self.ran: list[str] = []

    def run(self, block: CodeBlock, *, step: int | None = None) -> StepOutcome:
        self.ran.append(block.code)
        error = StepError("KeyError", "'country'", text=TRACEBACK)
        return StepOutcome(False, "", error=error)


def fenced(code: str) -> str:
    return f"Reading it:\n```python\n{code}\n```"


@pytest.fixture
def data_dir(tmp_path, monkeypatch) -> Path:
    work = tmp_path / "work"
    work.mkdir()
    (work / "sales.csv").write_text("country;units\nFrance;3\nItaly;5\n")
    monkeypatch.chdir(work)
    return work


def test_a_refused_repeat_says_the_error_line_what_to_try_and_the_data(data_dir) -> None:
    chat = ScriptedChat(fenced(PARSE), fenced(PARSE), fenced(PARSE), "Giving up. TERMINATE")
    executor = FailingParse()
    drive(Conversation(chat, executor, mode="never").run("sum units per country"), lambda e: None)
    assert executor.ran == [PARSE]  # the repeats were refused, never run
    told = chat.seen[2][-1]["content"]
    assert told.startswith("That step was not run: it is the same code that failed in step 1")
    assert "The error was KeyError: 'country', raised by `print(df['country'].sum())`." in told
    assert "Not tried yet:" in told and "columns" in told
    # the data the code parses, as it is: its first line and its separator
    assert "country;units" in told and "delimiter ';'" in told
    again = chat.seen[3][-1]["content"]
    assert "second time the same code was sent" in again and "different approach" in again


def test_the_data_preview_stays_under_the_working_directory(data_dir, tmp_path) -> None:
    (tmp_path / "secret.csv").write_text("SENTINEL_OUT;1\n")
    code = f"open({str(tmp_path / 'secret.csv')!r}).read()\nopen('../secret.csv').read()"
    text = repeat_help([CodeBlock("python", code)], None, 1, data_dir)
    assert "SENTINEL_OUT" not in text


def test_the_failing_line_is_the_steps_own() -> None:
    assert failing_line(TRACEBACK, [CodeBlock("python", PARSE)]) == "print(df['country'].sum())"
    syntax = (
        "  Cell In[1], line 1\n    df = pd.read_csv('x.csv'\n"
        "                           ^\nSyntaxError: '(' was never closed"
    )
    assert failing_line(syntax) == "df = pd.read_csv('x.csv'"


def test_code_that_ran_cleanly_gets_no_error_help() -> None:
    step = "answer = 1"
    chat = ScriptedChat(fenced(step), fenced(step), "1. TERMINATE")

    class Clean:
        def run(self, block, *, step=None):
            return StepOutcome(True, "stdout:\n1")

    drive(Conversation(chat, Clean(), mode="never").run("t"), lambda e: None)
    told = chat.seen[2][-1]["content"]
    assert "ran cleanly" in told and "Not tried yet" not in told
