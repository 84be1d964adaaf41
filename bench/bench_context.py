"""How long agent_magic.context takes on a big, hostile namespace.

``python bench/bench_context.py`` prints a Markdown table; ``run()`` returns the same
figures as a dict for a benchmark runner. The namespace: 10,000 variables of everyday
kinds (numbers, strings, lists, dicts, small arrays and frames, functions, objects),
a 1 GiB numpy array (``np.zeros``: the pages are never touched), a 10-million-row
DataFrame, and the objects that stall careless describers: a ``__repr__`` that sleeps
10 s, one that raises, a ``__getattr__`` that claims every attribute, a dict with a
million items and a list that contains itself.

The target is 20 ms for ``summarize_namespace`` on a 2-core machine. The first call in a
process also pays one-off costs (pandas builds its formatters on first use), so it is
reported apart from the timed runs. The slowest runs are usually a full garbage
collection that the call's allocations happen to trigger; its cost grows with the
number of objects in the session, not with anything this module does. The runs are
repeated with the collector paused (as ``timeit`` does) to show that apart.
"""

from __future__ import annotations

import gc
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agent_magic.context import step_changes, step_start, summarize_namespace  # noqa: E402

VARIABLES = 10_000
RUNS = 7
TARGET_MS = 20.0


class SlowRepr:
    def __repr__(self) -> str:
        time.sleep(10)
        return "slow"


class RaisingRepr:
    def __repr__(self) -> str:
        raise RuntimeError("repr")

    def __len__(self) -> int:
        raise RuntimeError("len")


class ClaimsEverything:
    def __getattr__(self, name: str) -> object:
        return (3, 4)


class Record:
    def __init__(self, i: int) -> None:
        self.id = i
        self.label = f"record {i}"


def _function(i: int) -> Callable[[int], int]:
    def scale(x: int, factor: int = i) -> int:
        """Multiply x by a fixed factor."""
        return x * factor

    return scale


def build_namespace(variables: int = VARIABLES) -> dict[str, object]:
    """``variables`` names in all: everyday values, the two big ones, the hostile ones."""
    recursive: list[object] = [1]
    recursive.append(recursive)
    special: dict[str, object] = {
        "big_array": np.zeros((1 << 27,), "float64"),  # 1 GiB virtual, never written
        "big_frame": pd.DataFrame(
            {
                "id": np.arange(10_000_000),
                "value": np.zeros(10_000_000),
                "flag": np.zeros(10_000_000, dtype=bool),
            }
        ),
        "slow_repr": SlowRepr(),
        "raising_repr": RaisingRepr(),
        "claims_everything": ClaimsEverything(),
        "million_dict": dict.fromkeys(range(1_000_000), 0),
        "recursive_list": recursive,
    }
    makers: list[Callable[[int], object]] = [
        lambda i: i,
        lambda i: i * 0.5,
        lambda i: f"text {i}",
        lambda i: list(range(i % 12)),
        lambda i: {"a": i, "b": [i, i + 1], "c": "x"},
        lambda i: (i, str(i)),
        lambda i: np.arange(i % 30),
        _function,
        Record,
        lambda i: pd.DataFrame({"a": [i, i + 1], "b": ["x", "y"]}) if i % 500 == 0 else i,
    ]
    ns: dict[str, object] = {}
    for i in range(variables - len(special)):
        ns[f"var_{i}"] = makers[i % len(makers)](i)
    ns.update(special)
    return ns


def _time(call: Callable[[], str], runs: int, *, gc_paused: bool = False) -> list[float]:
    times = []
    for _ in range(runs):
        if gc_paused:
            gc.disable()
        try:
            start = time.perf_counter()
            call()
            times.append((time.perf_counter() - start) * 1000)
        finally:
            gc.enable()
    return times


def run(variables: int = VARIABLES, runs: int = RUNS) -> dict[str, object]:
    """Time the context functions on the namespace above; figures in milliseconds."""
    ns = build_namespace(variables)
    before = step_start(ns)
    changed = dict(ns)
    changed["new_result"] = pd.DataFrame({"total": [1.0, 2.0]})
    changed["var_0"] = "rebound"
    del changed["var_1"]
    cases: list[tuple[str, Callable[[], str], int]] = [
        ("summarize_namespace", lambda: summarize_namespace(ns, budget=4000), 4000),
        ("step_start", lambda: str(len(step_start(ns).names)), 0),
        ("step_changes", lambda: step_changes(before, changed, budget=2000)[0], 2000),
    ]
    results = []
    for name, call, budget in cases:
        start = time.perf_counter()
        output = call()
        first = (time.perf_counter() - start) * 1000
        times = _time(call, runs)
        quiet = _time(call, runs, gc_paused=True)
        results.append(
            {
                "function": name,
                "budget": budget,
                "first_ms": first,
                "median_ms": statistics.median(times),
                "min_ms": min(times),
                "max_ms": max(times),
                "gc_paused_median_ms": statistics.median(quiet),
                "gc_paused_max_ms": max(quiet),
                "chars": len(output) if budget else None,
            }
        )
    return {
        "variables": len(ns),
        "runs": runs,
        "target_ms": TARGET_MS,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "results": results,
    }


def markdown(report: dict[str, object]) -> str:
    lines = [
        f"{report['variables']:,} variables (1 GiB array, 10M-row DataFrame, hostile objects); "
        f"{report['runs']} timed runs; Python {report['python']}, {report['cpus']} CPUs, "
        f"numpy {report['numpy']}, pandas {report['pandas']}",
        "",
        "| function | median ms | min–max ms | gc paused: median / max ms | first call ms "
        "| output chars / budget |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in report["results"]:  # type: ignore[attr-defined]
        size = f"{row['chars']:,} / {row['budget']:,}" if row["chars"] is not None else "–"
        lines.append(
            f"| `{row['function']}` | {row['median_ms']:.1f} | "
            f"{row['min_ms']:.1f}–{row['max_ms']:.1f} | "
            f"{row['gc_paused_median_ms']:.1f} / {row['gc_paused_max_ms']:.1f} | "
            f"{row['first_ms']:.1f} | {size} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown(run()))
