"""The effectiveness suite's harness, against the scripted server: checkers and both loops.

The real runs (Qwen2.5-Coder on llama.cpp) are in docs/effectiveness.md; these tests prove
the harness itself: every checker accepts a right answer in the forms either loop may
produce and refuses wrong ones, and each loop's worker reports the answer its code set.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from agent_magic.testing import FakeOpenAIServer
from bench.effectiveness import run as runner
from bench.effectiveness.file_tasks import FILE_TASKS
from bench.effectiveness.notebook_tasks import NOTEBOOK_TASKS
from bench.effectiveness.tasks import BY_ID, MISSING, TASKS, plain

ROOT = Path(__file__).resolve().parents[1]

# A right answer for every task, as a user's code would make it.
RIGHT = {
    "seed_abc": np.float64(7.000000000000001),
    "sum_1_100": 5050,
    "squares": np.arange(1, 11) ** 2,
    "primes": [2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47],
    "factorial": math.factorial(20),
    "fibonacci": [0, 1, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233, 377],
    "gcd": np.int64(21),
    "compound": 1628.89,
    "mean_std": (5.0, 2.0),
    "median": 7.5,
    "linear_system": np.array([2.0, 1.0]),
    "determinant": np.float64(np.linalg.det(np.array([[4, 1, 2], [1, 3, 0], [2, 0, 5]]))),
    "column_means": np.mean([[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12]], axis=0),
    "reverse_words": "jumps fox brown quick the",
    "vowels": 7,
    "word_counts": {"the": 4, "cat": 1, "sat": 2, "on": 2, "mat": 1, "and": 1, "dog": 1, "log": 1},
    "palindromes": ["level", "radar", "noon", "civic"],
    "caesar": "khoor zruog",
    "roman": "MCMXCIV",
    "binary": "10101101",
    "poem_stats": (4, 13),
    "days_between": 46,
    "weekday": "Saturday",
    "csv_total": 195,
    "sort_people": ["Dev", "Ben", "Ana", "Caro"],
    "json_qty": 7,
}
# The file tasks' answers are computed from the rows their files are written from.
RIGHT.update({task_id: spec[3] for task_id, spec in FILE_TASKS.items()})
RIGHT.update({task_id: spec["expected"] for task_id, spec in NOTEBOOK_TASKS.items()})


def test_every_task_has_a_right_answer_here_and_at_least_forty() -> None:
    assert len(TASKS) >= 40 and set(RIGHT) == set(BY_ID)
    evaluation = [t for t in TASKS if t.split == "evaluation"]
    assert len(evaluation) >= 10 and all(t.files for t in evaluation)
    assert len({t.text for t in TASKS}) == len(TASKS)
    assert all(t.text.endswith("variable named `answer`.") for t in TASKS)


@pytest.mark.parametrize("task", TASKS, ids=[t.id for t in TASKS])
def test_checkers_take_right_answers_and_refuse_wrong_ones(task) -> None:
    right = plain(RIGHT[task.id])
    assert task.check(right), (task.id, right)
    # Through JSON, as the autogen worker's footer hands it over.
    assert task.check(json.loads(json.dumps(right)))
    assert not task.check(plain(MISSING))
    assert not task.check(None)
    wrong = {str: "nope", int: 12345, float: -1.5, list: [0], dict: {"x": 0}}
    assert not task.check(wrong.get(type(right), 0))


def test_plain_treats_both_loops_values_alike() -> None:
    assert plain(np.array([[1, 2], [3, 4]])) == [[1, 2], [3, 4]]
    assert plain((np.int64(1), {2, 1}, range(2))) == [1, [1, 2], [0, 1]]
    assert plain({1: np.float32(0.5)}) == {"1": 0.5}
    assert isinstance(plain(object()), str)


def _args(server: FakeOpenAIServer, **extra) -> object:
    import argparse

    values = {"base_url": server.base_url, "model": "scripted", "max_turns": 4}
    values.update(stream=False, task_timeout=120.0)
    values.update(extra)
    return argparse.Namespace(**values)


SOLVE = "Here:\n```python\nanswer = sum(range(1, 101))\nprint(answer)\n```"


@pytest.mark.slow  # the benchmark's worker in a subprocess, 5-15 s
def test_agent_magic_worker_reads_the_namespace(openai_server: FakeOpenAIServer) -> None:
    openai_server.enqueue(SOLVE, "5050. TERMINATE")
    record = runner.run_one("agent_magic", "sum_1_100", _args(openai_server))
    assert record["solved"] and record["answer"] == 5050, record
    assert record["steps"] == 2 and record["error"] == ""
    assert len(openai_server.requests) == 2
    assert "variable named `answer`" in openai_server.requests[0].messages[-1]["content"]
    # The scripted server reports usage (characters / 4): the server's counts are kept.
    assert not record["estimated"] and record["prompt_tokens"] > record["completion_tokens"] > 0


@pytest.mark.slow  # the benchmark's worker in a subprocess, 5-15 s
def test_agent_magic_worker_reports_a_wrong_answer(openai_server: FakeOpenAIServer) -> None:
    openai_server.enqueue("```python\nanswer = 5000\n```", "TERMINATE")
    record = runner.run_one("agent_magic", "sum_1_100", _args(openai_server))
    assert not record["solved"] and record["answer"] == 5000


def _autogen_python() -> Path:
    cache = Path("~/.cache/agent_magic").expanduser()
    return cache / "autogen-venv" / "bin" / "python"


@pytest.mark.slow  # the benchmark's worker in a subprocess, 5-15 s
@pytest.mark.skipif(not _autogen_python().exists(), reason="no autogen venv (real_models.py)")
def test_autogen_worker_keeps_answer_from_its_subprocess(openai_server: FakeOpenAIServer) -> None:
    openai_server.enqueue(SOLVE, "The sum is 5050. TERMINATE")
    record = runner.run_one("autogen", "sum_1_100", _args(openai_server))
    assert record["solved"] and record["answer"] == 5050, record
    assert record["steps"] == 2
    # The model saw the code's own output, not the benchmark's footer.
    second = openai_server.requests[1].messages[-1]["content"]
    assert "5050" in second and "_bench_keep_answer" not in second


def test_report_is_written_from_the_results(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(runner, "RESULTS", tmp_path)
    monkeypatch.setattr(runner, "REPORT", tmp_path / "effectiveness.md")
    meta = {"model": "m", "server": "s", "max_turns": 3, "date": "d"}
    rows = [
        {"task": "sum_1_100", "answer": 5050, "steps": 2, "prompt_tokens": 300},
        {"task": "gcd", "answer": 7, "steps": 3, "prompt_tokens": 500},
    ]
    for row in rows:
        row.update(completion_tokens=50, estimated=False, wall=10.0, error="", solved=False)
    rows[0]["solved"] = True
    runner._save("agent_magic", {r["task"]: r for r in rows}, meta)
    text = runner.write_report()
    assert "| solved | 1 (50%) |" in text
    assert "| tokens per solved task (all tokens / solved) | 900 |" in text
    assert "| sum_1_100 | numeric | tuning | yes | 2 | 300 / 50 | 10 | 5050 |" in text


def test_a_labelled_run_is_a_column_of_its_own(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(runner, "RESULTS", tmp_path)
    monkeypatch.setattr(runner, "REPORT", tmp_path / "effectiveness.md")
    meta = {"model": "m", "server": "s", "max_turns": 3, "date": "d"}

    runs = {
        "agent_magic-old-loop": {"sum_1_100": False, "gcd": True},
        "agent_magic-new-loop": {"sum_1_100": True, "gcd": True, "median": True},
        "autogen": {"sum_1_100": True, "gcd": False, "median": False},
    }
    # The new loop's name sorts first; the runs are shown in the order they started.
    started = dict(
        zip(runs, ["2026-12-02 06:00", "2026-12-02 07:00", "2026-12-02 05:00"], strict=True)
    )
    for name, tasks in runs.items():
        rows = {}
        for task, solved in tasks.items():
            rows[task] = {"task": task, "answer": 1, "steps": 1, "prompt_tokens": 100}
            rows[task].update(completion_tokens=0, estimated=False, wall=1.0, error="")
            rows[task]["solved"] = solved
        runner._save(name, rows, {**meta, "date": started[name]})
    assert runner.run_name("agent_magic", "new-loop") == "agent_magic-new-loop"
    assert runner._runs() == ["agent_magic-old-loop", "agent_magic-new-loop", "autogen"]
    text = runner.write_report()
    # All three over the two tasks each has run; the new loop and AG2 over their three.
    assert "| | agent_magic-old-loop | agent_magic-new-loop | autogen |" in text
    assert "| solved | 1 (50%) | 2 (100%) | 1 (50%) |" in text
    assert "### agent_magic-new-loop against autogen" in text
    assert "| solved | 3 (100%) | 1 (33%) |" in text
    assert "| median | data | tuning |  |  |  |  |  | yes | 1 | 100 / 0 | 1 | 1 | no |" in text


def test_the_runner_refuses_unknown_tasks() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.effectiveness.run", "--base-url", "u", "--model", "m"]
        + ["--tasks", "nope"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2 and "unknown task ids: nope" in done.stderr


@pytest.mark.slow  # the benchmark's worker in a subprocess, 5-15 s
def test_the_rule_counts_come_from_a_real_recording(openai_server, tmp_path) -> None:
    # A quoted output, a repeated step and a nudge, through the worker; counted back
    # from the recording it wrote.
    from bench.effectiveness import rules

    step = "```python\nanswer = 5050\nprint(answer)\n```"
    openai_server.enqueue(
        "In words: 5050.",  # no code: nudged
        step + "\nOutput:\n```\n5050\n```",  # one quote not run
        step,  # the same code again: refused
        "5050. TERMINATE",
    )
    record = runner.run_one("agent_magic", "sum_1_100", _args(openai_server))
    assert record["solved"], record
    seen = rules.count(Path(record["recording"]))
    assert seen["replies"] == 4 and seen["blocks written"] == 3
    assert seen["nudges"] == 1 and seen["quotes not run"] == 1
    assert seen["repeats refused (clean)"] == 1 and seen["repeats refused (failed)"] == 0


# -- every loop, on two tasks (one with a file), against the scripted server ---------------

PARSE_SALES = """import csv
with open('sales.csv', encoding='utf-8') as handle:
    rows = list(csv.DictReader(handle, delimiter=';'))
