"""Fitting a conversation into a context window: :func:`fit` and :class:`Fitted`.

Here: the message kinds (:data:`Kind`, :data:`KINDS`), the result (:class:`Fitted`),
the sizes that come from the budget (:class:`Caps`), the units kept or folded together
(:class:`Unit`), the replay that trims (:class:`_Replay`), the replays kept to resume
(:class:`_Replays`) and the last-resort squeeze
(:func:`squeeze_to_fit`). Not here: the token estimate (:mod:`.estimate`), cutting text and
messages (:mod:`.cut`), the folded turns' summary (:mod:`.recap`).

How ``fit`` trims, and why it trims in steps. A server's prompt cache (llama.cpp,
vLLM, OpenAI) reuses the work for the longest prefix a request shares with the one
before. Trimming a little every turn would change an early message every turn and
throw that away, so ``fit`` replays the history as it grew, one message at a time:
whenever the request would pass the budget (``window - reply_room``), it cuts down to a
low-water mark (65% of the budget) in whole chunks: first every older message takes
its short form (step outputs shortened to their head and tail, images left out, old
tasks without their variables summary), then the oldest turns are folded, whole, into
one marked summary message. Between those rare points a request only appends to the
one before it. The replay is a function of the messages alone, so the loop keeps no
trimming state and a fit of the same history is the same every time. Because of that,
the replay of a history is kept (:class:`_Replays`, the last few) and the next fit of a
history that continues it resumes where it stopped: a fit costs what the messages added
since cost, not the whole history (0.1-0.3 ms where replaying 2000 messages takes 40).

Always kept: system messages, the latest task and the latest turn (the reply being
answered and its step results). A reply with ``tool_calls`` and the ``tool`` messages
answering it are one turn, so they are kept or folded together: the API rejects one
without the other. Only when even those do not fit are they shortened too (the task's
variables summary first, then the latest outputs), and :attr:`Fitted.note` says so.
"""

from __future__ import annotations

import operator
import threading
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..text import cut_mark
from .caps import KINDS, Caps, Kind, Unit
from .cut import (
    FIT_WHY,
    cut_lines,
    full_form,
    short_form,
    split_namespace,
    with_content,
)
from .estimate import (
    REQUEST_OVERHEAD,
    message_tokens,
    text_tokens,
    tools_tokens,
)
from .recap import gist_line, summary_message
from .squeeze import squeeze_to_fit


@dataclass(frozen=True)
class Fitted:
    """The messages to send, and what was done to make them fit.

    ``messages`` is a new list; messages sent unchanged are the caller's own dicts
    (do not mutate them), changed ones are new dicts. ``kinds`` labels each of them,
    with ``"summary"`` for the folded-turns message. ``trimmed`` is True when anything
    was shortened or folded; ``folded`` counts the input messages replaced by summaries,
    ``shortened`` those sent shortened (older ones in their short form, and what is
    always kept when even that did not fit); nothing is shortened while the request
    fits. ``estimate`` is :func:`estimate_tokens` of the
    request (messages and tools); ``fits`` says it is within the budget. ``trims``
    counts the points where the replay cut back: from one request to the next it grows
    exactly when the later one does not start with the earlier one (a server's prompt
    cache starts over there), unless the squeeze below ran. ``note`` is empty when
    nothing was trimmed, else one line saying what was done (and, when even what is
    always kept did not fit, that it was shortened too).
    """

    messages: list[dict[str, Any]]
    kinds: tuple[Kind, ...]
    trimmed: bool
    folded: int
    note: str
    shortened: int = 0
    estimate: int = 0
    fits: bool = True
    trims: int = 0


LOW_WATER = 0.65  # after a trim the request is at most this share of the budget

_FULL, _SHORT, _FOLDED = 0, 1, 2


