"""What the kernel can do for a review: which frontend is there, and how a cell can wait.

A widget click reaches a busy kernel only while the running cell *awaits*: on
ipykernel >= 7.4 comm messages are handled while an async cell is suspended
(ipykernel PR #1565). A cell magic cannot be awaited, so :func:`install_cell_rewriter`
puts an input transformer first in IPython's cleanup transformers that turns::

    %%agent --mode always
    Plot the sales.

into ``await <target>('--mode always', 'Plot the sales.\\n')``. Everything else
(help with ``%%agent?``, other magics, plain code) passes through untouched.

:func:`frontend` tells apart the three places a cell can run:

* ``"widgets"``: a notebook frontend that renders widgets and sends clicks back
  (JupyterLab, Notebook 7, VS Code): its execute requests allow stdin and carry a
  ``cellId``, or the kernel was started by jupyter-server (``JPY_SESSION_NAME``);
* ``"terminal"``: a plain IPython, or a kernel client that allows stdin but is not
  a notebook (jupyter console): ``input()`` works there;
* ``"headless"``: nbclient, nbconvert, papermill: nobody can answer, and a widget
  would wait forever.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any, Literal

Frontend = Literal["widgets", "terminal", "headless"]

# ipykernel handles comm messages while an async cell awaits from this version on.
MIN_IPYKERNEL = (7, 4)


def kernel_can_wait() -> bool:
    """True when this process runs an ipykernel that serves comms during ``await``."""
    module = sys.modules.get("ipykernel")
    if module is None:
        return False
    return _version_tuple(getattr(module, "__version__", "0")) >= MIN_IPYKERNEL


def frontend(shell: Any) -> Frontend:
    """Guess who is at the other end of the cell that is running now."""
    kernel = getattr(shell, "kernel", None)
    if kernel is None:
        return "terminal"
    try:
        parent = kernel.get_parent("shell") or {}
    except Exception:  # an older or unusual kernel: trust only what we can read
        parent = {}
    allow_stdin = bool((parent.get("content") or {}).get("allow_stdin"))
    notebook = "cellId" in (parent.get("metadata") or {}) or "JPY_SESSION_NAME" in os.environ
    if allow_stdin and notebook and kernel_can_wait() and _widgets_importable():
        return "widgets"
    return "terminal" if allow_stdin else "headless"


def _widgets_importable() -> bool:
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        return False
    return True


def _version_tuple(version: str) -> tuple[int, ...]:
    parts = []
    for piece in version.split(".")[:3]:
        digits = "".join(c for c in piece if c.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


@contextmanager
def interrupts_raise() -> Iterator[None]:
    """Let SIGINT raise KeyboardInterrupt while an awaiting cell blocks.

    While an async cell runs, ipykernel's SIGINT handler only schedules the cell's
    cancellation on the event loop; a cell blocked in a model request or in running
    code never gives the loop a turn, so the interrupt button would do nothing until
    it finished. Around those stretches Python's default handler is put back.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


# --- the %%agent -> await rewrite ----------------------------------------------------------


class CellRewriter:
    """An IPython cleanup transformer: ``%%<magic>`` cells become ``await target(line, body)``.

    It only rewrites a cell the kernel is about to run at top level, inside a kernel
    that can wait (see :func:`kernel_can_wait`). A ``%%agent`` nested in another cell
    (under ``%%time`` or ``%%capture``, in ``%run``, or a ``run_cell`` from code) is
    transformed while its outer cell executes, where an ``await`` would be a syntax
    error; it runs as the plain cell magic with the ``input()`` review instead.
    """

    # Only a cell whose first line starts with ``%`` is rewritten: code without IPython
    # syntax need not be shown to it (kernel.ipython.StepTransform).
    leaves_python_alone = True

    def __init__(
        self, magic: str, target: str, enabled: Callable[[], bool], shell: Any = None
    ) -> None:
        self.magic = magic
        self.target = target
        self.enabled = enabled
        self.shell = shell  # tells a blank cell's end apart (see cell_finished)
        self.depth = 0  # cells executing now; top-level cells are transformed at 0

    def cell_started(self) -> None:
        self.depth += 1

    def cell_finished(self) -> None:
        # A blank cell ends (post_execute) without having started (pre_execute).
        result = getattr(self.shell, "last_execution_result", None)
        raw = getattr(getattr(result, "info", None), "raw_cell", None)
        if isinstance(raw, str) and not raw.strip():
            return
        self.depth = max(0, self.depth - 1)

    def __call__(self, lines: list[str]) -> list[str]:
        start = 0
        while start < len(lines) and not lines[start].strip():
            start += 1
        if start == len(lines):
            return lines
        head = lines[start].rstrip("\r\n")
        prefix = f"%%{self.magic}"
        if not head.startswith(prefix):
            return self._line_fix(lines, start, head)
        rest = head[len(prefix) :]
        if rest and not rest[0].isspace():  # %%agentx, %%agent? (help)
            return lines
        if not self._may_rewrite(head):
            return lines
        body = "".join(lines[start + 1 :])
        return [f"await {self.target}({rest.strip()!r}, {body!r})\n"]

    def _may_rewrite(self, head: str) -> bool:
        """Not for help (``?``), nor a nested cell, nor a kernel that cannot wait."""
        return not head.rstrip().endswith("?") and not self.depth and self.enabled()

    def _line_fix(self, lines: list[str], start: int, head: str) -> list[str]:
        """A cell that is only ``%agent fix [...]``: a conversation too, so it awaits."""
        words = head[len(self.magic) + 1 :].split() if head.startswith(f"%{self.magic} ") else []
        if words[:1] != ["fix"] or any(line.strip() for line in lines[start + 1 :]):
            return lines
        if not self._may_rewrite(head):
            return lines
        return [f"await {self.target}({head[len(self.magic) + 1 :].strip()!r}, '')\n"]


def install_cell_rewriter(shell: Any, magic: str, target: str) -> CellRewriter:
    """Put the rewriter first among the shell's cleanup transformers (idempotent)."""
    uninstall_cell_rewriter(shell)
    rewriter = CellRewriter(magic, target, enabled=lambda: _rewrites(shell), shell=shell)
    shell.input_transformers_cleanup.insert(0, rewriter)
    shell.events.register("pre_execute", rewriter.cell_started)
    shell.events.register("post_execute", rewriter.cell_finished)
    return rewriter


def uninstall_cell_rewriter(shell: Any) -> None:
    transforms = shell.input_transformers_cleanup
    for rewriter in [t for t in transforms if isinstance(t, CellRewriter)]:
        transforms.remove(rewriter)
        for event, callback in [
            ("pre_execute", rewriter.cell_started),
            ("post_execute", rewriter.cell_finished),
        ]:
            with suppress(ValueError):
                shell.events.unregister(event, callback)


def _rewrites(shell: Any) -> bool:
    """A kernel that serves comms while a cell awaits, and awaits on asyncio (not trio)."""
    if getattr(shell, "kernel", None) is None or not kernel_can_wait() or not shell.autoawait:
        return False
    from IPython.core.async_helpers import _asyncio_runner

    return shell.loop_runner is _asyncio_runner
