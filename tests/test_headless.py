"""No widget frontend (nbclient, nbconvert, papermill): never hang.

A real kernel executes the notebook with nbclient, talking to the local server. Modes
that ask fail at once with a one-line error naming the ways out; mode never completes,
and later cells see what the approved code made.
"""

from __future__ import annotations

import time

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from agent_magic.testing import FakeOpenAIServer


def notebook(*sources: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])


def execute(nb: nbformat.NotebookNode, cwd, **options) -> nbformat.NotebookNode:
    client = NotebookClient(
        nb,
        timeout=60,
        kernel_name="python3",
        resources={"metadata": {"path": str(cwd)}},
        **options,
    )
    return client.execute()


@pytest.mark.parametrize("mode", ["always", "terminate"])
def test_a_mode_that_asks_fails_fast_with_the_way_out(
    mode: str, openai_env: FakeOpenAIServer, tmp_path
) -> None:
    nb = notebook("%load_ext agent_magic", f"%%agent --mode {mode}\nSet x.", "print('after')")
    openai_env.enqueue("```python\nx = 1\n```")
    started = time.perf_counter()
    with pytest.raises(CellExecutionError) as raised:
        execute(nb, tmp_path)
    assert time.perf_counter() - started < 30  # a kernel start, not a timeout
    # IPython shows a UsageError as one line on stderr, without a traceback.
    (shown,) = nb.cells[1].outputs
    assert shown["name"] == "stderr" and shown["text"].startswith("UsageError: agent: ")
    message = shown["text"].rstrip("\n")
    assert "\n" not in message
    assert f"--mode {mode} needs someone to answer" in message
    for way_out in ("--mode never", "--replay", "AgentMagics.headless"):
        assert way_out in message
    assert "UsageError" in str(raised.value)
    assert openai_env.requests == []  # nothing was asked of the model, nothing ran


def test_mode_never_completes_and_later_cells_see_the_variables(
    openai_env: FakeOpenAIServer, tmp_path
) -> None:
    nb = notebook(
        "%load_ext agent_magic",
        "%%agent --mode never\nSet x to 41 + 1.",
        "print('x is', x)",
    )
    openai_env.enqueue("```python\nx = 41 + 1\nprint(x)\n```", "x is 42. TERMINATE")
    execute(nb, tmp_path)
    outputs = nb.cells[1].outputs
    shown = [o["data"]["text/markdown"] for o in outputs if o["output_type"] == "display_data"]
    assert any("Step 1: ran (automatic)" in text and "x = 41 + 1" in text for text in shown)
    assert any("Conversation terminated" in text for text in shown)
    # The static record is all a reader needs: no widget anywhere in the saved cells.
    assert not any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs)
    assert nb.cells[2].outputs[0]["text"] == "x is 42\n"
    assert len(openai_env.requests) == 2


def test_headless_never_setting_runs_an_always_cell_without_asking(
    openai_env: FakeOpenAIServer, tmp_path
) -> None:
    nb = notebook(
        "%load_ext agent_magic\n%config AgentMagics.headless = 'never'",
        "%%agent --mode always\nSet y.",
        "y",
    )
    openai_env.enqueue("```python\ny = 'set'\n```", "Done. TERMINATE")
    execute(nb, tmp_path)
    assert nb.cells[2].outputs[0]["data"]["text/plain"] == "'set'"
