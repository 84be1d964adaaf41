"""One recording per conversation, whatever a step does (issue 20): a step that changes
the working directory, deletes or cuts the recording, or fills the disk; and a replay of a
recording whose start is gone. Each through a real shell against the scripted server."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import code
from IPython.core.error import UsageError

from agent_magic.transcript import Record, read_records

HERE = Path(__file__).resolve().parent


def magics_of(shell):
    return shell.magics_manager.registry["AgentMagics"]


def agent_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("agent:")]


def lines_of(path: Path) -> list[dict[str, Any]]:
    """Every line of the recording, parsed: a torn line fails the test here."""
    return [json.loads(line) for line in path.read_text().splitlines()]


def fresh_kernel(shell, *names: str) -> None:
    """The state of a kernel started again: a new session, the steps' names gone."""
    from conftest import fresh_session

    fresh_session(magics_of(shell))
    for name in names:
        shell.user_ns.pop(name, None)


def as_json(records: list[Record]) -> list[dict[str, Any]]:
    return json.loads(json.dumps([r.to_dict() for r in records], ensure_ascii=False))


def test_a_step_that_changes_directory_keeps_one_recording(
    shell, openai_env, tmp_path, monkeypatch, capsys
) -> None:
    monkeypatch.chdir(tmp_path)
    magics = magics_of(shell)
    magics.recording = "agent-recording.jsonl"  # the default: relative to the kernel's cwd
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    openai_env.enqueue(code(f"import os; os.chdir({str(elsewhere)!r})"), "Moved. TERMINATE")
    shell.run_cell_magic("agent", "--mode never --no-context", "move")
    openai_env.enqueue(code("after_move = 1"), "TERMINATE")
    shell.run_cell_magic("agent", "--mode never --no-context", "go on")  # same conversation
    assert os.getcwd() == str(elsewhere)
    assert not (elsewhere / "agent-recording.jsonl").exists()
    records = lines_of(tmp_path / "agent-recording.jsonl")
    assert {r["conversation"] for r in records} == {magics.recorder.conversation_id}
    assert [r["event"] for r in records].count("task") == 2
    assert agent_lines(capsys.readouterr().err) == []
    # The notebook replays from the file beside it, as it was opened.
    os.chdir(tmp_path)
    fresh_kernel(shell, "os", "after_move")
    shell.run_cell_magic("agent", "--mode never --no-context --replay", "move")
    shell.run_cell_magic("agent", "--mode never --no-context --replay", "go on")
    assert shell.user_ns["after_move"] == 1
    assert len(openai_env.chat_requests) == 4  # replay asked nobody


@pytest.mark.parametrize(
    "damage",
    [
        "os.remove(PATH)",
        "os.truncate(PATH, 0)",
        "os.truncate(PATH, os.path.getsize(PATH) - 40)",  # mid-line: a torn end
    ],
)
def test_a_recording_a_step_deleted_or_cut_is_written_back_from_memory(
    shell, openai_env, capsys, damage
) -> None:
    magics = magics_of(shell)
    path = Path(magics.recording)
    step = f"import os; PATH = {str(path)!r}; {damage}; print('damaged')"
    openai_env.enqueue(code(step), "Done. TERMINATE")
    shell.run_cell_magic("agent", "--mode never --no-context", "damage it")
    said = agent_lines(capsys.readouterr().err)
    assert len(said) == 1 and "deleted or cut short" in said[0] and str(path) in said[0]
    records = lines_of(path)
    assert records == as_json(magics.recorder.records)  # every record, once, in order
    assert records[0]["event"] == "task" and records[-1]["event"] == "finished"
    # and the notebook replays from it, without asking the model
    fresh_kernel(shell, "os", "PATH")
    shell.run_cell_magic("agent", "--mode never --no-context --replay", "damage it")
    assert len(openai_env.chat_requests) == 2
    # the replayed step did it again, and the recording was put back again
    said = agent_lines(capsys.readouterr().err)
    assert len(said) == 1 and "deleted or cut short" in said[0]
    assert lines_of(path) == records


def test_replay_of_a_recording_whose_start_is_gone_says_so(shell, openai_env, capsys) -> None:
    magics = magics_of(shell)
    openai_env.enqueue(code("first = 1"), code("second = 2"), "Done. TERMINATE")
    shell.run_cell_magic("agent", "--mode never --no-context", "two steps")
    path = Path(magics.recording)
    lines = path.read_text().splitlines(keepends=True)
    second = max(i for i, line in enumerate(lines) if '"event":"request"' in line)
    path.write_text("".join(lines[second:]))  # an older kernel lost the start
    fresh_kernel(shell, "first", "second")
    with pytest.raises(UsageError) as raised:
        shell.run_cell_magic("agent", "--mode never --no-context --replay", "two steps")
    message = str(raised.value)
    assert "missing the start of a conversation" in message and "\n" not in message
    assert "system prompt" not in message
    assert len(openai_env.chat_requests) == 3


# -- a full disk ---------------------------------------------------------------------------