answer = sum(float(r['amount'].replace('.', '').replace(',', '.')) for r in rows)
print(answer)"""


def _scripted(loop: str, code: str, said: str) -> list[str]:
    """Two replies that solve a task in ``loop``'s own protocol: the code, then the end."""
    if loop == "smolagents":
        return [
            f"Thought: compute it.\n<code>\n{code}\n</code>",
            "Thought: done.\n<code>\nfinal_answer(answer)\n</code>",
        ]
    return [f"Here:\n```python\n{code}\n```", f"{said} TERMINATE"]


@pytest.mark.parametrize("loop", runner.LOOPS)
def test_the_runner_runs_every_loop_on_two_tasks(loop, openai_server, tmp_path) -> None:
    if loop != "agent_magic" and not runner.peer_python(loop).exists():
        pytest.skip(f"no {loop} venv: python3 scripts/real_models.py --{loop}")
    solutions = {
        "sum_1_100": ("answer = sum(range(1, 101))\nprint(answer)", "5050."),
        "semicolon_sales": (PARSE_SALES, "The total is 14577.5."),
    }
    for task_id, (code, said) in solutions.items():
        openai_server.enqueue(*_scripted(loop, code, said))
        record = runner.run_one(loop, task_id, _args(openai_server))
        assert record["solved"], (loop, task_id, record.get("error"), record.get("transcript"))
        assert record["steps"] == 2 and record["prompt_tokens"] > 0
    if loop == "agent_magic":  # the file the task names was previewed in the first request
        first = openai_server.requests[2].messages[-1]["content"]
        assert "sales.csv" in first and "delimiter ';'" in first


