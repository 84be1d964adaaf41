"""The benchmark suite: ``python bench/run.py`` (``--quick`` for fewer runs).

Everything runs against the local OpenAI-compatible server (FakeOpenAIServer, instant
scripted replies) on this machine, in one run, so the figures can be read as ratios.
Each figure is a median over several runs, with min-max. The results are printed and
written to docs/benchmarks.md (``--no-write`` to skip; ``--quick`` writes only with
``--write``), with date, versions and machine, and the targets next to the figures.

1. Per-step overhead of a 20-step conversation (mode never) in a real InteractiveShell,
   next to two floors measured the same way: raw HTTP (http.client + exec) and the
   openai SDK (chat.completions.create + shell.run_cell); streaming off and on; and
   streamed with 1,000 names in the namespace (what the per-step bookkeeping, undo,
   changes and secrets, adds with a user's namespace of that size).
   "Overhead" is the wall time minus the time the server spent answering.
2. Load: ``%load_ext agent_magic`` in a fresh process; the first ``%%agent`` cell's
   extra cost over a second one (cold imports).
3. Replay of a recorded 20-step conversation (bench_replay.py).
4. Context: the namespace summary for 10,000 variables with a 1 GiB array and a
   10-million-row DataFrame (bench_context.py).
5. Big output: a step that prints 100 MB: time, peak memory, what reaches the model.
6. Memory: peak RSS of a 20-step conversation vs. a bare shell doing the same steps.
7. Long lines: each text helper on 1 MB unbroken lines (bench_longlines.py), and what a
   1 MB unbroken line in a task, a reply or a step's output adds to a turn of the loop.
8. Context window: fitting speed, and the largest request of a 200-step cell and of 50
   cells under windows of 2k-32k tokens (bench_window.py).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import http.client
import io
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from agent_magic.testing import FakeOpenAIServer  # noqa: E402
from agent_magic.testing.handler import Handler  # noqa: E402

STEPS = 20
TASK = "Make twenty small variables, one per step, printing each."
CODE = re.compile(r"```python\n(.*?)```", re.S)


def reply(i: int) -> str:
    return f"Step {i}: another value.\n```python\nvalue_{i} = {i} * 2\nprint(value_{i})\n```"


def script(steps: int) -> list[str]:
    return [reply(i) for i in range(1, steps + 1)] + ["All twenty made. TERMINATE"]


def stats(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


# --- server time -------------------------------------------------------------------------


class ServerClock:
    """Adds up the time the local server spends answering chat requests."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._original = Handler._chat

    def __enter__(self) -> ServerClock:
        clock, original = self, self._original

        def timed(handler: Any, *args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return original(handler, *args, **kwargs)
            finally:
                clock.seconds += time.perf_counter() - start

        Handler._chat = timed  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: Any) -> None:
        Handler._chat = self._original  # type: ignore[method-assign]


@contextlib.contextmanager
def model_env(server: FakeOpenAIServer) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in ("OPENAI_BASE_URL", "OPENAI_API_KEY")}
    os.environ["OPENAI_BASE_URL"] = server.base_url
    os.environ["OPENAI_API_KEY"] = "sk-test-bench"
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


# --- 1. per-step overhead --------------------------------------------------------------------


def _shell() -> Any:
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "agent_magic")
    return shell


def _messages() -> list[dict[str, Any]]:
    from agent_magic.conversation import DEFAULT_SYSTEM_PROMPT

    return [{"role": "system", "content": DEFAULT_SYSTEM_PROMPT}, {"role": "user", "content": TASK}]


def _run_reply(messages: list[dict[str, Any]], content: str, run: Callable[[str], Any]) -> bool:
    """Keep the reply, run its code, feed back what it printed; False when it has none."""
    messages.append({"role": "assistant", "content": content})
    found = CODE.search(content)
    if not found:
        return False
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        run(found.group(1))
    messages.append({"role": "user", "content": out.getvalue()})
    return True


