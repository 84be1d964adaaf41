"""A step's SIGINT: the user's interrupt and the step time limit, told apart.

:class:`StepSignals` is entered around one Python step in the main thread. It puts a
SIGINT handler in place that raises ``KeyboardInterrupt`` (what the kernel's interrupt
button does to a running cell) and remembers that a signal came, so a step that raises
``KeyboardInterrupt`` itself is not taken for the user's interrupt. With a time limit, a
timer thread sends SIGINT to the main thread (``pthread_kill``, so a ``time.sleep`` or a
blocking call there wakes too) after marking it as the timeout's. The previous handler
is put back afterwards; a signal arriving after the step has ended is ignored by the
handler that was in place for it. One watchdog thread (:class:`_Watchdog`) keeps every
step's time limit: starting a timer thread for each step cost a thread start, and the
wait for it to run, on every step.

Outside the main thread no handler can be set: the step then runs without a time limit
and an interrupt is whatever the caller's handler makes of it.
"""

from __future__ import annotations

import _thread
import math
import signal
import threading
import time
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
            _WATCHDOG.arm(self, self.timeout)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.running = False  # before anything else: a late signal is now ignored
        with self._lock:
            _WATCHDOG.disarm(self)
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)
            self._installed = False

    def _expire(self) -> None:
        main = threading.main_thread()
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
            _WATCHDOG.arm(self, REPEAT)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if not self.running:
            return  # the step is over: nothing to interrupt
        if not self.timed_out:
            self.interrupted = True
        raise KeyboardInterrupt


class _Watchdog:
    """One daemon thread that calls each armed step's ``_expire`` when its time is up.

    Started on the first armed step and kept: it sleeps on a condition until the nearest
    deadline, and is woken only for a deadline nearer than that one (waking it for each
    step would hand it the GIL at every step). Lock order: a step's own lock, then the
    watchdog's; ``_expire`` is called with neither held.
    """

    def __init__(self) -> None:
        self._due: dict[StepSignals, float] = {}
        self._wake = threading.Condition(threading.Lock())
        self._thread: threading.Thread | None = None
        self._until = 0.0  # when the thread wakes by itself (inf: it waits to be woken)

    def arm(self, step: StepSignals, seconds: float) -> None:
        with self._wake:
            when = self._due[step] = time.monotonic() + seconds
            if self._thread is None or not self._thread.is_alive():
                self._until = 0.0
                self._thread = threading.Thread(
                    target=self._run, name="agent_magic-step-timer", daemon=True
                )
                self._thread.start()
            elif when < self._until:
                self._wake.notify()

    def disarm(self, step: StepSignals) -> None:
        with self._wake:
            self._due.pop(step, None)  # the thread finds out at its next wake-up

    def _run(self) -> None:
        while True:
            with self._wake:
                now = time.monotonic()
                expired = [step for step, when in self._due.items() if when <= now]
                for step in expired:
                    del self._due[step]
                if not expired:
                    self._until = min(self._due.values(), default=math.inf)
                    self._wake.wait(self._until - now if self._due else None)
                    self._until = 0.0  # awake: arm() need not wake it
                    continue
            for step in expired:
                step._expire()


_WATCHDOG = _Watchdog()


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
