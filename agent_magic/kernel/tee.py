"""Where a step's printed text goes: :class:`Tee` (it stands in for ``sys.stdout`` and
``sys.stderr`` during a step: shows, digests and keeps) and :class:`HeadTail` (the bounded
head-and-tail digest it keeps for the model).

A tee asks its capture (:class:`~.capture.StepCapture`, seen here as :class:`Capture`)
whose output a write is, to hide secrets and to keep the stream output. Not here: the
capture itself, displays and the traceback (:mod:`.capture`).
"""

from __future__ import annotations

import contextlib
import threading
from _thread import get_ident
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..text import cut_mark, escape_surrogates
from . import ipython

HIDDEN_NOTE = "\n[agent_magic: further output hidden; the model sees a digest]\n"


class Capture(Protocol):
    """What a tee asks of the step's capture."""

    max_output_chars: int
    max_display_chars: int
    muted: bool
    active: bool
    redactor: Any
    _tees: tuple[Tee, Tee] | None

    def owner_of(self, thread: threading.Thread) -> Capture | None: ...
    def redact(self, text: str, *, count: bool = True) -> str: ...
    def add_stream(self, name: str, text: str) -> None: ...


# Writes are sorted into head and tail in chunks of about this many characters.
_CHUNK = 1 << 16


@dataclass
class HeadTail:
    """A text sink that keeps the first and last characters written, in bounded memory.

    Writes are gathered and sorted into head and tail a chunk at a time, so a step that
    prints a million short lines pays little more per line than a list append.
    """

    limit: int
    head: list[str] = field(default_factory=list)
    tail: deque[str] = field(default_factory=deque)
    head_size: int = 0
    tail_size: int = 0
    total: int = 0
    _pending: list[str] = field(default_factory=list, repr=False)
    _settled: int = field(default=0, repr=False)  # of ``total``, what head and tail hold

    def write(self, text: str) -> None:
        self.total += len(text)
        self._pending.append(text)
        if self.total - self._settled >= _CHUNK:
            self._settle()

    def _settle(self) -> None:
        text = "".join(self._pending)
        self._pending.clear()
        self._settled = self.total
        room = self.limit // 2 - self.head_size
        if room > 0:
            self.head.append(text[:room])
            self.head_size += min(room, len(text))
            text = text[room:]
        if not text:
            return
        # The tail keeps the other half, the larger one for an odd limit (with a limit of
        # 1, the one character: the head's half is empty).
        keep = self.limit - self.limit // 2
        self.tail.append(text[max(0, len(text) - keep) :])
        self.tail_size += len(self.tail[-1])
        while self.tail and self.tail_size - len(self.tail[0]) >= keep:
            self.tail_size -= len(self.tail.popleft())

    def text(self) -> str:
        if self._pending:
            self._settle()
        head = "".join(self.head)
        tail = "".join(self.tail)
        cut = self.total - len(head) - len(tail)
        if cut <= 0:
            return head + tail
        tail = tail[-(self.limit - len(head)) :] if self.limit > len(head) else ""
        cut = self.total - len(head) - len(tail)
        return f"{head}\n{cut_mark(cut)}\n{tail}"


_OWN = frozenset(
    {"_stream", "_name", "_capture", "_lock", "_passing", "sink", "_state", "_own", "_index"}
)
# Printed text waits for its line's end before it is hidden and shown, up to this much.
_HOLD = 1 << 16
_LINE_ENDS = ("\n", "\r")
_PEM_OPEN = "PRIVATE KEY-----"


class _State:
    """A tee's changing state, kept apart so that updating it per write does not pass
    through :meth:`Tee.__setattr__` (a Python call on every print)."""

    __slots__ = ("held", "held_size", "left", "noted")

    def __init__(self, left: int) -> None:
        self.held: list[str] = []  # written, not yet hidden and shown
        self.held_size = 0
        self.left = left  # characters still shown before the note
        self.noted = False


