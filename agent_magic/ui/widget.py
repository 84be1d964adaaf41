"""The notebook edge: the conversation as cell outputs, and a widget to review each step.

The only module that imports ipywidgets (and anywidget, for the code editor and the
feedback box). :class:`ReviewWidget` is one step's review: the proposed code in code
editors (:class:`CodeEditor`: CodeMirror 6, bundled from ``js/`` into
``code_editor.js``), **Run** (or **Finish** when the model wants to stop, with what it
concluded), **Skip**, **Stop**, and a feedback box with **Send**. It is a plain object
around ipywidgets, so tests drive it with ``button.click()`` and ``.value``.

:class:`NotebookUI` is an event handler for :func:`~agent_magic.conversation.adrive`.
It streams each reply as Markdown into one output (updated in place through a
display id), shows the widget when a review is requested and awaits the click in
short ticks, so the kernel's interrupt button stops the wait at once. Once a step
is decided its widget is replaced, through the same display id, by a static
Markdown record (the code as it ran, the decision, the result), so a saved
notebook reads well on GitHub, nbviewer or a Lab without widget state. The sign-off
marker is left out of what it shows (:mod:`.signoff`); the record keeps it.

Icons are plain text characters found in ordinary fonts (no emoji font needed).
"""

from __future__ import annotations

import asyncio
import difflib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anywidget
import ipywidgets as widgets
import traitlets

from ..codeblocks import PYTHON, CodeBlock, inert_markdown, strip_code_blocks
from ..conversation import (
    CodeRan,
    Decided,
    Decision,
    Event,
    Finished,
    Proposal,
    ReplyDelta,
    ReplyReceived,
    RequestSent,
    ReviewRequested,
    review_warnings,
)
from .cells import insert_below, sources
from .signoff import undecided_tail, without_marker

# How often a waiting review looks up from its sleep: the interrupt button's latency.
TICK = 0.1
# Streaming redraws at most this often (seconds); the first token shows at once.
REDRAW = 0.05

