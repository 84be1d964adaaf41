"""The price table (``genai_prices``) is imported where an interrupt cannot land mid-import.

Its first lookup (a cell's ``--max-cost``) imports the package. In the cell's thread, an
interrupt landing during that import could leave the kernel's import locks half-taken,
the fault the SDK's import once had. Each test runs a fresh Python (nothing imported yet)
with a real ``InteractiveShell`` against the scripted server, and holds the import at its
start (as a slow disk would) until the test lets it go.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import importlib.machinery, json, os, signal, sys, threading, time

started, gate, importers = threading.Event(), threading.Event(), []


class Held:
    # genai_prices' loader, its module's body held until the gate opens (a slow disk).
    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        importers.append(threading.current_thread().name)
        started.set()
        gate.wait(60)
        self.loader.exec_module(module)


class SlowPrices:
    def find_spec(self, name, path=None, target=None):
        if name != "genai_prices":
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        spec.loader = Held(spec.loader)
        return spec


sys.meta_path.insert(0, SlowPrices())

from IPython.core.interactiveshell import InteractiveShell
import agent_magic.llm.prices as prices
from agent_magic.testing import FakeOpenAIServer

how, recording = sys.argv[1], sys.argv[2]
CELL = "%%agent --mode never --model gpt-4o --max-cost 5\\nsay done"
with FakeOpenAIServer() as server:
    os.environ.update(OPENAI_BASE_URL=server.base_url, OPENAI_API_KEY="sk-test")
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "agent_magic")
    ip.run_line_magic("config", f"AgentMagics.recording = {recording!r}")
    server.enqueue("Done. TERMINATE")
    if how == "interrupt":
        # The kernel's interrupt button (SIGINT), pressed once the import has begun.
        def press():
            started.wait(60)
            os.kill(os.getpid(), signal.SIGINT)

        threading.Thread(target=press, daemon=True).start()
    else:
        prices.LOOKUP_WITHIN = 0.5
    first = ip.run_cell(CELL)
    gate.set()
    deadline = time.monotonic() + 30
    while prices.price_of("gpt-4o") is None and time.monotonic() < deadline:
        time.sleep(0.1)
    second = ip.run_cell(CELL)
    print(json.dumps({
        "first": type(first.error_in_exec).__name__,
        "second": type(second.error_in_exec).__name__,
        "importers": importers,
        "requests": len(server.requests),
    }))
"""


def run_child(how: str, tmp_path: Path) -> tuple[dict[str, object], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "AZURE_"))}
    env.pop("OAI_CONFIG_LIST", None)
    done = subprocess.run(
        [sys.executable, "-c", CHILD, how, str(tmp_path / "agent-recording.jsonl")],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stdout + done.stderr


def test_an_interrupt_during_the_price_tables_import_lands_outside_it(tmp_path: Path) -> None:
    outcome, said = run_child("interrupt", tmp_path)
    # The cell was interrupted while it waited; the import ran in a worker thread only.
    assert outcome["first"] == "Interrupted"
    assert "agent: Interrupted; the conversation so far is kept." in said
    assert outcome["importers"] == ["agent_magic-prices"]
    # The next cell's budget has its price, and the model answered.
    assert outcome["second"] == "NoneType"
    assert outcome["requests"] == 1
    assert "no known price" not in said


def test_a_price_table_that_does_not_load_never_holds_the_cell(tmp_path: Path) -> None:
    # The import held past LOOKUP_WITHIN: the cell's dollar cap fails closed in one line
    # (the held import would have kept it 60 s); once the table loads, prices are back.
    outcome, said = run_child("held", tmp_path)
    assert outcome["first"] == "UsageError"
    assert said.count("model 'gpt-4o' has no known price") == 1
    assert outcome["importers"] == ["agent_magic-prices"]
    assert outcome["second"] == "NoneType"
    assert outcome["requests"] == 1
