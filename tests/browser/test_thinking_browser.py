"""The working line in a real JupyterLab, in headless Chromium, while a scripted reasoning
model waits, then thinks for a few seconds (``reasoning_content`` streamed in pieces),
then answers: the line counts the seconds, the thinking is folded under it and opens on
a click, the answer streams in under the line ("writing N s", drawn by the line's own
thread), and once the reply is complete one line stays ("thought for N s").

The screenshot ``docs/screenshots/thinking-status.png`` is taken here, mid-thinking,
with the fold opened.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from agent_magic.testing import Reply

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
ANSWER = "Counting the rows.\n```python\nrows = 3\nprint('rows:', rows)\n```"
THINKING = " ".join(
    ["The user wants the rows counted.", "Maybe start clean with shutil.rmtree('data')?"]
    + ["No, never delete their data."] * 3
    + ["A plain assignment will do; then print it."] * 3
)


def seconds_in(text: str, phase: str) -> int | None:
    match = re.search(rf"{phase} (\d+) s", text)
    return int(match[1]) if match else None


def test_the_working_line_while_a_model_thinks(notebook_factory) -> None:
    nb = notebook_factory(["%%agent --mode never\nCount the rows."])
    # ~1.5 s silent, then ~12 s of thinking in pieces, then the answer.
    nb.model.enqueue(
        Reply(ANSWER, thinking=THINKING, chunk_delay=0.2, delay=1.5), "3 rows. TERMINATE"
    )
    nb.run(1)
    line = nb.cell(1).locator(".agent-working").last
    line.wait_for(state="visible", timeout=30_000)

    def shown() -> str:
        return line.inner_text(timeout=5_000) if line.count() else ""

    deadline = time.monotonic() + 30
    while seconds_in(shown(), "thinking") is None:
        assert time.monotonic() < deadline, shown()
        time.sleep(0.05)
    first = seconds_in(shown(), "thinking")
    # The count moves while the model thinks, with no answer text arriving.
    while (seconds_in(shown(), "thinking") or -1) <= (first or 0):
        assert time.monotonic() < deadline, shown()
        time.sleep(0.05)
    fold = nb.cell(1).locator(".agent-thinking").last
    fold.locator(".jupyter-widget-Collapse-header").first.click()
    nb.page.get_by_text("never delete their data", exact=False).first.wait_for(timeout=10_000)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    nb.cell(1).screenshot(path=str(SCREENSHOTS / "thinking-status.png"), timeout=10_000)

    # Then the answer streams in under the line ("writing N s"), its code as written.
    deadline = time.monotonic() + 60
    while not (seconds_in(nb.output(1), "writing") is not None and "rows" in nb.output(1)):
        assert time.monotonic() < deadline, nb.output(1)
        time.sleep(0.05)

    output = nb.wait_done(1, timeout=60)
    assert "thought for" in output and "Conversation terminated" in output, output
    assert "thinking " not in output.replace("(thinking, never run)", "")  # no animation left
    assert "rmtree" not in output  # the thinking stays folded
    assert "rows: 3" in output
