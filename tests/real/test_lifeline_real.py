"""llama.cpp's server, started as the real tier's fixtures start it, ends with its test run.

``tests/test_lifeline.py`` proves the launch path with a stand-in server in the default
suite; this is the same with llama.cpp and the model (the server loads it in a process of
its own, where a stand-in could hide a difference).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.test_lifeline import ROOT, kill_child_then_wait_for, stop_leftovers

#: The fixtures' start_server, in a child Python standing in for pytest.
CHILD = """
import importlib.util, sys, time

spec = importlib.util.spec_from_file_location("real_models", sys.argv[1])
real_models = sys.modules["real_models"] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(real_models)
server = real_models.start_server(real_models.Layout.default(), n_ctx=512)
print(server.process.pid, flush=True)
time.sleep(600)
"""


def test_a_killed_test_run_leaves_no_llama_server_behind(real_layout, tmp_path: Path) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(ROOT / "scripts/real_models.py")],
        stdout=subprocess.PIPE,
        text=True,
    )
    server = None
    try:
        assert child.stdout is not None
        server = int(child.stdout.readline())  # printed once /v1/models answers
        kill_child_then_wait_for(child, server)
    finally:
        stop_leftovers(child, server)
