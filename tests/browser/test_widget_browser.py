"""The review widget in a real JupyterLab 4 and Notebook 7, in headless Chromium.

Each test opens a notebook whose first cell loads the extension and points it at a
local OpenAI-compatible server, runs a ``%%agent`` cell with Shift+Enter, and answers
the widget with real clicks and keystrokes. The demo notebook's run in Lab (and its
review cell) is in ``test_demo_browser.py``.
"""

from __future__ import annotations

import time

import pytest
from conftest import code

from agent_magic.testing import Reply

AGENT = "%%agent --mode always\nSet x."
PROPOSAL = "Next:\n```python\nx = 1\nprint(x)\n```"


def edit_run_finish(nb, record_timing, app: str) -> None:
    """Scenario (a): edit the proposal, Run, Finish; the next cell sees the edit's x."""
    nb.model.enqueue(PROPOSAL, "x is 42. TERMINATE")
    nb.run(1)
    nb.wait_review()
    if app == "lab":
        nb.screenshot("widget-waiting.png")
    area = nb.control(".agent-code .cm-content")
    area.click()
    nb.page.keyboard.press("Control+A")
    nb.page.keyboard.type("x = 42\nran_at = __import__('time').time()\nprint('x is', x)")
    # Shift+Enter in the code box must edit, not run the cell again behind the widget.
    nb.page.keyboard.press("Shift+Enter")
    clicked = nb.click("button.agent-run")
    clicked_wall = nb.clicked_wall
    reached = nb.requests_after(2)
    record_timing(f"{app}: click Run -> next model request", reached - clicked)
    # Step 1's Run button stays on the page until the kernel disables it, so wait for
    # the next review's button by its text, not by its class alone.
    nb.click("button.agent-run:has-text('Finish')")
    shown = nb.wait_done(1)
    assert "Step 1: edited and ran" in shown and "Conversation terminated" in shown
    told = nb.model.requests[1].messages[-1]["content"]
    assert "-x = 1" in told and "+x = 42" in told and "x is 42" in told, told
    nb.run(2)
    doubled, ran_at = nb.wait_done(2).split()
    assert doubled == "84"
    # Same machine, same clock: from playwright's click to the approved code's second
    # line running in the kernel (includes playwright's own click dispatch).
    record_timing(f"{app}: click Run -> code runs in the kernel", float(ran_at) - clicked_wall)
    # The %%agent cell ran once: its number is one after the setup cell's, and the model
    # got exactly the two requests of this conversation.
    assert nb.prompt(1) == "[2]:" and nb.prompt(2) == "[3]:"
    time.sleep(0.5)
    assert len(nb.model.requests) == 2


def test_edit_then_run_in_lab(notebook_factory, record_timing) -> None:
    nb = notebook_factory([AGENT, "print(x * 2, repr(ran_at))"])
    edit_run_finish(nb, record_timing, "lab")


def test_edit_then_run_in_notebook7(notebook_factory, record_timing) -> None:
    nb = notebook_factory([AGENT, "print(x * 2, repr(ran_at))"], app="notebook")
    edit_run_finish(nb, record_timing, "notebook7")


def test_feedback_instead_of_running(notebook_factory) -> None:
    nb = notebook_factory(["%%agent --mode always\nDo b.", "print('ran_b' in globals())"])
    nb.model.enqueue(code("ran_b = True"), "Understood, no code. TERMINATE")
    nb.run(1)
    nb.wait_review()
    nb.control(".agent-feedback textarea").fill("please do not set ran_b")
    nb.click("button.agent-send")
    nb.requests_after(2)
    assert nb.model.requests[1].messages[-1]["content"] == "please do not set ran_b"
    nb.click("button.agent-run:has-text('Finish')")
    shown = nb.wait_done(1)
    assert "Step 1: feedback" in shown
    nb.run(2)
    assert nb.wait_done(2).strip() == "False"


def test_stop(notebook_factory) -> None:
    nb = notebook_factory(["%%agent --mode always\nDo c.", "print('ran_c' in globals())"])
    nb.model.enqueue(code("ran_c = True"))
    nb.run(1)
    nb.wait_review()
    nb.click("button.agent-stop")
    shown = nb.wait_done(1)
    assert "Step 1: stopped" in shown and "Conversation stopped" in shown
    nb.run(2)
    assert nb.wait_done(2).strip() == "False"
    assert len(nb.model.requests) == 1


@pytest.mark.parametrize("app", ["lab", "notebook7"])
def test_interrupt_while_waiting(notebook_factory, record_timing, app) -> None:
    nb = notebook_factory(
        ["%%agent --mode always\nWait.", "print(1 + 1, 'never_ran' in globals())"],
        app="lab" if app == "lab" else "notebook",
    )
    nb.model.enqueue(code("never_ran = True"))
    nb.run(1)
    nb.wait_review()
    # The notebook toolbar's stop button; Notebook 7 has the same command button.
    button = nb.page.locator(f"{nb.panel} [data-command='notebook:interrupt-kernel']")
    pressed = time.monotonic()
    button.first.click()
    shown = nb.wait_done(1, timeout=10)
    record_timing(f"{app}: interrupt while waiting -> cell done", time.monotonic() - pressed)
    assert "interrupted" in shown.lower()
    nb.run(2)
    assert nb.wait_done(2).strip() == "2 False"
    assert len(nb.model.requests) == 1


def test_first_token_reaches_the_page(notebook_factory, record_timing) -> None:
    """Time from the server sending a reply's first words to the page showing them."""
    nb = notebook_factory(["%%agent --mode never\nSay hello."])
    delay = 0.4
    words = "Qzxjv! " + " ".join(f"word{i}" for i in range(8)) + " TERMINATE"
    nb.model.enqueue(Reply(words, chunk_delay=delay))
    nb.run(1)
    asked = nb.requests_after(1)
    nb.page.wait_for_function(
        "() => document.body.innerText.includes('Qzxjv!')", polling="raf", timeout=30_000
    )
    seen = time.monotonic()
    # The role chunk goes out at once, the first words after one chunk delay.
    record_timing("lab: first token sent -> shown", seen - (asked + delay))
    assert "word7" not in nb.output(1)  # still streaming: shown before the reply ended
    nb.wait_done(1, timeout=60)
    assert "Conversation terminated" in nb.output(1)
