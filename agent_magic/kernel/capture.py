"""The one output capture: what a step printed, displayed, returned and raised.

:class:`StepCapture` is a context manager in the shape of IPython's ``capture_output``
(``IPython.utils.capture``), except that it *tees*: everything still reaches the
notebook or terminal as usual (printed text up to a display limit), while it keeps

* a bounded head-and-tail digest of stdout and stderr (:class:`~.tee.HeadTail`) and the
  text of what was displayed, for the model;
* the step's outputs in nbformat shape (streams, ``display_data``, ``execute_result``,
  and the error), for the recording and the exported notebook;
* the images displayed, when asked.

Given a :class:`~agent_magic.secrets.Redactor`, the capture hides secrets once, where text
enters it, so the cell, the digest and the outputs all hold the same hidden text: printed
text a line at a time (a line is held until its newline, a ``flush()``, 64 KB or the end of
the step, so a value is never shown in two halves), each display's text mime types
(``text/plain``, ``text/markdown``, ``text/html``, ... and ``application/json``) before it
is published, the last expression's value, and the traceback IPython shows.
:attr:`StepCapture.hidden` counts the values hidden (once per display, not per mime type).
Not hidden: what bypasses ``sys.stdout``/``sys.stderr`` and the display publisher (a
subprocess or C library writing to file descriptor 1 directly), and a value split across
writes with a ``flush()`` between them.

A failed step's traceback is not published as an nbformat ``error`` output in a kernel
(papermill fails a run on any): it is shown as a display whose HTML folds all but the
last frames (:func:`.fold.folded_traceback`), with a text/plain fallback.

The private IPython hooks it needs are in :mod:`.ipython`; running code, timeouts and
the digest's wording are in :mod:`.executor`.
"""

from __future__ import annotations

import base64
import re
import sys
import threading
import weakref
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..text import escape_surrogates, strip_ansi
from . import ipython
from .fold import FOLD_LINES, folded_traceback
from .signals import drop_handler_frame
from .streams import HEAD_CHARS, StreamTail
from .tee import Tee

# A secret marker the redactor put in a traceback line.
_MARKER = re.compile(r"\[hidden: [^\]\n]{1,200}\]")

if TYPE_CHECKING:
    from ..secrets import Redactor

IMAGE_TYPES = ("image/png", "image/jpeg")
MAX_DATA_CHARS = 2_000_000  # per display output kept in the outputs
WIDGET = "application/vnd.jupyter.widget-view+json"

# Threads a step started that outlived it -> that step's capture (see Tee).
_STARTED_BY: weakref.WeakKeyDictionary[threading.Thread, StepCapture] = weakref.WeakKeyDictionary()