def fit(
    messages: Sequence[Mapping[str, Any]],
    kinds: Sequence[Kind],
    *,
    window: int,
    reply_room: int,
    tools: Sequence[Mapping[str, Any]] | None = None,
    low_water: float = LOW_WATER,
) -> Fitted:
    """The messages to send so the request fits ``window`` tokens with ``reply_room`` left.

    ``kinds[i]`` labels ``messages[i]`` (see :data:`KINDS`): ``"system"``, ``"task"``
    (the user's task, with its variables summary after :data:`NAMESPACE_HEADER`),
    ``"reply"`` (the assistant), ``"output"`` (step results, in user or ``tool``
    messages), ``"feedback"`` (the user's words during the work), ``"summary"`` (a
    summary an earlier :func:`fit` made). ``tools`` are the request's tool definitions,
    counted against the budget. See the module docstring for how it trims.

    A history that grew from one fitted before costs only its new messages (see
    :class:`_Replays`): pass the message dicts once and append new ones rather than
    changing them in place, as the loop does.

    Raises ValueError when ``kinds`` does not match ``messages`` or ``window`` is not
    positive; never for what the messages hold.
    """
    if len(kinds) != len(messages):
        raise ValueError(f"{len(kinds)} kinds for {len(messages)} messages")
    unknown = set(kinds) - set(KINDS)
    if unknown:
        raise ValueError(f"unknown message kinds: {sorted(unknown)}; use {', '.join(KINDS)}")
    if window <= 0 or reply_room < 0:
        raise ValueError("window must be positive and reply_room not negative")
    extra = tools_tokens(tools)
    budget = max(window - reply_room - extra, 1)
    low = int(budget * low_water)
    replay = _REPLAYS.take(messages, kinds, budget, low)
    replay.feed(messages, kinds)
    out, out_kinds, folded, shortened, tokens = replay.render()
    _REPLAYS.give(replay)  # not when either raised: a replay half fed is dropped
    caps = replay.caps
    estimate = tokens + extra
    note = ""
    if folded or shortened:
        note = (
            f"Folded {folded} earlier messages and shortened {shortened} to fit the "
            f"{window}-token context window."
            if folded
            else f"Shortened {shortened} messages to fit the {window}-token context window."
        )
    fits = estimate <= budget + extra
    if not fits:
        out, estimate = squeeze_to_fit(out, out_kinds, caps, budget + extra, extra)
        fits = estimate <= budget + extra
        need = "" if fits else f" (still about {estimate + reply_room} tokens)"
        note = (
            f"The task and its latest step did not fit the {window}-token context window "
            f"with {reply_room} tokens left for the reply, so they were shortened too{need}."
            " Use a model with a larger window, a shorter system prompt, or --new."
        )
    trimmed = bool(folded or shortened) or out != list(messages)
    return Fitted(
        out, tuple(out_kinds), trimmed, folded, note, shortened, estimate, fits, replay.trims
    )


class _Replays:
    """The last few replays, each kept after its :func:`fit` to resume the next one from.

    A replay's decisions at message ``i`` depend on messages ``0..i`` alone, so a history
    that starts with the very messages (the same dict objects, with the same kinds) a
    kept replay was fed, fitted to the same budget, resumes from it and feeds it only
    the messages added since: the result is the one a replay from the start would give.
    Anything else (another budget, a message replaced or dropped, a history shorter than
    the kept one) replays from the start. Identity is the check, so a dict changed in
    place after it was fitted is not noticed: the loop only ever appends new ones.
    Dropping a kept replay changes no result, only the time.
    """

    KEPT = 4  # histories (or budgets) fitted in turn; each keeps its own replay

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._kept: list[_Replay] = []  # the most recently used first

    def take(
        self, messages: Sequence[Mapping[str, Any]], kinds: Sequence[str], budget: int, low: int
    ) -> _Replay:
        """A kept replay that ``messages`` continues, taken out (so no other thread
        feeds it meanwhile), else a new one."""
        count = len(messages)
        with self._lock:
            for at, replay in enumerate(self._kept):
                if replay.continued_by(messages, kinds, count, budget, low):
                    del self._kept[at]
                    return replay
        return _Replay(Caps.for_budget(budget), budget, low)

    def give(self, replay: _Replay) -> None:
        with self._lock:
            self._kept.insert(0, replay)
            del self._kept[self.KEPT :]

    def clear(self) -> None:
        with self._lock:
            self._kept.clear()


_REPLAYS = _Replays()


def _forget() -> None:
    """Drop the kept replays: the next :func:`fit` replays from the start."""
    _REPLAYS.clear()


