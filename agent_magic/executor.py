"""Running approved code in the live IPython namespace, and digesting what it did.

:class:`IPythonExecutor` implements the :class:`~agent_magic.conversation.Executor`
seam. Python runs through ``shell.run_cell`` so variables persist, ``display()``
and inline plots land in the ``%%agent`` cell, and magics work; the user sees
everything as usual while a bounded text digest (stdout, stderr, the last
value, the traceback without colour codes) is kept for the model. Shell blocks
run in a subprocess with a timeout.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import signal
import subprocess
import sys
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .codeblocks import SHELL, CodeBlock
from .conversation import StepError, StepOutcome

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
IMAGE_TYPES = ("image/png", "image/jpeg")


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


def cap(text: str, limit: int) -> str:
    """Keep the head and tail of ``text`` within ``limit`` characters, marking the cut."""
    if len(text) <= limit:
        return text
    keep = max(limit - 60, 20)
    head, tail = keep * 2 // 3, keep - keep * 2 // 3
    return f"{text[:head]}\n... [{len(text) - head - tail} characters cut] ...\n{text[-tail:]}"


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
        self.tail.append(text[-self.limit // 2 :])
        self.tail_size += len(self.tail[-1])
        while self.tail and self.tail_size - len(self.tail[0]) >= self.limit // 2:
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
        return f"{head}\n... [{cut} characters cut] ...\n{tail}"


class _Tee:
    """Forwards writes to the real stream (up to a display limit) and to a HeadTail.

    IPython 9 patches ``sys.stdout.write`` while a cell runs, to keep everything the
    cell prints in its history (``history_manager.outputs``), in memory. The patch the
    step's own ``run_cell`` puts on this object is refused: what is shown reaches the
    stream below, which the ``%%agent`` cell's own patch records once, so a step that
    prints 100 MB keeps only what was shown.
    """

    def __init__(self, stream: Any, sink: HeadTail, display_limit: int) -> None:
        self._stream = stream
        self._sink = sink
        self._left = display_limit
        self._noted = False
        self.muted = False  # while IPython prints the traceback, which the digest has anyway

    def __setattr__(self, name: str, value: Any) -> None:
        if name != "write":  # IPython's patch (and its undoing) are refused
            object.__setattr__(self, name, value)

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            text = str(text)
        if self.muted:
            self._show(text)
            return len(text)
        self._sink.write(text)
        if self._left > 0:
            self._show(text[: self._left])
            self._left -= len(text)
        elif not self._noted:
            self._noted = True
            self._show("\n[agent_magic: further output hidden; the model sees a digest]\n")
        return len(text)

    def _show(self, text: str) -> None:
        self._stream.write(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        self._stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class IPythonExecutor:
    """Runs blocks in ``shell``'s namespace and reports bounded digests."""

    def __init__(
        self,
        shell: InteractiveShell,
        *,
        max_output_chars: int = 8000,
        max_display_chars: int = 2_000_000,
        shell_timeout: float = 60.0,
        describe_changes: bool = True,
        collect_images: bool = False,
    ) -> None:
        self.shell = shell
        self.max_output_chars = max_output_chars
        self.max_display_chars = max_display_chars
        self.shell_timeout = shell_timeout
        self.describe_changes = describe_changes
        self.collect_images = collect_images

    def run(self, block: CodeBlock) -> StepOutcome:
        if block.language == SHELL:
            return self._run_shell(block.code)
        return self._run_python(block.code)

    # -- python ----------------------------------------------------------------------

    def _run_python(self, code: str) -> StepOutcome:
        shell = self.shell
        out, err = HeadTail(self.max_output_chars), HeadTail(self.max_output_chars)
        displayed: list[str] = []
        images: list[tuple[str, bytes]] = []
        before = self._snapshot()
        publisher = shell.display_pub
        original_publish = publisher.publish

        def publish(data: Any, *args: Any, **kwargs: Any) -> Any:
            _collect_display(data, displayed, images if self.collect_images else None)
            return original_publish(data, *args, **kwargs)

        saved = sys.stdout, sys.stderr
        tees = (
            _Tee(saved[0], out, self.max_display_chars),
            _Tee(saved[1], err, self.max_display_chars),
        )
        original_show = shell._showtraceback

        def show_traceback(*args: Any, **kwargs: Any) -> Any:
            # A terminal shell prints tracebacks to stdout; keep them out of the digest,
            # which formats the error itself, without colour codes.
            for tee in tees:
                tee.muted = True
            try:
                return original_show(*args, **kwargs)
            finally:
                for tee in tees:
                    tee.muted = False

        sys.stdout, sys.stderr = tees
        publisher.publish = publish  # type: ignore[method-assign]
        shell._showtraceback = show_traceback  # type: ignore[method-assign]
        try:
            result = shell.run_cell(code, store_history=False, silent=False)
        finally:
            publisher.publish = original_publish  # type: ignore[method-assign]
            del shell._showtraceback  # back to the class's method
            sys.stdout, sys.stderr = saved

        error = result.error_before_exec or result.error_in_exec
        parts: list[str] = []
        if out.total:
            parts.append("stdout:\n" + strip_ansi(out.text()).rstrip("\n"))
        if err.total:
            parts.append("stderr:\n" + strip_ansi(err.text()).rstrip("\n"))
        if displayed:
            parts.append("displayed:\n" + "\n".join(displayed))
        if result.result is not None:
            parts.append("result:\n" + _short_repr(result.result, self.max_output_chars // 2))
        digest = cap("\n".join(parts), self.max_output_chars)
        interrupted = isinstance(error, KeyboardInterrupt)
        return StepOutcome(
            ok=error is None,
            digest=digest,
            error=self._error(error) if error is not None else None,
            changes=self._changes(before),
            images=tuple(images),
            interrupted=interrupted,
        )

    def _error(self, error: BaseException) -> StepError:
        return StepError(
            type=type(error).__name__,
            message=_message(error),
            frames=_frames(error),
            text=self._traceback(error),
        )

    def _traceback(self, error: BaseException) -> str:
        if isinstance(error, SystemExit):
            return f"SystemExit: {error.code} (sys.exit() was called; the session keeps running)"
        if isinstance(error, SyntaxError) and error.__traceback__ is None:
            return "".join(_format_exception_only(error)).rstrip()
        try:
            lines = self.shell.InteractiveTB.structured_traceback(
                type(error), error, error.__traceback__, tb_offset=1
            )
            text = strip_ansi("\n".join(lines))
        except Exception:  # formatting must never fail a step
            text = "".join(_format_exception_only(error))
        return cap(text.strip("\n"), self.max_output_chars // 2)

    def _snapshot(self) -> Any:
        if not self.describe_changes:
            return None
        from . import context

        return context.snapshot(self.shell.user_ns, hidden=self.shell.user_ns_hidden)

    def _changes(self, before: Any) -> str:
        if before is None:
            return ""
        from . import context

        return context.describe_changes(
            before, self.shell.user_ns, hidden=self.shell.user_ns_hidden
        )

    # -- shell -------------------------------------------------------------------------

    def _run_shell(self, command: str) -> StepOutcome:
        program = shutil.which("bash") or "/bin/sh"
        sink = HeadTail(self.max_output_chars)
        process = subprocess.Popen(
            [program, "-c", command],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            errors="replace",
            start_new_session=True,  # so a timeout or interrupt can end its children too
        )
        interrupted = timed_out = False
        try:
            output, _ = process.communicate(timeout=self.shell_timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill(process)
            output, _ = process.communicate()
        except KeyboardInterrupt:
            interrupted = True
            _kill(process)
            output, _ = process.communicate()
        sink.write(output or "")
        shown = output[: self.max_display_chars] if output else ""
        if shown:
            sys.stdout.write(shown if shown.endswith("\n") else shown + "\n")
        status = process.returncode
        text = sink.text().rstrip("\n")
        if timed_out:
            note = f"timed out after {self.shell_timeout:g} s and was killed"
        elif interrupted:
            note = "interrupted"
        else:
            note = f"exit code {status}"
        if timed_out or interrupted:
            sys.stdout.write(f"[{note}]\n")
        digest = f"{note}\noutput:\n{text}" if text else note
        return StepOutcome(
            ok=status == 0 and not timed_out and not interrupted,
            digest=digest,
            interrupted=interrupted,
        )


def _kill(process: subprocess.Popen[str]) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        process.kill()


def _collect_display(data: Any, texts: list[str], images: list[tuple[str, bytes]] | None) -> None:
    if not isinstance(data, dict):
        return
    for mime in IMAGE_TYPES:
        if mime in data:
            if images is not None:
                raw = data[mime]
                try:
                    blob = base64.b64decode(raw) if isinstance(raw, str) else bytes(raw)
                except (ValueError, TypeError):
                    blob = b""
                if blob:
                    images.append(downscale(mime, blob))
            texts.append(f"[{mime} image]")
            return
    plain = data.get("text/plain")
    if isinstance(plain, str) and "application/vnd.jupyter.widget-view+json" not in data:
        texts.append(plain[:2000])


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


def _short_repr(value: Any, limit: int) -> str:
    try:
        from IPython.lib.pretty import pretty

        text = pretty(value, max_seq_length=50)
    except Exception as error:
        text = f"<{type(value).__name__}: repr failed with {type(error).__name__}>"
    return cap(text, limit)


def _message(error: BaseException) -> str:
    try:
        return str(error)
    except Exception:  # a broken __str__ must not fail the step's report
        return f"<{type(error).__name__}: str() failed>"


def _frames(error: BaseException) -> tuple[tuple[str, int, str], ...]:
    """(filename, lineno, function) of the step's own frames, innermost last."""
    import traceback

    tb = error.__traceback__
    if tb is not None and tb.tb_next is not None:
        tb = tb.tb_next  # the first frame is IPython's run_code, not the step
    return tuple(
        (frame.filename, frame.lineno or 0, frame.name) for frame in traceback.extract_tb(tb)
    )


def _format_exception_only(error: BaseException) -> list[str]:
    import traceback

    return traceback.format_exception_only(type(error), error)
