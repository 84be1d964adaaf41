"""The core stays light: each part, imported in a fresh interpreter, pulls in no kernel,
no widgets, no openai SDK and no data library it does not need (one check per part)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

# part: (what a fresh interpreter runs, the modules it must not have imported)
PARTS = {
    "conversation, codeblocks, llm": (
        "import agent_magic.conversation, agent_magic.codeblocks, agent_magic.llm",
        ("IPython", "ipywidgets", "openai", "ipykernel"),
    ),
    "context, used": (
        "import agent_magic.context as c\nc.summarize_namespace({'x': [1, 2], 'f': len})",
        ("IPython", "numpy", "pandas", "polars"),
    ),
    "guard": ("import agent_magic.guard", ("IPython",)),
    "transcript, export": (
        "import agent_magic.transcript, agent_magic.export",
        ("IPython", "ipywidgets", "openai", "nbformat"),
    ),
    "window": ("import agent_magic.window", ("IPython", "openai", "ipywidgets")),
}


@pytest.mark.parametrize("part", PARTS)
def test_the_core_imports_no_kernel_and_nothing_heavy(part: str) -> None:
    run, forbidden = PARTS[part]
    found = f"[m for m in {forbidden!r} if m in sys.modules]"
    check = f"{run}\nimport json, sys\nprint(json.dumps({found}))"
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == [], part


def test_load_ext_imports_nothing_heavy_and_the_first_command_the_rest() -> None:
    """``%load_ext`` (the warm-up thread off) imports the magic only: no session, loop,
    recording or SDK; the first command imports them and takes the integrity baseline
    (what a step may not change) before any step runs."""
    heavy = (
        "agent_magic.session",
        "agent_magic.conversation.loop",
        "agent_magic.transcript",
        "agent_magic.executor",
        "openai",
    )
    check = (
        "import json, os, sys\n"
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "ip = InteractiveShell.instance()\n"
        "ip.run_line_magic('load_ext', 'agent_magic')\n"
        f"loaded = [m for m in {heavy!r} if m in sys.modules]\n"
        "ip.run_line_magic('agent', 'reset')\n"
        "from agent_magic import integrity\n"
        "print(json.dumps([loaded, 'agent_magic.session' in sys.modules,"
        " integrity._baseline is not None]))\n"
    )
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "AGENT_MAGIC_WARMUP": "0", "PYTHONPATH": root}
    result = subprocess.run(
        [sys.executable, "-c", check], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 0, result.stderr
    loaded, session_then, baseline_then = json.loads(result.stdout.strip().splitlines()[-1])
    assert loaded == []
    assert session_then and baseline_then