def floor_raw_http(server: FakeOpenAIServer, shell: Any, steps: int, stream: bool) -> None:
    """One POST per step with http.client, exec the code, feed back what it printed."""
    url = urlsplit(server.base_url)
    connection = http.client.HTTPConnection(url.hostname, url.port)
    messages = _messages()
    headers = {"Content-Type": "application/json", "Authorization": "Bearer sk-test-bench"}
    for _ in range(steps + 1):
        body = json.dumps({"model": "gpt-4o-mini", "messages": messages, "stream": stream})
        connection.request("POST", url.path + "/chat/completions", body, headers)
        response = connection.getresponse()
        if stream:
            pieces = []
            for line in response:  # server-sent events, one JSON chunk per data line
                if line.startswith(b"data: ") and line[6:].strip() != b"[DONE]":
                    for choice in json.loads(line[6:]).get("choices") or ():
                        pieces.append((choice.get("delta") or {}).get("content") or "")
            content = "".join(pieces)
        else:
            content = json.loads(response.read())["choices"][0]["message"]["content"]
        if not _run_reply(messages, content, lambda code: exec(code, shell.user_ns)):
            break
    connection.close()


def floor_sdk(server: FakeOpenAIServer, shell: Any, steps: int, stream: bool) -> None:
    """The openai SDK's chat.completions.create, and shell.run_cell for the code."""
    import openai

    client = openai.OpenAI(base_url=server.base_url, api_key="sk-test-bench", max_retries=0)
    messages = _messages()
    for _ in range(steps + 1):
        if stream:
            pieces = client.chat.completions.create(
                model="gpt-4o-mini", messages=messages, stream=True
            )
            content = "".join(c.choices[0].delta.content or "" for c in pieces if c.choices)
        else:
            answer = client.chat.completions.create(model="gpt-4o-mini", messages=messages)
            content = answer.choices[0].message.content or ""
        if not _run_reply(
            messages, content, lambda code: shell.run_cell(code, store_history=False)
        ):
            break
    client.close()


def agent_cell(server: FakeOpenAIServer, shell: Any, steps: int, stream: bool) -> None:
    flags = "--mode never --new" + ("" if stream else " --no-stream")
    with contextlib.redirect_stdout(io.StringIO()):
        shell.run_cell_magic("agent", f"{flags} --max-turns {steps + 5}", TASK)
    magics = shell.magics_manager.registry["AgentMagics"]
    assert len(magics.history.replies) == steps + 1, "the conversation ended early"


NAMES = 1_000
MANY_NAMES = f"%%agent (streamed), {NAMES:,} names in the namespace"


def bench_loop(steps: int, runs: int) -> dict[str, Any]:
    shell = _shell()
    magics = shell.magics_manager.registry["AgentMagics"]
    magics.recording = str(Path(tempfile.mkdtemp(prefix="bench_loop_")) / "rec.jsonl")
    magics.max_retries = 0
    variants: dict[str, Callable[[FakeOpenAIServer], None]] = {
        "raw HTTP + exec (floor a)": lambda s: floor_raw_http(s, shell, steps, False),
        "raw HTTP + exec, streamed": lambda s: floor_raw_http(s, shell, steps, True),
        "openai SDK + run_cell (floor b)": lambda s: floor_sdk(s, shell, steps, False),
        "openai SDK + run_cell, streamed": lambda s: floor_sdk(s, shell, steps, True),
        "%%agent --no-stream": lambda s: agent_cell(s, shell, steps, False),
        "%%agent (streamed)": lambda s: agent_cell(s, shell, steps, True),
        MANY_NAMES: lambda s: agent_cell(s, shell, steps, True),
    }
    per_step: dict[str, list[float]] = {name: [] for name in variants}
    server_ms: dict[str, list[float]] = {name: [] for name in variants}
    many = {f"bench_name_{i}": [i] if i % 2 else i for i in range(NAMES)}
    with FakeOpenAIServer() as server, model_env(server):
        for run in range(runs + 1):  # the first round warms imports and caches
            for name, variant in variants.items():
                if name == MANY_NAMES:  # the per-step bookkeeping (undo, changes, secrets)
                    shell.user_ns.update(many)
                server.enqueue(*script(steps))
                with ServerClock() as clock:
                    start = time.perf_counter()
                    variant(server)
                    total = time.perf_counter() - start
                if run:
                    per_step[name].append((total - clock.seconds) * 1000 / (steps + 1))
                    server_ms[name].append(clock.seconds * 1000 / (steps + 1))
                for key in [k for k in shell.user_ns if k.startswith(("value_", "bench_name_"))]:
                    del shell.user_ns[key]
    rows = {
        name: {**stats(v), "server": statistics.median(server_ms[name])}
        for name, v in per_step.items()
    }
    return {"steps": steps, "runs": runs, "rows": rows}


