"""The drivers: :func:`drive` and :func:`adrive` run a loop's event generator.

Each event goes to a handler whose return value (or, under :func:`adrive`, its awaited
value) answers a :class:`~agent_magic.conversation.ReviewRequested`. One driver,
:func:`_drive`, holds the one interrupt contract for both. Not here: the loop that yields
the events (:mod:`.loop`), and the handlers (the widget, the terminal, a recording).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext, suppress
from typing import Any

from .events import Decision, Event, Finished, Steps

# --- drivers ------------------------------------------------------------------------

# An event handler: returns the Decision that answers a ReviewRequested (None for other
# events), or, under adrive only, an awaitable of it. The one alias, used by every edge.
Handler = Callable[[Event], Any]
AsyncHandler = Handler


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
