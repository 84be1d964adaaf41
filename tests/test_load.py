"""Load: long cells and long sessions stay flat in memory and time, and bounded in size.

Through a real InteractiveShell running ``%%agent --mode never`` against the local
server (instant scripted replies), as a user's long session would:

* one cell of 200 steps (``--max-turns 201``), each step printing more than the last;
* 50 cells in one kernel, one after the other, each a new task over the same history.

Measured while they run: the kernel's resident memory (``VmRSS``) after each step, and
the time of each step (IPython's ``post_run_cell`` event fires once per step, so the
gaps between events are whole turns: request, reply, review, run). Asserted as ratios
and generous bounds, never tight wall-clock figures: memory grows by at most ~20 MB
once warm, the last 50 steps (or last 10 cells) take at most 3x the first ones, and
with ``%config AgentMagics.context_window = 4096`` every request's estimated size
(:func:`agent_magic.window.estimate_tokens` of its messages) stays within the window.

The memory runs use a server in its own process (``python -m agent_magic.testing``):
an in-process server keeps every request body it was sent, which would be measured as
the kernel's. Sizes: ``AGENT_MAGIC_LOAD_STEPS`` (default 200) and
``AGENT_MAGIC_LOAD_CELLS`` (default 50) scale the runs, e.g. down on a slow machine,
up when hunting a leak.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent_magic.testing import FakeOpenAIServer
from agent_magic.window import estimate_tokens

STEPS = int(os.environ.get("AGENT_MAGIC_LOAD_STEPS", "200"))
CELLS = int(os.environ.get("AGENT_MAGIC_LOAD_CELLS", "50"))
CELL_STEPS = 3  # code steps per cell in the many-cells run (then a final reply)
WINDOW = 4096
MEMORY_MIB = 20.0
SLOWDOWN = 3.0
EDGE = max(STEPS // 4, 5)  # the steps compared: the first and the last this many
CELL_EDGE = max(CELLS // 5, 3)

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/status").exists(), reason="reads resident memory from /proc"
)


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS in /proc/self/status")


def step_reply(i: int) -> str:
    """Step ``i``: a small assignment whose output grows with ``i`` (~10 characters a step)."""
    return f"Step {i}.\n```python\nx = {i}\nprint('v' * {i * 10})\n```"


def one_cell_script(steps: int) -> list[str]:
    return [step_reply(i) for i in range(1, steps + 1)] + ["All done. TERMINATE"]


def many_cells_script(cells: int) -> list[str]:
    replies = []
    for cell in range(cells):
        for i in range(1, CELL_STEPS + 1):
            replies.append(
                f"Cell {cell}, step {i}.\n```python\nx = {cell * 10 + i}\n"
                f"print('w' * {(cell + 1) * 20 + i})\n```"
            )
        replies.append(f"Cell {cell} done. TERMINATE")
    return replies


class Probe:
    """Time and resident memory after every step (IPython's ``post_run_cell``)."""

    def __init__(self, shell: Any) -> None:
        self.shell = shell
        self.times: list[float] = []
        self.rss: list[float] = []

    def __call__(self, result: Any) -> None:
        self.times.append(time.perf_counter())
        self.rss.append(rss_mib())

    def __enter__(self) -> Probe:
        self.shell.events.register("post_run_cell", self)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.shell.events.unregister("post_run_cell", self)

    def gaps_ms(self) -> list[float]:
        return [(b - a) * 1000 for a, b in zip(self.times, self.times[1:], strict=False)]


@contextlib.contextmanager
def server_process(replies: list[str], tmp_path: Path) -> Iterator[str]:
    """A FakeOpenAIServer in its own process, answering ``replies``; yields its base_url.

    It stops when the test ends (SIGTERM to its PID), or by itself after 10 minutes or
    when the test run is killed (``--parent-pid``).
    """
    script = tmp_path / "replies.json"
    script.write_text(json.dumps(replies))
    process = subprocess.Popen(
        [sys.executable, "-m", "agent_magic.testing", "--script", str(script)]
        + ["--max-seconds", "600", "--parent-pid", str(os.getpid())],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        base_url = (process.stdout.readline() if process.stdout else "").strip()
        assert base_url.startswith("http://"), "the server process did not start"
        yield base_url
    finally:
        process.terminate()
        process.wait(timeout=30)
        if process.stdout:
            process.stdout.close()


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Output to /dev/null: pytest's capture would keep every step's printout in memory."""
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        yield


def configure(shell: Any) -> None:
    """The session under load: a context window, and nothing else unusual."""
    shell.run_line_magic("config", f"AgentMagics.context_window = {WINDOW}")


def warm_up(shell: Any) -> None:
    """One short cell first: imports, the client, the first request's caches."""
    with quiet():
        shell.run_cell_magic("agent", "--mode never --max-turns 3", "Warm up.")


def conversation_size(shell: Any) -> int:
    magics = shell.magics_manager.registry["AgentMagics"]
    return len(magics.history.replies)


# -- one cell, 200 steps ------------------------------------------------------------------


def flat(label: str, memory: list[float], times: list[float], edge: int) -> list[str]:
    """What went wrong, if anything: memory grown after the first ``edge`` entries, or the
    last ``edge`` times slower than the first ones."""
    problems = []
    warm = memory[edge - 1]
    growth = max(memory[edge:]) - warm
    if growth >= MEMORY_MIB:
        problems.append(
            f"{label}: resident memory grew {growth:.1f} MiB after the first {edge} "
            f"({warm:.1f} -> {max(memory):.1f} MiB)"
        )
    first, last = statistics.fmean(times[:edge]), statistics.fmean(times[-edge:])
    # The figures, for ``pytest -rP`` (or -s): what a report quotes.
    print(
        f"{label}: +{growth:.1f} MiB after the first {edge}; {first:.1f} ms -> "
        f"{last:.1f} ms (x{last / first:.2f})"
    )
    if last / first >= SLOWDOWN:
        problems.append(
            f"{label}: the last {edge} took {last:.1f} ms each, the first {first:.1f} ms "
            f"(x{last / first:.1f})"
        )
    return problems


def test_a_long_cell_stays_flat(shell, tmp_path, monkeypatch) -> None:
    """200 steps in one cell: memory flat once warm, the last steps as quick as the first."""
    configure(shell)
    warmup = ["```python\nwarm = 1\nprint(warm)\n```", "Warm. TERMINATE"]
    with server_process(warmup + one_cell_script(STEPS), tmp_path) as base_url:
        monkeypatch.setenv("OPENAI_BASE_URL", base_url)
        warm_up(shell)
        with Probe(shell) as probe, quiet():
            shell.run_cell_magic(
                "agent", f"--mode never --max-turns {STEPS + 1}", "Count up, printing more."
            )
    assert len(probe.times) == STEPS and shell.user_ns["x"] == STEPS, "every step ran"
    # Memory after each step; time of each step but the first (the gap since the one before).
    problems = flat(f"{STEPS} steps in one cell", probe.rss[1:], probe.gaps_ms(), EDGE)
    assert not problems, "; ".join(problems)


def test_many_cells_stay_flat(shell, tmp_path, monkeypatch) -> None:
    """50 cells in one kernel over one history: memory flat, the last cells as quick."""
    configure(shell)
    warmup = ["```python\nwarm = 1\nprint(warm)\n```", "Warm. TERMINATE"]
    times: list[float] = []
    memory: list[float] = []
    with server_process(warmup + many_cells_script(CELLS), tmp_path) as base_url:
        monkeypatch.setenv("OPENAI_BASE_URL", base_url)
        warm_up(shell)
        for cell in range(CELLS):
            started = time.perf_counter()
            with quiet():
                shell.run_cell_magic(
                    "agent", f"--mode never --max-turns {CELL_STEPS + 1}", f"Question {cell}."
                )
            times.append((time.perf_counter() - started) * 1000)
            memory.append(rss_mib())
            assert shell.user_ns["x"] == cell * 10 + CELL_STEPS, f"cell {cell} ran every step"
    assert conversation_size(shell) == 2 + CELLS * (CELL_STEPS + 1), "one history throughout"
    problems = flat(f"{CELLS} cells in one kernel", memory, times, CELL_EDGE)
    assert not problems, "; ".join(problems)


# -- request size -----------------------------------------------------------------------


def assert_within_window(server: FakeOpenAIServer, shell: Any, label: str) -> None:
    requests = server.chat_requests
    sizes = [estimate_tokens(request.messages) for request in requests]
    history = estimate_tokens(shell.magics_manager.registry["AgentMagics"].history.messages)
    assert history > 4 * WINDOW, "the history outgrew the window (else nothing is tested)"
    over = [(n, size) for n, size in enumerate(sizes) if size > WINDOW]
    print(f"{label}: largest request {max(sizes)} tokens of {WINDOW}; history {history}")
    assert not over, (
        f"{label}: {len(over)} of {len(sizes)} requests over the {WINDOW}-token window "
        f"(largest {max(sizes)} tokens, request #{sizes.index(max(sizes))}; "
        f"the whole history is {history})"
    )
    last = requests[-1].messages
    assert last[0]["role"] == "system", "the system message is always sent"


def test_a_long_cell_stays_within_the_window(shell, openai_env: FakeOpenAIServer) -> None:
    configure(shell)
    openai_env.enqueue(*one_cell_script(STEPS))
    with quiet():
        shell.run_cell_magic(
            "agent", f"--mode never --max-turns {STEPS + 1}", "Count up, printing more."
        )
    assert shell.user_ns["x"] == STEPS
    assert_within_window(openai_env, shell, f"{STEPS} steps in one cell")
    # The latest step's output is what the model must see: it is in the last request.
    assert "v" * (STEPS * 10) in json.dumps(openai_env.chat_requests[-1].messages)


def test_many_cells_stay_within_the_window(shell, openai_env: FakeOpenAIServer) -> None:
    configure(shell)
    openai_env.enqueue(*many_cells_script(CELLS))
    with quiet():
        for cell in range(CELLS):
            shell.run_cell_magic(
                "agent", f"--mode never --max-turns {CELL_STEPS + 1}", f"Question {cell}."
            )
    assert shell.user_ns["x"] == (CELLS - 1) * 10 + CELL_STEPS
    assert_within_window(openai_env, shell, f"{CELLS} cells in one kernel")
    assert f"Question {CELLS - 1}." in json.dumps(openai_env.chat_requests[-1].messages)
