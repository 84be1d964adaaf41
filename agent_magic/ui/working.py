"""The working line in a notebook cell and in a terminal: :class:`NotebookStatus`,
:class:`TerminalStatus`.

Each request gets one: "waiting for the model 3 s", then "thinking 12 s" (the thinking
itself folded under it, readable on demand), then "writing 20 s", redrawn by a
:class:`~.status.Ticker` at least once a second whether or not anything arrives. When
the reply is complete the animation goes and one line stays: "thought for 41 s" (in a
notebook, the thinking folded under it), or nothing when the model did not think. Not
here: the state and its words (:mod:`.status`), the reply and the review
(:mod:`.widget`, :mod:`.terminal`).
"""

from __future__ import annotations

import html
import threading
from typing import Any, TextIO

from ..text import fence
from ..transcript.log import thought_for
from .status import EVERY, Progress, Ticker

_SPINNER = "◐◓◑◒"


class NotebookStatus:
    """The working line as a cell output: an HTML line and, once the model thinks, an
    Accordion (folded) holding its thinking; replaced at the end by a static Markdown
    summary through the same display id, so a saved notebook keeps one line.

    ``display`` is the :class:`~.widget.Display` the cell's outputs go through.
    """

    def __init__(self, display: Any, every: float = EVERY) -> None:
        self.display = display
        self.every = every
        self.progress: Progress | None = None
        self._handle: Any = None
        self._ticker: Ticker | None = None
        self._widgets: Any = None
        self._shown_thought = 0
        self._turn = 0

    def start(self) -> None:
        """A request left: show the line and keep it moving."""
        import ipywidgets as widgets

        self.done(None)
        self.progress = Progress()
        line = widgets.HTML(self._line_html())
        line.add_class("agent-working")
        text = widgets.HTML("")
        fold = widgets.Accordion(children=[text], selected_index=None)
        fold.set_title(0, "the model's thinking (never run)")
        fold.layout.display = "none"  # until there is some
        fold.add_class("agent-thinking")
        box = widgets.VBox([line, fold])
        self._widgets = (line, text, fold, box)
        self._shown_thought = 0
        bundle = {**box._repr_mimebundle_(), "text/plain": f"[{self.progress.line()}]"}
        self._handle = self.display.show(bundle)
        self._ticker = Ticker(self._draw, self.every).start()

    def thinking(self, text: str) -> None:
        if self.progress is not None:
            self.progress.thinking(text)

    def writing(self) -> None:
        if self.progress is not None:
            self.progress.writing()

    def done(self, thinking: str | None, *, timed: bool = True) -> None:
        """The reply is complete (``thinking``: its thinking, authoritative), or the
        request ended without one (None): stop, and leave the one-line summary (without
        seconds when not ``timed``: a replayed reply's are not the model's)."""
        if self._ticker is not None:
            self._ticker.stop()
            self._ticker = None
        progress, self.progress = self.progress, None
        if self._handle is None or progress is None:
            return
        summary = ""
        if thinking:
            line = _summary(progress, timed)
            summary = (
                f"<details><summary>{line} (thinking, never run)</summary>\n\n"
                f"{fence(thinking)}\n\n</details>"
            )
        self.display.update(self._handle, {"text/markdown": summary, "text/plain": ""})
        pending = list(self._widgets or ())
        while pending:
            widget = pending.pop()
            # Layouts and styles are widgets of their own that close() leaves open.
            pending.extend(w for w in (getattr(widget, n, None) for n in ("layout", "style")) if w)
            widget.close()
        self._handle = self._widgets = None

    def _line_html(self) -> str:
        progress = self.progress
        words = progress.line() if progress is not None else ""
        self._turn += 1
        spinner = _SPINNER[self._turn % len(_SPINNER)]
        return f"<span style='color: var(--jp-ui-font-color2, #666)'>{spinner} {words}</span>"

    def _draw(self) -> None:
        progress, parts = self.progress, self._widgets
        if progress is None or parts is None:
            return
        line, text, fold, _ = parts
        line.value = self._line_html()
        thought = progress.thought
        if len(thought) != self._shown_thought:
            self._shown_thought = len(thought)
            fold.layout.display = None
            text.value = f"<pre style='white-space: pre-wrap'>{html.escape(thought)}</pre>"


class TerminalStatus:
    """The working line in a terminal: one line, redrawn in place (carriage return)
    while the model is silent or thinking, and only when ``out`` is a terminal; cleared
    before any answer text is written. Elsewhere (a pipe, a log) nothing moves: the
    summary "[thought for 12 s]" is the only line."""

    def __init__(self, out: TextIO, every: float = EVERY) -> None:
        self.out = out
        self.every = every
        self.progress: Progress | None = None
        self._ticker: Ticker | None = None
        self._lock = threading.Lock()
        self._drawn = False

    @property
    def animated(self) -> bool:
        isatty = getattr(self.out, "isatty", None)
        try:
            return bool(isatty and isatty())
        except ValueError:  # a closed stream
            return False

    def start(self) -> None:
        self.stop()
        self.progress = Progress()
        if self.animated:
            self._draw()
            self._ticker = Ticker(self._draw, self.every).start()

    def thinking(self, text: str) -> None:
        if self.progress is not None:
            self.progress.thinking(text)

    def writing(self) -> None:
        """Answer text is about to be written: the line makes way for it."""
        if self.progress is not None:
            self.progress.writing()
        self.stop()

    def done(self, thinking: str | None, *, timed: bool = True) -> str:
        """Stop; returns the one line to print ("thought for 12 s"), or ""."""
        progress = self.progress
        self.stop()
        self.progress = None
        if not thinking or progress is None:
            return ""
        return _summary(progress, timed)

    def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.stop()
            self._ticker = None
        with self._lock:
            if self._drawn:
                self.out.write("\r\033[K")
                self.out.flush()
                self._drawn = False

    def _draw(self) -> None:
        progress = self.progress
        if progress is None or progress.phase == "writing":
            return
        with self._lock:
            self.out.write(f"\r\033[K[{progress.line()}]")
            self.out.flush()
            self._drawn = True


def _summary(progress: Progress, timed: bool) -> str:
    seconds = progress.thought_seconds if timed else None
    return thought_for(round(seconds)) if seconds is not None else "thought"
