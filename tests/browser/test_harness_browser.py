"""The browser harness itself, with no agent: a cell runs and prints, and a stock
ipywidgets Button renders and reaches the kernel when clicked. When these fail, the
widget tests' failures are about the setup (server, browser, widget extension), not
about the review widget."""

from __future__ import annotations

import pytest

BUTTON = """\
import ipywidgets as widgets
clicks = []
button = widgets.Button(description="Press me")
button.add_class("smoke-button")
def pressed(_):
    clicks.append(1)
    button.description = f"pressed {len(clicks)}"
button.on_click(pressed)
button"""


@pytest.mark.parametrize("app", ["lab", "notebook"])
def test_a_cell_runs_and_a_widget_button_reaches_the_kernel(notebook_factory, app) -> None:
    nb = notebook_factory([BUTTON, "print(len(clicks))"], app=app, setup="print(6 * 7)")
    assert nb.output(0).strip() == "42"
    nb.run(1)
    button = nb.page.locator(f"{nb.panel} button.smoke-button")
    button.wait_for(state="visible", timeout=60_000)  # generous: the first render is slow
    button.click()
    # Browser -> kernel (the click) and kernel -> browser (the new description).
    nb.page.locator(f"{nb.panel} button.smoke-button:has-text('pressed 1')").wait_for(
        timeout=30_000
    )
    nb.run(2)
    assert nb.wait_done(2).strip() == "1"