# --- 7. long lines in a turn ------------------------------------------------------------------

LONG_LINE_CASES = ("task", "reply", "output")


def _long_turn(kind: str, line: str) -> tuple[str, list[str]]:
    """A cell (its task) and the replies for it with ``line`` as its task, in the model's
    reply (a string literal in the code) or in what the step prints."""
    if kind == "task":
        return f"Summarise this line: {line}", ["```python\nseen = 1\n```", "Done. TERMINATE"]
    if kind == "reply":
        return "Keep the data.", [f"```python\ndata = '{line}'\n```", "Done. TERMINATE"]
    # The step makes the line: the reply stays short.
    n = len(line)
    code = f"import base64, random\nline = base64.b64encode(random.Random(0).randbytes({n}))"
    code += f"\nprint(line.decode()[:{n}])"
    return "Print the data.", [f"```python\n{code}\n```", "Done. TERMINATE"]


def bench_long_turns(runs: int, chars: int = 1_000_000) -> dict[str, Any]:
    """A 1 MB unbroken line in a task, a reply or a step's output: what it adds to a turn.

    The same two-turn cell (a step, then a final reply) runs with the long line and with a
    10-character one, in a real InteractiveShell against the local server, recording on,
    replies not streamed (streamed, the local server would send a 1 MB reply as 125,000
    events of 8 characters, which measures the SSE parser, not the text handling). The
    figure is the difference in wall time less the server's own time. The line is base64
    (letters, digits, ``+``, ``/``: no spaces, path-like). ``code_ms`` is what IPython
    itself takes to run the reply's code with the long line (its input transformers and
    ``compile`` on a 1 MB line), which a bare ``run_cell`` pays too.
    """
    import base64
    import random

    long_line = base64.b64encode(random.Random(0).randbytes(chars)).decode()[:chars]
    shell = _shell()
    magics = shell.magics_manager.registry["AgentMagics"]
    magics.recording = str(Path(tempfile.mkdtemp(prefix="bench_long_")) / "rec.jsonl")
    magics.max_retries = 0
    added: dict[str, list[float]] = {kind: [] for kind in LONG_LINE_CASES}
    code_ms: list[float] = []
    turns = 2
    with FakeOpenAIServer() as server, model_env(server):
        for run in range(runs + 1):  # the first round warms imports and caches
            for kind in LONG_LINE_CASES:
                cell_ms = {}
                for label, line in (("long", long_line), ("short", long_line[:10])):
                    task, replies = _long_turn(kind, line)
                    server.enqueue(*replies)
                    with ServerClock() as clock, open(os.devnull, "w") as sink:
                        start = time.perf_counter()
                        with contextlib.redirect_stdout(sink):
                            shell.run_cell_magic("agent", "--mode never --new --no-stream", task)
                        total = time.perf_counter() - start
                    assert len(magics.history.replies) == turns, "the cell ended early"
                    cell_ms[label] = (total - clock.seconds) * 1000
                if run:
                    added[kind].append(cell_ms["long"] - cell_ms["short"])
            start = time.perf_counter()
            shell.run_cell(f"data = '{long_line}'", store_history=False)
            if run:
                code_ms.append((time.perf_counter() - start) * 1000)
    shell.user_ns.pop("data", None)
    return {
        "chars": chars,
        "runs": runs,
        "turns": turns,
        "added_ms": {k: stats(v) for k, v in added.items()},
        "code_ms": stats(code_ms),
    }


def bench_text_helpers(chars: int, runs: int) -> list[dict[str, Any]]:
    """bench_longlines.py's rows: each text helper on 1 MB lines of several shapes."""
    import bench_longlines

    return bench_longlines.main(size=chars, runs=runs)