TMPFS_FILL = """
try:
    with open(FILLER, "wb") as f:
        while True:
            f.write(b"x" * 4096)
            f.flush()
except OSError:
    pass
"""
TMPFS_FREE = "os.remove(FILLER)"
RLIMIT_FILL = """
import resource, signal
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # write() then fails with EFBIG
resource.setrlimit(
    resource.RLIMIT_FSIZE,
    (os.path.getsize(RECORDING) + 100, resource.getrlimit(resource.RLIMIT_FSIZE)[1]),
)
"""
RLIMIT_FREE = """
import resource
_, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))
"""


def fill_and_free(shell, server, recording: Path, fill: str, free: str) -> dict[str, Any]:
    """A step fills the disk mid-conversation; the person frees space; a new conversation.

    What was said and written at each point, as plain data (this also runs in a child
    process when the machine does not allow mounting a small disk).
    """
    magics = magics_of(shell)
    magics.recording = str(recording)
    shell.user_ns.update(RECORDING=str(recording), FILLER=str(recording.parent / "filler"))
    shell.run_cell("import os")
    # The step's output (~6 KB) makes the next record cross a page: a half-written line.
    server.enqueue(code(fill + "\nprint('y' * 6000)"), "Full. TERMINATE")
    full = io.StringIO()
    with contextlib.redirect_stderr(full):
        shell.run_cell_magic("agent", "--mode never --no-context", "fill the disk")
    first = magics.recorder.conversation_id
    kept = as_json(magics.recorder.records)
    on_disk = recording.read_text()
    shell.run_cell(free)
    server.enqueue(code("second = 2"), "TERMINATE")
    again = io.StringIO()
    with contextlib.redirect_stderr(again):
        shell.run_cell_magic("agent", "--mode never --no-context --new", "after")
    return {
        "said_when_full": agent_lines(full.getvalue()),
        "whole_lines_when_full": all(line.endswith("}") for line in on_disk.splitlines()),
        "ends_with_newline_when_full": on_disk.endswith("\n"),
        "said_after": agent_lines(again.getvalue()),
        "kept": kept,
        "first": first,
        "second": magics.recorder.conversation_id,
        "ran": shell.user_ns.get("second"),
    }


@pytest.fixture
def small_disk(tmp_path) -> Any:
    """A 64 KiB tmpfs, or None where this machine does not allow mounting one."""
    where = tmp_path / "disk"
    where.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        yield None
        return
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(where)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        yield None
        return
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True, check=False)


CHILD = """
import json, os, sys
from pathlib import Path
sys.path.insert(0, {here!r})
from IPython.core.interactiveshell import InteractiveShell
from agent_magic.testing import FakeOpenAIServer
import test_recording_faults as t

with FakeOpenAIServer() as server:
    os.environ.update(OPENAI_BASE_URL=server.base_url, OPENAI_API_KEY="sk-test-not-a-real-key")
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "agent_magic")
    t.magics_of(shell).max_retries = 0
    seen = t.fill_and_free(shell, server, Path({recording!r}), t.RLIMIT_FILL, t.RLIMIT_FREE)
print("RESULT " + json.dumps(seen))
"""


def test_a_full_disk_is_said_once_and_nothing_is_lost_once_there_is_room(
    shell, openai_env, small_disk, tmp_path
) -> None:
    if small_disk is not None:
        recording = small_disk / "agent-recording.jsonl"
        seen = fill_and_free(shell, openai_env, recording, TMPFS_FILL, TMPFS_FREE)
    else:  # no mounting here: a file-size limit in a child process stands in for it
        recording = tmp_path / "agent-recording.jsonl"
        env = {k: v for k, v in os.environ.items() if k != "AGENT_MAGIC_REPLAY"}
        env["PYTHONPATH"] = os.pathsep.join([str(HERE.parent), env.get("PYTHONPATH", "")])
        child = subprocess.run(
            [sys.executable, "-c", CHILD.format(here=str(HERE), recording=str(recording))],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
            check=False,
        )
        results = [line for line in child.stdout.splitlines() if line.startswith("RESULT ")]
        assert results, child.stderr[-2000:]
        seen = json.loads(results[-1].removeprefix("RESULT "))
    said = seen["said_when_full"]
    assert len(said) == 1 and "cannot write the recording" in said[0], said
    assert "kept in memory" in said[0]
    assert seen["whole_lines_when_full"] and seen["ends_with_newline_when_full"]
    assert seen["ran"] == 2
    assert len(seen["said_after"]) == 1 and "written again" in seen["said_after"][0]
    records = lines_of(recording)
    first = [r for r in records if r["conversation"] == seen["first"]]
    assert first == seen["kept"]  # every record of the full-disk conversation, once
    assert [r["event"] for r in first][-1] == "finished"
    second = [r["event"] for r in records if r["conversation"] == seen["second"]]
    assert second[0] == "task" and second[-1] == "finished"
    assert read_records(recording, seen["second"])  # the log reads it back
