"""The demo can be tried twice: its cells, as committed, run in a real InteractiveShell
with the demo's own setup (``%config AgentMagics.replay_replies = True``) and its
recording, offline and without a key; the review cell is then run again. With the
recorded decisions it replays each time; decided otherwise (Skip, an edit), it ends with
one line naming what the demo set, and no error, so Run All goes on.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from conftest import answers

ROOT = Path(__file__).resolve().parent.parent
REVIEW = "review-task"


@pytest.fixture
def demo(shell, tmp_path, monkeypatch) -> Iterator[dict[str, str]]:
    """The demo's code cells by id, its recording where the shell's recording is, no
    model (a live call could only fail), and the namespace of a fresh kernel: the
    variables other tests left in this process's one shell would change what the model
    is told, and so the requests the recording answers."""
    shutil.copy(ROOT / "agent-recording.jsonl", tmp_path / "agent-recording.jsonl")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    nb = nbformat.read(ROOT / "demo.ipynb", as_version=4)
    hidden = shell.user_ns_hidden
    left = {k: v for k, v in shell.user_ns.items() if not k.startswith("_") and k not in hidden}
    for name in left:
        del shell.user_ns[name]
    yield {cell.id: cell.source for cell in nb.cells if cell.cell_type == "code"}
    shell.user_ns.update(left)


def run(shell, source: str, capsys) -> str:
    """Run a cell as Run All would: it must succeed (an error would stop Run All)."""
    capsys.readouterr()
    result = shell.run_cell(source)
    captured = capsys.readouterr()
    assert result.success, (result.error_before_exec or result.error_in_exec, captured.err)
    return captured.out


def run_up_to_review(shell, demo: dict[str, str], capsys) -> None:
    for cell_id, source in demo.items():
        if cell_id == REVIEW:
            return
        run(shell, source, capsys)


def test_the_review_cell_replays_again_with_the_same_decisions(
    shell, demo, monkeypatch, capsys, openai_env
) -> None:
    run_up_to_review(shell, demo, capsys)
    for _ in range(2):
        prompts = answers(monkeypatch, "", "")  # Run, then Finish: as recorded
        out = run(shell, demo[REVIEW], capsys)
        assert len(prompts) == 2 and "[3, 4]" in out and "[The assistant finished.]" in out
        assert "cannot follow" not in out and "replay:" not in out
    # Run all is the same step run, so the recording follows it too.
    answers(monkeypatch, "all", "")
    assert "[The assistant finished.]" in run(shell, demo[REVIEW], capsys)
    assert openai_env.chat_requests == []  # no model was asked, ever


@pytest.mark.parametrize("first", ["skip", "use a loop instead"], ids=["skip", "feedback"])
def test_deciding_otherwise_ends_the_cell_with_one_line(
    shell, demo, monkeypatch, capsys, first
) -> None:
    run_up_to_review(shell, demo, capsys)
    answers(monkeypatch, first)
    out = run(shell, demo[REVIEW], capsys)  # no error: Run All goes on
    [line] = [line for line in out.splitlines() if "cannot follow" in line]
    assert line.startswith("[replay: the recording cannot follow from here")
    assert "it has 'ran'" in line  # what the recording did at that step
    assert "set OPENAI_API_KEY or run %agent key" in line
    # What the demo set, not a flag it never used.
    assert "%config AgentMagics.replay_replies = False" in line
    assert "--replay-replies" not in line
    # The cells below still run; and the review cell, run again as recorded, replays.
    assert "Which weeks of `weekly`" in run(shell, demo["log"], capsys)
    answers(monkeypatch, "", "")
    assert "[3, 4]" in run(shell, demo[REVIEW], capsys)


def test_an_edit_in_the_widget_ends_the_cell_with_one_line(
    shell, demo, capsys, monkeypatch
) -> None:
    from test_run_all import run_cell
    from test_widget import Outputs

    from agent_magic.ui.widget import NotebookUI

    run_up_to_review(shell, demo, capsys)
    magics = shell.magics_manager.registry["AgentMagics"]
    outputs = Outputs()
    original = NotebookUI.__init__
    monkeypatch.setattr(
        NotebookUI, "__init__", lambda self, *a, **k: original(self, *a, display=outputs, **k)
    )
    monkeypatch.setattr(magics, "ui", "widget")

    def edit(review) -> None:
        review.codes[0].value = "print('weeks 3 and 4')"
        review.run.click()

    line, _, task = demo[REVIEW].partition("\n")
    run_cell(magics, line.removeprefix("%%agent "), task, edit)
    shown = outputs.markdown()
    assert "Step 1: edited and ran" in shown
    [end] = [b for b in shown.split("\n\n") if "cannot follow" in b]
    assert end.startswith("**Conversation stopped.** replay: the recording cannot follow")
    assert "%config AgentMagics.replay_replies = False" in end


def test_a_rerun_after_the_session_changed_ends_with_one_line(shell, demo, capsys) -> None:
    """A new variable changes what the task is sent with: the recording no longer
    matches step 1, said in one line, as a stop (Run All goes on)."""
    run_up_to_review(shell, demo, capsys)
    run(shell, "hotter = 20.5", capsys)
    out = run(shell, demo[REVIEW], capsys)
    [line] = [line for line in out.splitlines() if "replay:" in line]
    assert line.startswith("[replay: step 1 does not match the recording")
    assert "%config AgentMagics.replay_replies = False" in line
