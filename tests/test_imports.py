"""The core stays light: each part, imported in a fresh interpreter, pulls in no kernel,
no widgets, no openai SDK and no data library it does not need (one check per part)."""

from __future__ import annotations

import json
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
