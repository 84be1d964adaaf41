"""Run the effectiveness suite against an OpenAI-compatible endpoint; write the report.

    python -m bench.effectiveness.run --base-url http://127.0.0.1:8090/v1 --model qwen \\
        [--loop agent_magic|autogen|smolagents] [--tasks id,id] [--split evaluation] \\
        [--max-turns 10] [--stream] [--label new-loop] [--agent-magic-tree DIR] \\
        [--temperature 0] [--context-sources variables,cells,notebook]
    python -m bench.effectiveness.run --report      # only rewrite docs/effectiveness.md

Each task runs in a subprocess of its own (a fresh InteractiveShell for agent_magic,
the autogen venv's python for AG2, the smolagents venv's for its CodeAgent), so a crash
or a hang costs one task. The checker (:mod:`bench.effectiveness.tasks`) runs here, on
the ``answer`` the worker reports.
Results go to ``bench/effectiveness/results/<run>.json``, one record per task, updated
as each task finishes (a run can be stopped and resumed with ``--resume``); the run is
the loop's name, or ``<loop>-<label>`` with ``--label`` (so a run of changed code keeps
the earlier run's figures for comparison). ``--agent-magic-tree`` runs agent_magic from
another checkout (a branch's worktree) without touching this one. ``docs/effectiveness.md``
is rebuilt from all the result files: the runs side by side per task, and totals (success
rate, tokens per solved task) over the tasks every run has finished.

agent_magic runs with ``--no-stream`` unless ``--stream``: AG2 does not stream, and
llama.cpp reports usage only for whole replies, so both loops' tokens are the server's
counts. Estimates (4 characters a token) are marked with ``~``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Collection
from pathlib import Path
from typing import Any

from bench.effectiveness.tasks import BY_ID, MISSING, TASKS

ROOT = Path(__file__).resolve().parents[2]
RESULTS = Path(__file__).resolve().parent / "results"
REPORT = ROOT / "docs" / "effectiveness.md"
LOOPS = ("agent_magic", "autogen", "smolagents")
# Where each peer's venv lives (scripts/real_models.py --autogen / --smolagents).
VENVS = {"autogen": "autogen-venv", "smolagents": "smolagents-venv"}


def run_name(loop: str, label: str | None) -> str:
    """The results file's stem: the loop, or ``<loop>-<label>``."""
    return f"{loop}-{label}" if label else loop


def _runs() -> list[str]:
    """The runs with a results file: agent_magic's first, then autogen's, each loop's
    runs in the order they started (the earlier code first)."""
    names = [p.stem for p in RESULTS.glob("*.json")] if RESULTS.exists() else []
    names = [n for n in names if _loop_of(n)]

    def started(name: str) -> str:
        return str(json.loads((RESULTS / f"{name}.json").read_text())["meta"].get("date", ""))

    return sorted(names, key=lambda n: (LOOPS.index(_loop_of(n)), started(n), n))


def _loop_of(name: str) -> str:
    return next((lp for lp in LOOPS if name == lp or name.startswith(lp + "-")), "")


def peer_python(loop: str) -> Path:
    """The python of a peer loop's venv (it may not exist)."""
    cache = Path(os.environ.get("AGENT_MAGIC_CACHE", "~/.cache/agent_magic")).expanduser()
    return cache / VENVS[loop] / "bin" / "python"


def _peer_python(loop: str) -> str:
    python = peer_python(loop)
    if not python.exists():
        sys.exit(f"run: no {loop} venv at {python}: python3 scripts/real_models.py --{loop}")
    return str(python)


