"""Instructions per step, for comparing two trees on a noisy machine:
``python bench/callgrind_step.py TREE [TREE ...] [--stream] [--cells N]``.

Wall and CPU times here move by half from one minute to the next when other work shares
the cores; instruction counts do not (repeated runs agree within ~0.2 %). For each tree
(a checkout: its ``agent_magic`` and ``bench/run.py`` are used), this runs the 20-step
conversation of ``run.py`` (mode never, recording on, the scripted server in the same
process) under ``valgrind --tool=callgrind`` with instrumentation off, warms up with two
cells, switches it on (``callgrind_control -i on``) for ``--cells`` more, and prints the
instructions of every thread per step. ``--names 1000`` puts run.py's 1,000 names in the
namespace first (the per-step bookkeeping: undo, changes, secrets). Instructions in the
kernel (system calls) are not counted. Needs valgrind; takes about a minute per tree and mode.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DRIVER = """
import sys, time
from pathlib import Path
tree, stream, cells, go = sys.argv[1], sys.argv[2] == "stream", int(sys.argv[3]), Path(sys.argv[4])
names = int(sys.argv[5])
sys.path[:0] = [tree, tree + "/bench"]
import run
step = run.floor_raw_http if sys.argv[6] == "floor" else run.agent_cell
from agent_magic.testing import FakeOpenAIServer
shell = run._shell()
magics = shell.magics_manager.registry["AgentMagics"]
magics.recording = str(Path(run.tempfile.mkdtemp()) / "rec.jsonl")
magics.max_retries = 0
shell.user_ns.update({f"bench_name_{i}": [i] if i % 2 else i for i in range(names)})
with FakeOpenAIServer() as server, run.model_env(server):
    for _ in range(2):
        server.enqueue(*run.script(run.STEPS))
        step(server, shell, run.STEPS, stream)
    server.enqueue(*(run.script(run.STEPS) * cells))
    print("READY", flush=True)
    while not go.exists():
        time.sleep(0.05)
    for _ in range(cells):
        step(server, shell, run.STEPS, stream)
    print("DONE", flush=True)
    while go.exists():
        time.sleep(0.05)
"""


def _wait_for(word: str, log: Path, process: subprocess.Popen[bytes]) -> None:
    while word not in log.read_text():
        if process.poll() is not None:
            raise SystemExit(f"the run under valgrind ended early (see {log})")
        time.sleep(0.5)


def instructions(tree: Path, stream: bool, cells: int, names: int = 0, floor: bool = False) -> int:
    """Instructions of every thread while ``cells`` conversations ran."""
    work = Path(tempfile.mkdtemp(prefix="callgrind_step_"))
    driver, log, out, go = (work / n for n in ("driver.py", "log", "callgrind.out", "go"))
    driver.write_text(DRIVER)
    python = os.path.realpath(sys.executable)  # not a shim that execs it (pyenv)
    command = ["valgrind", "--tool=callgrind", "--instr-atstart=no"]
    command += [f"--callgrind-out-file={out}", python, str(driver), str(tree)]
    command += ["stream" if stream else "no-stream", str(cells), str(go), str(names)]
    command += ["floor" if floor else "agent"]
    with log.open("w") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)
    try:
        _wait_for("READY", log, process)
        subprocess.run(
            ["callgrind_control", "-i", "on", str(process.pid)], check=True, capture_output=True
        )
        go.touch()
        _wait_for("DONE", log, process)
        subprocess.run(
            ["callgrind_control", "-i", "off", str(process.pid)], check=True, capture_output=True
        )
        go.unlink()
        process.wait(120)
    finally:
        if process.poll() is None:
            process.kill()
    totals = re.search(r"^totals:\s*(\d+)", out.read_text(), re.M)
    if totals is None:
        raise SystemExit(f"no totals in {out}")
    return int(totals.group(1))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trees", nargs="+", type=Path, help="checkouts to measure")
    parser.add_argument("--stream", action="store_true", help="streamed replies")
    parser.add_argument("--cells", type=int, default=2, help="conversations counted (2)")
    parser.add_argument(
        "--names", type=int, default=0, help="names put in the namespace first (as run.py's 1,000)"
    )
    parser.add_argument(
        "--floor", action="store_true", help="also count run.py's raw-HTTP floor (once)"
    )
    args = parser.parse_args(argv)
    steps = 21 * args.cells  # run.STEPS steps and the final reply, per cell
    if args.floor:
        count = instructions(args.trees[0].resolve(), args.stream, args.cells, args.names, True)
        print(f"raw HTTP + exec (floor): {count / steps / 1e6:.3f} M instructions per step")
    for tree in args.trees:
        count = instructions(tree.resolve(), args.stream, args.cells, args.names)
        print(f"{tree}: {count / steps / 1e6:.3f} M instructions per step ({count:,} in all)")


if __name__ == "__main__":
    main()
