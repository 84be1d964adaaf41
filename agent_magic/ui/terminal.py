"""The plain-text edge: prints the conversation and asks with ``input()``.

Used in a terminal IPython, in kernels where a widget cannot wait, and in tests
(with a scripted ``ask``). Enter runs the proposed code; ``all`` runs it and the rest
of the cell's steps without asking (as ``--mode terminate`` would); ``skip``, ``stop``
(or ``exit``/``quit``) do what they say; any other text is sent to the model as
feedback instead of running. When a budget is spent, Enter goes on with as much again,
a number with that much more, ``stop`` stops. The end of input (Ctrl-D, a closed or exhausted pipe)
stops the conversation, said in one line, and is recorded as the stop it is.

Replies are shown without the sign-off marker (see :mod:`.signoff`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TextIO

from ..conversation import (
    BudgetAsked,
    CodeRan,
    Decided,
    Decision,
    EventHandler,
    Finished,
    Proposal,
    ReplyDelta,
    ReplyReceived,
    RequestSent,
    ReviewRequested,
    TaskStarted,
    review_warnings,
)
from ..invisible import escape
from ..secrets import hidden_note
from ..text import DISPLAY_LIMIT, fence, reply_cut_note, shown_head
from .signoff import MarkerFilter, without_marker
from .working import TerminalStatus

# Ends the cell itself says, as its one-line error (Session.conclude): not printed here too.
SAID_BY_THE_CELL = ("error", "interrupted")

_STOP_WORDS = {"stop", "exit", "quit", "q"}


def parse_answer(answer: str, proposal: Proposal) -> Decision:
    """Turn a typed answer into a decision."""
    text = answer.strip()
    word = text.lower()
    if not text:
        return Decision("run")
    if word in _STOP_WORDS:
        return Decision("stop")
    if word == "skip" and not proposal.final:
        return Decision("skip")
    if word == "all" and not proposal.final:
        return Decision.run_all()
    return Decision.feedback(text)


def parse_more(answer: str, asked: BudgetAsked) -> Decision | None:
    """Turn a typed answer to the budget question into a decision; None: not understood."""
    text = answer.strip().lower().lstrip("$").replace(",", "").replace("_", "")
    if not text:
        return Decision.raise_budget(asked.suggested)
    if text in _STOP_WORDS:
        return Decision("stop")
    try:
        more = float(text)
    except ValueError:
        return None
    return Decision.raise_budget(more) if more > 0 else None


def amount(value: float, unit: str) -> str:
    """``500 tokens`` or ``$0.05``: an amount of a budget, as a person reads it."""
    return f"${value:g}" if unit == "dollars" else f"{int(value):,} tokens"


class TerminalUI(EventHandler):
    """An event handler for :func:`~agent_magic.conversation.drive`: a method per event."""

    def __init__(
        self,
        ask: Callable[[str], str] | None = None,
        out: TextIO | None = None,
        marker: str = "TERMINATE",
        spent: Callable[[], str] | None = None,
        limit: int = DISPLAY_LIMIT,
    ) -> None:
        self.ask = ask  # None: the builtin input(), looked up when asking
        self.limit = limit  # most characters of a reply shown (a step's output bound)
        self._left = limit
        self.spent = spent  # the "so far: N tokens, $x" line shown with each review
        self._out = out
        self.marker = marker
        self._streamed = False
        self._filter = MarkerFilter(marker)
        self._said_stop = False  # the end of input already said why it stops
        self.status: TerminalStatus | None = None  # the working line of a request
        self._said: list[str] = []  # the answer text streamed for the current reply

    @property
    def out(self) -> TextIO:
        return self._out or sys.stdout

    # The handler ---------------------------------------------------------------------------

    def on_task_started(self, event: TaskStarted) -> None:
        self._streamed = self._said_stop = False

    def on_request_sent(self, event: RequestSent) -> None:
        if event.note:  # the conversation was trimmed to fit the context window
            self.out.write(f"[{event.note}]\n")
        self._stop_status()
        self.status = TerminalStatus(self.out)
        self.status.start()

    def on_reply_delta(self, event: ReplyDelta) -> None:
        if event.thinking:
            if self.status is not None:  # counted on the working line, never printed
                self.status.thinking(event.text)
            return
        if self.status is not None:
            self.status.writing()
        if not self._streamed:
            self.out.write(f"\n[assistant, step {event.step}]\n")
            self._streamed = True
            self._filter = MarkerFilter(self.marker)
            self._said = []
            self._left = self.limit
        self._said.append(event.text)
        self._bounded(self._filter.feed(event.text))
        self.out.flush()

    def on_reply_received(self, event: ReplyReceived) -> None:
        write = self.out.write
        reply = event.reply
        thought = self._stop_status(reply.thinking, reply.source)
        if not self._streamed:
            write(f"\n[assistant, step {event.step}]\n{self._shown(reply.content)}\n")
        else:
            self._bounded(self._filter.end())
            write("\n")
            if reply.thinking and "".join(self._said).strip() != reply.content.strip():
                # Thinking without its opening tag streamed as if it were the answer
                # until </think> came: say so, and show the answer alone.
                write("[that began with the model's thinking, never run; its answer:]\n")
                write(f"{self._shown(reply.content)}\n")
        if thought:
            write(f"[step {event.step}: {thought}; the thinking is in %agent log]\n")
        for call in event.reply.tool_calls:
            block = next((b for b in event.blocks if b.tool_call_id == call.id), None)
            if block is not None:
                write(fence(shown_head(block.code, self.limit), block.language) + "\n")
        self._streamed = False

    def on_review_requested(self, event: ReviewRequested) -> Decision:
        return self._review(event.proposal)

    def on_budget_asked(self, event: BudgetAsked) -> Decision:
        self._stop_status()  # the working line must not draw over the question
        decision = self._more(event)
        if decision.action == "more":  # the request goes out again
            self.status = TerminalStatus(self.out)
            self.status.start()
        return decision

    def on_decided(self, event: Decided) -> None:
        write = self.out.write
        if event.automatic and event.decision.action == "feedback":  # asked once more
            step = event.proposal.step
            write(f"[step {step}: no code; asked the model again] {event.decision.text}\n")
        elif event.automatic and event.decision.text:  # the loop refused it, and why
            write(f"[step {event.proposal.step} not run] {event.decision.text}\n")
        elif event.automatic and not event.proposal.final:
            write(f"[running step {event.proposal.step}]\n")
        elif not event.automatic and not self._said_stop:
            write(f"[{event.decision.label(event.proposal)}]\n")

    def on_code_ran(self, event: CodeRan) -> None:
        if event.outcome.hidden:
            self.out.write(f"[step {event.step}: {hidden_note(event.outcome.hidden)}]\n")
        if not event.outcome.ok:
            self.out.write(f"[step {event.step} failed; the error goes back to the model]\n")

    def on_finished(self, event: Finished) -> None:
        self._stop_status()
        if self._streamed:  # interrupted mid-reply: the end starts a line of its own
            self.out.write(self._filter.end() + "\n")
            self._streamed = False
        if event.reason not in SAID_BY_THE_CELL:
            self.out.write(f"[{event.message}]\n")  # the message says it; the reason is a label

    def _shown(self, content: str) -> str:
        """A reply as shown whole (when it was not streamed): bounded, no marker."""
        return shown_head(without_marker(content, self.marker), self.limit)

    def _stop_status(self, thinking: str | None = None, source: str = "") -> str:
        """Stop the working line; the summary of the thinking ("thought for 12 s"), or ""."""
        status, self.status = self.status, None
        if status is None:
            return ""
        return status.done(thinking, timed=source not in ("replay", "cache"))

    def _bounded(self, text: str) -> None:
        """Write a streamed piece of the reply while the reply is within its bound."""
        left = self._left
        self._left -= len(text)
        if left > 0:
            self.out.write(text[:left])
        if left >= 0 > self._left:  # the piece that crossed the bound: said once
            self.out.write(reply_cut_note())

    def _review(self, proposal: Proposal) -> Decision:
        for line in review_warnings(proposal):
            self.out.write(f"[! {line}]\n")
        if proposal.invisible:  # the code as it runs, each invisible character escaped
            for block in proposal.blocks:
                self.out.write(fence(escape(block.code), f"{block.language} (escaped)") + "\n")
        if proposal.final:
            prompt = "Finish with this answer? Enter = finish, or type what is still missing: "
        else:
            prompt = "Enter = run, 'all' = this and the rest, 'skip', 'stop', or type feedback: "
        spent = self.spent() if self.spent is not None else ""
        if spent:
            self.out.write(f"[{spent}]\n")
        self.out.flush()
        try:
            answer = (self.ask or input)(prompt)
        except EOFError:  # Ctrl-D, or stdin closed or used up: nobody is there to answer
            self.out.write("\n[end of input: stopping the conversation]\n")
            self._said_stop = True
            return Decision("stop")
        return parse_answer(answer, proposal)

    def _more(self, asked: BudgetAsked) -> Decision:
        self.out.write(f"[budget spent] {asked.message}\n")
        again = amount(asked.suggested, asked.unit)
        unit = "dollars" if asked.unit == "dollars" else "tokens"
        prompt = f"Go on? Enter = {again} more, a number of {unit} more, or 'stop': "
        while True:
            self.out.flush()
            try:
                answer = (self.ask or input)(prompt)
            except EOFError:
                self.out.write("\n[end of input: stopping the conversation]\n")
                self._said_stop = True
                return Decision("stop")
            decision = parse_more(answer, asked)
            if decision is not None:
                if decision.action == "more":
                    self.out.write(f"[going on with {amount(decision.more, asked.unit)} more]\n")
                return decision
            self.out.write(f"[{answer.strip()!r} is not an amount; type a number, or 'stop']\n")