class StepCapture:
    """``with StepCapture(shell) as captured:`` around one step (see the module docstring).

    After the block: ``stdout`` / ``stderr`` (bounded digests), ``displayed`` (the text of
    each display), ``images``, ``outputs`` (nbformat dicts, the error last), ``exited``
    (the step called ``exit()``/``quit()``), ``traceback`` (the colour-free traceback
    IPython showed, if any), ``hidden`` (how many secret values ``redactor`` hid).
    """

    def __init__(
        self,
        shell: Any,
        *,
        max_output_chars: int = 8000,
        max_display_chars: int = 2_000_000,
        collect_images: bool = False,
        python: bool = True,
        name: str | None = None,
        fold_lines: int = FOLD_LINES,
        redactor: Redactor | None = None,
    ) -> None:
        self.shell = shell
        self.redactor = redactor
        self.hidden = 0
        self.max_output_chars = max_output_chars
        self.max_display_chars = max_display_chars
        self.collect_images = collect_images
        self.python = python
        self.name = name
        self.fold_lines = fold_lines
        self.outputs: list[dict[str, Any]] = []
        self.displayed: list[str] = []
        self.images: list[tuple[str, bytes]] = []
        self.exited = False
        self.traceback: str | None = None
        self.muted = False
        self.active = False
        self._display_ids: dict[str, int] = {}
        self._stream_chars = 0  # stream text kept in ``outputs`` so far
        self._tail: StreamTail | None = None  # once HEAD_CHARS are kept: the rest's end
        self._tail_at = 0  # where in ``outputs`` the tail goes
        self._patches = ipython.Patches()
        self._saved: tuple[Any, Any] | None = None
        self._publish: Any = None
        self._tees: tuple[Tee, Tee] | None = None
        self._before: frozenset[threading.Thread] = frozenset()

    # -- the context manager ---------------------------------------------------------------

    def __enter__(self) -> StepCapture:
        self._saved = sys.stdout, sys.stderr
        # The threads that print into this step: its own and those it starts.
        here = threading.current_thread()
        self._before = frozenset(t for t in threading.enumerate() if t is not here)
        self._tees = (
            Tee(self._saved[0], "stdout", self),
            Tee(self._saved[1], "stderr", self),
        )
        self.active = True
        if self.python:
            shell, patches = self.shell, self._patches
            self._publish = ipython.hook_display(
                shell, patches, self._on_display, self._on_result, self._mute
            )
            ipython.hook_traceback(shell, patches, self._show_traceback)
            ipython.hook_exit(shell, patches, self._on_exit)
            if self.name:
                ipython.hook_code_name(shell, patches, self.name)
        sys.stdout, sys.stderr = self._tees  # type: ignore[assignment]
        return self

    def __exit__(self, *exc: Any) -> None:
        for tee in self._tees or ():
            tee.release()
        self.active = False  # a thread printing late into a tee now only shows it
        here = threading.current_thread()
        for thread in threading.enumerate():  # the threads this step started, still running
            if thread is not here and thread not in self._before:
                _STARTED_BY[thread] = self
        self._patches.undo()
        assert self._saved is not None
        sys.stdout, sys.stderr = self._saved
        if self._tail is not None:
            self.outputs[self._tail_at : self._tail_at] = self._tail.outputs()
            self._tail = None
        for output in self.outputs:
            if output["output_type"] == "stream":
                output["text"] = escape_surrogates(output["text"])

    def owner_of(self, thread: threading.Thread) -> StepCapture | None:
        """The capture a write from ``thread`` belongs to: this one for its own thread and
        the threads started during it; for an older thread, the step that started it, or
        None (a thread no step started)."""
        if thread not in self._before:
            return self
        return _STARTED_BY.get(thread)

    # -- hiding secrets --------------------------------------------------------------------

    def redact(self, text: str, *, count: bool = True) -> str:
        """``text`` with the redactor's secrets hidden; ``count``: add them to :attr:`hidden`."""
        redactor = self.redactor
        if redactor is None or not text:
            return text
        before = redactor.hidden
        clean = redactor.redact(text)
        if count:
            self.hidden += redactor.hidden - before
        return clean

    def redact_bundle(self, data: Mapping[str, Any]) -> Mapping[str, Any]:
        """A display's data with its text hidden (the same value in two mime types counts
        once); the mapping itself when nothing was hidden, or there is no redactor."""
        redactor = self.redactor
        if redactor is None:
            return data
        clean: dict[str, Any] = {}
        most = 0
        for mime, value in data.items():
            before = redactor.hidden
            if isinstance(value, str) and mime.startswith("text/"):
                value = redactor.redact(value)
            elif mime == "application/json" or (mime.endswith("+json") and mime != WIDGET):
                value = redactor.redact_json(value)
            most = max(most, redactor.hidden - before)
            clean[mime] = value
        self.hidden += most
        return clean if most else data

    # -- what it kept ----------------------------------------------------------------------

    @property
    def stdout(self) -> str:
        return self._digest(0)

    @property
    def stderr(self) -> str:
        return self._digest(1)

    def printed(self, index: int) -> int:
        """How many characters were written to stdout (0) or stderr (1)."""
        return self._tees[index].sink.total if self._tees else 0

    def _digest(self, index: int) -> str:
        if not self._tees:
            return ""
        return escape_surrogates(strip_ansi(self._tees[index].sink.text()))

    def add_error(self, ename: str, evalue: str, text: str) -> None:
        lines = text.splitlines() or [f"{ename}: {evalue}"]
        self.outputs.append(
            {"output_type": "error", "ename": ename, "evalue": evalue, "traceback": lines}
        )

    # -- collecting ------------------------------------------------------------------------

    def _mute(self, on: bool) -> None:
        self.muted = on

    def add_stream(self, name: str, text: str) -> None:
        """Keep printed text in the outputs: the first HEAD_CHARS in order, then the end
        (see :mod:`.streams`)."""
        if not text:
            return
        if self._tail is None and self._stream_chars + len(text) > HEAD_CHARS:
            self._tail, self._tail_at = StreamTail(), len(self.outputs)
        if self._tail is not None:
            self._tail.add(name, text)
            return
        self._stream_chars += len(text)
        last = self.outputs[-1] if self.outputs else None
        if last is not None and last["output_type"] == "stream" and last["name"] == name:
            last["text"] += text
            return
        self.outputs.append({"output_type": "stream", "name": name, "text": text})

    def _add_data(self, kind: str, data: Mapping[str, Any], metadata: Any) -> dict[str, Any] | None:
        kept = {
            mime: value
            for mime, value in data.items()
            if mime != WIDGET and len(str(value)) <= MAX_DATA_CHARS
        }
        if not kept:
            return None
        output: dict[str, Any] = {
            "output_type": kind,
            "data": kept,
            "metadata": dict(metadata or {}),
        }
        self.outputs.append(output)
        return output

    def _on_display(
        self, data: Mapping[str, Any], metadata: Any, kwargs: Mapping[str, Any]
    ) -> Mapping[str, Any]:
        """Keep the display; what to publish instead (its secrets hidden)."""
        if not self.active:
            return self.redact_bundle(data) if self.redactor is not None else data
        data = self.redact_bundle(data)
        self._describe(data)
        transient = kwargs.get("transient") or {}
        display_id = transient.get("display_id") if isinstance(transient, Mapping) else None
        if kwargs.get("update") and display_id in self._display_ids:
            index = self._display_ids[display_id]
            if index < len(self.outputs):
                self.outputs[index]["data"] = {k: v for k, v in data.items() if k != WIDGET}
            return data
        output = self._add_data("display_data", data, metadata)
        if output is not None and display_id:
            self._display_ids[display_id] = len(self.outputs) - 1
        return data

    def _on_result(self, format_dict: Mapping[str, Any], metadata: Any) -> Mapping[str, Any]:
        """Keep the value's output; what to show instead (its secrets hidden)."""
        format_dict = self.redact_bundle(format_dict)
        if not self.active:
            return format_dict
        output = self._add_data("execute_result", format_dict, metadata)
        if output is not None:
            output["execution_count"] = None
        return format_dict

    def _describe(self, data: Mapping[str, Any]) -> None:
        for mime in IMAGE_TYPES:
            if mime in data:
                if self.collect_images:
                    raw = data[mime]
                    try:
                        blob = base64.b64decode(raw) if isinstance(raw, str) else bytes(raw)
                    except (ValueError, TypeError):
                        blob = b""
                    if blob:
                        self.images.append(downscale(mime, blob))
                self.displayed.append(f"[{mime} image]")
                return
        plain = data.get("text/plain")
        if isinstance(plain, str) and WIDGET not in data:
            self.displayed.append(escape_surrogates(plain[:2000]))

    def _on_exit(self) -> None:
        self.exited = True

    def _show_traceback(
        self, etype: type, evalue: BaseException, stb: list[str], original: Any
    ) -> None:
        if drop_handler_frame(evalue):  # the time limit's (or user's) SIGINT: from the step
            stb = self.shell.InteractiveTB.structured_traceback(etype, evalue, evalue.__traceback__)
        if self.redactor is not None:
            stb = self._redact_traceback(stb)
        self.traceback = strip_ansi("\n".join(stb))
        if isinstance(evalue, SystemExit):
            self.exited = True
            return  # the executor says it in one line; no "An exception has occurred"
        if not ipython.in_kernel(self.shell):
            self._mute(True)  # a terminal prints it; the digest has it already
            try:
                original(etype, evalue, stb)
            finally:
                self._mute(False)
            return
        for stream in self._saved or ():
            stream.flush()  # the prints before the error stay before it
        self._publish(folded_traceback(stb, self.fold_lines))

    def _redact_traceback(self, stb: list[str]) -> list[str]:
        """The traceback's lines with secrets hidden; each value counted once, however
        often it appears (the message, the source line, a chained cause)."""
        clean = [self.redact(line, count=False) for line in stb]
        found = set(_MARKER.findall("\n".join(clean))) - set(_MARKER.findall("\n".join(stb)))
        self.hidden += len(found)
        return clean


def downscale(mime: str, blob: bytes, max_side: int = 768) -> tuple[str, bytes]:
    """Shrink an image so its longer side is at most ``max_side`` pixels (PNG out).

    Uses Pillow when it is installed (matplotlib brings it); without it the image
    is passed on as it is.
    """
    try:
        from PIL import Image
    except ImportError:
        return mime, blob
    import io

    try:
        with Image.open(io.BytesIO(blob)) as image:
            if max(image.size) <= max_side:
                return mime, blob
            image.thumbnail((max_side, max_side))
            buffer = io.BytesIO()
            image.save(buffer, format="PNG")
            return "image/png", buffer.getvalue()
    except Exception:  # an unreadable image is passed on, not fatal
        return mime, blob
