"""The review's code editor, the kernel status while a review waits, the sign-off and
"add code as cells", in a real JupyterLab in headless Chromium.

The screenshots the README links (``docs/screenshots/``) are taken here, from the
same runs the assertions check.
"""

from __future__ import annotations

import time
from pathlib import Path

from conftest import code

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def shoot(locator, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    locator.screenshot(path=str(SCREENSHOTS / name), timeout=10_000)


def kernel_status(nb) -> str:
    """What the status bar says about the kernel ("Python 3 (ipykernel) | Busy")."""
    return nb.page.locator(".jp-StatusBar-Widget:has-text('ipykernel')").first.inner_text()


def test_the_editor_highlights_indents_and_runs_what_was_typed(notebook_factory) -> None:
    nb = notebook_factory(
        [
            "%%agent --mode always\nDefine f and call it.",
            "print(total)",
        ]
    )
    nb.model.enqueue(
        code("def f(n):\n    return n * 2\n\ntotal = f(1)\nprint(total)"),
        "total is 22. TERMINATE",
    )
    nb.run(1)
    nb.wait_review()
    editor = nb.control(".agent-code .cm-editor")
    content = editor.locator(".cm-content")
    assert content.get_attribute("aria-label").startswith("Step 1 code (Python)")
    assert content.get_attribute("role") == "textbox"
    # Line numbers, and Python highlighted: 'def' and 'return' are styled spans.
    numbers = editor.locator(".cm-lineNumbers .cm-gutterElement").all_inner_texts()
    assert [n for n in numbers if n.strip()][:5] == ["1", "2", "3", "4", "5"]
    keyword = editor.locator(".cm-line span", has_text="def").first
    assert keyword.evaluate("e => getComputedStyle(e).fontWeight") in ("700", "bold")
    # Let the status bar settle on what it shows while the review waits.
    time.sleep(1.5)
    shoot(nb.cell(1), "review-widget.png")
    waiting_status = kernel_status(nb)

    # Edit: put the cursor at the end of line 1 ("def f(n):"), new line (indented by
    # the editor), Shift-Tab back to column 0, Tab in again, and type.
    content.locator(".cm-line").nth(0).click()
    nb.page.keyboard.press("End")
    nb.page.keyboard.press("Enter")
    nb.page.keyboard.press("Shift+Tab")
    nb.page.keyboard.press("Tab")
    nb.page.keyboard.type("n = n + 10")
    # Select line 2 ("    n = n + 10") and move it left and right as a block.
    nb.page.keyboard.press("Home")
    nb.page.keyboard.press("Shift+End")
    nb.page.keyboard.press("Shift+Tab")
    nb.page.keyboard.press("Tab")
    # Shift+Enter and Enter are the editor's: a new line, not the notebook's run cell.
    nb.page.keyboard.press("End")
    nb.page.keyboard.press("Shift+Enter")
    nb.page.keyboard.type("n = n * 1")
    typed_status = kernel_status(nb)
    nb.click("button.agent-run")
    nb.requests_after(2)
    told = nb.model.requests[1].messages[-1]["content"]
    assert "+    n = n + 10" in told and "+    n = n * 1" in told, told
    nb.wait_review()
    final = nb.control(".agent-status")
    assert "the assistant's answer is above" in final.inner_text()
    assert "total is 22." not in final.inner_text()  # shown once: in the reply above
    shown = nb.settled_output(1, "total is 22.")
    assert shown.count("total is 22.") == 1 and "TERMINATE" not in shown
    shoot(nb.cell(1), "finish-review.png")
    nb.click("button.agent-run:has-text('Finish')")
    shown = nb.wait_done(1)
    assert "Step 1: edited and ran" in shown and "TERMINATE" not in shown
    nb.run(2)
    assert nb.wait_done(2).strip() == "22"  # (1 + 10) * 1 * 2: the edit ran
    # The kernel showed busy while the cell waited, before and after typing.
    assert "Busy" in waiting_status and "Busy" in typed_status, (waiting_status, typed_status)


def test_finish_and_add_code_as_cells(notebook_factory) -> None:
    nb = notebook_factory(["%%agent --mode always\nSet a and b."])
    nb.model.enqueue(
        code("import time\n\ntime.sleep(3)  # a slow step\na = 2"),
        code("b = a + 3\nprint(b)"),
        "b is 5. **TERMINATE**",
    )
    nb.run(1)
    nb.wait_review()
    nb.click("button.agent-run:has-text('Run')")
    # The review's widgets closed (Lab deletes their subshells, whose replies end with an
    # 'idle'), and the approved code still runs: the status bar must still say Busy.
    time.sleep(1.5)
    running_status = kernel_status(nb)
    nb.wait_review()
    nb.click("button.agent-run:has-text('Run')")
    assert "Busy" in running_status, running_status
    button = nb.control("button.agent-add-cells")
    button.wait_for(state="visible", timeout=30_000)
    nb.click("button.agent-add-cells")
    shown = nb.wait_done(1)
    assert "Step 3: finished" in shown and "TERMINATE" not in shown
    # The new cell below the %%agent cell holds both steps, each under its header.
    deadline = time.monotonic() + 20
    while nb.page.locator(f"{nb.panel} .jp-Cell").count() < 3:
        assert time.monotonic() < deadline, "no cell was inserted"
        time.sleep(0.1)
    inserted = nb.cell(2).locator(".jp-InputArea-editor").inner_text()
    assert inserted.splitlines()[:3] == ["# step 1", "import time", ""], inserted
    assert "# step 2" in inserted and "b = a + 3" in inserted
    shoot(nb.cell(1), "conversation.png")
    shoot(nb.cell(2), "inserted-cell.png")
    # The inserted cell is ordinary code: it runs.
    nb.run(2)
    assert nb.wait_done(2).strip() == "5"
    # And the log of the conversation, as Lab shows it.
    nb.page.locator(f"{nb.panel} .jp-Cell").last.click()
    nb.page.keyboard.press("Escape")
    nb.page.keyboard.press("b")
    log = nb.page.locator(f"{nb.panel} .jp-Cell").count() - 1
    nb.cell(log).locator(".jp-InputArea-editor").click()
    nb.page.keyboard.type("%agent log")
    nb.page.keyboard.press("Shift+Enter")
    text = nb.wait_done(log)
    assert "b = a + 3" in text
    shoot(nb.cell(log), "agent-log.png")
