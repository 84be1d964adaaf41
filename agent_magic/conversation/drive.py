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
    * An interrupt anywhere else before the end (in a handler, e.g. while a review
      waits; a cancelled await; or in the driver itself, just after the loop handed it
      an event) is thrown into the loop, which records it the same way; its
      ``Finished`` is shown.
    * A second interrupt while that end is shown, or one while any ``Finished`` is
      shown, changes nothing: the conversation is over and kept.

    ``blocking()`` is entered once for each stretch that runs without awaiting (the loop
    and the handlers, up to a handler's answer that must be awaited), never left between
    two events: an interrupt landing between them would meet the event loop's own
    handling, which cannot act before the next await, and in a cell that never awaits
    (mode never) is lost.
    """
    answer: Any = None
    shown: Finished | None = None  # the end, once its handler has returned
    end: Finished | None = None  # what the loop returned
    try:
        while True:
            with blocking():
                while True:
                    try:
                        event = steps.send(answer)
                    except StopIteration as stop:
                        end = stop.value
                        break
                    if isinstance(event, Finished):  # it is over: an interrupt changes nothing
                        answer = _show_end(handle, event)
                        if not inspect.isawaitable(answer):
                            shown, answer = event, None
                            continue
                    else:
                        answer = handle(event)
                    if inspect.isawaitable(answer):
                        break  # awaited outside: there the kernel's own interrupt handling works
            if end is not None:
                return end
            if isinstance(event, Finished):
                with suppress(KeyboardInterrupt):
                    await answer
                shown, answer = event, None
            else:
                answer = await answer
    except (KeyboardInterrupt, _cancelled()):
        if end is not None:  # landed as the loop ended: it is over
            return end
        return await _interrupted(steps, handle, blocking, shown)


def _show_end(handle: Handler, event: Finished) -> Any:
    with suppress(KeyboardInterrupt):
        return handle(event)
    return None


async def _show(
    handle: Handler, event: Event, blocking: Callable[[], AbstractContextManager[Any]]
) -> Any:
    with blocking():
        result = handle(event)
    return (await result) if inspect.isawaitable(result) else result


async def _interrupted(
    steps: Steps,
    handle: Handler,
    blocking: Callable[[], AbstractContextManager[Any]],
    shown: Finished | None,
) -> Finished:
    try:
        with blocking():
            event = steps.throw(KeyboardInterrupt())
    except StopIteration as stop:
        # The loop was at its end (the interrupt landed as it was handed on), which an
        # interrupt does not change; it is shown unless it was already.
        if stop.value is not shown:
            with suppress(KeyboardInterrupt, _cancelled()):
                await _show(handle, stop.value, blocking)
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