def bench_windows(quick: bool) -> dict[str, Any]:
    """bench_window.py's figures: fitting speed and long sessions under a context window."""
    import bench_window

    if quick:
        return bench_window.run(steps=100, cells=20, sizes=(20, 200), runs=3)
    return bench_window.run()


# --- subprocess measurements ------------------------------------------------------------------


def _python(code: str, env: dict[str, str] | None = None, timeout: float = 600) -> dict[str, Any]:
    """Run code in a fresh interpreter; it prints one JSON object as its last line."""
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=tempfile.mkdtemp(prefix="bench_proc_"),
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
    )
    if result.returncode:
        raise RuntimeError(f"benchmark subprocess failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


_CACHE: dict[str, str] = {}


def bytecode_cached() -> dict[str, str]:
    """Environment for a subprocess that imports from cached bytecode, as an installed
    package does: a private ``PYTHONPYCACHEPREFIX``, written on the first use. (With
    ``PYTHONDONTWRITEBYTECODE=1``, as in some sandboxes, agent_magic's own modules, never
    compiled by an installer in an editable install, are compiled at every import.)"""
    if not _CACHE:
        _CACHE["PYTHONPYCACHEPREFIX"] = tempfile.mkdtemp(prefix="bench_pycache_")
        _CACHE["PYTHONDONTWRITEBYTECODE"] = ""
        warm = "from IPython.core.interactiveshell import InteractiveShell as S\n"
        warm += "S.instance().run_line_magic('load_ext', 'agent_magic')\n"
        warm += (
            "import openai, agent_magic.kernel.executor, agent_magic.context, agent_magic.export\n"
        )
        warm += "print('{}')"
        _python(warm, _CACHE)
    return dict(_CACHE)


_PEAK = """
def peak_mib():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
"""


def bench_load(runs: int, idle: float = 2.0) -> dict[str, Any]:
    code = """
    import json, time
    from IPython.core.interactiveshell import InteractiveShell
    shell = InteractiveShell.instance()
    start = time.perf_counter()
    shell.run_line_magic("load_ext", "agent_magic")
    load = time.perf_counter() - start
    print(json.dumps({"load_ms": load * 1000}))
    """
    cached = bytecode_cached()
    loads = [_python(code, cached)["load_ms"] for _ in range(runs)]
    source = {"PYTHONDONTWRITEBYTECODE": "1", "PYTHONPYCACHEPREFIX": ""}
    compiling = [_python(code, source)["load_ms"] for _ in range(runs)]
    cells = """
    import contextlib, io, json, os, time
    from IPython.core.interactiveshell import InteractiveShell
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "agent_magic")
    shell.run_line_magic("config", "AgentMagics.recording = ''")
    time.sleep(float(os.environ["BENCH_IDLE"]))  # the user reads the notebook meanwhile
    times = []
    for _ in range(2):
        start = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            shell.run_cell_magic("agent", "--mode never", "Say done.")
        times.append((time.perf_counter() - start) * 1000)
    print(json.dumps({"first_ms": times[0], "second_ms": times[1]}))
    """
    waits = {"at once": 0.0, f"after {idle:g} s": idle}
    first: dict[str, list[float]] = {label: [] for label in waits}
    with FakeOpenAIServer() as server:
        env = {"OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": "sk-test-bench", **cached}
        for label, wait in waits.items():
            for _ in range(runs):
                server.enqueue("Done. TERMINATE", "Done. TERMINATE")
                got = _python(cells, {**env, "BENCH_IDLE": str(wait)})
                first[label].append(got["first_ms"] - got["second_ms"])
    return {
        "load": stats(loads),
        "load_compiling": stats(compiling),
        "first_cell_extra": {label: stats(v) for label, v in first.items()},
        "importtime": import_offenders(),
    }


def import_offenders(top: int = 6) -> list[tuple[str, float]]:
    """The slowest cumulative imports of ``import agent_magic`` + load (python -X importtime)."""
    result = subprocess.run(
        [
            sys.executable,
            "-X",
            "importtime",
            "-c",
            "from IPython.core.interactiveshell import InteractiveShell as S;"
            "S.instance().run_line_magic('load_ext', 'agent_magic')",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), **bytecode_cached()},
        cwd=tempfile.mkdtemp(),
    )
    rows = []
    for line in result.stderr.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            name = parts[2].rstrip()
            if name.strip().startswith("agent_magic") or name.strip() in ("openai", "ipywidgets"):
                rows.append((name.strip(), int(parts[1]) / 1000))
    return sorted(rows, key=lambda r: -r[1])[:top]


