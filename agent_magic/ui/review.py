"""One step's review in a notebook: :class:`ReviewWidget` and the widgets it is made of.

The proposed code in code editors (:class:`CodeEditor`: CodeMirror 6, bundled from
``js/`` into ``code_editor.js``), **Run** (or **Finish** when the model wants to stop; its
answer is the reply shown above, not repeated), **Run all** (this step and the rest of
the cell's steps without asking, as ``--mode terminate`` would), **Skip**, **Stop**, and
a feedback box (:class:`TextBox`) with **Send**, above a status line
(:func:`_status_html`). :class:`BudgetQuestion` asks, when a budget is spent, whether
to go on with more (how much) or stop. It is a plain object around
ipywidgets, so tests drive it with ``button.click()`` and ``.value``. Icons are plain
text characters found in ordinary fonts (no emoji font needed). Not here: showing it in
a cell, awaiting its click and the static record that replaces it
(:class:`~agent_magic.ui.widget.NotebookUI`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import anywidget
import ipywidgets as widgets
import traitlets

from ..codeblocks import PYTHON, CodeBlock, strip_code_blocks
from ..conversation import (
    BudgetAsked,
    Decision,
    Proposal,
    review_warnings,
)
from ..invisible import escape
from .signoff import without_marker
from .terminal import amount


class ReviewWidget:
    """One proposal's review. ``decision`` is None until a button decides it.

    ``marker`` is the sign-off marker, left out of the answer a final review shows.
    ``add_cells``, when given, adds **Finish and add code as cells** to a final review:
    it finishes and calls ``add_cells()`` while the cell still runs, so what it puts in
    the notebook (a ``set_next_input`` payload) goes out with this cell's reply.
    """

    def __init__(
        self,
        proposal: Proposal,
        marker: str = "TERMINATE",
        add_cells: Callable[[], None] | None = None,
        spent: str = "",
    ) -> None:
        self.proposal = proposal
        self.marker = marker
        self.spent = spent  # "so far: N tokens, $x", under the heading while undecided
        self.decision: Decision | None = None
        self._listeners: list[Callable[[Decision], None]] = []
        final = proposal.final
        self.codes = [
            _code_editor(block, editable=not final, label=_block_label(proposal, index))
            for index, block in enumerate(proposal.blocks)
        ]
        self.run = styled_button(
            "Finish" if final else "Run",
            "agent-run",
            "success",
            "check" if final else "play",
            "Accept the answer and end the conversation"
            if final
            else "Run the code (as edited) in this kernel",
        )
        self.run_all = styled_button(
            "Run all",
            "agent-run-all",
            "",
            "fast-forward",
            "Run this step and the rest of this cell's steps without asking"
            " (as --mode terminate: protected names, cut-off replies and repeats still ask)",
        )
        self.skip = styled_button(
            "Skip", "agent-skip", "", "forward", "Do not run it; tell the assistant it was skipped"
        )
        self.stop = styled_button(
            "Stop", "agent-stop", "danger", "stop", "End the conversation here"
        )
        self.add_cells: widgets.Button | None = None
        if final and add_cells is not None:
            self.add_cells = styled_button(
                "Finish and add code as cells",
                "agent-add-cells",
                "",
                "plus",
                "Finish, and put the code that ran into the notebook below this cell",
            )
            self.add_cells.layout.width = "auto"  # its words do not fit a standard button
            self.add_cells.on_click(lambda _: self._finish_with_cells(add_cells))
        self.feedback = TextBox(
            rows=1,
            placeholder="Or answer the assistant instead (sent in place of running the code)"
            if not final
            else "Or tell the assistant what is still missing",
            label="Your answer to the assistant",
            layout=widgets.Layout(flex="1 1 auto", width="auto"),
        )
        self.feedback.add_class("agent-feedback")
        self.send = styled_button(
            "Send", "agent-send", "info", "paper-plane", "Send your answer to the assistant"
        )
        self.status = widgets.HTML(self._status())
        self.status.add_class("agent-status")

        self.run.on_click(lambda _: self.decide(Decision.run(self.edited_blocks())))
        self.run_all.on_click(lambda _: self.decide(Decision.run_all(self.edited_blocks())))
        self.skip.on_click(lambda _: self.decide(Decision("skip")))
        self.stop.on_click(lambda _: self.decide(Decision("stop")))
        self.send.on_click(lambda _: self._send())

        buttons = [self.run] if final else [self.run, self.run_all, self.skip, self.stop]
        if self.add_cells is not None:
            buttons.append(self.add_cells)
        self.box = widgets.VBox(
            [
                self.status,
                *self.codes,
                widgets.HBox(buttons),
                widgets.HBox([self.feedback, self.send]),
            ],
            layout=widgets.Layout(width="100%"),
        )
        self.box.add_class("agent-review")

    @property
    def controls(self) -> list[widgets.DOMWidget]:
        extra = [self.add_cells] if self.add_cells is not None else []
        return [
            *self.codes,
            self.run,
            self.run_all,
            self.skip,
            self.stop,
            *extra,
            self.feedback,
            self.send,
        ]

    def edited_blocks(self) -> list[CodeBlock] | None:
        """The blocks as the editors hold them now, or None when nothing changed."""
        blocks = [
            CodeBlock(block.language, area.value, block.tool_call_id)
            for block, area in zip(self.proposal.blocks, self.codes, strict=True)
        ]
        return None if tuple(blocks) == self.proposal.blocks else blocks

    def on_decision(self, callback: Callable[[Decision], None]) -> None:
        self._listeners.append(callback)
        if self.decision is not None:
            callback(self.decision)

    def decide(self, decision: Decision) -> None:
        """Take the first decision only; later clicks (a double click) change nothing."""
        if self.decision is not None:
            return
        self.decision = decision
        for control in self.controls:
            control.disabled = True
        self.status.value = self._status(decision)
        for callback in self._listeners:
            callback(decision)

    def _send(self) -> None:
        text = self.feedback.value.strip()
        if not text:
            self.status.value = self._status(hint="Type your answer first.")
            return
        self.decide(Decision.feedback(text))

    def _finish_with_cells(self, add_cells: Callable[[], None]) -> None:
        if self.decision is not None:
            return
        try:
            add_cells()
        finally:  # the cell must end even if the frontend could not take the cells
            self.decide(Decision.run())

    def _status(self, decision: Decision | None = None, hint: str = "") -> str:
        spent = "" if decision is not None or not self.spent else self.spent
        return _status_html(self.proposal, decision, hint, self.marker, spent)

    def close(self) -> None:
        """Close every widget of the review (their comms and the kernel's references).

        A decided review is replaced by its static record; without this each step's
        dozen widgets would stay registered in the kernel for the rest of the session.
        """
        _close_all([self.box, *self.controls])  # a final step's Skip and Stop are not shown

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        return self.box._repr_mimebundle_(**kwargs)


def _close_all(pending: list[Any]) -> None:
    """Close these widgets, their children, layouts and styles."""
    while pending:
        widget = pending.pop()
        pending.extend(getattr(widget, "children", ()))
        # Layouts and styles are widgets of their own that close() leaves open.
        pending.extend(w for w in (getattr(widget, n, None) for n in ("layout", "style")) if w)
        widget.close()


def styled_button(
    description: str, css: str, style: str, icon: str, tooltip: str
) -> widgets.Button:
    """A button with its CSS class, style, icon and tooltip, as the review boxes use it."""
    # The icon is Font Awesome (shipped with ipywidgets' frontend), not an emoji; the
    # description is the button's accessible name, the tooltip its description.
    button = widgets.Button(description=description, button_style=style, icon=icon, tooltip=tooltip)
    button.add_class(css)
    return button


class _MessageBox(anywidget.AnyWidget):
    """A box whose keys stay in it, and whose text reaches the kernel in order.

    Two differences from ipywidgets' Textarea, both needing a view of our own:

    * the box carries ``data-lm-suppress-shortcuts`` and keeps keydown events to itself,
      so JupyterLab and Notebook 7 do not act on keys typed into it; otherwise
      Shift+Enter would run the ``%%agent`` cell again behind the widget's back
      (Notebook 7 does);
    * each edit is sent as a message of its own rather than as a state sync: a waiting
      cell's kernel handles comm messages without the busy/idle status that ipywidgets
      waits for before its next sync, so a synced edit could be held back past a click.
      Messages keep their order, so **Run** always runs what the box shows.

    ``value`` is the text as the kernel knows it (set it from Python in tests).
    """

    text = traitlets.Unicode("").tag(sync=True)  # what the box starts with
    disabled = traitlets.Bool(False).tag(sync=True)
    label = traitlets.Unicode("").tag(sync=True)  # its aria-label, for screen readers
    value = traitlets.Unicode("")

    def __init__(self, text: str = "", **kwargs: Any) -> None:
        super().__init__(text=text, value=text, **kwargs)
        self.on_msg(self._edited)

    def _edited(self, _: Any, content: dict[str, Any], buffers: list[bytes]) -> None:
        if isinstance(content, dict) and isinstance(content.get("value"), str):
            self.value = content["value"]


class CodeEditor(_MessageBox):
    """A code editor (CodeMirror 6): highlighting, line numbers, Tab / Shift-Tab indent.

    ``code_editor.js`` is a bundle built from ``js/`` (``npm ci && npm run build``);
    ``scripts/check_bundle.sh`` proves the committed file is what the sources build.
    """

    _esm = Path(__file__).with_name("code_editor.js")
    language = traitlets.Unicode(PYTHON).tag(sync=True)  # "python" is highlighted


class TextBox(_MessageBox):
    """A plain text box (the feedback box): a textarea, no editor to load."""

    _esm = Path(__file__).with_name("text_box.js")
    rows = traitlets.Int(4).tag(sync=True)
    placeholder = traitlets.Unicode("").tag(sync=True)


def _code_editor(block: CodeBlock, *, editable: bool, label: str) -> CodeEditor:
    editor = CodeEditor(block.code, language=block.language, disabled=not editable, label=label)
    editor.layout.width = "100%"
    editor.add_class("agent-code")
    return editor


def _block_label(proposal: Proposal, index: int) -> str:
    language = "Python" if proposal.blocks[index].language == PYTHON else "shell"
    which = f", block {index + 1} of {len(proposal.blocks)}" if len(proposal.blocks) > 1 else ""
    what = "read-only" if proposal.final else "editable before Run"
    return f"Step {proposal.step} code ({language}{which}), {what}"


_FINAL_HEADS = {
    "terminated": "the assistant's answer is above",
    "no_code": "the assistant replied without code (above)",
    "max_turns": "the turn limit is reached; the assistant's last reply is above",
}


def _escaped_html(proposal: Proposal) -> str:
    """The code as it runs, each invisible character escaped (only when it holds any)."""
    import html

    if not proposal.invisible:
        return ""
    return "".join(
        f"<pre class='agent-escaped' style='margin: 4px 0'>{html.escape(escape(b.code))}</pre>"
        for b in proposal.blocks
    )


def _status_html(
    proposal: Proposal,
    decision: Decision | None = None,
    hint: str = "",
    marker: str = "TERMINATE",
    spent: str = "",
) -> str:
    """The review's heading and notes. A final review does not repeat the answer: the
    reply above shows it once, rendered (``marker`` stays for callers that pass it)."""
    import html

    detail = ""
    if decision is not None:
        text = f"Step {proposal.step}: {decision.label(proposal)}"
    elif proposal.final:
        head = _FINAL_HEADS.get(proposal.reason, "the assistant wants to finish (above)")
        text = f"Step {proposal.step}: {head}"
        if not without_marker(strip_code_blocks(proposal.reply), marker).strip():
            detail = "<div>(no words, only the sign-off)</div>"
        detail += "<div>Finish to accept it, or tell the assistant what is still missing.</div>"
    elif len(proposal.blocks) == 1:
        text = f"Step {proposal.step}: review the proposed code; edit it before Run if you like"
    else:
        text = (
            f"Step {proposal.step}: review the {len(proposal.blocks)} proposed blocks; "
            "edit them before Run if you like"
        )
    if hint:
        text += f" — {hint}"
    if spent:
        detail = f"<div class='agent-spent'>{html.escape(spent)}</div>{detail}"
    if decision is None:  # what the loop's safety rules say about this step
        detail = (
            "".join(
                f"<div class='agent-warning'>⚠ {html.escape(line)}</div>"
                for line in review_warnings(proposal)
            )
            + _escaped_html(proposal)
            + detail
        )
    return f"<div role='status' aria-live='polite'><b>{html.escape(text)}</b>{detail}</div>"


class BudgetQuestion:
    """A spent budget's question: go on with more (a field prefilled with the budget's
    own size again) or stop. ``decision`` is None until a button decides it; it is a
    plain object around ipywidgets like :class:`ReviewWidget` (``wait`` serves both)."""

    def __init__(self, asked: BudgetAsked) -> None:
        self.asked = asked
        self.decision: Decision | None = None
        self._listeners: list[Callable[[Decision], None]] = []
        dollars = asked.unit == "dollars"
        field = widgets.BoundedFloatText if dollars else widgets.BoundedIntText
        self.amount = field(
            value=asked.suggested if dollars else int(asked.suggested),
            min=0.0001 if dollars else 1,
            max=1e6 if dollars else 10**9,
            step=0.01 if dollars else 100,
            description="More $" if dollars else "More tokens",
            description_tooltip="How much more this cell may spend",
            style={"description_width": "auto"},
            layout=widgets.Layout(width="16em"),
        )
        self.amount.add_class("agent-more-amount")
        self.more = styled_button(
            "Continue", "agent-more", "success", "play", "Go on, with this much more budget"
        )
        self.stop = styled_button(
            "Stop", "agent-stop", "danger", "stop", "End the conversation here"
        )
        self.status = widgets.HTML(self._status())
        self.status.add_class("agent-status")
        self.more.on_click(lambda _: self.decide(Decision.raise_budget(self.amount.value)))
        self.stop.on_click(lambda _: self.decide(Decision("stop")))
        self.box = widgets.VBox(
            [self.status, widgets.HBox([self.amount, self.more, self.stop])],
            layout=widgets.Layout(width="100%"),
        )
        self.box.add_class("agent-review")
        self.box.add_class("agent-budget")

    @property
    def controls(self) -> list[widgets.DOMWidget]:
        return [self.amount, self.more, self.stop]

    def on_decision(self, callback: Callable[[Decision], None]) -> None:
        self._listeners.append(callback)
        if self.decision is not None:
            callback(self.decision)

    def decide(self, decision: Decision) -> None:
        """Take the first decision only; a nonpositive amount is asked again."""
        if self.decision is not None:
            return
        if decision.action == "more" and not decision.more > 0:
            self.status.value = self._status("Type an amount above 0 first.")
            return
        self.decision = decision
        for control in self.controls:
            control.disabled = True
        self.status.value = self._status()
        for callback in self._listeners:
            callback(decision)

    def record(self) -> str:
        """What the question says once answered (Markdown), in place of the widget."""
        said = budget_answer(self.asked, self.decision)
        return f"**{'▶' if self.decision and self.decision.action == 'more' else '■'} {said}**"

    def _status(self, hint: str = "") -> str:
        import html

        asked = self.asked
        if self.decision is not None:
            head = budget_answer(asked, self.decision)
        else:
            head = f"Before step {asked.step}: the budget is spent. Go on with more, or stop?"
        if hint:
            head += f" — {hint}"
        return (
            f"<div role='status' aria-live='polite'><b>{html.escape(head)}</b>"
            f"<div class='agent-warning'>{html.escape(asked.message)}</div></div>"
        )

    def close(self) -> None:
        """Close every widget of the question, as :meth:`ReviewWidget.close` does."""
        _close_all([self.box, *self.controls])

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        return self.box._repr_mimebundle_(**kwargs)


def budget_answer(asked: BudgetAsked, decision: Decision | None) -> str:
    """'Budget: went on with 5,000 tokens more' or 'Budget: stopped', in words."""
    if decision is None or decision.action != "more":
        return f"Before step {asked.step}: the budget is spent; stopped"
    more = amount(decision.more, asked.unit)
    return f"Before step {asked.step}: the budget is spent; went on with {more} more"
