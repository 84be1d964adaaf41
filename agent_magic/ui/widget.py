"""The notebook edge: the conversation as cell outputs, and a widget to review each step.

:class:`NotebookUI` is an event handler for :func:`~agent_magic.conversation.adrive`.
It streams each reply as Markdown into one output (updated in place through a
display id), shows the review widget when a review is requested and awaits the click in
short ticks, so the kernel's interrupt button stops the wait at once. Once a step
is decided its widget is replaced, through the same display id, by a static
Markdown record (:class:`_StepRecord`: the code as it ran, the decision, the result), so
a saved notebook reads well on GitHub, nbviewer or a Lab without widget state. The
sign-off marker is left out of what it shows (:mod:`.signoff`); the record keeps it.

Only the notebook's modules import ipywidgets (and anywidget, for the code editor and
the feedback box): this one, :mod:`.review` (:class:`ReviewWidget`, :class:`CodeEditor`,
:class:`TextBox`) and :mod:`.boxes` (:class:`BusyStatus`, :class:`KeyBox`); import each
from its own module. The constants ``TICK`` and ``REDRAW`` and the function ``_kernel``
live here, next to their one user. Not here: the review widget itself (:mod:`.review`).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..codeblocks import inert_markdown, prose_with_places
from ..conversation import (
    BudgetAsked,
    CodeRan,
    Decided,
    Decision,
    Event,
    EventHandler,
    Finished,
    Proposal,
    ReplyDelta,
    ReplyReceived,
    RequestSent,
    ReviewRequested,
    edit_diff,
)
from ..secrets import hidden_note
from ..text import DISPLAY_LIMIT, fence, shown_head
from .boxes import BusyStatus
from .cells import Ran, insert_below, sources
from .review import BudgetQuestion, ReviewWidget
from .signoff import undecided_tail, without_marker
from .working import NotebookStatus

__all__ = ["REDRAW", "TICK", "Display", "NotebookUI"]

# How often a waiting review looks up from its sleep: the interrupt button's latency.
TICK = 0.1
# Streaming redraws at most this often (seconds); the first token shows at once.
REDRAW = 0.05

# Text-presentation characters (Geometric Shapes, Arrows, Dingbats): they render from
# the ordinary fonts every desktop has, where emoji such as U+1F4AC need an emoji font.
_LABEL_ICONS = {
    "ran": "▶",
    "edited and ran": "✎",
    "ran all": "»",
    "edited and ran all": "»",
    "skipped": "↷",
    "feedback": "❝",
    "stopped": "■",
    "finished": "✔",
}


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
        by = " (automatic)" if self.automatic and label in ("ran", "feedback") else ""
        head = f"**{_LABEL_ICONS.get(label, '•')} Step {self.proposal.step}: {label}{by}**"
        parts = [head]
        blocks = self.decision.edited if self.decision.edited is not None else self.proposal.blocks
        for block in blocks:
            parts.append(fence(block.code, block.language))
        if self.decision.edited_differs(self.proposal):
            diff = edit_diff(self.proposal.blocks, self.decision.edited or ())
            if diff:
                parts.append("Changed from the proposal:\n\n" + fence(diff, "diff"))
        if self.decision.text:  # feedback, or why the loop refused the step
            parts.append("> " + self.decision.text.replace("\n", "\n> "))
        parts.extend(self.results)
        return "\n\n".join(parts)

    def plain(self) -> str:
        return self.markdown().replace("**", "")


def _kernel() -> Any:
    from IPython import get_ipython

    return getattr(get_ipython(), "kernel", None)


# Where a reply came from when its timing is not the model's (the recording's).
_RECORDED = ("replay", "cache")
_FENCE_LINE = re.compile(r"^([ ]{0,3})(`{3,}|~{3,})[^\n`]*$", re.MULTILINE)


def _streaming_code(text: str) -> str:
    """``text`` with each fence's language left out, and a fence left open closed."""
    fences = 0

    def plain(match: re.Match[str]) -> str:
        nonlocal fences
        fences += 1
        return match[1] + match[2]

    shown = _FENCE_LINE.sub(plain, text)
    return shown + "\n```" if fences % 2 else shown


