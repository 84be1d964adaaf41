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


@pytest.fixture(scope="module")
def report(bench):
    """Every piece of ``bench/run.py``, at the smallest sizes."""
    import bench_context
    import bench_replay
    import bench_window

    return {
        "machine": bench.machine(),
        "loop": bench.bench_loop(steps=2, runs=1),
        "load": bench.bench_load(runs=1, idle=0.2),
        "replay": bench_replay.run(steps=2, runs=1),
        "context": bench_context.run(variables=200, runs=1),
        "big_output": bench.bench_big_output(megabytes=1, runs=1),
        "memory": bench.bench_memory(steps=2, runs=1),
        "long_turns": bench.bench_long_turns(runs=1, chars=20_000),
        "text_helpers": bench.bench_text_helpers(chars=2000, runs=1),
        "windows": bench_window.run(steps=6, cells=2, sizes=(20,), runs=1),
    }


def test_the_loop_and_its_floors_run(report) -> None:
    rows = report["loop"]["rows"]
    assert set(rows) == {
        "raw HTTP + exec (floor a)",
        "raw HTTP + exec, streamed",
        "openai SDK + run_cell (floor b)",
        "openai SDK + run_cell, streamed",
        "%%agent --no-stream",
        "%%agent (streamed)",
        "%%agent (streamed), 1,000 names in the namespace",
    }
    assert all(row["median"] > 0 and row["min"] <= row["max"] for row in rows.values())


def test_load_and_the_first_cell_are_measured(report) -> None:
    load = report["load"]
    assert load["load"]["median"] > 0 and load["load_compiling"]["median"] > 0
    assert set(load["first_cell_extra"]) == {"at once", "after 0.2 s"}
    assert any(name.startswith("agent_magic") for name, _ in load["importtime"])


def test_big_output_reaches_the_model_bounded(report) -> None:
    big = report["big_output"]
    assert 0 < big["digest_chars"] < 20_000
    assert big["seconds"]["median"] > 0 and big["bare_seconds"]["median"] > 0


def test_memory_is_read_from_proc(report) -> None:
    memory = report["memory"]
    assert memory["bare_mib"]["median"] > 10 and memory["agent_mib"]["median"] > 10


def test_the_report_renders_with_every_target(bench, report) -> None:
    text = bench.markdown(report)
    for heading in ("## Targets", "Per-step overhead", "## 2. Load", "## 3. Replay"):
        assert heading in text
    for heading in ("## 4. Context", "## 5. Big output", "Peak RSS"):
        assert heading in text
    for heading in ("## 7. Long lines", "## 8. Context window", "| the reply |"):
        assert heading in text
    rows = bench.targets(report)
    assert len(rows) == 17 and all(len(row) == 4 for row in rows)
    assert any(row[0].startswith("per step with 1,000 names") for row in rows)
    assert {row[3] for row in rows} <= {"met", "**not met**", "reported"}


def test_quick_does_not_overwrite_the_figures(bench, monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(bench, "ROOT", tmp_path)
    measured = ("bench_loop", "bench_load", "bench_big_output", "bench_memory")
    measured += ("bench_long_turns", "bench_text_helpers", "bench_windows")
    for name in measured:
        monkeypatch.setattr(bench, name, lambda *a, **k: None)
    monkeypatch.setattr(bench, "markdown", lambda report: "text")
    import bench_context
    import bench_replay

    monkeypatch.setattr(bench_replay, "run", lambda **k: None)
    monkeypatch.setattr(bench_context, "run", lambda **k: None)
    bench.main(["--quick"])
    assert not (tmp_path / "docs" / "benchmarks.md").exists()
    (tmp_path / "docs").mkdir()
    bench.main(["--quick", "--write"])
    assert (tmp_path / "docs" / "benchmarks.md").read_text() == "text\n"


def test_long_lines_are_measured_in_the_loop(report) -> None:
    long = report["long_turns"]
    assert set(long["added_ms"]) == {"task", "reply", "output"} and long["turns"] == 2
    assert all(a["min"] <= a["median"] <= a["max"] for a in long["added_ms"].values())
    assert long["code_ms"]["median"] > 0
    helpers = {row["helper"] for row in report["text_helpers"]}
    assert {"normalize_volatile", "Redactor.redact", "head_tail"} <= helpers


def test_the_window_rows_keep_every_request_within_its_budget(report) -> None:
    rows = [row for rows in report["windows"]["sessions"].values() for row in rows]
    assert rows and all(row["max_estimate"] <= row["budget"] for row in rows)


@pytest.mark.parametrize("flags", [[], ["--request", "--stream"]])
def test_the_profiler_runs(bench, flags, capsys) -> None:
    import profile_loop

    profile_loop.main([*flags, "--runs", "1", "--top", "3"])
    assert "ms per" in capsys.readouterr().out


def test_saved_figures_render_again(bench, report, tmp_path, capsys) -> None:
    import json

    saved = tmp_path / "figures.json"
    saved.write_text(json.dumps(report))
    bench.main(["--from-json", str(saved), "--no-write"])
    assert "## Targets" in capsys.readouterr().out
