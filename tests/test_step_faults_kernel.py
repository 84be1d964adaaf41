"""Step faults in a real kernel (nbclient, papermill) against the local server: a step that
never ends is stopped after the time limit with the namespace kept, ``exit()`` leaves the
kernel running, and a failed step's traceback is a folded display, not an ``error`` output
(papermill fails a run on any)."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import nbformat
from conftest import code
from nbclient import NotebookClient

from agent_magic.testing import FakeOpenAIServer

ONE_SECOND = "import agent_magic.kernel.executor as _e; _e.DEFAULT_STEP_TIMEOUT = 1.0"


def notebook(*sources: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])


def error_outputs(nb: nbformat.NotebookNode) -> list[dict]:
    return [o for c in nb.cells for o in c.get("outputs", []) if o["output_type"] == "error"]


def test_in_a_kernel_a_loop_is_stopped_exit_is_kept_and_errors_fold(
    openai_env: FakeOpenAIServer, tmp_path
) -> None:
    openai_env.enqueue(
        code("import pandas as pd\npd.read_csv('no-such-file.csv')"),
        "It is missing. TERMINATE",
        code("kept = 'before'\nwhile True: pass"),
        code("exit()"),
        "Done. TERMINATE",
    )
    nb = notebook(
        "%load_ext agent_magic",
        "%%agent --mode never --no-context\nRead the file.",  # under the default limit
        ONE_SECOND,
        "%%agent --mode never --no-context\nTry two things.",
        "print(kept)",
    )
    started = time.monotonic()
    NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    assert time.monotonic() - started < 100
    assert nb.cells[4].outputs[0]["text"] == "before\n"  # the kernel and its namespace stayed
    assert error_outputs(nb) == []
    reports = [openai_env.requests[i].messages[-1]["content"] for i in (1, 3, 4)]
    assert "FileNotFoundError" in reports[0] and "<agent step" in reports[0]
    assert reports[1].startswith("It failed.\nThe step was stopped after 1 s")
    assert "the user's session was kept running" in reports[2]
    shown = [o["data"] for o in nb.cells[1].outputs if o["output_type"] == "display_data"]
    folds = [d for d in shown if "text/html" in d and "<details>" in d["text/html"]]
    assert folds, "the pandas traceback is folded"
    assert folds[0]["text/plain"].startswith("FileNotFoundError: [Errno 2]")
    # The error line first, then the step's own failing line; pandas behind the click.
    visible, folded = folds[0]["text/html"].split("<details>")
    assert visible.split("</pre>")[0].rsplit(">", 1)[1].startswith("FileNotFoundError")
    assert "&lt;agent step 1&gt;:2" in visible and "pd.read_csv(&#x27;no-such" in visible
    assert "site-packages" not in visible and "pandas" in folded


def test_papermill_runs_a_notebook_with_a_failed_step(openai_env: FakeOpenAIServer, tmp_path):
    openai_env.enqueue(
        code("total = undefined_name + 1"),
        code("total = 41 + 1\nprint(total)"),
        "It is 42. TERMINATE",
    )
    source, target = tmp_path / "failing-step.ipynb", tmp_path / "out.ipynb"
    nbformat.write(
        notebook(
            "%load_ext agent_magic",
            "%%agent --mode never --no-context\nSet total.",
            "assert total == 42",
        ),
        source,
    )
    result = subprocess.run(
        [sys.executable, "-m", "papermill", str(source), str(target), "-k", "python3"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    done = nbformat.read(target, as_version=4)
    assert error_outputs(done) == []
    shown = json.dumps(done.cells[1].outputs)
    assert "NameError" in shown and "undefined_name" in shown
    assert "It failed." in openai_env.requests[1].messages[-1]["content"]
