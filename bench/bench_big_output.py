"""A step printing a lot, alone: ``python bench/bench_big_output.py [--mb N] [--runs N] [TREE...]``.

The big-output section of ``run.py`` (section 5): a ``%%agent --mode never`` step against
the scripted server whose code prints N MB in 100-byte lines, in a fresh interpreter, with
stdout sent to ``/dev/null``; next to it, the same loop in plain Python printing to
``/dev/null`` in the same process. Each TREE given (default: this one) is put first on
``PYTHONPATH``; the trees take turns in each round, so a loaded machine weighs on each
alike. Printed per tree: wall and CPU seconds of the cell, best and median over the rounds,
and the plain loop's. ``run.py``'s section 5 runs the same code (``measure``), adding the
peak memory it reports.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CODE = """
import contextlib, io, json, os, time
def peak_mib():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
from IPython.core.interactiveshell import InteractiveShell
import agent_magic
from agent_magic.testing import FakeOpenAIServer
shell = InteractiveShell.instance()
shell.run_line_magic("load_ext", "agent_magic")
shell.run_line_magic("config", "AgentMagics.recording = ''")
lines = int(os.environ["BENCH_MB"]) * 10_000  # 100-byte lines
loop = "for i in range(%d):\\n    print('%%099d' %% i)\\n" % lines
step = "```python\\n" + loop + "```"
with FakeOpenAIServer() as server:
    os.environ["OPENAI_BASE_URL"] = server.base_url
    os.environ["OPENAI_API_KEY"] = "sk-test-bench"
    server.enqueue("Done. TERMINATE")  # warm-up cell: imports, client
    with contextlib.redirect_stdout(io.StringIO()):
        shell.run_cell_magic("agent", "--mode never", "warm up")
    before = peak_mib()
    server.enqueue(step, "Printed. TERMINATE")
    start, cpu = time.perf_counter(), time.process_time()
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        shell.run_cell_magic("agent", "--mode never --new", "Print a lot.")
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    sent = server.requests[-1].messages[-1]["content"]
peak = peak_mib()
start, bare_cpu = time.perf_counter(), time.process_time()
with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
    exec(loop, {})
bare, bare_cpu = time.perf_counter() - start, time.process_time() - bare_cpu
print(json.dumps({"seconds": seconds, "cpu": cpu, "bare_seconds": bare, "bare_cpu": bare_cpu,
                  "digest_chars": len(sent), "peak_before_mib": before, "peak_after_mib": peak,
                  "tree": os.path.dirname(agent_magic.__path__[0])}))
"""


def measure(tree: Path, megabytes: int) -> dict[str, float]:
    result = subprocess.run(
        [sys.executable, "-c", CODE],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=tempfile.mkdtemp(prefix="bench_big_"),
        env={**os.environ, "PYTHONPATH": str(tree), "BENCH_MB": str(megabytes)},
    )
    if result.returncode:
        raise RuntimeError(f"benchmark subprocess failed:\n{result.stderr[-3000:]}")
    got = json.loads(result.stdout.strip().splitlines()[-1])
    if Path(got["tree"]).resolve() != tree.resolve():
        raise RuntimeError(f"measured {got['tree']}, not {tree}")
    return got


def main(argv: list[str] | None = None) -> dict[str, dict[str, list[float]]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trees", nargs="*", type=Path, default=[ROOT], metavar="TREE")
    parser.add_argument("--mb", type=int, default=100, help="megabytes printed (default 100)")
    parser.add_argument("--runs", type=int, default=3, help="rounds (default 3)")
    args = parser.parse_args(argv)
    keys = ("seconds", "cpu", "bare_seconds", "bare_cpu")
    figures = {str(t): {k: [] for k in keys} for t in args.trees}
    for _ in range(args.runs):
        for tree in args.trees:
            got = measure(tree, args.mb)
            for key in keys:
                figures[str(tree)][key].append(got[key])
    print(f"{args.mb} MB in 100-byte lines, {args.runs} rounds: best / median seconds")
    print("| tree | cell wall | cell CPU | plain loop wall | plain loop CPU |")
    print("|---|---:|---:|---:|---:|")
    for tree, got in figures.items():
        cells = " | ".join(f"{min(got[k]):.2f} / {statistics.median(got[k]):.2f}" for k in keys)
        print(f"| {tree} | {cells} |")
    return figures


if __name__ == "__main__":
    main()
