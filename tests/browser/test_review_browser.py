"""The review without fatigue, and each thing once, in a real JupyterLab in headless
Chromium: **Run all**, the finish review (the answer shown once, rendered; where the
code went; no sign-off word or closing END), and the question a spent budget asks.

Each test saves the screenshot the README links (``docs/screenshots/``) from the run
its assertions check.
"""

from __future__ import annotations

from pathlib import Path

from conftest import code

from agent_magic.testing import Reply

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def shoot(locator, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    locator.screenshot(path=str(SCREENSHOTS / name), timeout=10_000)


def test_run_all_runs_the_rest_without_asking(notebook_factory) -> None:
    nb = notebook_factory(["%%agent --mode always\nCount to three.", "print(s1, s2, s3)"])
    nb.model.enqueue(code("s1 = 1"), code("s2 = s1 + 1"), code("s3 = s2 + 1"), "s3 is 3. TERMINATE")
    nb.run(1)
    nb.wait_review()
    assert nb.control("button.agent-run-all").inner_text().strip() == "Run all"
    shoot(nb.cell(1), "run-all.png")
    nb.click("button.agent-run-all")
    # Steps 2 and 3 run unasked; the answer is still asked, as --mode terminate asks.
    nb.click("button.agent-run:has-text('Finish')")
    shown = nb.wait_done(1, timeout=60)
    assert "Step 1: ran all" in shown, shown
    assert "Step 2: ran (automatic)" in shown and "Step 3: ran (automatic)" in shown
    assert "Conversation terminated" in shown
    assert len(nb.model.requests) == 4
    nb.run(2)
    assert nb.wait_done(2).strip() == "1 2 3"


def test_the_finish_review_shows_each_thing_once(notebook_factory) -> None:
    nb = notebook_factory(["%%agent --mode always\nThe mean of 1, 2, 3."])
    nb.model.enqueue(
        "Here's how you can do it:\n```python\nmean = sum([1, 2, 3]) / 3\nprint(mean)\n```\n"
        "This prints the mean.",
        "The mean is **2.0**, kept in `mean`.\n\nEND\n\nTERMINATE",
    )
    nb.run(1)
    nb.wait_review()
    nb.click("button.agent-run")
    nb.control("button.agent-run:has-text('Finish')").wait_for(state="visible", timeout=30_000)
    output = nb.cell(1).locator(".jp-OutputArea")
    # Read once the output has settled (a fresh-clone run read it mid-render once).
    shown = nb.settled_output(1, "(code: step 1 below)", "the assistant's answer is above")
    assert shown.count("The mean is") == 1, shown  # once: the reply, not the review too
    assert output.locator("strong", has_text="2.0").count() == 1  # rendered Markdown
    assert "**" not in shown and "TERMINATE" not in shown and "\nEND" not in shown
    assert "(code: step 1 below)" in shown and "This prints the mean." in shown
    assert "the assistant's answer is above" in shown
    shoot(nb.cell(1), "finish-review-once.png")
    nb.click("button.agent-run:has-text('Finish')")
    assert "Conversation terminated" in nb.wait_done(1)


def test_the_budget_question_goes_on_with_more(notebook_factory) -> None:
    nb = notebook_factory(["%%agent --mode always --max-tokens 500\nSet b.", "print(b)"])
    nb.model.enqueue(Reply(code("b = 1"), usage=(400, 200)), Reply("b is 1. TERMINATE"))
    nb.run(1)
    nb.wait_review()
    nb.click("button.agent-run")
    more = nb.control("button.agent-more")
    more.wait_for(state="visible", timeout=30_000)
    field = nb.control(".agent-more-amount input")
    assert field.input_value() == "500"  # the same amount again, to start with
    shown = nb.output(1)
    assert "the budget is spent. Go on with more, or stop?" in shown
    assert "token budget (--max-tokens 500) is spent: 600 tokens so far" in shown
    shoot(nb.cell(1), "budget-question.png")
    assert len(nb.model.requests) == 1  # held until the person answers
    nb.click("button.agent-more")
    nb.click("button.agent-run:has-text('Finish')")
    shown = nb.wait_done(1, timeout=60)
    assert "the budget is spent; went on with 500 tokens more" in shown, shown
    assert "Conversation terminated" in shown and len(nb.model.requests) == 2
    nb.run(2)
    assert nb.wait_done(2).strip() == "1"