def bench_big_output(megabytes: int, runs: int) -> dict[str, Any]:
    """bench_big_output.py's cell, ``runs`` times in fresh interpreters."""
    import bench_big_output

    got = [bench_big_output.measure(ROOT, megabytes) for _ in range(runs)]
    return {
        "megabytes": megabytes,
        "seconds": stats([g["seconds"] for g in got]),
        "bare_seconds": stats([g["bare_seconds"] for g in got]),
        "peak_growth_mib": stats([g["peak_after_mib"] - g["peak_before_mib"] for g in got]),
        "digest_chars": got[0]["digest_chars"],
    }


def bench_memory(steps: int, runs: int) -> dict[str, Any]:
    bare = _PEAK + textwrap.dedent(
        """
    import contextlib, io, json, os
    from IPython.core.interactiveshell import InteractiveShell
    shell = InteractiveShell.instance()
    steps = int(os.environ["BENCH_STEPS"])
    with contextlib.redirect_stdout(io.StringIO()):
        for i in range(1, steps + 1):
            shell.run_cell(f"value_{i} = {i} * 2\\nprint(value_{i})")
    print(json.dumps({"peak_mib": peak_mib()}))
    """
    )
    agent = _PEAK + textwrap.dedent(
        """
    import contextlib, io, json, os
    from IPython.core.interactiveshell import InteractiveShell
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "agent_magic")
    steps = int(os.environ["BENCH_STEPS"])
    with contextlib.redirect_stdout(io.StringIO()):
        shell.run_cell_magic("agent", f"--mode never --max-turns {steps + 5}", "twenty values")
    print(json.dumps({"peak_mib": peak_mib()}))
    """
    )
    bares = [_python(bare, {"BENCH_STEPS": str(steps)})["peak_mib"] for _ in range(runs)]
    agents = []
    with FakeOpenAIServer() as server:
        env = {
            "OPENAI_BASE_URL": server.base_url,
            "OPENAI_API_KEY": "sk-test-bench",
            "BENCH_STEPS": str(steps),
        }
        for _ in range(runs):
            server.enqueue(*script(steps))
            agents.append(_python(agent, env)["peak_mib"])
    return {"steps": steps, "bare_mib": stats(bares), "agent_mib": stats(agents)}


# --- the report --------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    import IPython
    import openai

    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    sha = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
    ).stdout.strip()
    return {
        "date": datetime.date.today().isoformat(),
        "python": platform.python_version(),
        "ipython": IPython.__version__,
        "openai": openai.__version__,
        "agent_magic": sha or "unknown",
        "cpu": f"{os.cpu_count()} × {cpu}",
    }


def _verdict(ok: bool) -> str:
    return "met" if ok else "**not met**"


