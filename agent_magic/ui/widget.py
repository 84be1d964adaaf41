"""The notebook edge: the conversation as cell outputs, and a widget to review each step.

The only module that imports ipywidgets (and anywidget, for the code box).
:class:`ReviewWidget` is one step's review:
the proposed code in editable text areas, **Run** (or **Finish** when the model
wants to stop), **Skip**, **Stop**, and a feedback box with **Send**. It is a plain
object around ipywidgets, so tests drive it with ``button.click()`` and ``.value``.

:class:`NotebookUI` is an event handler for :func:`~agent_magic.conversation.adrive`.
It streams each reply as Markdown into one output (updated in place through a
display id), shows the widget when a review is requested and awaits the click in
short ticks, so the kernel's interrupt button stops the wait at once. Once a step
is decided its widget is replaced, through the same display id, by a static
Markdown record (the code as it ran, the decision, the result), so a saved
notebook reads well on GitHub, nbviewer or a Lab without widget state.
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
)

# How often a waiting review looks up from its sleep: the interrupt button's latency.
TICK = 0.1
# Streaming redraws at most this often (seconds); the first token shows at once.
REDRAW = 0.05

_LABEL_ICONS = {
    "ran": "▶",
    "edited and ran": "✎",
    "skipped": "⏭",
    "feedback": "💬",
    "stopped": "■",
    "finished": "✔",
}


class ReviewWidget:
    """One proposal's review. ``decision`` is None until a button decides it."""

    def __init__(self, proposal: Proposal) -> None:
        self.proposal = proposal
        self.decision: Decision | None = None
        self._listeners: list[Callable[[Decision], None]] = []
        final = proposal.final
        self.codes = [_code_area(block, editable=not final) for block in proposal.blocks]
        self.run = _button(
            "Finish" if final else "Run", "agent-run", "success", "check" if final else "play"
        )
        self.skip = _button("Skip", "agent-skip", "", "forward")
        self.stop = _button("Stop", "agent-stop", "danger", "stop")
        self.feedback = TextBox(
            code=False,
            rows=1,
            placeholder="Or answer the assistant instead (sent in place of running the code)"
            if not final
            else "Or tell the assistant what is still missing",
            layout=widgets.Layout(flex="1 1 auto", width="auto"),
        )
        self.feedback.add_class("agent-feedback")
        self.send = _button("Send", "agent-send", "info", "paper-plane")
        self.status = widgets.HTML(_status_html(proposal))
        self.status.add_class("agent-status")

        self.run.on_click(lambda _: self.decide(Decision.run(self.edited_blocks())))
        self.skip.on_click(lambda _: self.decide(Decision("skip")))
        self.stop.on_click(lambda _: self.decide(Decision("stop")))
        self.send.on_click(lambda _: self._send())

        buttons = [self.run] if final else [self.run, self.skip, self.stop]
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
        return [*self.codes, self.run, self.skip, self.stop, self.feedback, self.send]

    def edited_blocks(self) -> list[CodeBlock] | None:
        """The blocks as the text areas hold them now, or None when nothing changed."""
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
        self.status.value = _status_html(self.proposal, decision)
        for callback in self._listeners:
            callback(decision)

    def _send(self) -> None:
        text = self.feedback.value.strip()
        if not text:
            self.status.value = _status_html(self.proposal, hint="Type your answer first.")
            return
        self.decide(Decision.feedback(text))

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


def _button(description: str, css: str, style: str, icon: str) -> widgets.Button:
    button = widgets.Button(description=description, button_style=style, icon=icon)
    button.add_class(css)
    return button


