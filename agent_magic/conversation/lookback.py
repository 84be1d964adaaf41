"""What one cell's loop remembers of its own steps, for the rules that look back.

:class:`CellSteps`: how many steps ran, whether the last one failed, the code each ran
(so the same code is not run again unattended: :attr:`Proposal.repeats
<agent_magic.conversation.events.Proposal.repeats>`), and whether the model was nudged
after a reply without code. A fresh one per cell, like the :class:`Conversation
<agent_magic.conversation.loop.Conversation>` that holds it. Pure bookkeeping: nothing
here runs code or talks to a model.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from ..codeblocks import CodeBlock
from .seams import StepOutcome

Key = tuple[tuple[str, str], ...]


def code_key(blocks: Iterable[CodeBlock]) -> Key:
    """Blocks compared as code: language and text, blank lines and trailing spaces aside."""
    return tuple(
        (b.language, "\n".join(line.rstrip() for line in b.code.splitlines() if line.strip()))
        for b in blocks
    )


@dataclass
class CellSteps:
    ran: int = 0
    last_failed: bool = False
    nudged: bool = False
    # The code that ran, by its blocks: "failed in step 2 (NameError: ...)", "ran
    # cleanly in step 3" (the first time only).
    seen: dict[Key, str] = field(default_factory=dict)
    # How each failing code failed, and how often it was sent again and refused: what
    # the refusal tells the model (:func:`.unstick.repeat_help`).
    failures: dict[Key, StepOutcome] = field(default_factory=dict)
    refusals: dict[Key, int] = field(default_factory=dict)

    def repeats(self, blocks: Iterable[CodeBlock]) -> str:
        """How the same code went before in this cell, or "" if it is new."""
        return self.seen.get(code_key(blocks), "")

    def failed(self, blocks: Iterable[CodeBlock], step: int, outcome: StepOutcome) -> None:
        """A step's blocks stopped at ``outcome``'s failure (not an interrupt)."""
        key = code_key(blocks)
        self.seen.setdefault(key, _failure(step, outcome))
        self.failures.setdefault(key, outcome)

    def refusal_help(self, blocks: Iterable[CodeBlock]) -> str:
        """What to tell the model as the same failing code is refused (again): the
        error and its line, what to try, the start of the data it reads; "" for code
        that ran cleanly."""
        key = code_key(blocks)
        if key not in self.failures and not self.seen.get(key, "").startswith("failed"):
            return ""
        self.refusals[key] = self.refusals.get(key, 0) + 1
        from .unstick import repeat_help

        return repeat_help(blocks, self.failures.get(key), self.refusals[key])

    def finished(self, blocks: Iterable[CodeBlock], step: int, clean: bool) -> None:
        """A step's blocks ran (``clean``: every one ran without an error)."""
        self.ran += 1
        self.last_failed = not clean
        if clean:
            self.seen.setdefault(code_key(blocks), f"ran cleanly in step {step}")

    def nudge_due(self, turns_left: int) -> bool:
        """Ask once more, where nobody reviews, when a reply without code or sign-off
        would end a task that has run nothing yet, or whose last step failed: small models
        describe the code, or claim a result, instead of writing it."""
        return not self.nudged and turns_left > 0 and (self.ran == 0 or self.last_failed)


def _failure(step: int, outcome: StepOutcome) -> str:
    """Which step failed, and how: "failed in step 2 (NameError: name 'x' is ...)"."""
    error = outcome.error
    if error is not None:
        message = f"{error.type}: {error.message}" if error.message else error.type
        how = message.splitlines()[0][:200] if message.strip() else error.type
    elif outcome.timed_out is not None:
        how = f"stopped after {outcome.timed_out:g} s"
    else:
        how = "it failed"
    return f"failed in step {step} ({how})"
