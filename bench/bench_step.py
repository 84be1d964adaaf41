"""The per-step cost alone: ``python bench/bench_step.py [--runs N] [--server process]``.

The 20-step conversation of ``run.py`` (section 1: mode never, recording on), for the
raw-HTTP floor and ``%%agent``, streamed and not, one variant after the other in each
round. Two figures per variant, per step, best and median over the rounds:

* wall: the step's wall time minus the server's own time (as ``run.py`` measures it);
* CPU: this process's CPU time. With ``--server process`` the scripted server runs in
  another process, so this is the client's CPU alone, which the machine's load barely
  moves: the figure to compare two trees by (run this once with each tree's
  ``PYTHONPATH``, one after the other).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run  # noqa: E402

from agent_magic.testing import FakeOpenAIServer  # noqa: E402


class _Remote:
    """The scripted server in another process, serving ``replies`` in order."""

    def __init__(self, replies: list[str]) -> None:
        self._script = Path(tempfile.mkdtemp(prefix="bench_step_")) / "script.json"
        self._script.write_text(json.dumps(replies))
        self._process: subprocess.Popen[str] | None = None
        self.base_url = ""

    def __enter__(self) -> _Remote:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "agent_magic.testing", "--script", str(self._script)]
            + ["--parent-pid", str(os.getpid()), "--max-seconds", "900"],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._process.stdout is not None
        self.base_url = self._process.stdout.readline().strip()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(10)

    def enqueue(self, *replies: str) -> None:
        """The replies were all given at the start."""


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="rounds measured (default 10)")
    parser.add_argument(
        "--server",
        choices=("thread", "process"),
        default="thread",
        help="the scripted server in this process (as run.py) or in another one",
    )
    parser.add_argument("--json", metavar="PATH", help="also save the figures as JSON")
    args = parser.parse_args(argv)
    steps = run.STEPS
    shell = run._shell()
    magics = shell.magics_manager.registry["AgentMagics"]
    magics.recording = str(Path(tempfile.mkdtemp(prefix="bench_step_")) / "rec.jsonl")
    magics.max_retries = 0
    variants = {
        "raw HTTP + exec (floor)": lambda s: run.floor_raw_http(s, shell, steps, False),
        "%%agent --no-stream": lambda s: run.agent_cell(s, shell, steps, False),
        "raw HTTP + exec, streamed": lambda s: run.floor_raw_http(s, shell, steps, True),
        "%%agent (streamed)": lambda s: run.agent_cell(s, shell, steps, True),
    }
    rounds = args.runs + 1  # the first round warms imports and caches
    wall: dict[str, list[float]] = {name: [] for name in variants}
    cpu: dict[str, list[float]] = {name: [] for name in variants}
    if args.server == "process":
        server: Any = _Remote(run.script(steps) * rounds * len(variants))
    else:
        server = FakeOpenAIServer()
    with server, run.model_env(server):
        for round_ in range(rounds):
            for name, variant in variants.items():
                server.enqueue(*run.script(steps))
                with run.ServerClock() as clock:
                    start, used = time.perf_counter(), time.process_time()
                    variant(server)
                    total, used = time.perf_counter() - start, time.process_time() - used
                if round_:
                    wall[name].append((total - clock.seconds) * 1000 / (steps + 1))
                    cpu[name].append(used * 1000 / (steps + 1))
                for key in [k for k in shell.user_ns if k.startswith("value_")]:
                    del shell.user_ns[key]
    figures = {
        name: {
            "wall_min": min(wall[name]),
            "wall_median": statistics.median(wall[name]),
            "cpu_min": min(cpu[name]),
            "cpu_median": statistics.median(cpu[name]),
        }
        for name in variants
    }
    import agent_magic

    where = Path(agent_magic.__file__).parent.parent
    print(f"{where}: ms per step, {args.runs} rounds, server in a {args.server}; best / median")
    print(f"{'':30s} {'wall':>15s} {'CPU':>15s}")
    for name, f in figures.items():
        print(
            f"{name:30s} {f['wall_min']:6.2f} / {f['wall_median']:6.2f} "
            f"{f['cpu_min']:6.2f} / {f['cpu_median']:6.2f}"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1))
    return figures


if __name__ == "__main__":
    main()
