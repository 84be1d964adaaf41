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
    """The working line and the reply it turns into, as one cell output.

    While the model is silent or thinking the output is a widget: an HTML line and,
    once the model thinks, an Accordion (folded) holding its thinking. When the answer
    begins the output becomes the reply's Markdown as it streams, the line in italics
    above it. When the reply is complete the output is the finished reply alone (the
    thinking folded under "thought for N s" before it, when there was some): a saved
    notebook keeps that, never the animation, and a reply without thinking looks as it
    always did. ``display`` is the :class:`~.widget.Display` the cell's outputs go
    through.
    """

    def __init__(self, display: Any, every: float = EVERY) -> None:
        self.display = display
        self.every = every
        self.progress: Progress | None = None
        self.handle: Any = None  # the output: the line, then the reply
        self._ticker: Ticker | None = None
        self._widgets: Any = None
        self._body = ""  # the reply's Markdown so far, once it is written
        self._lock = threading.Lock()
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
        self._shown_thought, self._body = 0, ""
        bundle = {**box._repr_mimebundle_(), "text/plain": f"[{self.progress.line()}]"}
        self.handle = self.display.show(bundle)
        self._ticker = Ticker(self._draw, self.every).start()

    def thinking(self, text: str) -> None:
        if self.progress is not None:
            self.progress.thinking(text)

    def writing(self, body: str) -> None:
        """The answer so far (``body``, Markdown): shown now, under the line."""
        if self.progress is None:
            return
        self.progress.writing()
        with self._lock:
            self._body = body
            self._show_body()

    def done(self, bundle: dict[str, Any] | None, thinking: str = "", timed: bool = True) -> Any:
        """The reply is complete: the output becomes ``bundle`` (the finished reply),
        after the thinking's one line when there was some (without seconds when not
        ``timed``: a replayed reply's are not the model's). ``bundle`` None: the request
        ended without a reply; the line goes. Returns the output's handle (None when no
        line was shown: the caller shows the reply itself)."""
        if self._ticker is not None:
            self._ticker.stop()
            self._ticker = None
        progress, handle = self.progress, self.handle
        self.progress = self.handle = None
        if handle is None or progress is None:
            return None
        final = dict(bundle or {"text/markdown": "", "text/plain": ""})
        if thinking and bundle is not None:
            line = _summary(progress, timed)
            folded = (
                f"<details><summary>{line} (thinking, never run)</summary>\n\n"
                f"{fence(thinking)}\n\n</details>\n\n"
            )
            final["text/markdown"] = folded + final.get("text/markdown", "")
            final["text/plain"] = f"[{line}]\n" + final.get("text/plain", "")
        with self._lock:
            self.display.update(handle, final)
        self._close_widgets()
        return handle

    def _close_widgets(self) -> None:
        pending = list(self._widgets or ())
        self._widgets = None
        while pending:
            widget = pending.pop()
            # Layouts and styles are widgets of their own that close() leaves open.
            pending.extend(w for w in (getattr(widget, n, None) for n in ("layout", "style")) if w)
            widget.close()

    def _spinner(self) -> str:
        self._turn += 1
        return _SPINNER[self._turn % len(_SPINNER)]

    def _line_html(self) -> str:
        words = self.progress.line() if self.progress is not None else ""
        return (
            f"<span style='color: var(--jp-ui-font-color2, #666)'>{self._spinner()} {words}</span>"
        )

    def _show_body(self) -> None:
        """The reply so far under an italic line (called with the lock held)."""
        if self.progress is None or self.handle is None:
            return
        text = f"*{self._spinner()} {self.progress.line()}*\n\n{self._body}"
        self.display.update(self.handle, {"text/markdown": text, "text/plain": text})

    def _draw(self) -> None:
        progress, parts = self.progress, self._widgets
        if progress is None or parts is None:
            return
        if progress.phase == "writing":
            with self._lock:
                self._show_body()
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