def run_one(loop: str, task_id: str, args: argparse.Namespace) -> dict[str, Any]:
    out = Path(tempfile.mkdtemp(prefix=f"eff-{loop}-")) / f"{task_id}.json"
    common = ["--task", task_id, "--base-url", args.base_url, "--model", args.model]
    common += ["--max-turns", str(args.max_turns), "--out", str(out)]
    if getattr(args, "temperature", None) is not None:
        common += ["--temperature", str(args.temperature)]
    if loop == "agent_magic":
        cmd = [sys.executable, "-m", "bench.effectiveness.agent_magic_worker", *common]
        if args.stream:
            cmd.append("--stream")
        if getattr(args, "context_window", None):
            cmd += ["--context-window", str(args.context_window)]
        if getattr(args, "agent_magic_tree", None):
            cmd += ["--agent-magic-tree", str(args.agent_magic_tree)]
        if getattr(args, "context_sources", None) is not None:
            cmd += ["--context-sources", args.context_sources]
    else:
        worker = Path(__file__).with_name(f"{loop}_worker.py")
        cmd = [_peer_python(loop), str(worker), *common]
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    start = time.monotonic()
    try:
        done = subprocess.run(
            cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=args.task_timeout
        )
        failure = "" if done.returncode == 0 else (done.stderr.strip().splitlines() or ["?"])[-1]
    except subprocess.TimeoutExpired:
        failure = f"no result within {args.task_timeout:.0f} s"
    if out.exists():
        result = json.loads(out.read_text())
    else:
        result = {"task": task_id, "loop": loop, "answer": MISSING, "steps": 0}
        result.update(prompt_tokens=0, completion_tokens=0, estimated=False, error=failure)
        result["wall"] = round(time.monotonic() - start, 2)
    result["solved"] = bool(BY_ID[task_id].check(result["answer"]))
    if Path(f"{out}.recording.jsonl").exists():
        result["recording"] = f"{out}.recording.jsonl"  # what rules.py reads; not saved
        from bench.effectiveness import rules

        # The rule counts, kept with the result: how often a failing repeat was refused,
        # and (with "solved") whether the task got somewhere after it.
        result["rules"] = dict(rules.count(Path(result["recording"])))
    result["model"] = args.model
    return result


def _load(name: str) -> dict[str, dict[str, Any]]:
    path = RESULTS / f"{name}.json"
    if not path.exists():
        return {}
    return {r["task"]: r for r in json.loads(path.read_text())["results"]}


def _save(
    name: str,
    results: dict[str, dict[str, Any]],
    meta: dict[str, Any],
    ran: set[str] | None = None,
) -> None:
    RESULTS.mkdir(exist_ok=True)
    # Two runners may share a loop's file (tasks split over two servers): what is on
    # disk stays, except for the tasks this runner ran (``ran``; all of ``results``
    # when not given). Records it merely loaded at its start must not come back.
    mine = results if ran is None else {t: r for t, r in results.items() if t in ran}
    results = {**_load(name), **mine}
    ordered = [results[t.id] for t in TASKS if t.id in results]
    for record in ordered:
        record.pop("transcript", None)  # kept in the run's log, not in the repository
    body = {"meta": meta, "results": ordered}
    (RESULTS / f"{name}.json").write_text(json.dumps(body, indent=1) + "\n")


def _tok(record: dict[str, Any]) -> str:
    mark = "~" if record.get("estimated") else ""
    return f"{mark}{record['prompt_tokens']} / {mark}{record['completion_tokens']}"


def _short(value: Any) -> str:
    text = MISSING if value == MISSING else json.dumps(value)
    text = text.replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= 28 else text[:25] + "..."


# The groups of tasks the report totals and lists apart: the notebook tasks are of the
# evaluation set, but run with other context sources switched off, not beside the peers.
GROUPS = (
    ("The evaluation set", lambda t: t.split == "evaluation" and t.kind != "notebook"),
    ("The notebook tasks (evaluation set)", lambda t: t.kind == "notebook"),
    ("The tuning set", lambda t: t.split == "tuning"),
)


