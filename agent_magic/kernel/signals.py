"""A step's SIGINT: the user's interrupt and the step time limit, told apart.

:class:`StepSignals` is entered around one Python step in the main thread. It puts a
SIGINT handler in place that raises ``KeyboardInterrupt`` (what the kernel's interrupt
button does to a running cell) and remembers that a signal came, so a step that raises
``KeyboardInterrupt`` itself is not taken for the user's interrupt. With a time limit, a
timer thread sends SIGINT to the main thread (``pthread_kill``, so a ``time.sleep`` or a
blocking call there wakes too) after marking it as the timeout's. The previous handler
is put back afterwards; a signal arriving after the step has ended is ignored by the
handler that was in place for it.

Outside the main thread no handler can be set: the step then runs without a time limit
and an interrupt is whatever the caller's handler makes of it.
"""

from __future__ import annotations

import _thread
import signal
import threading
from types import FrameType
from typing import Any

# Seconds between repeated interrupts while a timed-out step keeps running.
REPEAT = 2.0


class StepSignals:
    def __init__(self, timeout: float | None) -> None:
        self.timeout = timeout if timeout and timeout > 0 else None
        self.timed_out = False  # the time limit's SIGINT came
        self.interrupted = False  # someone else's SIGINT came (the user)
        self.running = False
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self._previous: Any = None
        self._installed = False

    @property
    def available(self) -> bool:
        return threading.current_thread() is threading.main_thread()

    def __enter__(self) -> StepSignals:
        if not self.available:
            return self
        self._previous = signal.signal(signal.SIGINT, self._handle)
        self._installed = True
        self.running = True
        if self.timeout is not None:
            self._timer = threading.Timer(self.timeout, self._expire, (threading.main_thread(),))
            self._timer.daemon = True
            self._timer.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.running = False  # before anything else: a late signal is now ignored
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)
            self._installed = False

    def _expire(self, main: threading.Thread) -> None:
        with self._lock:
            if not self.running or main.ident is None:
                return
            self.timed_out = True
            if hasattr(signal, "pthread_kill"):
                signal.pthread_kill(main.ident, signal.SIGINT)
            else:  # Windows: the handler runs at the main thread's next bytecode
                _thread.interrupt_main()
            # A step that catches KeyboardInterrupt and goes on is asked again, as a user
            # would press the button again.
            self._timer = threading.Timer(REPEAT, self._expire, (main,))
            self._timer.daemon = True
            self._timer.start()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if not self.running:
            return  # the step is over: nothing to interrupt
        if not self.timed_out:
            self.interrupted = True
        raise KeyboardInterrupt


def drop_handler_frame(error: BaseException) -> bool:
    """Cut the SIGINT handler's own frame off the end of ``error``'s traceback.

    A Python signal handler raises in its own frame; the user's traceback should end
    where their code was stopped. Returns True when a frame was cut.
    """
    tb = error.__traceback__
    if not isinstance(error, KeyboardInterrupt) or tb is None:
        return False
    previous = None
    while tb.tb_next is not None:
        previous, tb = tb, tb.tb_next
    if previous is None or tb.tb_frame.f_code is not StepSignals._handle.__code__:
        return False
    previous.tb_next = None
    return True
