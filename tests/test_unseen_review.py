"""No approval without sight (issue 20): under ``%%capture`` (or any captured output) a
review could not be seen, and Enter would approve code nobody saw. A mode that asks
stops with one line before anything is asked of the model; in mode never the steps that
would be asked are refused as in a headless run. A real shell runs ``%%capture`` around
``%%agent`` against the scripted server."""

from __future__ import annotations

import contextlib
import io

import pytest
from conftest import answers, code
from test_kernel_widget import frontend  # noqa: F401  (a real kernel, as a notebook drives it)


@pytest.fixture
def prompts(monkeypatch) -> list[str]:
    """Every input() prompt; each answered with Enter (which would approve)."""
    return answers(monkeypatch, rest="")


@pytest.mark.parametrize("mode", ["always", "terminate"])
def test_under_capture_a_mode_that_asks_stops_in_one_line(
    shell, openai_env, prompts, capsys, mode
) -> None:
    openai_env.enqueue(code("unseen = 'ran'"), "Done. TERMINATE")
    shell.run_cell(f"%%capture captured\n%%agent --mode {mode} --no-context\nset unseen")
    assert "unseen" not in shell.user_ns and prompts == []  # nothing approved blind
    assert openai_env.chat_requests == []  # nor asked of the model
    said = shell.user_ns["captured"].stderr + capsys.readouterr().err
    (line,) = [line for line in said.splitlines() if "agent:" in line]
    assert "captured" in line and "%%capture" in line and "outside the capture" in line
    # outside the capture the same cell asks, and is seen
    shell.run_cell(f"%%agent --mode {mode} --no-context\nset unseen")
    assert prompts and shell.user_ns["unseen"] == "ran"
    assert "unseen = 'ran'" in capsys.readouterr().out


def test_under_capture_the_refusal_reaches_the_terminal(shell, openai_env, prompts, capfd) -> None:
    """The person sees nothing of a captured cell: the one line is written past the
    capture too (the process's stderr, the terminal), so they learn why nothing ran."""
    openai_env.enqueue(code("unseen = 'ran'"), "Done. TERMINATE")
    shell.run_cell("%%capture captured\n%%agent --mode always --no-context\nset unseen")
    assert "unseen" not in shell.user_ns and prompts == []
    seen = capfd.readouterr()
    (line,) = [line for line in seen.err.splitlines() if "agent:" in line]
    assert line.startswith("agent: this cell's output is captured (its displays and sys.stdout")
    assert "outside the capture" in line and "agent:" not in seen.out
    assert line in shell.user_ns["captured"].stderr  # and the cell's error, as before


def test_a_redirected_stdout_is_caught_too(shell, openai_env, prompts) -> None:
    openai_env.enqueue(code("unseen = 'ran'"), "Done. TERMINATE")
    hidden = io.StringIO()
    with contextlib.redirect_stdout(hidden), pytest.raises(Exception) as raised:
        shell.run_cell_magic("agent", "--mode always --no-context", "set unseen")
    assert "captured (sys.stdout" in str(raised.value) and "\n" not in str(raised.value)
    assert "unseen" not in shell.user_ns and prompts == []


def test_under_capture_mode_never_refuses_what_it_would_ask(shell, openai_env, prompts) -> None:
    shell.run_cell("keep = [1]")
    openai_env.enqueue(code("keep.append(2)"), code("free = 1"), "Done. TERMINATE")
    shell.run_cell("%%capture captured\n%%agent --mode never --protect keep --no-context\ngo")
    assert shell.user_ns["keep"] == [1] and prompts == []  # refused, not approved blind
    assert shell.user_ns["free"] == 1  # unasked steps still run
    told = openai_env.chat_requests[1].messages[-1]["content"]
    assert "not run" in told and "nobody can be asked" in told


def test_replay_under_capture_needs_nobody(shell, openai_env, prompts) -> None:
    openai_env.enqueue(code("again = 1"), "Done. TERMINATE")
    shell.run_cell_magic("agent", "--mode always --no-context", "again")
    assert shell.user_ns.pop("again") == 1 and len(prompts) == 2
    shell.run_cell("%%capture\n%%agent --mode always --no-context --replay --new\nagain")
    assert shell.user_ns["again"] == 1 and len(prompts) == 2  # the recording decided


def test_in_a_notebook_kernel_capture_stops_the_review_in_one_line(
    frontend,  # noqa: F811
    openai_env,
) -> None:
    """A real kernel with a widget frontend: the review widget would be captured and
    wait unseen; the cell says so in one line instead, shown in the cell past the
    capture, and nothing runs."""
    cell = frontend.run("%%capture captured\n%%agent --mode always\nSet x.")
    # The person sees the line in the cell, past the capture (the kernel's own stderr).
    (line,) = [line for line in frontend.text(cell).splitlines() if "agent:" in line]
    assert line.startswith("agent: this cell's output is captured")
    assert "outside the capture" in line
    shown = frontend.text(frontend.run("print(captured.stderr.strip())"))
    assert "this cell's output is captured" in shown and "Traceback" not in shown
    assert openai_env.requests == []
    assert "Traceback" not in frontend.text(cell)
    after = frontend.run("print('x' in globals())")
    assert "False" in frontend.text(after)