class Tee:
    """Stands in for sys.stdout/stderr during a step: shows, digests and keeps outputs.

    Shows what is written on the real stream up to a display limit, then one note;
    keeps a bounded digest; appends to the capture's stream outputs. Thread-safe: a
    thread the step started may still print after the step has ended (through this
    tee, or the next step's: a write is routed by the thread that makes it, to the step
    that started that thread); that never fails, and never reaches a later step's
    capture. A thread started before any step (an ordinary cell's) is shown only.
    """

    def __init__(self, stream: Any, name: str, capture: Capture) -> None:
        object.__setattr__(self, "_stream", stream)
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_capture", capture)
        object.__setattr__(self, "_lock", threading.Lock())
        # Held text is taken, hidden and shown by one thread at a time (re-entrant: what
        # the real stream does is not ours to know).
        object.__setattr__(self, "_passing", threading.RLock())
        object.__setattr__(self, "sink", HeadTail(capture.max_output_chars))
        object.__setattr__(self, "_state", _State(capture.max_display_chars))
        # The thread that made the tee (the step's own): its writes are the capture's
        # without asking (a thread with its id is it, or one started after it began,
        # which the capture owns too).
        object.__setattr__(self, "_own", get_ident())
        object.__setattr__(self, "_index", 1 if name == "stderr" else 0)

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in ipython.REFUSED_ATTRIBUTES:  # IPython 9's history patch is refused
            object.__setattr__(self, name, value)

    def write(self, text: Any) -> int:
        if type(text) is not str:
            text = text if isinstance(text, str) else str(text)
        capture = self._capture
        if (
            get_ident() != self._own
            or capture.muted
            or not capture.active
            or capture.redactor is None
        ) and self._write_aside(text):
            return len(text)
        # The step's print (its thread's, or a thread's it started), its secrets hidden a
        # line at a time: held, without the lock (an append is atomic; _ready takes what
        # it joined off the list's front in one step, so a write racing it stays, after
        # it). The size may miss a racing write's length: it only says when to look again.
        state = self._state
        state.held.append(text)
        size = state.held_size = state.held_size + len(text)
        # Most writes wait: a line not yet ended while still shown, or (past the display
        # limit, where only the digest needs it) until a chunk has gathered.
        if size < _HOLD and (
            ("\n" not in text and "\r" not in text) if state.left > 0 else size < _CHUNK
        ):
            return len(text)
        self._pass_on()
        return len(text)

    def _write_aside(self, text: str) -> bool:
        """A write that is not the step's own thread printing while the step runs with a
        redactor: another thread's (routed to the step that started it), a muted or late
        one, or one with nothing to hide. False when it is to be held as the step's own
        writes are (a thread the step started)."""
        capture = self._capture
        if get_ident() != self._own:
            owner = capture.owner_of(threading.current_thread())
            if owner is not capture:  # a thread from before this step: not its output
                if owner is not None and owner._tees is not None:
                    owner._tees[self._index].write(text)
                else:
                    self._show(capture.redact(text, count=False))
                return True
        if capture.muted or not capture.active:
            if capture.redactor is not None:
                self.release()  # what was held comes first
                text = capture.redact(text, count=capture.active)
            self._show(text)
        elif capture.redactor is None:
            self._take(text)
        else:
            return False
        return True

    def _pass_on(self) -> None:
        """Hide, keep and show what of the held text is ready (whole lines, or a chunk):
        one thread at a time, so pieces are shown in the order they were taken."""
        with self._passing:
            piece = self._ready()
            if not piece:
                return
            try:
                clean = self._capture.redact(piece)
            except BaseException:  # an interrupt mid-scan: held still, the step's end shows it
                self._state.held[0:0] = [piece]
                raise
            self._take(clean)

    def _ready(self) -> str:
        """What of the held text can be hidden and shown now (while passing on)."""
        state = self._state
        held = state.held
        taken = held[:]
        joined = "".join(taken)
        cut = len(joined)
        if len(joined) < _HOLD:
            cut = max(joined.rfind(end) for end in _LINE_ENDS) + 1
            if _PEM_OPEN in joined and _open_pem(joined[:cut]):
                cut = 0  # a private key printed line by line is hidden whole
        rest = joined[cut:]
        held[: len(taken)] = [rest] if rest else []  # one step: racing appends stay after
        state.held_size = len(rest)
        return joined[:cut]

    def release(self) -> None:
        """Hide and show all the held text (a flush, the step's end, a muted write)."""
        state = self._state
        with self._passing:
            held = state.held
            taken = held[:]
            if not taken:
                return
            del held[: len(taken)]
            state.held_size = 0
            joined = "".join(taken)
            capture = self._capture
            if capture.active:
                self._take(capture.redact(joined))
            else:
                self._show(capture.redact(joined, count=False))

    def _take(self, text: str) -> None:
        """Keep ``text`` (hidden already) in the digest and the outputs; show it."""
        state = self._state
        with self._lock:
            self.sink.write(text)
            self._capture.add_stream(self._name, text)
            left = state.left
            state.left = left - len(text)
        if left > 0:
            self._show(text[:left])
        elif not state.noted:
            state.noted = True
            self._show(HIDDEN_NOTE)

    def _show(self, text: str) -> None:
        try:
            self._stream.write(text)
        except UnicodeEncodeError:  # a lone surrogate on a strict UTF-8 stream
            self._stream.write(escape_surrogates(text))
        except ValueError:  # the stream was closed (a thread printing late)
            pass

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        self.release()
        with contextlib.suppress(ValueError):
            self._stream.flush()

    def __getattr__(self, name: str) -> Any:
        if name in _OWN:  # before __init__ ran (copy, pickle): no recursion
            raise AttributeError(name)
        return getattr(self._stream, name)


def _open_pem(text: str) -> bool:
    """True when ``text``'s last private-key BEGIN line has no END after it."""
    begin = text.rfind("-----BEGIN ")
    return begin >= 0 and "-----END " not in text[begin:]