def _totals(records: list[dict[str, Any]]) -> dict[str, Any]:
    solved = [r for r in records if r["solved"]]
    tokens = sum(r["prompt_tokens"] + r["completion_tokens"] for r in records)
    solved_tokens = sum(r["prompt_tokens"] + r["completion_tokens"] for r in solved)
    return {
        "tasks": len(records),
        "solved": len(solved),
        "rate": len(solved) / len(records) if records else 0.0,
        "steps": sum(r["steps"] for r in records),
        "tokens": tokens,
        "per_solved": tokens / len(solved) if solved else None,
        "solved_tokens_each": solved_tokens / len(solved) if solved else None,
        "wall": sum(r["wall"] for r in records),
        "estimated": any(r.get("estimated") for r in records),
        "refused": sum((r.get("rules") or {}).get("repeats refused (failed)", 0) for r in records),
        "refused_tasks": sum(
            1 for r in records if (r.get("rules") or {}).get("repeats refused (failed)")
        ),
        "refused_solved": sum(
            1
            for r in records
            if r["solved"] and (r.get("rules") or {}).get("repeats refused (failed)")
        ),
    }


def _totals_table(
    lines: list[str],
    runs: list[str],
    loaded: dict[str, dict[str, dict[str, Any]]],
    group: Collection[str] | None = None,
) -> None:
    """Totals of ``runs``, over the tasks (of ``group``, task ids, if given) every one has
    finished."""
    tasks = [t for t in TASKS if group is None or t.id in group]
    common = [t.id for t in tasks if all(t.id in loaded[run] for run in runs)]
    if len(common) < len(tasks):
        lines += [
            f"Over the {len(common)} tasks that "
            + {1: "this run has", 2: "both runs have"}.get(len(runs), "all these runs have")
            + f" finished (of {len(tasks)}); the per-task table shows every result.",
            "",
        ]
    lines += ["| | " + " | ".join(runs) + " |", "|---|" + "---:|" * len(runs)]
    totals = {run: _totals([loaded[run][t] for t in common]) for run in runs}

    def row(label: str, fmt: Any) -> None:
        lines.append(f"| {label} | " + " | ".join(fmt(totals[run]) for run in runs) + " |")

    row("tasks run", lambda t: str(t["tasks"]))
    row("solved", lambda t: f"{t['solved']} ({t['rate']:.0%})")
    row("model calls", lambda t: str(t["steps"]))
    row("tokens, all tasks", lambda t: ("~" if t["estimated"] else "") + f"{t['tokens']:,}")
    row(
        "tokens per solved task (all tokens / solved)",
        lambda t: "-" if t["per_solved"] is None else f"{t['per_solved']:,.0f}",
    )
    row(
        "tokens of a solved task (mean)",
        lambda t: "-" if t["solved_tokens_each"] is None else f"{t['solved_tokens_each']:,.0f}",
    )
    row("wall time, all tasks", lambda t: f"{t['wall'] / 60:.1f} min")
    row(
        "failing repeats refused (in tasks; tasks solved after)",
        lambda t: (
            f"{t['refused']} ({t['refused_tasks']}; {t['refused_solved']})" if t["refused"] else "-"
        ),
    )
    lines.append("")


