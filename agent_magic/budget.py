"""Budgets: the tokens and dollars a cell, and the kernel's session, may spend.

Here: :class:`Budget` (what one scope, a cell or the session, has spent and may spend),
:class:`BudgetedChat` (a chat client around the live one that counts every reply into
its budgets and refuses to send a request once one is spent, raising
:class:`BudgetReached`), :func:`estimated_usage` (a conservative count for a reply whose
server reported no usage) and :func:`spent_line` (the review's "so far" line).

:class:`BudgetReached` is a :class:`~agent_magic.conversation.BudgetSpent`: where
nobody can be asked (headless) the loop ends the cell with ``Finished("error")``, one
line, and the record of everything before it stays; where a person is there, the loop
asks (:class:`~agent_magic.conversation.BudgetAsked`) whether to go on with more (the
budget grows by the amount given, counted from what is spent) or stop. A budget is
checked before each request, so the request that crosses it completes and the next one
is refused (nobody can know a reply's size before it is written). An estimate counts
wherever a server reports no usage (llama.cpp's server in streams), marked as such
wherever it is shown.

Not here: prices and the cost of a call (:func:`agent_magic.llm.cost`), the token
estimate itself (:func:`agent_magic.window.estimate_tokens`), the ``%agent usage``
table (:func:`agent_magic.llm.usage_table`, which takes this module's estimates), the
settings (:mod:`.magic`, :mod:`.plan`) and where the wrapper goes (:mod:`.session`).
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from .conversation import BudgetSpent, ChatClient, ChatReply, ChatWrapper, Usage
from .llm.usage import cost as call_cost
from .window import TOOL_CALL_OVERHEAD, estimate_tokens

Scope = Literal["cell", "session"]


class BudgetReached(BudgetSpent):
    """A budget is spent (or a cost budget cannot be kept); the message is one line
    that says how much was spent and how to go on. A spent budget can be raised where a
    person is asked (``extend``); one that cannot be kept (no known price) cannot."""


def estimated_usage(
    messages: Sequence[Any], tools: Sequence[Any] | None, reply: ChatReply | str
) -> Usage:
    """An estimate (an upper one, see :func:`~agent_magic.window.estimate_tokens`) of the
    tokens of one call: the request as sent, its tool definitions, and the reply (or the
    text streamed before it was cut short)."""
    prompt = estimate_tokens(messages)
    if tools:
        prompt += estimate_tokens(json.dumps(list(tools), ensure_ascii=False))
    if isinstance(reply, str):
        return Usage(prompt, estimate_tokens(reply))
    completion = estimate_tokens(reply.content or "")
    for call in reply.tool_calls:
        completion += TOOL_CALL_OVERHEAD + estimate_tokens(f"{call.name} {call.arguments}")
    thinking = estimate_tokens(reply.thinking) if reply.thinking else 0  # paid for too
    return Usage(prompt, completion + thinking, thinking)


def _dollars(amount: float) -> str:
    # Four decimals read well for a cell ($0.0021); smaller sums keep two figures.
    return f"${amount:.4f}" if amount >= 0.001 or amount == 0 else f"${amount:.2g}"


@dataclass
class Budget:
    """What one scope has spent, and its limits (0: none).

    A cell's budget is new with each cell; the session's lives in the
    :class:`~agent_magic.session.Session` as long as the kernel, and its limits are set
    again from each cell's plan (so ``%config`` changes apply to the next cell).
    ``%agent reset`` forgets the conversation, not what it cost.
    """

    scope: Scope = "cell"
    max_tokens: int = 0
    max_cost: float = 0.0
    tokens: int = 0
    cost: float = 0.0
    calls: int = 0
    estimated: bool = False  # some of the tokens (and cost) are estimates
    unpriced: str = ""  # a model without a known price answered: the cost is incomplete
    # reply -> its estimate, by identity, for `%agent usage`; an entry goes with its reply.
    _estimates: dict[int, tuple[weakref.ref[ChatReply], Usage]] = field(
        default_factory=dict, repr=False, compare=False
    )

    def limit(self, max_tokens: int = 0, max_cost: float = 0.0) -> None:
        self.max_tokens, self.max_cost = max_tokens, max_cost

    @property
    def limited(self) -> bool:
        return bool(self.max_tokens or self.max_cost)

    def add(self, reply: ChatReply, estimate: Usage | None = None) -> None:
        """Count one reply: its usage, or ``estimate`` when its server reported none."""
        usage = reply.usage
        if usage is None and estimate is not None:
            usage = estimate
            key = id(reply)
            gone = lambda _ref, key=key, book=self._estimates: book.pop(key, None)  # noqa: E731
            self._estimates[key] = (weakref.ref(reply, gone), estimate)
        if usage is None:
            return
        self._count(usage, reply.model, estimated=reply.usage is None)

    def add_unanswered(self, estimate: Usage, model: str) -> None:
        """Count a generation that stopped before its reply came (an interrupt, a broken
        stream): the prompt was read and some reply written, so it was paid for."""
        self._count(estimate, model, estimated=True)

    def _count(self, usage: Usage, model: str, *, estimated: bool) -> None:
        self.calls += 1
        self.tokens += usage.total_tokens
        self.estimated = self.estimated or estimated
        price = call_cost(model, usage)
        if price is None:
            self.unpriced = self.unpriced or model or "the model"
        else:
            self.cost += price

    def estimate_for(self, reply: ChatReply) -> Usage | None:
        """The estimate counted for ``reply`` (whose server reported no usage), if any."""
        entry = self._estimates.get(id(reply))
        return entry[1] if entry is not None and entry[0]() is reply else None

    # -- what is said -------------------------------------------------------------------

    def _setting(self, what: Literal["tokens", "cost"]) -> str:
        value = f"{self.max_tokens}" if what == "tokens" else f"{self.max_cost:g}"
        if self.scope == "cell":
            return f"--max-{what} {value}"
        return f"AgentMagics.session_max_{what} = {value}"

    def _way_on(self, what: Literal["tokens", "cost"]) -> str:
        if self.scope == "cell":
            return "raise it or continue in a new cell"
        return f"raise it with %config AgentMagics.session_max_{what} = N (0: none)"

    def refusal(self, model: str) -> str | None:
        """Why the next request (to ``model``) must not be sent, or None: one line."""
        mark = " (~ estimated)" if self.estimated else ""
        if self.max_tokens and self.tokens >= self.max_tokens:
            return (
                f"the {self.scope}'s token budget ({self._setting('tokens')}) is spent: "
                f"{self.tokens:,} tokens so far{mark}; {self._way_on('tokens')}"
            )
        if not self.max_cost:
            return None
        unpriced = self.unpriced or ("" if call_cost(model, Usage(1, 1)) else model)
        if unpriced:
            # Fail closed: a dollar cap that cannot be counted would never stop anything.
            other = "--max-tokens N" if self.scope == "cell" else "AgentMagics.session_max_tokens"
            off = "--max-cost 0" if self.scope == "cell" else "session_max_cost = 0"
            return (
                f"the {self.scope}'s cost budget ({self._setting('cost')}) cannot be kept: "
                f"model {unpriced!r} has no known price; set a token budget ({other}) "
                f"instead, or {off} for none"
            )
        if self.cost >= self.max_cost:
            return (
                f"the {self.scope}'s cost budget ({self._setting('cost')}) is spent: "
                f"{_dollars(self.cost)} so far{mark}; {self._way_on('cost')}"
            )
        return None

    def reached(self, model: str) -> BudgetReached | None:
        """The refusal of the next request (to ``model``) as an error that can raise this
        budget (by the same unit it is spent in), or None when the request may go."""
        refusal = self.refusal(model)
        if refusal is None:
            return None
        if self.max_tokens and self.tokens >= self.max_tokens:
            return BudgetReached(refusal, "tokens", self.max_tokens, self._more_tokens)
        if self.max_cost and self.cost >= self.max_cost and not self.unpriced:
            return BudgetReached(refusal, "dollars", self.max_cost, self._more_dollars)
        return BudgetReached(refusal)  # a cost that cannot be counted: no more to give

    def _more_tokens(self, more: float) -> None:
        # From what is spent: a budget overshot by the last reply still gets ``more``.
        self.max_tokens = max(self.max_tokens, self.tokens) + max(int(more), 1)

    def _more_dollars(self, more: float) -> None:
        self.max_cost = max(self.max_cost, self.cost) + max(float(more), 0.0001)

    def figures(self) -> str:
        """'3,120 of 5,000 tokens (~ estimated), $0.0021': the cost only where known."""
        of = f" of {self.max_tokens:,}" if self.max_tokens else ""
        text = f"{self.tokens:,}{of} tokens" + (" (~ estimated)" if self.estimated else "")
        if not self.unpriced and self.calls:
            text += f", {_dollars(self.cost)}"
            if self.max_cost:
                text += f" of {_dollars(self.max_cost)}"
        return text


def spent_line(cell: Budget, session: Budget | None = None) -> str:
    """The review's line: what this cell has spent so far (and the session, when it has a
    limit), e.g. "so far: 3,120 tokens (~ estimated), $0.0021"; "" before any call."""
    if not cell.calls and not (session is not None and session.limited and session.calls):
        return ""
    line = f"so far: {cell.figures()}"
    if session is not None and session.limited:
        line += f" · session: {session.figures()}"
    return line


class BudgetedChat(ChatWrapper):
    """A chat client that counts each reply into ``budgets`` and refuses to send a
    request once one of them is spent (:class:`BudgetReached`, one line).

    It wraps the live client, inside the redaction, so what it estimates is what is sent;
    a reply from the recording's cache (outside it) costs nothing and is not counted.
    ``model``, ``params``, ``endpoints`` and ``context_window()`` are the inner client's,
    and so is any other attribute read through it.
    """

    def __init__(self, inner: ChatClient, budgets: Sequence[Budget]) -> None:
        super().__init__(inner)
        self.budgets = tuple(budgets)

    def stream(
        self, messages: list[dict[str, Any]], *, tools: list[dict[str, Any]] | None = None
    ) -> Iterator[str | ChatReply]:
        for budget in self.budgets:
            reached = budget.reached(self.model)
            if reached is not None:
                raise reached
        streamed: list[str] = []
        answered = False
        try:
            for item in self.inner.stream(messages, tools=tools):
                if isinstance(item, ChatReply):
                    answered = True
                    estimate = None if item.usage else estimated_usage(messages, tools, item)
                    for budget in self.budgets:
                        budget.add(item, estimate)
                else:  # answer text, or thinking (a ThinkingDelta): both are paid for
                    streamed.append(item if isinstance(item, str) else item.text)
                yield item
        finally:
            if not answered and streamed:
                estimate = estimated_usage(messages, tools, "".join(streamed))
                for budget in self.budgets:
                    budget.add_unanswered(estimate, self.model)