def targets(report: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(target, measured, ratio, verdict) rows, from figures measured in this one run."""
    rows = report["loop"]["rows"]
    med = {name: row["median"] for name, row in rows.items()}
    out: list[tuple[str, str, str, str]] = []
    for ours, raw, sdk, label in (
        (
            "%%agent --no-stream",
            "raw HTTP + exec (floor a)",
            "openai SDK + run_cell (floor b)",
            "",
        ),
        (
            "%%agent (streamed)",
            "raw HTTP + exec, streamed",
            "openai SDK + run_cell, streamed",
            ", streamed",
        ),
    ):
        if ours not in med or raw not in med:
            continue
        extra = med[ours] - med[raw]
        out.append(
            (
                f"per step{label}: within 2 ms of raw HTTP{label}",
                f"{med[ours]:.2f} ms vs {med[raw]:.2f} ms: {extra:+.2f} ms",
                f"{extra / 2:.2f} of the 2 ms",
                _verdict(extra <= 2),
            )
        )
        if sdk in med:
            out.append(
                (
                    f"per step{label}: below the openai SDK floor{label}",
                    f"{med[ours]:.2f} ms vs {med[sdk]:.2f} ms",
                    f"×{med[ours] / med[sdk]:.2f} of the SDK",
                    _verdict(med[ours] < med[sdk]),
                )
            )
    if MANY_NAMES in med and "%%agent (streamed)" in med:
        extra = med[MANY_NAMES] - med["%%agent (streamed)"]
        out.append(
            (
                f"per step with {NAMES:,} names: bookkeeping (undo, changes, secrets) ≤ 2 ms",
                f"{med[MANY_NAMES]:.2f} ms vs {med['%%agent (streamed)']:.2f} ms: {extra:+.2f} ms",
                f"{extra / 2:.2f} of the 2 ms",
                _verdict(extra <= 2),
            )
        )
    load = report["load"]["load"]["median"]
    compiling = report["load"].get("load_compiling", {}).get("median", load)
    out.append(
        (
            "`%load_ext agent_magic` ≤ 50 ms",
            f"{load:.1f} ms; {compiling:.1f} ms compiling from source",
            f"×{load / 50:.2f}; ×{compiling / 50:.2f}",
            _verdict(max(load, compiling) <= 50),
        )
    )
    for label, first in report["load"]["first_cell_extra"].items():
        out.append(
            (
                f"first cell's extra cost (SDK import off its path), run {label}",
                f"{first['median']:.0f} ms",
                "–",
                "reported",
            )
        )
    replay = report["replay"]
    over = replay["overhead_median_ms"]
    out.append(
        (
            f"replay of {replay['steps']} steps ≤ 500 ms + the code's own time",
            f"{over:.1f} ms + {replay['code_median_ms']:.1f} ms",
            f"×{over / 500:.3f}",
            _verdict(over <= 500),
        )
    )
    context = report.get("context")
    if context:
        [summary] = [
            r["median_ms"] for r in context["results"] if r["function"] == "summarize_namespace"
        ]
        out.append(
            (
                "namespace summary (10,000 variables) ≤ 20 ms",
                f"{summary:.1f} ms",
                f"×{summary / 20:.2f}",
                _verdict(summary <= 20),
            )
        )
    big = report["big_output"]
    growth = big["peak_growth_mib"]["median"]
    printed_mib = big["megabytes"] * 1e6 / 2**20
    out.append(
        (
            f"{big['megabytes']} MB print: bounded memory",
            f"peak RSS +{growth:.1f} MiB",
            f"{growth / printed_mib:.4f} MiB per MiB printed",
            _verdict(growth < 0.05 * printed_mib + 8),
        )
    )
    out.append(
        (
            f"{big['megabytes']} MB print: bounded digest",
            f"{big['digest_chars']:,} characters to the model",
            f"{big['digest_chars'] / (big['megabytes'] * 1e6):.1e} of the output",
            _verdict(big["digest_chars"] <= 10_000),
        )
    )
    long = report.get("long_turns")
    if long:
        for kind, added in long["added_ms"].items():
            per_turn = added["median"] / long["turns"]
            out.append(
                (
                    f"1 MB unbroken line in a {kind} adds ≤ 0.1 s to a turn",
                    f"+{added['median']:.0f} ms over the {long['turns']}-turn cell",
                    f"{per_turn / 100:.2f} of the 0.1 s per turn",
                    _verdict(per_turn <= 100),
                )
            )
    helpers = report.get("text_helpers")
    if helpers:
        worst = max(helpers, key=lambda row: row["ms"])
        out.append(
            (
                "each text helper on a 1 MB unbroken line ≤ 100 ms",
                f"slowest: {worst['helper']} on {worst['line']}, {worst['ms']:.1f} ms",
                f"×{worst['ms'] / 100:.2f}",
                _verdict(worst["ms"] <= 100),
            )
        )
    windows = report.get("windows")
    if windows:
        rows_ = [row for rows in windows["sessions"].values() for row in rows]
        over = [row for row in rows_ if row["max_estimate"] > row["budget"]]
        worst = max(rows_, key=lambda row: row["max_estimate"] / row["budget"])
        out.append(
            (
                "long sessions: every fitted request within its budget",
                f"largest {worst['max_estimate']} of {worst['budget']} tokens "
                f"(window {worst['window']})",
                f"×{worst['max_estimate'] / worst['budget']:.2f} of the budget",
                _verdict(not over),
            )
        )
    return out


def _range(s: dict[str, float], digits: int = 2) -> str:
    return f"{s['median']:.{digits}f} ({s['min']:.{digits}f}–{s['max']:.{digits}f})"


def markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    loop = report["loop"]
    rows = loop["rows"]
    raw = rows["raw HTTP + exec (floor a)"]["median"]
    sdk = rows["openai SDK + run_cell (floor b)"]["median"]
    lines = [
        "# Benchmarks",
        "",
        f"`python bench/run.py{' --quick' if report.get('quick') else ''}` on {m['date']}: "
        f"Python {m['python']}, IPython {m['ipython']}, openai {m['openai']}, agent_magic "
        f"{m['agent_magic']}; {m['cpu']}. Each figure: median (min–max) over the runs; all in "
        "one run, against the local OpenAI-compatible server (instant scripted replies), so "
        "read them as ratios.",
        "",
        "## Targets",
        "",
        "| target | measured | ratio | |",
        "|---|---|---|---|",
    ]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in targets(report)]
    lines += [
        "",
        f"## 1. Per-step overhead, {loop['steps']}-step conversation, mode never "
        f"({loop['runs']} runs)",
        "",
        "Wall time minus the server's own time, per request, in a real InteractiveShell. "
        "Every variant keeps the same growing history and runs the same code; the floors "
        "feed back what the code printed, `%%agent` its digest, and records every event to "
        "a JSON Lines file.",
        "",
        "| | ms per step | vs raw HTTP | vs SDK | server ms |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, row in rows.items():
        lines.append(
            f"| {name} | {_range(row)} | {row['median'] - raw:+.2f} | "
            f"{row['median'] - sdk:+.2f} | {row['server']:.2f} |"
        )
    load = report["load"]
    lines += [
        "",
        "## 2. Load",
        "",
        "| | ms |",
        "|---|---:|",
        f"| `%load_ext agent_magic`, fresh process | {_range(load['load'], 1)} |",
    ]
    if "load_compiling" in load:
        lines.append(
            "| ... with no bytecode cache (`PYTHONDONTWRITEBYTECODE=1`: agent_magic compiled "
            f"from source) | {_range(load['load_compiling'], 1)} |"
        )
    for label, s in load["first_cell_extra"].items():
        lines.append(
            f"| first `%%agent` cell's extra cost over the second, run {label} | {_range(s, 0)} |"
        )
    lines += [
        "",
        "Fresh processes import from cached bytecode, as an installed package does, "
        "except in the row that says otherwise. "
        "From `%load_ext` on, a background thread imports the openai SDK, builds the client "
        "the environment points at, and imports what a cell needs; a first cell run a "
        "moment later finds it ready, one run at once waits for it.",
        "",
        "Slowest imports under `python -X importtime` (cumulative ms):",
        "",
    ]
    lines += [f"- `{name}`: {ms:.1f}" for name, ms in load["importtime"]]
    replay = report["replay"]
    lines += [
        "",
        "## 3. Replay",
        "",
        f"A recorded {replay['steps']}-step conversation replayed offline: "
        f"{replay['overhead_median_ms']:.1f} ms ({replay['overhead_min_ms']:.1f}–"
        f"{replay['overhead_max_ms']:.1f}) beyond the code's own "
        f"{replay['code_median_ms']:.1f} ms.",
        "",
    ]
    context = report.get("context")
    if context:
        import bench_context

        per = {r["function"]: r["median_ms"] for r in context["results"]}
        lines += ["## 4. Context", "", bench_context.markdown(context), ""]
        if "step_start" in per and "step_changes" in per:
            lines += [
                "The summary goes with each task; every step takes a `step_start` before its "
                "code and runs `step_changes` after it: "
                f"{per['step_start'] + per['step_changes']:.1f} ms per step at this size "
                "(well under 0.1 ms with a few dozen variables).",
                "",
            ]
    big = report["big_output"]
    lines += [
        "## 5. Big output",
        "",
        f"A step printing {big['megabytes']} MB (100-byte lines): "
        f"{_range(big['seconds'], 2)} s for the cell, against "
        f"{_range(big['bare_seconds'], 2)} s for the same loop in plain Python printing to "
        f"/dev/null; peak RSS grew by {_range(big['peak_growth_mib'], 1)} MiB; the model was "
        f"sent {big['digest_chars']:,} characters (head and tail, the cut marked).",
        "",
    ]
    memory = report["memory"]
    lines += [
        "## 6. Memory",
        "",
        f"Peak RSS, {memory['steps']} steps: bare shell {_range(memory['bare_mib'], 1)} MiB; "
        f"`%%agent` {_range(memory['agent_mib'], 1)} MiB "
        f"({memory['agent_mib']['median'] - memory['bare_mib']['median']:+.1f} MiB: the "
        "openai SDK, the extension, the conversation).",
        "",
    ]
    long = report.get("long_turns")
    helpers = report.get("text_helpers")
    if long or helpers:
        lines += ["## 7. Long lines", ""]
    if long:
        lines += [
            f"One unbroken line of {long['chars']:,} characters (base64) in a two-turn cell "
            "(a step, then a final reply), against the same cell with a 10-character line: "
            f"the difference in wall time less the server's, {long['runs']} runs, replies not "
            "streamed, recording on.",
            "",
            "| the line is in | added to the cell, ms | per turn, ms |",
            "|---|---:|---:|",
        ]
        for kind, added in long["added_ms"].items():
            lines.append(
                f"| the {kind} | {_range(added, 0)} | {added['median'] / long['turns']:.0f} |"
            )
        lines += [
            "",
            f"Of the reply's figure, {_range(long['code_ms'], 0)} ms is IPython running the "
            "code itself (its input transformers and `compile` on a 1 MB line), which a bare "
            "`run_cell` pays too.",
            "",
        ]
    if helpers:
        import bench_longlines

        lines += ["Each text helper on 1 MB lines:", "", bench_longlines.markdown(helpers), ""]
    windows = report.get("windows")
    if windows:
        import bench_window

        lines += [
            "## 8. Context window",
            "",
            "CPU ms per `window.fit` of a history, and each request of long sessions fitted "
            "as the loop fits it (bench_window.py).",
            "",
            bench_window.markdown(windows),
            "",
        ]
    if report.get("notes"):
        lines += ["## What changed", "", report["notes"], ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs, a 20 MB print")
    parser.add_argument(
        "--write",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="write docs/benchmarks.md (default: yes, except with --quick)",
    )
    parser.add_argument("--no-context", action="store_true", help="skip the 1 GiB context case")
    parser.add_argument("--json", metavar="PATH", help="also save the figures as JSON")
    parser.add_argument(
        "--from-json", metavar="PATH", help="render figures saved by --json; measure nothing"
    )
    args = parser.parse_args(argv)
    if args.from_json:
        report = json.loads(Path(args.from_json).read_text())
        return _finish(report, args)
    runs = 3 if args.quick else 7
    loop_runs = 3 if args.quick else 15  # cheap, and the noisiest figures
    steps = STEPS
    report: dict[str, Any] = {"machine": machine(), "quick": args.quick}
    report["loop"] = bench_loop(steps, loop_runs)
    report["load"] = bench_load(2 if args.quick else 5)
    import bench_replay

    report["replay"] = bench_replay.run(steps=steps, runs=runs)
    if not args.no_context:
        import bench_context

        report["context"] = bench_context.run(runs=runs)
    report["big_output"] = bench_big_output(20 if args.quick else 100, 1 if args.quick else 3)
    report["memory"] = bench_memory(steps, 1 if args.quick else 3)
    report["long_turns"] = bench_long_turns(1 if args.quick else 3)
    report["text_helpers"] = bench_text_helpers(1_000_000, 1 if args.quick else 3)
    report["windows"] = bench_windows(args.quick)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    return _finish(report, args)


def _finish(report: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    notes = ROOT / "bench" / "NOTES.md"
    if notes.exists():
        report["notes"] = notes.read_text().strip()
    text = markdown(report)
    print(text)
    if args.write or (args.write is None and not report.get("quick")):
        (ROOT / "docs" / "benchmarks.md").write_text(text + "\n")
    return report


if __name__ == "__main__":
    main()
