"""A step's IPython syntax is turned into Python once (the guard's reading is what runs),
except a one-line step, whose meaning depends on the names bound when it runs."""

from __future__ import annotations

import os

from conftest import code


def test_a_step_of_several_lines_runs_the_transform_the_guard_read(
    shell, openai_env, monkeypatch
) -> None:
    manager = shell.input_transformer_manager
    seen: list[str] = []
    own = manager.transform_cell

    def counting(cell: str) -> str:
        seen.append(cell)
        return own(cell)

    monkeypatch.setattr(manager, "transform_cell", counting)
    step = "base = 20\n%time doubled = base * 2\nprint('doubled', doubled)"
    openai_env.enqueue(code(step), "TERMINATE")
    shell.run_cell_magic("agent", "--mode never --no-context", "magics")
    assert shell.user_ns["doubled"] == 40
    assert "doubled 40" in openai_env.requests[1].messages[-1]["content"]
    assert seen.count(step) == 1  # read by the guard, run as read
    assert "transform_cell" not in vars(shell)  # the step's hook is gone with the step


def test_a_one_line_step_is_transformed_as_it_runs(shell, openai_env) -> None:
    # Both blocks are read by the guard before the first runs: "pwd" was then IPython's
    # %pwd; once the first block bound the name, it is that name.
    shell.user_ns.pop("pwd", None)
    reply = "Two steps:\n```python\npwd = 'bound by the step'\n```\n```python\npwd\n```"
    openai_env.enqueue(reply, "TERMINATE")
    shell.run_cell_magic("agent", "--mode never --no-context", "name then use")
    report = openai_env.requests[1].messages[-1]["content"]
    assert "'bound by the step'" in report
    assert repr(os.getcwd()) not in report
