"""What the loop says to whoever drives it, and what it is told back.

:class:`Proposal` (the code a reply proposes, with why it must be asked) and
:class:`Decision` (run / edit / answer / skip / stop), the events :meth:`Conversation.run
<agent_magic.conversation.Conversation.run>` yields (:class:`TaskStarted` to
:class:`Finished`), their union :data:`Event` and the generator type :data:`Steps`.
Not here: the loop that yields them (:mod:`.loop`), the drivers that answer them
(:mod:`.drive`), and how any edge shows them (:mod:`agent_magic.ui`).
"""

from __future__ import annotations

from collections.abc import Generator, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from ..codeblocks import CodeBlock
from .seams import ChatReply, StepOutcome

# --- events -------------------------------------------------------------------------


@dataclass(frozen=True)
class Proposal:
    """A reply awaiting the human's decision.

    ``final`` is True when the model wants to finish (or the turn limit is
    reached): then "run" means "accept and finish" and feedback continues.
    """

    step: int
    reply: str
    blocks: tuple[CodeBlock, ...]
    final: bool = False
    reason: str = ""  # why it is final: "terminated", "no_code", "max_turns"
    # Why the reply is not whole ("length", "content_filter", "incomplete stream"), or
    # None: its code may be half-written (see ChatReply.cut_off).
    cut_off: str | None = None
    # The guard's one line when the code would change a protected name (guard.describe),
    # else "": such a step is asked even in mode never/terminate.
    protected: str = ""
    # The reply signed off and also holds code: if that code runs cleanly, the
    # conversation ends after it ("terminated"); if it fails, the model is told as usual.
    signs_off: bool = False
    # The same code ran earlier in this cell ("failed in step 2 (NameError: ...)", "ran
    # cleanly in step 3"), else "": a review says so; unreviewed, it is not run again.
    repeats: str = ""
    # The code holds the session's own shorthand (a cut mark, a preview's "..."): the
    # line of markers.copied_markers, else "". Unreviewed, it is not run.
    copies: str = ""
    # The last step's output addressed the assistant (injection.addressed_to_assistant):
    # the line quoted, else "". Such a step is asked even in never/terminate.
    injected: str = ""
    # One line naming the invisible characters in the code (bidi controls, zero-width
    # ones: agent_magic.invisible.describe), else "": the code may read differently from
    # what runs, so such a step is asked even in mode never/terminate.
    invisible: str = ""


@dataclass(frozen=True)
class Decision:
    """What a person (or the mode, or the recording) decided.

    ``rest`` on a run: run this step and the rest of the cell's steps without asking, as
    ``--mode terminate`` would (**Run all**). ``more`` answers a :class:`BudgetAsked`:
    go on with that much more of the budget (its unit: tokens or dollars); a ``stop``
    answers it too.
    """

    action: Literal["run", "skip", "stop", "feedback", "more"]
    edited: tuple[CodeBlock, ...] | None = None  # the code to run instead, if the user edited
    text: str = ""  # feedback
    rest: bool = False
    more: float = 0.0

    @classmethod
    def run(cls, edited: Iterable[CodeBlock] | None = None, *, rest: bool = False) -> Decision:
        return cls("run", tuple(edited) if edited is not None else None, rest=rest)

    @classmethod
    def run_all(cls, edited: Iterable[CodeBlock] | None = None) -> Decision:
        """Run this step, and the rest of the cell's steps without asking."""
        return cls.run(edited, rest=True)

    @classmethod
    def raise_budget(cls, more: float) -> Decision:
        """Answer a :class:`BudgetAsked`: go on with ``more`` tokens (or dollars)."""
        return cls("more", more=more)

    @classmethod
    def feedback(cls, text: str) -> Decision:
        return cls("feedback", text=text)

    def label(self, proposal: Proposal) -> str:
        """How a record should name this decision."""
        if self.action == "run":
            if proposal.final:
                return "finished"
            ran = "edited and ran" if self.edited_differs(proposal) else "ran"
            return f"{ran} all" if self.rest else ran
        if self.action == "skip" and self.text:  # the loop refused it, and says why
            return "refused"
        return {"skip": "skipped", "stop": "stopped", "feedback": "feedback", "more": "more"}[
            self.action
        ]

    def edited_differs(self, proposal: Proposal) -> bool:
        return self.edited is not None and tuple(self.edited) != proposal.blocks


@dataclass(frozen=True)
class TaskStarted:
    task: str
    step: int
    context: str = ""  # what the model was told about the session, sent after the task


@dataclass(frozen=True)
class RequestSent:
    """A request about to go out: ``messages`` are what is sent (fitted to the context
    window when one is known). ``note`` is one line the first time the conversation was
    trimmed to fit (else ""); ``window`` the size in tokens it was fitted to, if any."""

    step: int
    messages: tuple[dict[str, Any], ...]
    note: str = ""
    window: int | None = None


@dataclass(frozen=True)
class ReplyDelta:
    step: int
    text: str
    # True for a piece of the model's thinking (shown folded, never code), False for
    # a piece of its answer.
    thinking: bool = False


@dataclass(frozen=True)
class ReplyReceived:
    step: int
    reply: ChatReply
    blocks: tuple[CodeBlock, ...]
    final: bool


@dataclass(frozen=True)
class ReviewRequested:
    proposal: Proposal


@dataclass(frozen=True)
class Decided:
    proposal: Proposal
    decision: Decision
    automatic: bool  # True when the mode decided, not a human


@dataclass(frozen=True)
class BudgetAsked:
    """A budget is spent before step ``step``'s request: go on with more, or stop?

    Asked only where someone can answer (``Conversation.attended``), and only for a
    budget that can be raised (:class:`~agent_magic.conversation.BudgetSpent`). Answer
    with :meth:`Decision.raise_budget` (``more`` in ``unit``, "tokens" or "dollars";
    ``suggested`` is the budget's own size, offered again) or ``Decision("stop")``.
    """

    step: int
    message: str  # the one line that says what is spent (as headless prints it)
    unit: str
    suggested: float


@dataclass(frozen=True)
class CodeRan:
    step: int
    index: int
    block: CodeBlock
    outcome: StepOutcome


@dataclass(frozen=True)
class Finished:
    reason: str  # terminated, no_code, max_turns, stopped, interrupted, error
    message: str = ""


Event = (
    TaskStarted
    | RequestSent
    | ReplyDelta
    | ReplyReceived
    | ReviewRequested
    | Decided
    | BudgetAsked
    | CodeRan
    | Finished
)
Steps = Generator[Event, "Decision | None", Finished]
