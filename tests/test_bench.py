"""The benchmark suite's pieces run (tiny sizes, no timing asserted): bench/run.py stays usable."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(BENCH))
    try:
        import run

        yield run
    finally:
        sys.path.remove(str(BENCH))


def test_the_loop_and_its_floors_run(bench) -> None:
    report = bench.bench_loop(steps=2, runs=1)
    rows = report["rows"]
    assert set(rows) >= {"raw HTTP + exec (floor a)", "%%agent --no-stream", "%%agent (streamed)"}
    assert all(row["median"] > 0 for row in rows.values())


def test_big_output_reaches_the_model_bounded(bench) -> None:
    report = bench.bench_big_output(megabytes=1, runs=1)
    assert 0 < report["digest_chars"] < 20_000


def test_the_report_renders(bench) -> None:
    loop = bench.bench_loop(steps=1, runs=1)
    stat = {"median": 1.0, "min": 1.0, "max": 1.0}
    report = {
        "machine": bench.machine(),
        "loop": loop,
        "load": {"load": stat, "first_cell_extra": {"at once": stat}, "importtime": []},
        "replay": {
            "steps": 1,
            "overhead_median_ms": 1.0,
            "overhead_min_ms": 1.0,
            "overhead_max_ms": 1.0,
            "code_median_ms": 1.0,
        },
        "big_output": {"megabytes": 1, "seconds": stat, "peak_growth_mib": stat, "digest_chars": 9},
        "memory": {"steps": 1, "bare_mib": stat, "agent_mib": stat},
    }
    text = bench.markdown(report)
    assert "Per-step overhead" in text and "raw HTTP" in text and "Peak RSS" in text