def test_a_context_source_can_be_left_out_of_a_run(openai_server) -> None:
    openai_server.enqueue(*_scripted("agent_magic", PARSE_SALES, "Done."))
    args = _args(openai_server, context_sources="variables,cells,notebook")
    record = runner.run_one("agent_magic", "semicolon_sales", args)
    assert record["solved"]
    assert "delimiter" not in openai_server.requests[0].messages[-1]["content"]


# -- a notebook task: the earlier cells and the saved notebook's Markdown reach the model --

LATE_ORDERS = """import pandas as pd
o = ords[ords['status'] != 'X']
days = (pd.to_datetime(o['shipped']) - pd.to_datetime(o['placed'])).dt.days
answer = int((days > 3).sum())
print(answer)"""


def test_a_notebook_task_sends_the_earlier_cells_and_the_notes(openai_server) -> None:
    openai_server.enqueue(*_scripted("agent_magic", LATE_ORDERS, "3 late orders."))
    record = runner.run_one("agent_magic", "nb_late_orders", _args(openai_server))
    assert record["solved"] and record["answer"] == 3, (record["error"], record["transcript"])
    first = openai_server.requests[0].messages[-1]["content"]
    # The code cell the worker ran first, from the shell's input history...
    assert "Code run before this cell" in first and "ords = pd.read_csv('orders.csv')" in first
    # ...and the Markdown of the notebook JPY_SESSION_NAME names (found from its folder).
    assert "The Markdown cells of the notebook nb_late_orders.ipynb" in first
    assert "shipped more than 3 days after it was placed" in first
    assert "status `X`" in first and "# Shipping review, July 2024" in first
    # The code used both facts of the notes: read back from the recording.
    from bench.effectiveness.facts import facts_used, written_code

    code = written_code(Path(record["recording"]))
    assert facts_used("nb_late_orders", code) == {
        "more than 3 days": True,
        "status X left out": True,
    }
    assert not any(facts_used("nb_late_orders", "answer = len(ords)").values())


