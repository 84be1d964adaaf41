"""Session faults from the fault matrix (docs/reliability.md) that had no test of their
own: a corrupt recording before replay, a read-only or missing recording folder, and a
user who deleted IPython's own history names."""

from __future__ import annotations

import os
import stat

import pytest
from conftest import code
from IPython.core.error import UsageError


def magics_of(shell):
    return shell.magics_manager.registry["AgentMagics"]


def agent_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("agent:")]


def test_a_corrupt_recording_before_replay_says_the_request_is_missing(
    shell, openai_env, capsys
) -> None:
    magics = magics_of(shell)
    openai_env.enqueue(code("kept = 1"), "Done. TERMINATE")
    shell.run_cell_magic("agent", "--mode never --no-context", "set kept")
    path = magics.recording
    with open(path, "r+b") as file:  # cut every line in half: nothing readable is left
        data = file.read()
        file.seek(0)
        file.write(b"".join(line[: len(line) // 2] + b"\n" for line in data.splitlines()))
        file.truncate()
    capsys.readouterr()
    with pytest.raises(UsageError) as raised:
        shell.run_cell_magic("agent", "--mode never --no-context --replay --new", "set kept")
    message = str(raised.value)
    assert "\n" not in message and "recording" in message
    assert len(openai_env.requests) == 2  # replay never called the model
    assert shell.user_ns["kept"] == 1  # what the user had is still there


def test_a_read_only_recording_folder_is_one_warning_and_the_cell_runs(
    shell, openai_env, capsys, tmp_path
) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
    path = str(folder / "agent-recording.jsonl")
    if os.geteuid() == 0:  # root writes into read-only folders; /proc refuses even root
        path = "/proc/agent-magic-test/agent-recording.jsonl"
    try:
        magics_of(shell).recording = path
        openai_env.enqueue(code("works = 'yes'"), "TERMINATE")
        shell.run_cell_magic("agent", "--mode never --no-context", "go")
        assert shell.user_ns["works"] == "yes"
        warnings = agent_lines(capsys.readouterr().err)
        assert len(warnings) == 1
    finally:
        folder.chmod(stat.S_IRWXU)


def test_a_missing_recording_folder_is_made_on_first_write(shell, openai_env, tmp_path) -> None:
    path = tmp_path / "not" / "yet" / "there.jsonl"
    magics_of(shell).recording = str(path)
    openai_env.enqueue(code("made = True"), "TERMINATE")
    shell.run_cell_magic("agent", "--mode never --no-context", "go")
    assert shell.user_ns["made"] is True
    assert path.exists() and path.read_text().count("\n") > 3


def test_deleting_in_and_out_breaks_nothing(shell, openai_env) -> None:
    # IPython's own In and Out (its history's list and dict), put back after: new ones
    # in their place would leave Out empty for every later test of this shell.
    history = {name: shell.user_ns[name] for name in ("In", "Out")}
    shell.run_cell("del In, Out")
    try:
        openai_env.enqueue(code("after = 41 + 1"), "TERMINATE")
        shell.run_cell_magic("agent", "--mode never", "go")
        assert shell.user_ns["after"] == 42
    finally:
        shell.user_ns.update(history)