def write_report() -> str:
    runs = _runs()
    loaded = {run: _load(run) for run in runs}
    metas = {run: json.loads((RESULTS / f"{run}.json").read_text())["meta"] for run in runs}
    lines = [
        "# Effectiveness: agent_magic against the seed's loop",
        "",
        "Generated by `python -m bench.effectiveness.run` (see `bench/effectiveness/`); do not",
        "edit by hand (the prose comes from `bench/effectiveness/results/*.md`). The same",
        "tasks, model and server settings for every run.",
        "",
        "## How it is measured",
        "",
        f"- {len(TASKS)} tasks (`bench/effectiveness/tasks.py`): numeric, text and small-data",
        "  problems of the kind users type, with the seed notebook's a + b + c problem among",
        "  them, and tasks over files with their traps (`file_tasks.py`: separators, latin-1,",
        "  title lines above the header, thousands separators, decimal commas, missing",
        "  values, day-first dates, padded headers, several files), each written into the",
        "  task's own working directory. Every task ends with *Store the result in a",
        "  variable named `answer`.* Split: the *tuning* set (the first 26 tasks, whose",
        "  transcripts the loop's rules were designed from, and 4 file tasks) and the",
        "  *evaluation* set (12 file tasks no rule is designed from, and 6 notebook",
        "  tasks); totals are given for each.",
        "- The notebook tasks (`notebook_tasks.py`) are asked in the middle of a notebook:",
        "  a saved notebook whose Markdown says what the data is, a definition, units or",
        "  rows to leave out, and earlier code cells (run first in the same shell, so they",
        "  are in `In`; `JPY_SESSION_NAME` names the notebook, as Jupyter Server sets it)",
        "  that load the data into short names, clean it or define a helper. The task's",
        '  text refers to them ("the orders loaded above", "as defined in the notes"); the',
        "  facts it needs are not in it. agent_magic only: the peers run each task as a",
        "  fresh process with no notebook.",
        "- **agent_magic**: each task is `%%agent --mode never --new` in a fresh IPython",
        "  shell (a subprocess per task); the checker reads `answer` from the namespace after",
        "  the cell. A run of agent_magic's code at another commit is a run of its own",
        "  (`--label`, its own results file), so earlier figures stay for comparison.",
        "- **autogen** (the seed's loop): AG2's classic `AssistantAgent` (default system",
        '  message) and `UserProxyAgent` (`human_input_mode="NEVER"`, the seed\'s',
        "  `is_termination_msg`: the message ends with TERMINATE; local execution, no",
        "  docker; `cache_seed=None`), PyPI `autogen` 0.14.1 in its own venv. AG2 runs each",
        "  code block in a fresh `python` process, so to read the same value the benchmark",
        "  appends a footer the model never sees to every Python block: if the block defined",
        "  `answer`, its value is written to a file. The last value written is checked.",
        "- **smolagents**: smolagents' `CodeAgent` (no tools, its default prompt) over",
        "  `OpenAIServerModel` pointed at the same server, `max_steps` = max turns, PyPI",
        "  `smolagents` 1.26.0 in its own venv; its sandboxed executor gets the imports the",
        "  tasks need and `open`. `answer` is read from the executor's state after the run.",
        "- Fairness: every answer goes through the same `plain()` (numpy arrays and tuples to",
        "  lists, numpy scalars to numbers) and the same checker; numbers compare within a",
        "  small tolerance and may come as a 1-element list or a numeric string. At most",
        "  `--max-turns` model calls per task in both loops (AG2:",
        "  `max_consecutive_auto_reply = max_turns - 1`). A task is solved when `answer`",
        "  is right at the end, whatever the loop said.",
        "- Steps are model calls. Tokens are the server's `usage` counts (agent_magic runs",
        "  with `--no-stream` so llama.cpp reports them, as it does for AG2's whole",
        "  replies); `~` marks an estimate at 4 characters a token where a server gave",
        "  none. Wall time includes running the code.",
        "",
    ]
    if metas:
        lines += ["## Runs", ""]
        for run, meta in metas.items():
            temperature = meta.get("temperature")
            sampling = (
                "the server's temperature"
                if temperature is None
                else f"temperature {temperature:g}"
            )
            lines.append(
                f"- **{run}**: {len(loaded[run])} of {len(TASKS)} tasks; {meta.get('model')} "
                f"at {meta.get('server', '?')}, max turns {meta.get('max_turns')}, {sampling}, "
                f"{meta.get('date')}, agent_magic {meta.get('commit', '?')}, "
                f"{meta.get('machine', '')}"
            )
        lines.append("")
    notes = RESULTS / "notes.md"  # what the figures alone do not say, written by hand
    if notes.exists():
        lines += [notes.read_text().strip(), ""]
    present = [run for run in runs if loaded[run]]
    if present:
        # Side by side only over the tasks every run has finished (a run can be partial).
        lines += ["## Totals", ""]
        if any(all(t.id in loaded[r] for r in present) for t in TASKS):
            _totals_table(lines, present, loaded)
        for title, member in GROUPS:
            ids = {t.id for t in TASKS if member(t)}
            subset = {run: {k: v for k, v in loaded[run].items() if k in ids} for run in present}
            runs_in = [run for run in present if subset[run]]
            if runs_in:
                lines += [f"### {title}", ""]
                _totals_table(lines, runs_in, subset, ids)
        # Pairs that share more tasks than all runs together: each agent_magic run
        # against the seed's loop.
        allcommon = sum(all(t.id in loaded[r] for r in present) for t in TASKS)
        seed = [r for r in present if _loop_of(r) == "autogen"]
        for run in present:
            if _loop_of(run) != "agent_magic" or not seed:
                continue
            pair = [run, seed[0]]
            shared = sum(all(t.id in loaded[r] for r in pair) for t in TASKS)
            if len(present) > 2 and shared > allcommon:
                lines += [f"### {run} against {seed[0]}", ""]
                _totals_table(lines, pair, loaded)
        lines += ["## Per task", ""]
        for title, member in GROUPS:  # each group with the runs that ran some of it
            tasks = [t for t in TASKS if member(t) and any(t.id in loaded[r] for r in present)]
            runs_in = [run for run in present if any(t.id in loaded[run] for t in tasks)]
            if not tasks:
                continue
            head = "| task | kind | split |"
            rule = "|---|---|---|"
            for run in runs_in:
                head += f" {run}: ok | steps | prompt / completion tokens | s | answer |"
                rule += ":-:|---:|---:|---:|---|"
            lines += [f"### {title}", "", head, rule]
            for task in tasks:
                cells = [task.id, task.kind, task.split]
                for run in runs_in:
                    r = loaded[run].get(task.id)
                    if r is None:
                        cells += ["", "", "", "", ""]
                        continue
                    mark = "yes" if r["solved"] else "no"
                    cells += [mark, str(r["steps"]), _tok(r), f"{r['wall']:.0f}"]
                    cells.append(_short(r["answer"]))
                lines.append("| " + " | ".join(cells) + " |")
            lines.append("")
        errors = [
            (run, r["task"], r["error"])
            for run in present
            for r in loaded[run].values()
            if r.get("error")
        ]
        if errors:
            lines += ["", "## How the unsolved ended (the loop's last word)", ""]
            lines += [f"- {run}, `{task}`: {error[:200]}" for run, task, error in errors]
    changes = RESULTS / "changes.md"  # what changed between the runs, written by hand
    if changes.exists():
        lines += ["", changes.read_text().strip()]
    text = "\n".join(lines) + "\n"
    REPORT.write_text(text)
    return text


