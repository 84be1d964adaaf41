"""``%agent fix`` / ``--fix``: the task made from the last error the user's code raised.

:class:`ErrorWatch` remembers, after each cell, the error it raised when that error came
from the user's code, not from agent_magic itself (a mistyped ``%agent foo`` raises a
UsageError from this package: fixing that is not the user's task). :func:`fix_task`
turns the remembered error (or ``sys.last_value``) into the words sent to the model:
the request, the cell that raised it and its colour-free traceback.

Not here: sending it (the session plans the cell like any other).
"""

from __future__ import annotations

import linecache
import os
import sys
from typing import Any

from .text import strip_ansi

_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep


def is_ours(error: BaseException) -> bool:
    """True for an error agent_magic raised itself (a usage error, a bad flag)."""
    if type(error).__name__ == "UsageError":
        return True
    tb = error.__traceback__
    innermost = None
    while tb is not None:
        innermost = tb
        tb = tb.tb_next
    if innermost is None:
        return False
    return os.path.abspath(innermost.tb_frame.f_code.co_filename).startswith(_PACKAGE)


class ErrorWatch:
    """A ``post_run_cell`` hook keeping the last error raised by the user's own code."""

    def __init__(self) -> None:
        self.last: BaseException | None = None

    def __call__(self, result: Any) -> None:
        error = getattr(result, "error_in_exec", None) or getattr(result, "error_before_exec", None)
        if error is not None and not is_ours(error):
            self.last = error


def fix_task(shell: Any, request: str, error: BaseException | None) -> str:
    """The words for the model; ``error`` is the one to fix (None: there is none yet)."""
    if error is None:
        from IPython.core.error import UsageError

        raise UsageError("agent: no error to fix yet; run the failing cell first")
    tb = error.__traceback__
    source = ""
    frame_tb = tb
    while frame_tb is not None:
        filename = frame_tb.tb_frame.f_code.co_filename
        lines = linecache.getlines(filename)
        if lines and shell.compile.format_code_name(filename):
            source = "".join(lines)
            break
        frame_tb = frame_tb.tb_next
    try:
        text = "\n".join(
            shell.InteractiveTB.structured_traceback(type(error), error, tb, tb_offset=1)
        )
    except Exception:
        text = f"{type(error).__name__}: {error}"
    text = strip_ansi(text)[-6000:]
    request = request or "Fix this error."
    cell_text = f"The cell that raised it:\n```python\n{source.strip()}\n```\n" if source else ""
    return f"{request}\n\n{cell_text}The error:\n```\n{text}\n```"


def last_error(watch: ErrorWatch | None) -> BaseException | None:
    """The error to fix: the watched one, else ``sys.last_value`` if it is the user's."""
    if watch is not None and watch.last is not None:
        return watch.last
    error = getattr(sys, "last_value", None)
    return None if error is None or is_ours(error) else error