def test_notebook_tasks_are_saved_notebooks_with_their_facts_outside_the_task() -> None:
    nbformat = pytest.importorskip("nbformat")
    tasks = [t for t in TASKS if t.kind == "notebook"]
    assert len(tasks) == 6 and all(t.split == "evaluation" and t.setup for t in tasks)
    for task in tasks:
        saved = nbformat.reads(dict(task.files)[task.notebook].decode(), as_version=4)
        nbformat.validate(saved)
        code = [c.source for c in saved.cells if c.cell_type == "code"]
        assert code == list(task.setup)  # the cells run first are the notebook's own
        assert any(c.cell_type == "markdown" for c in saved.cells)


def test_notebook_runs_are_totalled_apart_from_the_file_tasks(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(runner, "RESULTS", tmp_path)
    monkeypatch.setattr(runner, "REPORT", tmp_path / "effectiveness.md")
    meta = {"model": "m", "server": "s", "max_turns": 3, "date": "d"}
    runs = {"agent_magic-eval": ["latin1_cities"], "agent_magic-nb": ["nb_late_orders"]}
    for name, tasks in runs.items():
        row = {"task": tasks[0], "answer": 1, "steps": 1, "prompt_tokens": 100}
        row.update(completion_tokens=0, estimated=False, wall=1.0, error="", solved=True)
        runner._save(name, {tasks[0]: row}, meta)
    text = runner.write_report()
    evaluation = text.split("### The evaluation set")[1].split("###")[0]
    notebook = text.split("### The notebook tasks (evaluation set)")[1].split("###")[0]
    assert "| | agent_magic-eval |" in evaluation and "agent_magic-nb" not in evaluation
    assert "| | agent_magic-nb |" in notebook and "| solved | 1 (100%) |" in notebook
    # Each run's per-task columns only beside the tasks of its group.
    assert "| nb_late_orders | notebook | evaluation | yes | 1 | 100 / 0 | 1 | 1 |" in text