def _commit(tree: Path = ROOT) -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=tree, capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        return "?"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", help="the OpenAI-compatible endpoint, e.g. .../v1")
    parser.add_argument("--model", help="the model name the server knows")
    parser.add_argument("--loop", choices=LOOPS, default="agent_magic")
    parser.add_argument("--tasks", help="comma-separated task ids (default: all)")
    parser.add_argument("--max-turns", type=int, default=10)
    parser.add_argument("--stream", action="store_true", help="agent_magic: stream replies")
    parser.add_argument(
        "--temperature",
        type=float,
        help="both loops send this sampling temperature (default: none, the server's own)",
    )
    parser.add_argument(
        "--context-window",
        type=int,
        help="agent_magic: AgentMagics.context_window (the server's n_ctx; AG2 has none)",
    )
    parser.add_argument(
        "--context-sources",
        help="agent_magic: AgentMagics.context_sources, comma-separated (e.g. "
        "'variables,cells,notebook' leaves the file previews out); default all",
    )
    parser.add_argument(
        "--split", choices=("tuning", "evaluation"), help="only the tasks of this split"
    )
    parser.add_argument("--task-timeout", type=float, default=1800.0)
    parser.add_argument("--resume", action="store_true", help="skip tasks already in results")
    parser.add_argument(
        "--retry-timeouts",
        action="store_true",
        help="with --resume: run again the tasks that ended waiting for the server",
    )
    parser.add_argument(
        "--label", help="a run of its own: results/<loop>-<label>.json (e.g. new-loop)"
    )
    parser.add_argument(
        "--agent-magic-tree",
        type=Path,
        help="agent_magic: import agent_magic from this checkout (default: this one)",
    )
    parser.add_argument(
        "--transcripts",
        type=Path,
        help="also write each task's transcript and recording to DIR/<task>.txt, .recording.jsonl",
    )
    parser.add_argument("--report", action="store_true", help="only rewrite the report")
    args = parser.parse_args(argv)
    if args.report:
        write_report()
        print(f"wrote {REPORT}")
        return 0
    if not (args.base_url and args.model):
        parser.error("--base-url and --model are needed to run tasks")
    ids = args.tasks.split(",") if args.tasks else [t.id for t in TASKS]
    if args.split:
        ids = [i for i in ids if i in BY_ID and BY_ID[i].split == args.split]
    unknown = [i for i in ids if i not in BY_ID]
    if unknown:
        parser.error(f"unknown task ids: {', '.join(unknown)}")
    if args.label and not re.fullmatch(r"[a-z0-9][a-z0-9-]*", args.label):
        parser.error("--label: lower-case letters, digits and '-' only")
    if args.agent_magic_tree and not (args.agent_magic_tree / "agent_magic").is_dir():
        parser.error(f"--agent-magic-tree: no agent_magic/ in {args.agent_magic_tree}")
    name = run_name(args.loop, args.label)
    results = _load(name) if args.resume or args.tasks else {}
    if not (args.resume or args.tasks):
        (RESULTS / f"{name}.json").unlink(missing_ok=True)  # a fresh full run
    tree = args.agent_magic_tree.resolve() if args.agent_magic_tree else ROOT
    meta = {
        "model": args.model,
        "server": args.base_url,
        "max_turns": args.max_turns,
        "stream": args.stream,
        "temperature": args.temperature,
        "context_window": args.context_window,
        "context_sources": args.context_sources,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": _commit(tree),
        "label": args.label or "",
        "machine": f"{os.cpu_count()} cores, Python {platform.python_version()}",
    }
    ran: set[str] = set()
    for n, task_id in enumerate(ids, 1):
        if args.resume and task_id in results:
            waited = re.search(r"no (answer|result) within", results[task_id].get("error", ""))
            if not (args.retry_timeouts and waited):
                continue
        record = run_one(args.loop, task_id, args)
        results[task_id] = record
        ran.add(task_id)
        print(
            f"[{n}/{len(ids)}] {name} {task_id}: "
            f"{'solved' if record['solved'] else 'NOT solved'}, {record['steps']} steps, "
            f"{_tok(record)} tokens, {record['wall']:.0f} s; answer {_short(record['answer'])}"
            + (f"; {record['error'][:150]}" if record.get("error") else ""),
            flush=True,
        )
        if record.get("transcript"):
            print("    " + record["transcript"][-3000:].replace("\n", "\n    "), flush=True)
            if args.transcripts:
                args.transcripts.mkdir(parents=True, exist_ok=True)
                (args.transcripts / f"{task_id}.txt").write_text(record["transcript"])
        recording = record.pop("recording", "")
        if args.transcripts and recording and Path(recording).exists():
            args.transcripts.mkdir(parents=True, exist_ok=True)
            target = args.transcripts / f"{task_id}.recording.jsonl"
            target.write_text(Path(recording).read_text())
        _save(name, results, meta, ran)
        write_report()
    totals = _totals([results[i] for i in ids if i in results])
    print(
        f"{name}: solved {totals['solved']}/{totals['tasks']}, {totals['tokens']} tokens, "
        f"{totals['wall'] / 60:.1f} min"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