class TextBox(anywidget.AnyWidget):
    """A text area whose keys stay in it, and whose text reaches the kernel in order.

    Two differences from ipywidgets' Textarea, both needing a view of our own
    (``text_box.js``):

    * the text area carries ``data-lm-suppress-shortcuts``, so JupyterLab and Notebook 7
      do not act on keys typed into it; otherwise Shift+Enter would run the ``%%agent``
      cell again behind the widget's back (Notebook 7 does);
    * each edit is sent as a message of its own rather than a throttled state sync:
      ipywidgets holds back a model's next sync until the kernel reports 'idle' for the
      last one, so a click right after typing could reach the kernel before the text.
      Messages keep their order, so **Run** always runs what the box shows.

    ``value`` is the text as the kernel knows it (set it from Python in tests).
    """

    _esm = Path(__file__).with_name("text_box.js")
    text = traitlets.Unicode("").tag(sync=True)  # what the box starts with
    rows = traitlets.Int(4).tag(sync=True)
    disabled = traitlets.Bool(False).tag(sync=True)
    placeholder = traitlets.Unicode("").tag(sync=True)
    code = traitlets.Bool(True).tag(sync=True)  # monospace, Tab indents
    value = traitlets.Unicode("")

    def __init__(self, text: str = "", **kwargs: Any) -> None:
        super().__init__(text=text, value=text, **kwargs)
        self.on_msg(self._edited)

    def _edited(self, _: Any, content: dict[str, Any], buffers: list[bytes]) -> None:
        if isinstance(content, dict) and isinstance(content.get("value"), str):
            self.value = content["value"]


def _code_area(block: CodeBlock, *, editable: bool) -> TextBox:
    rows = min(max(block.code.count("\n") + 1, 2), 30)
    area = TextBox(block.code, rows=rows, disabled=not editable)
    area.layout.width = "100%"
    area.add_class("agent-code")
    return area


def _status_html(proposal: Proposal, decision: Decision | None = None, hint: str = "") -> str:
    import html

    if decision is not None:
        text = f"Step {proposal.step}: {decision.label(proposal)}"
    elif proposal.final:
        text = f"Step {proposal.step}: the assistant wants to finish ({proposal.reason})"
    else:
        what = "step" if len(proposal.blocks) == 1 else f"{len(proposal.blocks)} blocks"
        text = f"Step {proposal.step}: review the proposed {what}; edit it before Run if you like"
    if hint:
        text += f" — {hint}"
    return f"<b>{html.escape(text)}</b>"


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


def _markdown(text: str) -> dict[str, Any]:
    return {"text/markdown": text, "text/plain": text}


class NotebookUI:
    """Event handler for :func:`~agent_magic.conversation.adrive` in a notebook cell.

    ``interactive`` False (mode never, replay) shows the record without ever
    waiting. ``review_timeout`` bounds each wait for a click (None: no bound).
    """

    def __init__(
        self,
        interactive: bool = True,
        review_timeout: float | None = None,
        display: Display | None = None,
    ) -> None:
        self.interactive = interactive
        self.review_timeout = review_timeout
        self.display = display or Display()
        self.widget: ReviewWidget | None = None  # the review awaiting a click, if any
        self.timed_out = False
        self._reply: Any = None  # display handle of the reply being streamed
        self._text = ""
        self._drawn = 0.0
        self._step_handle: Any = None  # where the current step's widget / record is
        self._record: _StepRecord | None = None

    # The handler ---------------------------------------------------------------------------

    def __call__(self, event: Event) -> Any:
        if isinstance(event, RequestSent):
            self._reply, self._text, self._step_handle, self._record = None, "", None, None
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
            self._reply = self.display.show(_markdown(self._reply_markdown(event.step, self._text)))
            self._drawn = now
        elif now - self._drawn >= REDRAW:
            self.display.update(
                self._reply, _markdown(self._reply_markdown(event.step, self._text))
            )
            self._drawn = now

    def _received(self, event: ReplyReceived) -> None:
        prose = strip_code_blocks(event.reply.content)
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
        if not self.interactive:  # pragma: no cover - the loop does not ask in mode never
            return Decision.run()
        widget = ReviewWidget(proposal)
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
