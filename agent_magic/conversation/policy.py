"""What the loop decides without asking anyone: :func:`unasked` (the mode's decision on a
proposal, or None when a person must be asked) and :func:`unreadable` (a reply nothing can
be run from, in every mode).

The rules, in the order they apply where the mode does not ask (never; terminate before
the end): a cut-off reply's code is not run; a step that would change a protected name,
holds invisible characters, or follows output that addressed the assistant is asked, and
refused where nobody can be asked; the same code as an earlier step is not run again; code
that copies the session's own shorthand is not run; a reply with neither code nor sign-off
gets one nudge. Each refusal is an automatic ``skip`` whose text says why (what the model
is told), so a replay repeats it exactly. Not here: the loop (:mod:`.loop`), the wording
(:mod:`.rules`), what a cell remembers of its steps (:mod:`.lookback`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from ..codeblocks import PYTHON, CodeBlock
from ..guard import describe, protected_touches
from .events import Decision, Proposal
from .injection import refused_text
from .lookback import CellSteps
from .markers import copied_text
from .rules import (
    cut_off_text,
    cut_short_text,
    invalid_arguments,
    invisible_text,
    nudge_text,
    protected_text,
    reimports,
    repeat_text,
)
from .seams import ChatReply


def unasked(
    proposal: Proposal, *, mode: str, attended: bool, steps: CellSteps, turns_left: int
) -> Decision | None:
    """The decision the mode makes on ``proposal`` by itself, or None: ask a person."""
    by_mode = mode == "always" or (mode == "terminate" and proposal.final)
    # A step that would run code no one saw: the safety rules apply (a final proposal
    # runs nothing, so they do not).
    runs_code = bool(proposal.blocks) and not proposal.final
    if not by_mode and runs_code:
        if proposal.cut_off is not None:
            return Decision("skip", text=cut_off_text(proposal.cut_off))
        if proposal.protected and not attended:
            return Decision("skip", text=protected_text(proposal.protected))
        if proposal.invisible and not attended:
            return Decision("skip", text=invisible_text(proposal.invisible))
        if proposal.repeats:
            hint = steps.refusal_help(proposal.blocks)
            return Decision("skip", text=repeat_text(proposal.repeats, hint))
        if proposal.copies:
            return Decision("skip", text=copied_text(proposal.copies))
        if proposal.injected and not attended:
            return Decision("skip", text=refused_text(proposal.injected))
    if not by_mode and proposal.reason == "no_code" and steps.nudge_due(turns_left):
        steps.nudged = True
        return Decision("feedback", text=nudge_text(steps.ran == 0))
    if by_mode or (runs_code and (proposal.protected or proposal.injected or proposal.invisible)):
        return None
    return Decision("run")


def unreadable(reply: ChatReply, cut_short: bool) -> Decision | None:
    """The automatic skip, in every mode, of a reply nothing can be run from: one cut off
    before any code, or tool-call arguments that cannot be read (a Python dict literal,
    JSON cut short), which never run. The person and the model are told why."""
    invalid = invalid_arguments(reply.tool_calls)
    if reply.cut_off is not None and (cut_short or invalid):
        text = cut_short_text(reply.cut_off) if cut_short else cut_off_text(reply.cut_off)
        return Decision("skip", text=text)
    return Decision("skip", text=invalid) if invalid else None


def guarded(
    blocks: Iterable[CodeBlock],
    protected: frozenset[str],
    transform: Callable[[str], str] | None = None,
) -> str:
    """The guard's line for the Python blocks' touches on ``protected`` names (a step
    re-importing a module it already had is not one), or "": such a step is asked."""
    found = []
    for block in blocks:
        if block.language == PYTHON and protected:
            touched = protected_touches(block.code, protected, transform=transform)
            if touched:
                same = reimports(block.code, transform)
                found.extend(t for t in touched if (t.line, t.name) not in same)
    return describe(found)
