"""The line that says the cell is working: :class:`Progress` and :class:`Ticker`.

From the moment a request leaves until its reply is complete, the cell says what the
model is doing and for how long: "waiting for the model 3 s", "thinking 12 s", "writing
20 s". Replies arrive in a worker thread while the kernel's main thread waits for them,
and a model may be silent for minutes (a long prompt, a long think), so the line is
redrawn by a :class:`Ticker`, a daemon thread of its own, every half second, whether
or not anything arrives. When the reply is complete the animation stops and one line
remains: "thought for 41 s" (:func:`agent_magic.transcript.log.thought_for`).

No widgets or IPython here: :class:`Progress` is the state and its words, used by the
notebook (:mod:`.widget`) and the terminal (:mod:`.terminal`) alike.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

# How often the line is redrawn (seconds): twice a second keeps the count of seconds
# moving on every second, whatever the thread's timing.
EVERY = 0.5

_WORDS = {"waiting": "waiting for the model", "thinking": "thinking", "writing": "writing"}


@dataclass
class Progress:
    """One request's progress: its phase (waiting, thinking, writing), when it started,
    when the thinking began and ended, and the thinking so far."""

    started: float = field(default_factory=time.monotonic)
    phase: str = "waiting"
    thinking_from: float | None = None
    thinking_to: float | None = None
    thoughts: list[str] = field(default_factory=list)

    def thinking(self, text: str) -> None:
        now = time.monotonic()
        if self.thinking_from is None:
            self.thinking_from = now
        if self.phase != "writing":
            self.phase = "thinking"
            self.thinking_to = now
        self.thoughts.append(text)

    def writing(self) -> None:
        if self.phase == "thinking":
            self.thinking_to = time.monotonic()
        self.phase = "writing"

    @property
    def thought(self) -> str:
        return "".join(self.thoughts)

    def line(self, now: float | None = None) -> str:
        """ "thinking 12 s": the phase and the seconds since the request left."""
        seconds = int((now if now is not None else time.monotonic()) - self.started)
        return f"{_WORDS[self.phase]} {seconds} s"

    @property
    def thought_seconds(self) -> float | None:
        """How long the model thought, once it did (None: it did not think)."""
        if self.thinking_from is None:
            return None
        return (self.thinking_to or self.thinking_from) - self.thinking_from


class Ticker:
    """Calls ``tick`` every ``every`` seconds in a daemon thread until :meth:`stop`.

    An exception in ``tick`` is dropped: the line is a courtesy, never a reason for the
    cell to fail. :meth:`stop` waits for a tick under way to end, so nothing is drawn
    after it returns.
    """

    def __init__(self, tick: Callable[[], None], every: float = EVERY) -> None:
        self._tick = tick
        self._every = every
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> Ticker:
        # The thread runs in a copy of the caller's context: a kernel keeps the cell's
        # parent message in a context variable, so what a tick draws goes to this cell.
        context = contextvars.copy_context()
        self._thread = threading.Thread(
            target=context.run, args=(self._run,), name="agent_magic-status", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        with self._lock:  # a tick under way finishes first
            pass

    def _run(self) -> None:
        while not self._stopped.wait(self._every):
            with self._lock:
                if self._stopped.is_set():
                    return
                with contextlib.suppress(Exception):
                    self._tick()
