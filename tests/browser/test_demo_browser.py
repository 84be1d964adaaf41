"""The demo notebook in a real JupyterLab, in headless Chromium, offline and without a key.

A copy of ``demo.ipynb`` and its recording goes into a folder of its own; one cell is put
before it (no API key, ``OPENAI_BASE_URL`` at a closed port: any model call would fail)
and one after its review cell (it prints ``done``). The cells run one by one with
Shift+Enter, as a reader would; at the review cell ("review-task", ``--mode always``) a
person decides in the widget: as recorded (Run, then Finish; then the cell is run again
and replays again), or otherwise (Skip), where one line says the recording cannot follow
and the cell ends without an error.

The screenshots ``docs/screenshots/demo-review.png`` and ``demo-cannot-follow.png`` are
taken here, from the same runs the assertions check.
"""

from __future__ import annotations

import re
import secrets
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat

from .conftest import (
    PANELS,
    Jupyter,
    Notebook,
    _free_port,
    _keep_evidence,
    accept_kernel_dialog,
    open_notebook,
)

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "docs" / "screenshots"
REVIEW = "review-task"


def shoot(locator: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    locator.screenshot(path=str(SCREENSHOTS / name), timeout=10_000)


def demo_copy(jupyter: Jupyter) -> tuple[str, list[nbformat.NotebookNode]]:
    """The demo and its recording in a new folder of the server's root, with a no-key
    cell first and a cell that prints ``done`` after the review cell."""
    folder = jupyter.root / f"demo-{secrets.token_hex(4)}"
    folder.mkdir()
    shutil.copy(ROOT / "agent-recording.jsonl", folder / "agent-recording.jsonl")
    nb = nbformat.read(ROOT / "demo.ipynb", as_version=4)
    # A closed port: bound, then released, so nothing listens there.
    closed = f"http://127.0.0.1:{_free_port()}/v1"
    offline = nbformat.v4.new_code_cell(
        "import os\n"
        "os.environ.pop('OPENAI_API_KEY', None)\n"
        f"os.environ['OPENAI_BASE_URL'] = {closed!r}\n"
        "print('key' if 'OPENAI_API_KEY' in os.environ else 'no key')"
    )
    after = nbformat.v4.new_code_cell("print('done')")
    cells = list(nb.cells)
    review = next(i for i, cell in enumerate(cells) if cell.get("id") == REVIEW)
    cells = [offline, *cells[: review + 1], after, *cells[review + 1 :]]
    for cell in cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nb.cells = cells
    nbformat.write(nb, folder / "demo.ipynb")
    return f"{folder.name}/demo.ipynb", cells


def run_demo(
    browser: Any, jupyter: Jupyter, decide: Callable[[Notebook, int], str]
) -> tuple[Notebook, list[nbformat.NotebookNode], dict[int, str]]:
    """Open the demo copy, run its code cells in order; at the review cell call
    ``decide(nb, index)``, which returns that cell's output. Returns the outputs by cell."""
    name, cells = demo_copy(jupyter)
    page = browser.new_page(viewport={"width": 1200, "height": 1000})
    accept_kernel_dialog(page)
    nb = Notebook(page, jupyter, None, PANELS["lab"])  # type: ignore[arg-type]
    open_notebook(nb, name, "lab")  # runs the no-key cell
    shown = {0: nb.output(0)}
    for index, cell in enumerate(cells[1:], start=1):
        if cell.cell_type != "code":
            continue
        nb.run(index)
        if cell.get("id") == REVIEW:
            shown[index] = decide(nb, index)
        else:
            shown[index] = nb.wait_done(index, timeout=60)
    return nb, cells, shown


def by_id(cells: list[nbformat.NotebookNode], shown: dict[int, str], cell_id: str) -> str:
    return shown[next(i for i, cell in enumerate(cells) if cell.get("id") == cell_id)]


def test_the_demo_review_run_then_finish_as_recorded(browser, jupyter, request) -> None:
    """Run, then Finish, as the recording has it: the cell completes from the recording,
    printing ``[3, 4]``, and so it does when run a second time; no model was asked."""

    def decide(nb: Notebook, index: int) -> str:
        for attempt in range(2):  # the demo can be tried twice
            if attempt:
                nb.run(index)
            nb.wait_review()
            if not attempt:
                shoot(nb.cell(index), "demo-review.png")
            nb.click("button.agent-run")
            # Step 1's Run button stays until the kernel disables it: wait for Finish.
            nb.click("button.agent-run:has-text('Finish')")
            shown = nb.wait_done(index, timeout=60)
            assert "[3, 4]" in shown and "Conversation terminated" in shown, shown
        return shown

    nb = None
    try:
        nb, cells, shown = run_demo(browser, jupyter, decide)
        assert shown[0].strip() == "no key"
        assert "a + b + c = 7.0" in by_id(cells, shown, "math-after")
        assert "warming from week 1 to week 4: 3.55" in by_id(cells, shown, "data-after")
        review = by_id(cells, shown, REVIEW)
        assert "[3, 4]" in review and re.search(r"Step \d+: ran\n", review), review
        assert re.search(r"Step \d+: finished", review), review
        assert "Conversation terminated" in review
        assert "Step 1: ran (automatic)" in by_id(cells, shown, "math-task")
        review_at = next(i for i, cell in enumerate(cells) if cell.get("id") == REVIEW)
        assert shown[review_at + 1].strip() == "done"
        everything = "\n".join(shown.values())
        # No model was called: the only way out, a closed port, would have said so.
        for never in ("UsageError", "cannot follow", "Connection", "API key", "replay:"):
            assert never not in everything, (never, everything[-3000:])
        # Nothing on stderr (the math task's failed first step is folded in its output,
        # as recorded, not an error output).
        stderr = nb.page.locator(f"{nb.panel} [data-mime-type='application/vnd.jupyter.stderr']")
        assert stderr.count() == 0, stderr.all_inner_texts()
        assert "Which weeks of `weekly`" in by_id(cells, shown, "log")
    except BaseException:
        if nb is not None:
            _keep_evidence(nb, f"failed-{request.node.name}")
        raise
    finally:
        if nb is not None:
            nb.page.close()
        jupyter.shutdown_kernels()


def test_the_demo_review_skip_says_the_recording_cannot_follow(browser, jupyter, request) -> None:
    """Skip where the recording has Run: the cell ends with the one line that the
    recording cannot follow, naming how to go on with a model; the code did not run."""

    def decide(nb: Notebook, index: int) -> str:
        nb.wait_review()
        nb.click("button.agent-skip")
        shown = nb.wait_done(index, timeout=60)
        shoot(nb.cell(index), "demo-cannot-follow.png")
        return shown

    nb = None
    try:
        nb, cells, shown = run_demo(browser, jupyter, decide)
        review = by_id(cells, shown, REVIEW)
        lines = [line for line in review.splitlines() if "cannot follow" in line]
        assert len(lines) == 1, review
        line = lines[0]
        assert "replay: the recording cannot follow from here" in line, line
        assert "this run went another way" in line, line
        assert re.search(r"at step \d+ it has 'ran'", line), line  # what was recorded
        # How to go on with a model: a key, then turn off what the demo turned on.
        assert "OPENAI_API_KEY" in line and "%agent key" in line, line
        assert "%config AgentMagics.replay_replies = False" in line, line
        assert "--replay-replies" not in line and "conversation so far is kept" in line
        assert "Traceback" not in review and "UsageError" not in review
        assert review.strip().splitlines()[-1].strip() == line.strip(), review
        review_at = next(i for i, cell in enumerate(cells) if cell.get("id") == REVIEW)
        assert shown[review_at + 1].strip() == "done"  # the cells below still run
    except BaseException:
        if nb is not None:
            _keep_evidence(nb, f"failed-{request.node.name}")
        raise
    finally:
        if nb is not None:
            nb.page.close()
        jupyter.shutdown_kernels()
