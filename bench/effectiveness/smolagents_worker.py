"""One task through smolagents' ``CodeAgent``: a third loop beside AG2's.

Runs in the smolagents venv (``scripts/real_models.py --smolagents``), started by
:mod:`bench.effectiveness.run` as a subprocess per task::

    ~/.cache/agent_magic/smolagents-venv/bin/python bench/effectiveness/smolagents_worker.py \\
        --task sum_1_100 --base-url http://127.0.0.1:8091/v1 --model qwen --out result.json

The agent is smolagents' own, as its README sets one up: ``CodeAgent`` with no tools
and its default system prompt, over ``OpenAIServerModel`` pointed at the same server
as the other loops, ``max_steps`` = ``--max-turns``. Its code runs in smolagents' own
``LocalPythonExecutor`` in this process, whose variables persist between steps; the
imports the tasks need (pandas, numpy, csv, json, ...) are authorised, and ``open`` is
added (the executor has none, and the tasks read files). The working
directory is the task's own folder, with its files. ``answer``, as the task asks, is
read from the executor's state after the run (the same variable the other loops are
judged by); the model's ``final_answer`` is kept in the record but not judged.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # tasks.py, stdlib only

from tasks import BY_ID, MISSING, plain  # noqa: E402

IMPORTS = [
    "pandas",
    "numpy",
    "csv",
    "json",
    "io",
    "os",
    "glob",
    "re",
    "math",
    "statistics",
    "datetime",
    "collections",
    "pathlib",
    "codecs",
]


def run_task(
    task_id: str, *, base_url: str, model: str, max_turns: int, temperature: float | None = None
) -> dict:
    from smolagents import CodeAgent, OpenAIServerModel

    task = BY_ID[task_id]
    work = tempfile.mkdtemp(prefix=f"smolagents-{task_id}-")
    task.write_files(work)
    os.chdir(work)
    extra = {} if temperature is None else {"temperature": temperature}
    # Messages as plain strings: llama-cpp-python's server rejects a system message whose
    # content is a list of parts (smolagents' default shape) with a 500.
    llm = OpenAIServerModel(
        model_id=model,
        api_base=base_url,
        api_key="none",
        flatten_messages_as_text=True,
        **extra,
    )
    agent = CodeAgent(
        tools=[],
        model=llm,
        max_steps=max_turns,
        additional_authorized_imports=IMPORTS,
        # Its sandbox has no open(); the tasks are about files, so it gets the builtin.
        executor_kwargs={"additional_functions": {"open": open}},
    )
    shown = io.StringIO()
    error = ""
    final = None
    start = time.monotonic()
    with contextlib.redirect_stdout(shown), contextlib.redirect_stderr(shown):
        try:
            final = agent.run(task.text)
        except Exception as problem:
            error = f"{type(problem).__name__}: {str(problem)[:300]}"
    wall = time.monotonic() - start
    state = getattr(agent.python_executor, "state", {}) or {}
    value = state.get("answer", MISSING)
    steps = [s for s in agent.memory.steps if type(s).__name__ == "ActionStep"]
    prompt = completion = 0
    for step in steps:
        usage = getattr(step, "token_usage", None)
        if usage is not None:
            prompt += getattr(usage, "input_tokens", 0) or 0
            completion += getattr(usage, "output_tokens", 0) or 0
    estimated = False
    if steps and not (prompt or completion):  # the server gave no usage: estimate
        estimated = True
        for step in steps:
            inputs = getattr(step, "model_input_messages", None) or []
            prompt += len(json.dumps([getattr(m, "content", m) for m in inputs], default=str)) // 4
            completion += max(1, len(getattr(step, "model_output", "") or "") // 4)
    return {
        "task": task_id,
        "loop": "smolagents",
        "answer": plain(value),
        "final_answer": plain(final) if final is not None else None,
        "steps": len(steps),
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "estimated": estimated,
        "wall": round(wall, 2),
        "error": error,
        "transcript": shown.getvalue()[-20_000:],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", required=True, choices=sorted(BY_ID))
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--max-turns", type=int, default=10)
    parser.add_argument("--temperature", type=float)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    out = os.path.abspath(args.out)
    os.environ.pop("OPENAI_BASE_URL", None)  # the model object says where
    result = run_task(
        args.task,
        base_url=args.base_url,
        model=args.model,
        max_turns=args.max_turns,
        temperature=args.temperature,
    )
    with open(out, "w") as handle:
        json.dump(result, handle, indent=1, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
