"""The composition root: a pure plan per cell, a session per kernel, and the line commands
that used to be inside the magic (fix, export), tried as a user would."""

from __future__ import annotations

import dataclasses
import os
from types import SimpleNamespace

import nbformat
import pytest
from IPython.core.error import UsageError
from IPython.core.magic_arguments import parse_argstring

from agent_magic.export import to_notebook
from agent_magic.magic import AgentMagics
from agent_magic.plan import CellPlan, PlanError, plan_cell
from agent_magic.transcript import parse_records


def settings(**changed) -> SimpleNamespace:
    """The traits' defaults, as plain attributes: plan_cell needs nothing else."""
    traits = AgentMagics.class_traits(config=True)
    values = {name: trait.default() for name, trait in traits.items()}
    return SimpleNamespace(**{**values, **changed})


def plan(line: str = "", cell: str = "a task", *, env=None, **kwargs) -> CellPlan:
    args = parse_argstring(AgentMagics.agent, line)
    kwargs.setdefault("frontend", "terminal")
    return plan_cell(args, kwargs.pop("traits", settings()), cell=cell, env=env or {}, **kwargs)


def test_a_plan_is_frozen_and_made_from_flags_over_traits() -> None:
    made = plan("--mode never --max-turns 3 --tools --no-context --seed 4 -m m2", "  go  ")
    assert (made.task, made.mode, made.max_turns, made.tools) == ("go", "never", 3, True)
    assert (made.context, made.seed, made.model, made.model_given) == (False, 4, "m2", True)
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.mode = "always"  # type: ignore[misc]
    traits = settings(mode="terminate", max_turns=7, seed=9, temperature=0.2, send_images=True)
    made = plan(traits=traits)
    assert (made.mode, made.max_turns, made.seed, made.images) == ("terminate", 7, 9, True)
    assert made.params == {"temperature": 0.2} and made.model_given is False
    assert plan("--no-stream").stream is False and plan().stream is True


def test_the_mode_lives_in_the_plan_and_replay_asks_the_recording() -> None:
    replayed = plan("--mode never --replay")
    assert replayed.mode == "never" and replayed.loop_mode == "always"
    assert not replayed.interactive
    assert plan(env={"AGENT_MAGIC_REPLAY": "1"}).replay is True
    assert plan("", traits=settings(replay=True), env={"AGENT_MAGIC_REPLAY": "0"}).replay is False


@pytest.mark.parametrize(
    ("ui", "frontend", "awaiting", "face"),
    [
        ("auto", "terminal", False, "terminal"),
        ("auto", "widgets", True, "widget"),
        ("auto", "widgets", False, "terminal"),  # a widget cannot wait in a plain call
        ("widget", "terminal", True, "widget"),
        ("terminal", "widgets", True, "terminal"),
    ],
)
def test_who_asks(ui, frontend, awaiting, face) -> None:
    made = plan(traits=settings(ui=ui), frontend=frontend, awaiting=awaiting)
    assert made.face == face


def test_headless_fails_closed_or_runs_unseen_when_told() -> None:
    with pytest.raises(PlanError, match="needs someone to answer") as info:
        plan("--mode terminate", frontend="headless", awaiting=True)
    assert "\n" not in str(info.value)
    unseen = plan(traits=settings(headless="never"), frontend="headless", awaiting=True)
    assert (unseen.mode, unseen.face, unseen.interactive) == ("never", "widget", False)
    replayed = plan("--replay", frontend="headless", awaiting=True)  # the recording answers
    assert replayed.mode == "always" and replayed.loop_mode == "always"


@pytest.mark.parametrize(
    ("line", "cell", "words"),
    [
        ("", "  \n", "needs a task"),
        ("--max-turns 0", "t", "at least 1"),
        ("oops", "t", "unexpected 'oops'"),
    ],
)
def test_bad_input_is_one_line(line, cell, words) -> None:
    with pytest.raises(PlanError, match=words) as info:
        plan(line, cell)
    assert "\n" not in str(info.value)


def test_fix_reads_its_words_from_the_line() -> None:
    made = plan("fix use a list", "")
    assert made.fix and made.task == "use a list"
    assert plan("--fix", "").task == ""


# --- the session, through the real shell ----------------------------------------------


def test_each_cell_gets_a_fresh_conversation_over_one_history(shell, openai_env) -> None:
    magics = shell.magics_manager.registry["AgentMagics"]
    history = magics.session.history
    openai_env.enqueue("one TERMINATE", "two TERMINATE")
    shell.run_cell_magic("agent", "--mode never", "first")
    shell.run_cell_magic("agent", "--mode never --no-stream", "second")
    assert magics.session.history is history and len(history.replies) == 2
    assert magics.history is history  # what tests and users reach
    shell.run_line_magic("agent", "reset")
    assert history.messages == [] and magics.recorder.records == []


def test_fix_skips_the_extensions_own_errors(shell, openai_env) -> None:
    shell.run_cell("values = [1, 2]\nvalues[5]")
    shell.run_cell("%agent foo")  # a mistyped command: agent_magic's own UsageError
    openai_env.enqueue("Use an index below 2. TERMINATE")
    shell.run_cell("%agent --mode never --no-context fix")
    task = openai_env.requests[0].messages[1]["content"]
    assert "IndexError" in task and "values[5]" in task
    assert "UsageError" not in task and "magic.py" not in task


def test_export_into_an_unwritable_folder_is_one_line(shell, openai_env, tmp_path) -> None:
    if os.geteuid() == 0:
        target = "/proc/agent-export/out.ipynb"  # nobody, root included, can write here
    else:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        target = str(locked / "out.ipynb")
    openai_env.enqueue("hello TERMINATE")
    shell.run_cell_magic("agent", "--mode never", "say hello")
    with pytest.raises(UsageError, match="cannot write") as info:
        shell.run_line_magic("agent", f"export {target}")
    assert "\n" not in str(info.value)


def test_the_export_fence_holds_code_with_backticks() -> None:
    proposed = [{"language": "python", "code": 'print("```")\nx = 1'}]
    records = [
        {"event": "task", "conversation": "c", "step": 1, "task": "t", "context": "a ``` b"},
        {"event": "reply", "conversation": "c", "step": 1, "rkey": "k", "content": "Here."},
        {"event": "decision", "conversation": "c", "step": 1, "action": "skip"}
        | {"label": "skipped", "proposed": proposed},
    ]
    cells = to_notebook(parse_records(records)).cells
    skipped = cells[1].source
    assert '````python\nprint("```")\nx = 1\n````' in skipped
    assert "````\na ``` b\n````" in cells[0].source
    nbformat.validate(to_notebook(parse_records(records)))


def test_the_step_timeout_flag_reaches_the_executor(shell, openai_env) -> None:
    """A new per-cell flag, wired end to end: trait, argument, plan field, executor."""
    assert plan("--step-timeout 2.5").step_timeout == 2.5
    assert plan(traits=settings(step_timeout=0.0)).executor_options()["step_timeout"] == 0.0
    with pytest.raises(PlanError, match="--step-timeout"):
        plan("--step-timeout -1")
    openai_env.enqueue("```python\nbefore = 1\nwhile True:\n    pass\n```", "Stopped. TERMINATE")
    shell.run_cell_magic("agent", "--mode never --no-context --step-timeout 1", "loop forever")
    assert shell.user_ns["before"] == 1
    told = openai_env.requests[1].messages[-1]["content"]
    assert "stopped after 1 s" in told