class _Replay:
    """The history replayed message by message, trimming in chunks whenever it overflows.

    Decisions at message ``i`` depend on messages ``0..i`` only, so a longer history
    replays the shorter one's decisions exactly: that is what keeps the prefix stable,
    and what lets :meth:`feed` take up where the last fit of the history left off.
    :meth:`render` likewise re-renders only from the first unit whose form changed.
    """

    def __init__(self, caps: Caps, budget: int, low: int) -> None:
        self.caps = caps
        self.budget = budget
        self.low = low
        self.messages: list[Mapping[str, Any]] = []  # those fed so far (the caller's dicts)
        self.kinds: list[str] = []
        self.units: list[Unit] = []
        self.status: list[int] = []
        self.full: list[Mapping[str, Any]] = []
        self.full_tokens: list[int] = []
        self.short: dict[int, Mapping[str, Any]] = {}
        self.short_tokens: dict[int, int] = {}
        self.gists: dict[int, str] = {}
        self.gist_costs: dict[int, int] = {}  # each gist's text_tokens + 1
        self.size = REQUEST_OVERHEAD  # the request without its summaries
        self.runs = 0  # summaries (maximal stretches of folded units)
        self.gist_tokens = 0
        self.trims = 0
        self.closed: deque[int] = deque()  # units that are no longer the latest, oldest first
        self.fresh: deque[int] = deque()  # closed units still in full form
        self.latest_task = -1
        # What render made last, and where each unit's part of it began: (messages out,
        # folded, shortened, tokens) before the unit; None inside a folded stretch, whose
        # summary is rendered with the stretch's first unit.
        self.out: list[dict[str, Any]] = []
        self.out_kinds: list[Kind] = []
        self.marks: list[tuple[int, int, int, int] | None] = []
        self.end_mark = (0, 0, 0, REQUEST_OVERHEAD)
        self.rendered = 0  # units rendered last time
        self.dirty = 0  # the first unit whose part of the rendering may have changed

    def continued_by(
        self,
        messages: Sequence[Mapping[str, Any]],
        kinds: Sequence[str],
        count: int,
        budget: int,
        low: int,
    ) -> bool:
        """Whether ``messages`` (with ``kinds``) starts with every message fed here."""
        fed = len(self.messages)
        if budget != self.budget or low != self.low or count < fed:
            return False
        if fed and messages[fed - 1] is not self.messages[fed - 1]:
            return False  # the cheap test first: most other histories fail it
        # Both at C speed; map stops at the shorter input, the messages fed here.
        return list(kinds[:fed]) == self.kinds and all(map(operator.is_, messages, self.messages))

    def total(self) -> int:
        # An upper bound on the summaries: each is capped at caps.summary items.
        summaries = self.runs * self.caps.summary_head + min(
            self.gist_tokens, self.runs * self.caps.summary
        )
        return self.size + summaries

    def unit_tokens(self, u: int) -> int:
        unit = self.units[u]
        if self.status[u] == _SHORT:
            return sum(self.short_tokens_of(i) for i in range(unit.start, unit.end))
        return sum(self.full_tokens[unit.start : unit.end])

    def short_of(self, index: int) -> Mapping[str, Any]:
        form = self.short.get(index)
        if form is None:
            full = self.full[index]
            form = short_form(full, self.kinds[index], self.caps)
            tokens = self.full_tokens[index] if form is full else message_tokens(form)
            if tokens >= self.full_tokens[index]:  # a marker can outweigh a tiny cut
                form, tokens = full, self.full_tokens[index]
            self.short[index] = form
            self.short_tokens[index] = tokens
        return form

    def short_tokens_of(self, index: int) -> int:
        self.short_of(index)
        return self.short_tokens[index]

    def feed(self, messages: Sequence[Mapping[str, Any]], kinds: Sequence[str]) -> None:
        """Replay the messages after those already fed, one at a time."""
        units = self.units
        for index in range(len(self.messages), len(messages)):
            message, kind = messages[index], kinds[index]
            self.messages.append(message)
            self.kinds.append(kind)
            role = message.get("role")
            opens = kind in ("system", "task", "summary") or (kind == "reply" and role != "tool")
            if not opens and units and units[-1].kind != "system":
                units[-1].end = index + 1  # results, tool messages and feedback join the turn
                self.dirty = min(self.dirty, len(units) - 1)
            else:
                unit_kind = {"reply": "turn"}.get(kind, kind) if opens else "loose"
                u = len(units)
                units.append(Unit(unit_kind, index, index + 1))
                self.status.append(_FULL)
                self.marks.append(None)
                self.dirty = min(self.dirty, u)
                if u and units[u - 1].kind != "system":
                    self.closed.append(u - 1)
                    self.fresh.append(u - 1)
                if unit_kind == "task":
                    self.latest_task = u
            full = full_form(message, kind, self.caps)
            if kind == "task":
                full = self._task_form(full)
            self.full.append(full)
            self.full_tokens.append(message_tokens(full))
            self.size += self.full_tokens[index]
            if self.total() > self.budget:
                self.trim()

    def _task_form(self, message: Mapping[str, Any]) -> Mapping[str, Any]:
        """A new task as sent: whole, unless with the system messages alone it would pass
        the low-water mark; then its context (files, variables, cells, Markdown) is cut
        by lines to what leaves the mark, but not below ``caps.namespace``. Decided once,
        from the messages before it, so the task is the same prefix in every later
        request of its cell."""
        fixed = REQUEST_OVERHEAD + sum(
            self.full_tokens[u.start] for u in self.units if u.kind == "system"
        )
        over = fixed + message_tokens(message) - self.low
        content = message.get("content")
        if over <= 0 or not isinstance(content, str):
            return message
        words, context = split_namespace(content)
        if not context:
            return message
        keep = max(text_tokens(context) - over, self.caps.namespace)
        cut = cut_lines(context, keep, "\n" + cut_mark("{}", "more lines", FIT_WHY))
        return message if cut == context else with_content(message, words + cut)

    def trim(self) -> None:
        closed, fresh = self.closed, self.fresh
        changed = False  # a trim that changes no message leaves the prefix as it was
        held: list[int] = []
        while fresh:  # first every older unit takes its short form...
            u = fresh.popleft()
            if u == self.latest_task:
                held.append(u)
                continue
            before = self.unit_tokens(u)
            self.status[u] = _SHORT
            self.dirty = min(self.dirty, u)
            self.size -= before - self.unit_tokens(u)
            unit = self.units[u]
            changed = changed or any(
                self.short_of(i) is not self.full[i] for i in range(unit.start, unit.end)
            )
        fresh.extendleft(held)
        held = []
        while closed and self.total() > self.low:  # ...then the oldest are folded
            u = closed.popleft()
            if u == self.latest_task:
                held.append(u)
                continue
            self.size -= self.unit_tokens(u)
            self.status[u] = _FOLDED
            self.dirty = min(self.dirty, u)
            unit = self.units[u]
            for index in range(unit.start, unit.end):  # a folded unit is never sent again
                self.short.pop(index, None)
                self.short_tokens.pop(index, None)
            gist = gist_line(self.messages, self.kinds, unit)
            self.gists[u] = gist
            self.gist_costs[u] = text_tokens(gist) + 1
            self.gist_tokens += self.gist_costs[u]
            left = u > 0 and self.status[u - 1] == _FOLDED
            right = u + 1 < len(self.units) and self.status[u + 1] == _FOLDED
            self.runs += 1 - left - right
            changed = True
        closed.extendleft(held)
        self.trims += changed

    def render(self) -> tuple[list[dict[str, Any]], list[Kind], int, int, int]:
        """The messages to send, their kinds, the counts folded and shortened, and the
        request's estimate; the parts before the first changed unit as rendered before."""
        status, units = self.status, self.units
        first = self.dirty
        while first > 0 and status[first - 1] == _FOLDED:
            first -= 1  # a changed unit in a folded stretch changes the stretch's summary
        # Units before ``first`` and their forms are as they were: their part stands.
        mark = self.end_mark if first >= self.rendered else self.marks[first]
        assert mark is not None  # a unit after one not folded always has its mark
        length, folded, shortened, tokens = mark
        out, out_kinds = self.out, self.out_kinds
        del out[length:], out_kinds[length:]
        run: list[str] = []
        costs: list[int] = []
        count = 0
        for u in range(first, len(units)):
            unit = units[u]
            if status[u] == _FOLDED:
                self.marks[u] = None if run else (len(out), folded, shortened, tokens)
                run.append(self.gists[u])
                costs.append(self.gist_costs[u])
                count += unit.end - unit.start
                continue
            if run:
                summary = summary_message(run, count, self.caps, costs)
                out.append(summary)
                out_kinds.append("summary")
                tokens += message_tokens(summary)
                folded += count
                run, costs, count = [], [], 0
            self.marks[u] = (len(out), folded, shortened, tokens)
            short = status[u] == _SHORT
            for index in range(unit.start, unit.end):
                if short:
                    form, cost = self.short_of(index), self.short_tokens[index]
                else:
                    form, cost = self.full[index], self.full_tokens[index]
                shortened += form is not self.messages[index]
                out.append(form)  # type: ignore[arg-type]
                out_kinds.append(self.kinds[index])  # type: ignore[arg-type]
                tokens += cost
        self.end_mark = (len(out), folded, shortened, tokens)
        self.dirty = self.rendered = len(units)
        out, out_kinds = list(out), list(out_kinds)
        if run:  # only when the last units were folded, which the replay never does
            summary = summary_message(run, count, self.caps, costs)
            out.append(summary)
            out_kinds.append("summary")
            tokens += message_tokens(summary)
            folded += count
        return out, out_kinds, folded, shortened, tokens