# Text-presentation characters (Geometric Shapes, Arrows, Dingbats): they render from
# the ordinary fonts every desktop has, where emoji such as U+1F4AC need an emoji font.
_LABEL_ICONS = {
    "ran": "▶",
    "edited and ran": "✎",
    "skipped": "↷",
    "feedback": "❝",
    "stopped": "■",
    "finished": "✔",
}


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
    ) -> None:
        self.proposal = proposal
        self.marker = marker
        self.decision: Decision | None = None
        self._listeners: list[Callable[[Decision], None]] = []
        final = proposal.final
        self.codes = [
            _code_editor(block, editable=not final, label=_block_label(proposal, index))
            for index, block in enumerate(proposal.blocks)
        ]
        self.run = _button(
            "Finish" if final else "Run",
            "agent-run",
            "success",
            "check" if final else "play",
            "Accept the answer and end the conversation"
            if final
            else "Run the code (as edited) in this kernel",
        )
        self.skip = _button(
            "Skip", "agent-skip", "", "forward", "Do not run it; tell the assistant it was skipped"
        )
        self.stop = _button("Stop", "agent-stop", "danger", "stop", "End the conversation here")
        self.add_cells: widgets.Button | None = None
        if final and add_cells is not None:
            self.add_cells = _button(
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
        self.send = _button(
            "Send", "agent-send", "info", "paper-plane", "Send your answer to the assistant"
        )
        self.status = widgets.HTML(self._status())
        self.status.add_class("agent-status")

        self.run.on_click(lambda _: self.decide(Decision.run(self.edited_blocks())))
        self.skip.on_click(lambda _: self.decide(Decision("skip")))
        self.stop.on_click(lambda _: self.decide(Decision("stop")))
        self.send.on_click(lambda _: self._send())

        buttons = [self.run] if final else [self.run, self.skip, self.stop]
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
        return [*self.codes, self.run, self.skip, self.stop, *extra, self.feedback, self.send]

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
        return _status_html(self.proposal, decision, hint, self.marker)

    def close(self) -> None:
        """Close every widget of the review (their comms and the kernel's references).

        A decided review is replaced by its static record; without this each step's
        dozen widgets would stay registered in the kernel for the rest of the session.
        """
        pending = [self.box, *self.controls]  # a final step's Skip and Stop are not shown
        while pending:
            widget = pending.pop()
            pending.extend(getattr(widget, "children", ()))
            # Layouts and styles are widgets of their own that close() leaves open.
            pending.extend(w for w in (getattr(widget, n, None) for n in ("layout", "style")) if w)
            widget.close()

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        return self.box._repr_mimebundle_(**kwargs)


def _button(description: str, css: str, style: str, icon: str, tooltip: str) -> widgets.Button:
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


# How much of a final answer the finish review repeats (the whole reply is shown above).
ANSWER_CHARS = 600

_FINAL_HEADS = {
    "terminated": "the assistant's answer",
    "no_code": "the assistant replied without code",
    "max_turns": "the turn limit is reached; the assistant's last reply",
}


def _status_html(
    proposal: Proposal,
    decision: Decision | None = None,
    hint: str = "",
    marker: str = "TERMINATE",
) -> str:
    import html

    detail = ""
    if decision is not None:
        text = f"Step {proposal.step}: {decision.label(proposal)}"
    elif proposal.final:
        head = _FINAL_HEADS.get(proposal.reason, "the assistant wants to finish")
        text = f"Step {proposal.step}: {head}"
        answer = " ".join(without_marker(strip_code_blocks(proposal.reply), marker).split())
        if len(answer) > ANSWER_CHARS:
            answer = answer[: ANSWER_CHARS - 1].rstrip() + "…"
        detail = (
            "<div class='agent-answer' style='border-left: 3px solid var(--jp-brand-color1,"
            " #1976d2); padding: 2px 8px; margin: 4px 0; white-space: pre-wrap'>"
            f"{html.escape(answer or '(no words, only the sign-off)')}</div>"
            "<div>Finish to accept it, or tell the assistant what is still missing.</div>"
        )
    else:
        what = "step" if len(proposal.blocks) == 1 else f"{len(proposal.blocks)} blocks"
        text = f"Step {proposal.step}: review the proposed {what}; edit it before Run if you like"
    if hint:
        text += f" — {hint}"
    if decision is None:  # what the loop's safety rules say about this step
        detail = (
            "".join(
                f"<div class='agent-warning'>⚠ {html.escape(line)}</div>"
                for line in review_warnings(proposal)
            )
            + detail
        )
    return f"<div role='status' aria-live='polite'><b>{html.escape(text)}</b>{detail}</div>"


# --- the conversation as cell outputs ------------------------------------------------------


class Display:
    """Where outputs go: IPython's display machinery with display ids (swappable in tests)."""

    def show(self, bundle: dict[str, Any]) -> Any:
        from IPython.display import display

        return display(bundle, raw=True, display_id=True)

    def update(self, handle: Any, bundle: dict[str, Any]) -> None:
        handle.update(bundle, raw=True)


@dataclass
class _StepRecord:
    """What a decided step's output says; re-rendered as code runs."""

    proposal: Proposal
    decision: Decision
    automatic: bool
    results: list[str] = field(default_factory=list)

    def markdown(self) -> str:
        label = self.decision.label(self.proposal)
        by = " (automatic)" if self.automatic and label == "ran" else ""
        head = f"**{_LABEL_ICONS.get(label, '•')} Step {self.proposal.step}: {label}{by}**"
        parts = [head]
        blocks = self.decision.edited if self.decision.edited is not None else self.proposal.blocks
        for block in blocks:
            parts.append(_fence(block))
        if self.decision.edited_differs(self.proposal):
            diff = _diff(self.proposal.blocks, self.decision.edited or ())
            if diff:
                parts.append("Changed from the proposal:\n\n" + _fence(CodeBlock("diff", diff)))
        if self.decision.action == "feedback":
            parts.append("> " + self.decision.text.replace("\n", "\n> "))
        parts.extend(self.results)
        return "\n\n".join(parts)

    def plain(self) -> str:
        return self.markdown().replace("**", "")


def _fence(block: CodeBlock) -> str:
    fence = "```"
    while fence in block.code:
        fence += "`"
    language = "python" if block.language == PYTHON else block.language
    return f"{fence}{language}\n{block.code}\n{fence}"


def _diff(before: tuple[CodeBlock, ...], after: tuple[CodeBlock, ...]) -> str:
    old = "\n\n".join(b.code for b in before).splitlines()
    new = "\n\n".join(b.code for b in after).splitlines()
    return "\n".join(difflib.unified_diff(old, new, "proposed", "ran", lineterm=""))


class BusyStatus:
    """Keeps the frontend's kernel status at 'busy' for as long as the ``%%agent`` cell runs.

    The kernel says 'busy' when the cell starts and 'idle' when it ends, but requests
    handled meanwhile end with an 'idle' of their own, and JupyterLab's status bar shows
    the last status it got, whatever its parent: the subshell requests that Lab's widget
    manager sends on the control channel when a review's widgets open and close
    (ipykernel 7.4, ipywidgets 8.1) turned it to Idle while the review waited and while
    the approved code ran; on kernels that wrap comm messages in busy/idle, so would
    every keystroke reaching the editor. So while held, each 'idle' sent for another
    request is followed by a 'busy' for this cell's request. The 'idle' itself still
    goes out first, unchanged, so a client counting the idle replies to its own messages
    (ipywidgets' state sync) sees every one: keystrokes sync as before, only the status
    shown changes. It lets go at :meth:`release` or at the cell's own 'idle', whichever
    comes first, so it never outlives the cell. Outside a kernel it does nothing.
    """

    def __init__(self, kernel: Any) -> None:
        self.kernel = kernel
        self.held = False
        self._hook: Any = None

    def hold(self) -> None:
        kernel = self.kernel
        publish = getattr(kernel, "_publish_status", None)
        get_parent = getattr(kernel, "get_parent", None)
        if self.held or not callable(publish) or not callable(get_parent):
            return
        cell = get_parent("shell") or {}
        cell_id = (cell.get("header") or {}).get("msg_id")
        if not cell_id:
            return

        def publish_status(status: str, channel: str, parent: Any = None) -> None:
            publish(status, channel, parent)
            if status != "idle" or not self.held:
                return
            replied = parent or get_parent(channel) or {}
            if (replied.get("header") or {}).get("msg_id") == cell_id:
                self.release()  # the cell has ended
            else:
                publish("busy", "shell", cell)

        self._hook, self.held = publish_status, True
        # An instance attribute over the method (the kernel calls self._publish_status
        # from the shell and control threads alike); removed again by release().
        kernel._publish_status = publish_status

    def release(self) -> None:
        if not self.held:
            return
        self.held = False
        if self.kernel.__dict__.get("_publish_status") is self._hook:
            del self.kernel._publish_status


def _kernel() -> Any:
    from IPython import get_ipython

    return getattr(get_ipython(), "kernel", None)


def _has_fence(text: str) -> bool:
    return "```" in text or "~~~" in text


def _markdown(text: str) -> dict[str, Any]:
    return {"text/markdown": text, "text/plain": text}


class NotebookUI:
    """Event handler for :func:`~agent_magic.conversation.adrive` in a notebook cell.

    ``interactive`` False (mode never, replay) shows the record without ever
    waiting. ``review_timeout`` bounds each wait for a click (None: no bound).
    ``marker`` is the conversation's sign-off marker, left out of the replies shown.
    ``add_cells`` is called with the code that ran in this cell (one source per block,
    in order; see :func:`agent_magic.ui.cells.sources`) from the final review's
    **Finish and add code as cells** button; by default it puts them in a cell below
    (:func:`agent_magic.ui.cells.insert_below`); None leaves the button out.
    """

    def __init__(
        self,
        interactive: bool = True,
        review_timeout: float | None = None,
        display: Display | None = None,
        marker: str = "TERMINATE",
        add_cells: Callable[[list[str]], None] | None = insert_below,
    ) -> None:
        self.interactive = interactive
        self.review_timeout = review_timeout
        self.display = display or Display()
        self.marker = marker
        self.add_cells = add_cells
        self.ran: list[CodeBlock] = []  # the blocks that ran without error, in order
        self.busy = BusyStatus(_kernel())  # the status bar says Busy while the cell runs
        self.widget: ReviewWidget | None = None  # the review awaiting a click, if any
        self.timed_out = False
        self._reply: Any = None  # display handle of the reply being streamed
        self._text = ""
        self._drawn = 0.0
        self._step_handle: Any = None  # where the current step's widget / record is
        self._record: _StepRecord | None = None

    # The handler ---------------------------------------------------------------------------

    def __call__(self, event: Event) -> Any:
        if self.interactive and not self.busy.held and not isinstance(event, Finished):
            self.busy.hold()
        if isinstance(event, RequestSent):
            self._reply, self._text, self._step_handle, self._record = None, "", None, None
            if event.note:  # the conversation was trimmed to fit the context window
                self.display.show(_markdown(f"*{event.note}*"))
        elif isinstance(event, ReplyDelta):
            self._stream(event)
        elif isinstance(event, ReplyReceived):
            self._received(event)
        elif isinstance(event, ReviewRequested):
            return self._review(event.proposal)
        elif isinstance(event, Decided):
            self._decided(event)
        elif isinstance(event, CodeRan):
            self._ran(event)
        elif isinstance(event, Finished):
            self._finished(event)
        return None

    # Replies -------------------------------------------------------------------------------

    def _stream(self, event: ReplyDelta) -> None:
        self._text += event.text
        now = time.perf_counter()
        if self._reply is None:
            self._reply = self.display.show(_markdown(self._streamed(event.step)))
            self._drawn = now
        elif now - self._drawn >= REDRAW:
            self.display.update(self._reply, _markdown(self._streamed(event.step)))
            self._drawn = now

    def _streamed(self, step: int) -> str:
        """The reply so far as it is shown: its prose, as the finished reply will be.

        Code is shown apart (the review, the record), so it is left out while it streams
        too: drawing it and then taking it away made the reply jump, and JupyterLab could
        finish rendering the slower, highlighted draw after the update that replaced it.
        A tail that may be the start of the sign-off waits for the next words.
        """
        text = self._text[: len(self._text) - undecided_tail(self._text, self.marker)]
        prose = strip_code_blocks(text)
        if len(prose) < len(text.strip()) and _has_fence(text):
            prose += "\n\n*(code…)*"
        return self._reply_markdown(step, prose)

    def _received(self, event: ReplyReceived) -> None:
        prose = without_marker(strip_code_blocks(event.reply.content), self.marker)
        if not prose and event.blocks:
            prose = "*(proposes code)*"
        markdown = self._reply_markdown(event.step, prose)
        if self._reply is None:
            self._reply = self.display.show(_markdown(markdown))
        else:
            self.display.update(self._reply, _markdown(markdown))

    @staticmethod
    def _reply_markdown(step: int, text: str) -> str:
        # The same whether the reply is live, cached or replayed, so a replayed notebook
        # matches the run that recorded it; the recording says where each reply came from.
        return f"**Assistant** · step {step}\n\n{inert_markdown(text)}"

    # Reviews -------------------------------------------------------------------------------

    def _review(self, proposal: Proposal) -> Decision | Any:
        # In mode never the loop asks only about protected names, which a person answers.
        if not self.interactive and not proposal.protected:  # pragma: no cover
            return Decision.run()
        add_cells = None
        if self.add_cells is not None and self.ran:
            codes, add = sources(self.ran), self.add_cells
            add_cells = lambda: add(codes)  # noqa: E731
        widget = ReviewWidget(proposal, self.marker, add_cells)
        self.widget = widget
        bundle = {
            **widget._repr_mimebundle_(),
            "text/plain": f"[step {proposal.step}: waiting for a decision in the widget]",
        }
        self._step_handle = self.display.show(bundle)
        return self.wait(widget)

    async def wait(self, widget: ReviewWidget) -> Decision:
        """Await the click in short ticks, so an interrupt is seen within ``TICK``."""
        loop = asyncio.get_running_loop()
        decided: asyncio.Future[Decision] = loop.create_future()
        widget.on_decision(lambda d: decided.done() or decided.set_result(d))
        deadline = loop.time() + self.review_timeout if self.review_timeout else None
        while not decided.done():
            if deadline is not None and loop.time() >= deadline:
                self.timed_out = True
                widget.decide(Decision("stop"))
                break
            await asyncio.wait([decided], timeout=TICK)
        return decided.result()

    def _decided(self, event: Decided) -> None:
        if self.widget is not None:
            self.widget.close()  # its view is replaced by the record below
            self.widget = None
        if event.proposal.final and event.decision.action == "run":
            record_text = f"**✔ Step {event.proposal.step}: finished**"
            self._show_step(_markdown(record_text))
            return
        self._record = _StepRecord(event.proposal, event.decision, event.automatic)
        if event.decision.action == "run" and event.proposal.blocks:
            self._record.results.append("*running…*")
        self._show_record()

    def _ran(self, event: CodeRan) -> None:
        if event.outcome.ok and not event.outcome.interrupted:
            self.ran.append(event.block)
        record = self._record
        if record is None:
            return
        if record.results and record.results[-1] == "*running…*":
            record.results.pop()
        if event.outcome.interrupted:
            note = "interrupted"
        elif event.outcome.ok:
            note = "✓ ok"
        else:
            note = "✗ failed — the error goes back to the assistant"
        prefix = f"block {event.index + 1}: " if len(record.proposal.blocks) > 1 else ""
        record.results.append(f"*{prefix}{note}*")
        self._show_record()

    def _show_record(self) -> None:
        assert self._record is not None
        text = self._record.markdown()
        self._show_step({"text/markdown": text, "text/plain": self._record.plain()})

    def _show_step(self, bundle: dict[str, Any]) -> None:
        if self._step_handle is None:
            self._step_handle = self.display.show(bundle)
        else:
            self.display.update(self._step_handle, bundle)

    def _finished(self, event: Finished) -> None:
        self.busy.release()
        if self.widget is not None:  # interrupted or failed while a review waited
            self.widget.decide(Decision("stop"))
            self._show_step(_markdown(f"**■ Step {self.widget.proposal.step}: {event.reason}**"))
            self.widget.close()
            self.widget = None
        if self._record is not None and self._record.results[-1:] == ["*running…*"]:
            self._record.results[-1] = f"*{event.reason}*"
            self._show_record()
        if event.reason == "error":
            return  # the cell ends with the one-line error itself
        message = event.message
        if self.timed_out:
            message = f"No decision within {self.review_timeout:g} s; the conversation is kept."
        self.display.show(_markdown(f"**Conversation {event.reason}.** {message}".strip()))
