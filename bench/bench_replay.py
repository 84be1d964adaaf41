"""How long replaying a recorded 20-step conversation takes, apart from the code's own time.

``python bench/bench_replay.py`` prints a Markdown table; ``run()`` returns the figures as
a dict. A real InteractiveShell records a conversation against the local server
(FakeOpenAIServer, mode never): 20 steps, each printing about 2,000 characters, so the
last request carries ~50 kB of history, then a sign-off. The same ``%%agent --replay``
cell is then run several times with the server stopped and no key, each time from a
cold store (the recording file read and indexed again) and a namespace reset to where
the recording started.

What is timed: the whole cell, minus the time spent inside the executor (running the
code through ``shell.run_cell`` and digesting its output, which a live run pays too).
What remains is what replay adds: reading the recording, hashing each request,
recording events, capturing outputs, the namespace summary, and printing the
conversation (to a buffer, so a terminal's speed does not count).
"""

from __future__ import annotations

import contextlib
import io
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from IPython.core.interactiveshell import InteractiveShell  # noqa: E402

from agent_magic import transcript  # noqa: E402
from agent_magic.testing import FakeOpenAIServer  # noqa: E402

STEPS = 20
RUNS = 7
TASK = "Fill the session with twenty numbered lists and report each one's sum."


def _step(i: int) -> str:
    return (
        f"Step {i}: make list number {i} and print it.\n```python\n"
        f"numbers_{i} = list(range({i * 10}, {i * 10 + 400}))\n"
        f"print(numbers_{i})\nprint('sum', sum(numbers_{i}))\n```"
    )


class _Timed:
    """Wraps the real executor and adds up the time spent in it."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.seconds = 0.0

    def run(self, block: Any, *, step: int | None = None) -> Any:
        start = time.perf_counter()
        try:
            return self.inner.run(block, step=step)
        finally:
            self.seconds += time.perf_counter() - start


def run(steps: int = STEPS, runs: int = RUNS) -> dict[str, Any]:
    """Record once, replay ``runs`` times; figures in milliseconds."""
    folder = Path(tempfile.mkdtemp(prefix="bench_replay_"))
    shell = InteractiveShell.instance()
    if "agent_magic" not in shell.extension_manager.loaded:
        shell.run_line_magic("load_ext", "agent_magic")
    magics = shell.magics_manager.registry["AgentMagics"]
    magics.recording = str(folder / "agent-recording.jsonl")
    magics.max_retries = 0
    timers: list[_Timed] = []
    make_executor = magics._executor

    def timed_executor(**kwargs: Any) -> _Timed:
        timers.append(_Timed(make_executor(**kwargs)))
        return timers[-1]

    magics._executor = timed_executor  # type: ignore[method-assign]
    start_names = set(shell.user_ns)
    saved_env = {k: os.environ.get(k) for k in ("OPENAI_BASE_URL", "OPENAI_API_KEY")}
    line = f"--mode never --new --max-turns {steps + 5}"
    try:
        with FakeOpenAIServer() as server:
            server.enqueue(*[_step(i) for i in range(1, steps + 1)], "All done. TERMINATE")
            os.environ["OPENAI_BASE_URL"] = server.base_url
            os.environ["OPENAI_API_KEY"] = "sk-test-bench"
            with contextlib.redirect_stdout(io.StringIO()):
                shell.run_cell_magic("agent", line, TASK)
            asked = len(server.requests)
        os.environ.pop("OPENAI_API_KEY")
        os.environ["OPENAI_BASE_URL"] = "http://127.0.0.1:9/v1"
        totals, code, overhead = [], [], []
        for _ in range(runs):
            for name in set(shell.user_ns) - start_names:
                shell.user_ns.pop(name, None)
            transcript.stores.clear()  # cold: read and index the file again
            start = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()):
                shell.run_cell_magic("agent", line + " --replay", TASK)
            total = time.perf_counter() - start
            totals.append(total * 1000)
            code.append(timers[-1].seconds * 1000)
            overhead.append((total - timers[-1].seconds) * 1000)
            assert len(magics.history.replies) == steps + 1
            assert all(r.source == "replay" for r in magics.history.replies)
    finally:
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        del magics._executor
    size = (folder / "agent-recording.jsonl").stat().st_size
    return {
        "steps": steps,
        "runs": runs,
        "recorded_requests": asked,
        "recording_bytes": size,
        "overhead_median_ms": statistics.median(overhead),
        "overhead_min_ms": min(overhead),
        "overhead_max_ms": max(overhead),
        "overhead_per_step_ms": statistics.median(overhead) / (steps + 1),
        "code_median_ms": statistics.median(code),
        "total_median_ms": statistics.median(totals),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
    }


def markdown(report: dict[str, Any]) -> str:
    return "\n".join(
        [
            f"Replay of a recorded {report['steps']}-step conversation "
            f"({report['recorded_requests']} requests, recording "
            f"{report['recording_bytes'] / 1024:.0f} KiB); {report['runs']} runs, each from a "
            f"cold store; Python {report['python']}, {report['cpus']} CPUs",
            "",
            "| | median ms | min–max ms |",
            "|---|---:|---:|",
            f"| replay overhead (cell minus the code's own time) | "
            f"{report['overhead_median_ms']:.1f} | "
            f"{report['overhead_min_ms']:.1f}–{report['overhead_max_ms']:.1f} |",
            f"| ... per request | {report['overhead_per_step_ms']:.2f} | |",
            f"| the code's own time (executor) | {report['code_median_ms']:.1f} | |",
            f"| whole cell | {report['total_median_ms']:.1f} | |",
        ]
    )


if __name__ == "__main__":
    print(markdown(run()))
