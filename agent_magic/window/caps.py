"""The sizes a fit works with and the stretches it keeps or folds: :class:`Caps` (from
the budget alone) and :class:`Unit`, with the words of the summary that stands for folded
turns (its head and its elision line), which the caps count.

Shared by :mod:`.fit` (which decides), :mod:`.cut` (the forms of one message) and
:mod:`.recap` (the summary), so none of them imports another for its types.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .estimate import MESSAGE_OVERHEAD, text_tokens

# What each message of a conversation is, for fitting (see fit.fit).
Kind = Literal["system", "task", "reply", "output", "feedback", "summary"]
KINDS: tuple[Kind, ...] = ("system", "task", "reply", "output", "feedback", "summary")

SUMMARY_HEAD = "[{n} earlier messages folded to fit the context window. What happened in them:"
SUMMARY_ELIDED = "- ... {n} more ..."


@dataclass(frozen=True)
class Caps:
    """Sizes in tokens, all from the budget alone, so a message's forms never change."""

    # What a squeeze leaves of each always-kept message in its first pass, so one of them
    # cannot take the others' room (nothing is cut while the request fits).
    part: int  # any one message's text
    namespace: int  # the context after a task (files, variables, cells, notebook)
    short_output: int  # an older step result
    short_text: int  # an older reply, task or feedback
    summary: int  # one summary's items
    summary_head: int  # one summary's own words, and its message overhead

    @classmethod
    def for_budget(cls, budget: int) -> Caps:
        head = SUMMARY_HEAD.format(n=10**6) + "\n]\n" + SUMMARY_ELIDED.format(n=10**6)
        return cls(
            part=max(budget // 4, 32),
            namespace=max(budget // 5, 24),
            short_output=min(max(budget // 32, 60), 400),
            short_text=min(max(budget // 20, 60), 800),
            summary=min(max(budget // 10, 60), 1500),
            summary_head=MESSAGE_OVERHEAD + text_tokens(head) + 2,
        )


@dataclass
class Unit:
    """A stretch of messages kept or folded together: a task, or a reply and its results."""

    kind: str  # "system", "task", "turn", "summary", "loose"
    start: int
    end: int  # exclusive
