"""The plain-text edge: prints the conversation and asks with ``input()``.

Used in a terminal IPython, in kernels where a widget cannot wait, and in tests
(with a scripted ``ask``). Enter runs the proposed code; ``skip``, ``stop`` (or
``exit``/``quit``) do what they say; any other text is sent to the model as
feedback instead of running. The end of input (Ctrl-D, a closed or exhausted pipe)
stops the conversation, said in one line, and is recorded as the stop it is.

Replies are shown without the sign-off marker (see :mod:`.signoff`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TextIO

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
    TaskStarted,
    review_warnings,
)
from ..secrets import hidden_note
from ..text import DISPLAY_LIMIT, reply_cut_note, shown_head
from .signoff import MarkerFilter, without_marker

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
    return Decision.feedback(text)


class TerminalUI:
    """An event handler for :func:`~agent_magic.conversation.drive`."""

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

    @property
    def out(self) -> TextIO:
        return self._out or sys.stdout

    def __call__(self, event: Event) -> Decision | None:
        write = self.out.write
        if isinstance(event, TaskStarted):
            self._streamed = self._said_stop = False
        elif isinstance(event, RequestSent):
            if event.note:  # the conversation was trimmed to fit the context window
                write(f"[{event.note}]\n")
        elif isinstance(event, ReplyDelta):
            if not self._streamed:
                write(f"\n[assistant, step {event.step}]\n")
                self._streamed = True
                self._filter = MarkerFilter(self.marker)
                self._left = self.limit
            self._bounded(self._filter.feed(event.text))
            self.out.flush()
        elif isinstance(event, ReplyReceived):
            if self._streamed:
                self._bounded(self._filter.end())
                write("\n")
            else:
                content = without_marker(event.reply.content, self.marker)
                write(f"\n[assistant, step {event.step}]\n{shown_head(content, self.limit)}\n")
            for call in event.reply.tool_calls:
                block = next((b for b in event.blocks if b.tool_call_id == call.id), None)
                if block is not None:
                    code = shown_head(block.code, self.limit)
                    write(f"```{block.language}\n{code}\n```\n")
            self._streamed = False
        elif isinstance(event, ReviewRequested):
            return self._review(event.proposal)
        elif isinstance(event, Decided):
            if event.automatic and event.decision.action == "feedback":  # asked once more
                step = event.proposal.step
                write(f"[step {step}: no code; asked the model again] {event.decision.text}\n")
            elif event.automatic and event.decision.text:  # the loop refused it, and why
                write(f"[step {event.proposal.step} not run] {event.decision.text}\n")
            elif event.automatic and not event.proposal.final:
                write(f"[running step {event.proposal.step}]\n")
            elif not event.automatic and not self._said_stop:
                write(f"[{event.decision.label(event.proposal)}]\n")
        elif isinstance(event, CodeRan):
            if event.outcome.hidden:
                write(f"[step {event.step}: {hidden_note(event.outcome.hidden)}]\n")
            if not event.outcome.ok:
                write(f"[step {event.step} failed; the error goes back to the model]\n")
        elif isinstance(event, Finished) and event.reason not in SAID_BY_THE_CELL:
            write(f"[{event.reason}] {event.message}\n")
        return None

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
        if proposal.final:
            prompt = "Finish with this answer? Enter = finish, or type what is still missing: "
        else:
            prompt = "Enter = run, 'skip', 'stop', or type feedback: "
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