def _markdown(text: str) -> dict[str, Any]:
    return {"text/markdown": text, "text/plain": text}


class NotebookUI(EventHandler):
    """Event handler for :func:`~agent_magic.conversation.adrive` in a notebook cell.

    ``interactive`` False (mode never, replay) shows the record without ever
    waiting. ``review_timeout`` bounds each wait for a click (None: no bound).
    ``marker`` is the conversation's sign-off marker, left out of the replies shown.
    ``add_cells`` is called with the code that ran in this cell (one source per block,
    in order; see :func:`agent_magic.ui.cells.sources`) from the final review's
    **Finish and add code as cells** button; by default it puts them in a cell below
    (:func:`agent_magic.ui.cells.insert_below`); None leaves the button out. ``ran``
    gives that code (the recorder's records of it, which ``%agent cells`` reads too);
    None: nothing ran, no button.
    ``spent`` gives the line each review shows under its heading: what was spent so far
    (:func:`agent_magic.budget.spent_line`).
    """

    def __init__(
        self,
        interactive: bool = True,
        review_timeout: float | None = None,
        display: Display | None = None,
        marker: str = "TERMINATE",
        add_cells: Callable[[list[str], list[int]], Any] | None = insert_below,
        spent: Callable[[], str] | None = None,
        limit: int = DISPLAY_LIMIT,
        ran: Callable[[], Sequence[Ran]] | None = None,
    ) -> None:
        self.interactive = interactive
        self.limit = limit  # most characters of a reply shown (a step's output bound)
        self.spent = spent  # the "so far" line each review shows (see agent_magic.budget)
        self.review_timeout = review_timeout
        self.display = display or Display()
        self.marker = marker
        self.add_cells = add_cells
        # The code that ran without error in this cell, in order, with its steps: the
        # recorder's records (one list, which %agent cells reads too).
        self.ran = ran
        self.busy = BusyStatus(_kernel())  # the status bar says Busy while the cell runs
        self.widget: ReviewWidget | None = None  # the review awaiting a click, if any
        self.question: BudgetQuestion | None = None  # a spent budget's, awaiting a click
        self.timed_out = False
        self._reply: Any = None  # display handle of the reply being streamed
        self._text = ""
        self._drawn = 0.0
        self._step_handle: Any = None  # where the current step's widget / record is
        self._record: _StepRecord | None = None
        self.status = NotebookStatus(self.display)  # "thinking 12 s" while a request runs

    # The handler ---------------------------------------------------------------------------

    def __call__(self, event: Event) -> Any:
        if self.interactive and not self.busy.held and not isinstance(event, Finished):
            self.busy.hold()
        return super().__call__(event)

    def on_request_sent(self, event: RequestSent) -> None:
        self._reply, self._text, self._step_handle, self._record = None, "", None, None
        self._drawn = 0.0
        if event.note:  # the conversation was trimmed to fit the context window
            self.display.show(_markdown(f"*{event.note}*"))
        self.status.start()

    def on_reply_delta(self, event: ReplyDelta) -> None:
        if event.thinking:  # shown folded under the working line, never as the reply
            self.status.thinking(event.text)
        else:
            self._stream(event)

    def on_review_requested(self, event: ReviewRequested) -> Any:
        return self._review(event.proposal)

    def on_budget_asked(self, event: BudgetAsked) -> Any:
        self.status.done(None)  # no "waiting for the model" while a person decides
        return self._ask_more(event)

    # Replies -------------------------------------------------------------------------------

    def _stream(self, event: ReplyDelta) -> None:
        if len(self._text) <= self.limit:  # past the bound nothing more is drawn
            self._text += event.text
        now = time.perf_counter()
        first = not self._drawn
        if first or now - self._drawn >= REDRAW:
            self._drawn = now
            if self.status.handle is not None:  # the working line's output turns into it
                self.status.writing(self._streamed(event.step))
            elif self._reply is None:
                self._reply = self.display.show(_markdown(self._streamed(event.step)))
            else:
                self.display.update(self._reply, _markdown(self._streamed(event.step)))

    def _streamed(self, step: int) -> str:
        """The reply so far as it is shown, its code as it is written.

        The finished reply shows its prose only (the code is shown apart, in the review
        and the record). While it streams, the code is drawn plain, without its
        language: a highlighted draw is slower, and JupyterLab could finish rendering
        one after the update that replaced it. A fence still open is closed for the
        draw. A tail that may be the start of the sign-off waits for the next words.
        """
        text = self._text[: len(self._text) - undecided_tail(self._text, self.marker)]
        return self._reply_markdown(step, _streaming_code(text))

    def on_reply_received(self, event: ReplyReceived) -> None:
        count = len(event.blocks)

        def place(index: int) -> str:  # where a block lifted out of the prose went
            which = f", block {index + 1} of {count}" if count > 1 else ""
            return f"*(code: step {event.step} below{which})*"

        prose = prose_with_places(event.reply.content, event.blocks, place)
        prose = shown_head(without_marker(prose, self.marker), self.limit)
        if not prose and event.blocks:
            prose = "*(proposes code)*"
        markdown = self._reply_markdown(event.step, prose)
        timed = event.reply.source not in _RECORDED
        handle = self.status.done(_markdown(markdown), event.reply.thinking, timed)
        if handle is not None:
            self._reply = handle
        elif self._reply is None:
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
        # In mode never the loop asks only about protected names, invisible characters and
        # after output that addressed the assistant, which a person answers.
        if not self.interactive and not (
            proposal.protected or proposal.injected or proposal.invisible
        ):
            return Decision.run()
        add_cells = None
        ran = self.ran() if self.ran is not None else ()
        if self.add_cells is not None and ran:
            codes, steps, add = sources(ran), [r.step for r in ran], self.add_cells
            add_cells = lambda: add(codes, steps)  # noqa: E731
        spent = self.spent() if self.spent is not None else ""
        widget = ReviewWidget(proposal, self.marker, add_cells, spent)
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

    def _ask_more(self, asked: BudgetAsked) -> Any:
        question = BudgetQuestion(asked)
        self.question = question
        bundle = {
            **question._repr_mimebundle_(),
            "text/plain": f"[{asked.message}: go on or stop, in the widget]",
        }
        handle = self.display.show(bundle)

        def answered(_: Decision) -> None:  # the static record replaces the widget
            self.display.update(handle, _markdown(question.record()))
            question.close()
            self.question = None

        question.on_decision(answered)
        return self.wait(question)  # type: ignore[arg-type]

    def on_decided(self, event: Decided) -> None:
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

    def on_code_ran(self, event: CodeRan) -> None:
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
        if event.outcome.hidden:
            note += f" · {hidden_note(event.outcome.hidden)}"
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

    def on_finished(self, event: Finished) -> None:
        self.status.done(None)
        self.busy.release()
        if self.question is not None:  # interrupted while the budget question waited
            self.question.decide(Decision("stop"))
        if self.widget is not None:  # interrupted or failed while a review waited
            self.widget.decide(Decision("stop"))
            ended = _ENDED.get(event.reason, event.reason)
            self._show_step(_markdown(f"**■ Step {self.widget.proposal.step}: {ended}**"))
            self.widget.close()
            self.widget = None
        if self._record is not None and self._record.results[-1:] == ["*running…*"]:
            self._record.results[-1] = f"*{_ENDED.get(event.reason, event.reason)}*"
            self._show_record()
        if event.reason in ("error", "interrupted"):
            return  # the cell ends with the one-line error itself (Session.conclude)
        message = event.message
        if self.timed_out:
            message = f"No decision within {self.review_timeout:g} s; the conversation is kept."
        ended = _ENDED.get(event.reason, event.reason)
        self.display.show(_markdown(f"**Conversation {ended}.** {message}".strip()))


# Finished reasons that are labels, not words: how a record says them to people.
_ENDED = {"no_code": "finished", "max_turns": "paused at the turn limit", "error": "failed"}
