"""The drivers: :func:`drive` and :func:`adrive` run a loop's event generator.

Each event goes to a handler whose return value (or, under :func:`adrive`, its awaited
value) answers a :class:`~agent_magic.conversation.ReviewRequested`. One driver,
:func:`_drive`, holds the one interrupt contract for both; :class:`EventHandler` is the
base every handler shares (a method per event). Not here: the loop that yields the
events (:mod:`.loop`), and the handlers (the widget, the terminal, a recording).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext, suppress
from typing import Any

from .events import (
    BudgetAsked,
    CodeRan,
    Decided,
    Decision,
    Event,
    Finished,
    ReplyDelta,
    ReplyReceived,
    RequestSent,
    ReviewRequested,
    Steps,
    TaskStarted,
)

# --- drivers ------------------------------------------------------------------------

# An event handler: returns the Decision that answers a ReviewRequested (None for other
# events), or, under adrive only, an awaitable of it. The one alias, used by every edge.
Handler = Callable[[Event], Any]
AsyncHandler = Handler

# The method of :class:`EventHandler` each event goes to, by the event's type.
_ON: dict[type, str] = {
    TaskStarted: "on_task_started",
    RequestSent: "on_request_sent",
    ReplyDelta: "on_reply_delta",
    ReplyReceived: "on_reply_received",
    ReviewRequested: "on_review_requested",
    Decided: "on_decided",
    BudgetAsked: "on_budget_asked",
    CodeRan: "on_code_ran",
    Finished: "on_finished",
}


class EventHandler:
    """The one way to handle the loop's events: a :data:`Handler` with a method per event.

    Calling it with an event calls the method for the event's type (one dict lookup) and
    returns what it returns: the :class:`Decision` that answers a ``ReviewRequested`` or
    a ``BudgetAsked``, None for the rest (or, under :func:`adrive`, an awaitable of it).
    Each method not overridden passes the event to :meth:`on_event`, which does nothing:
    a handler that treats most events alike overrides that one.
    """

    def __call__(self, event: Event) -> Any:
        return getattr(self, _ON[type(event)])(event)

    # The dispatch itself, for a subclass whose __call__ does more around it.
    dispatch = __call__

    def on_event(self, event: Event) -> Any:
        return None

    def on_task_started(self, event: TaskStarted) -> Any:
        return self.on_event(event)

    def on_request_sent(self, event: RequestSent) -> Any:
        return self.on_event(event)

    def on_reply_delta(self, event: ReplyDelta) -> Any:
        return self.on_event(event)

    def on_reply_received(self, event: ReplyReceived) -> Any:
        return self.on_event(event)

    def on_review_requested(self, event: ReviewRequested) -> Any:
        return self.on_event(event)

    def on_decided(self, event: Decided) -> Any:
        return self.on_event(event)

    def on_budget_asked(self, event: BudgetAsked) -> Any:
        return self.on_event(event)

    def on_code_ran(self, event: CodeRan) -> Any:
        return self.on_event(event)

    def on_finished(self, event: Finished) -> Any:
        return self.on_event(event)


def drive(steps: Steps, handle: Handler) -> Finished:
    """Run the loop, passing every event to ``handle``; its return value answers reviews.

    The same code as :func:`adrive` (see :func:`_drive` for the interrupt contract), run
    without an event loop: nothing in it suspends unless a handler returns something that
    waits, which only :func:`adrive` can serve.
    """
    running = _drive(steps, handle, nullcontext)
    try:
        running.send(None)
    except StopIteration as stop:
        return stop.value
    running.close()
    raise TypeError("a handler waited (returned an awaitable); run the loop with adrive")


async def adrive(
    steps: Steps,
    handle: AsyncHandler,
    blocking: Callable[[], AbstractContextManager[Any]] = nullcontext,
) -> Finished:
    """Like :func:`drive`, for handlers that ``await`` (a widget waiting for a click).

    The loop itself blocks (a model request, code running), and so may a handler that
    does not await (``input()``); ``blocking()`` is entered around each such stretch,
    e.g. to let an interrupt raise there while the event loop, which would otherwise
    handle it, cannot run. Only the ``await`` of a handler's result is outside it.
    """
    return await _drive(steps, handle, blocking)


async def _drive(
    steps: Steps, handle: Handler, blocking: Callable[[], AbstractContextManager[Any]]
) -> Finished:
    """The one driver, and its interrupt contract.

    * An interrupt while the loop works (a request, code running) is the loop's own: it
      records it and ends with ``Finished("interrupted")``, shown like any event.
    * An interrupt (or a cancelled await) in a handler, e.g. while a review waits, is
      thrown into the loop, which records it the same way; its ``Finished`` is shown.
    * A second interrupt while that end is shown, or one while any ``Finished`` is
      shown, changes nothing: the conversation is over and kept.
    """
    answer: Decision | None = None
    while True:
        try:
            with blocking():
                event = steps.send(answer)
        except StopIteration as stop:
            return stop.value
        answer = None
        if isinstance(event, Finished):  # it is over: an interrupt now changes nothing
            with suppress(KeyboardInterrupt):
                await _show(handle, event, blocking)
            continue
        try:
            answer = await _show(handle, event, blocking)
        except (KeyboardInterrupt, _cancelled()):
            return await _interrupted(steps, handle, blocking)


async def _show(
    handle: Handler, event: Event, blocking: Callable[[], AbstractContextManager[Any]]
) -> Any:
    with blocking():
        result = handle(event)
    return (await result) if inspect.isawaitable(result) else result


async def _interrupted(
    steps: Steps, handle: Handler, blocking: Callable[[], AbstractContextManager[Any]]
) -> Finished:
    try:
        with blocking():
            event = steps.throw(KeyboardInterrupt())
    except StopIteration as stop:
        return stop.value
    with suppress(KeyboardInterrupt, _cancelled()):  # a second press: still finish
        await _show(handle, event, blocking)
    with blocking():
        while True:  # the loop has ended; nothing after its end is shown
            try:
                steps.send(None)
            except StopIteration as stop:
                return stop.value


def _cancelled() -> type[BaseException]:
    import asyncio

    return asyncio.CancelledError
