"""Servers the tests start end by themselves when the test run is killed (SIGKILL).

A killed pytest runs no finalizer and no ``atexit``: the real tier's llama.cpp server
and the scripted server's CLI must end on their own. Each test starts the launch path
from a child Python (standing in for pytest), kills the child with SIGKILL and waits,
bounded, for the server's PID to be gone. The real tier's launch path is exercised with
``http.server`` standing in for llama.cpp (``tests/real/test_lifeline_real.py`` does it
with the model).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

#: The real tier's launch path (scripts/real_models.py's launch), in a child Python.
REAL_TIER_CHILD = """
import importlib.util, sys, threading, time
from pathlib import Path

spec = importlib.util.spec_from_file_location("real_models", sys.argv[1])
real_models = sys.modules["real_models"] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(real_models)
port, how = sys.argv[3], sys.argv[4]
started = []

def start():
    args = [port, "--bind", "127.0.0.1"]
    started.append(real_models.launch(sys.executable, "http.server", args, Path(sys.argv[2])))

if how == "thread":  # started from a thread that then ends: the server must stay
    thread = threading.Thread(target=start)
    thread.start()
    thread.join()
else:
    start()
print(started[0].pid, flush=True)
time.sleep(600)
"""

#: The scripted server's CLI started with --parent-pid, in a child Python.
CLI_CHILD = """
import os, subprocess, sys, time

cmd = [sys.executable, "-m", "agent_magic.testing", "--script", sys.argv[1]]
server = subprocess.Popen(
    [*cmd, "--parent-pid", str(os.getpid())], stdout=subprocess.PIPE, text=True
)
print(server.pid, server.stdout.readline().strip(), flush=True)
time.sleep(600)
"""


def running(pid: int) -> bool:
    """True while ``pid`` runs; a zombie (dead, not yet reaped by its new parent) is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_until(condition, limit: float, what: str) -> None:
    """Poll ``condition`` every 0.1 s; fail naming ``what`` after ``limit`` seconds."""
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} within {limit:.0f} s", pytrace=False)
        time.sleep(0.1)


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def kill_child_then_wait_for(child: subprocess.Popen[str], server: int) -> None:
    """SIGKILL the stand-in test run, then wait (30 s at most) for its server to end."""
    assert running(server)
    child.kill()
    child.wait(timeout=30)
    wait_until(lambda: not running(server), 30, f"the server (PID {server}) did not end")


def stop_leftovers(child: subprocess.Popen[str], server: int | None) -> None:
    """Whatever a failed test left: the child and the server, by the PIDs started here."""
    if child.poll() is None:
        child.kill()
        child.wait(timeout=30)
    if child.stdout:
        child.stdout.close()
    if server is not None and running(server):
        os.kill(server, signal.SIGKILL)


@pytest.mark.parametrize("how", ["main", "thread"])
def test_the_real_tiers_server_ends_when_the_test_run_is_killed(tmp_path: Path, how: str) -> None:
    port = free_port()
    child = subprocess.Popen(
        [sys.executable, "-c", REAL_TIER_CHILD, str(ROOT / "scripts/real_models.py")]
        + [str(tmp_path / "server.log"), str(port), how],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    server = None
    try:
        assert child.stdout is not None
        server = int(child.stdout.readline())
        # Up and serving (from a thread that has ended, too: the death signal is only
        # asked for on the main thread, whose end is the process's).
        wait_until(lambda: answers(f"http://127.0.0.1:{port}/"), 30, "the server did not answer")
        kill_child_then_wait_for(child, server)
    finally:
        stop_leftovers(child, server)


def test_the_scripted_servers_cli_ends_when_the_test_run_is_killed(tmp_path: Path) -> None:
    script = tmp_path / "replies.json"
    script.write_text(json.dumps(["hello"]))
    child = subprocess.Popen(
        [sys.executable, "-c", CLI_CHILD, str(script)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    server = None
    try:
        assert child.stdout is not None
        pid, base_url = child.stdout.readline().split()
        server = int(pid)
        assert answers(base_url + "/models")
        kill_child_then_wait_for(child, server)
    finally:
        stop_leftovers(child, server)


def test_a_parent_pid_that_is_not_the_parent_is_one_line(tmp_path: Path) -> None:
    script = tmp_path / "replies.json"
    script.write_text(json.dumps(["hello"]))
    done = subprocess.run(
        [sys.executable, "-m", "agent_magic.testing", "--script", str(script)]
        + ["--parent-pid", "1", "--max-seconds", "5"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.strip().splitlines()[-1] == (
        "python -m agent_magic.testing: error: --parent-pid 1 is not the PID that started "
        "this server"
    )
