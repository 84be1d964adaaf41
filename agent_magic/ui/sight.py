"""Can the person see a review? Not inside ``%%capture`` or any captured output.

IPython's ``capture_output`` (behind ``%%capture``) swaps ``sys.stdout`` and
``sys.stderr`` for ``StringIO`` objects and the shell's ``display_pub`` and
``sys.displayhook`` for capturing ones: a terminal review printed there, or a widget
displayed there, is never seen, while ``input()`` still returns Enter, which would
approve code nobody saw. :func:`unseen` says what captures the output (empty when
nothing does); :func:`plan_for_sight` turns that into the cell's plan: a mode that asks
stops with one line, and in mode never the steps that would be asked (protected names,
invisible characters) are refused as in a headless run, with the model told why. That
line is also written past the capture (:func:`tell_the_person`), or the person, who sees
nothing of the cell, would not know why nothing happened.

This relies on IPython internals (``IPython.core.displaypub.CapturingDisplayPublisher``,
``IPython.core.displayhook.CapturingDisplayHook``; ipykernel's ``OutStream``, and the
kernel's ``_stderr``, the ``OutStream`` it kept when it started), kept to this module.
"""

from __future__ import annotations

import contextlib
import io
import sys
from dataclasses import replace
from typing import Any

from ..plan import CellPlan, PlanError


def unseen(shell: Any) -> str:
    """What keeps this cell's output from the person ("" when nothing does)."""
    captured = []
    try:
        from IPython.core.displayhook import CapturingDisplayHook
        from IPython.core.displaypub import CapturingDisplayPublisher
    except ImportError:  # pragma: no cover - IPython without them
        CapturingDisplayPublisher = CapturingDisplayHook = ()  # type: ignore[assignment,misc]  # noqa: N806
    if isinstance(getattr(shell, "display_pub", None), CapturingDisplayPublisher) or isinstance(
        sys.displayhook, CapturingDisplayHook
    ):
        captured.append("its displays")
    if _captured(sys.stdout, shell):
        captured.append("sys.stdout")
    if not captured:
        return ""
    return f"this cell's output is captured ({' and '.join(captured)}, e.g. by %%capture)"


def _captured(stream: Any, shell: Any) -> bool:
    """Whether ``stream`` is not where the person reads: kept in memory, or (in a kernel)
    anything but the kernel's own output stream."""
    if isinstance(stream, io.StringIO):
        return True
    if getattr(shell, "kernel", None) is None:
        return False
    try:
        from ipykernel.iostream import OutStream
    except ImportError:  # pragma: no cover - a kernel that is not ipykernel
        return False
    return not isinstance(stream, OutStream)


def tell_the_person(shell: Any, line: str) -> None:
    """Write ``line`` where the person reads, past a capture of this cell's output.

    ``%%capture`` swaps ``sys.stderr`` only: in a kernel the line goes to the kernel's own
    stderr (the ``OutStream`` it kept at start, still sending to this cell), elsewhere to
    the process's (``sys.__stderr__``, the terminal). Nothing when that is ``sys.stderr``
    itself (not captured: the error is shown there) or there is none.
    """
    stream = _persons_stderr(shell)
    if stream is None or stream is sys.stderr:
        return
    with contextlib.suppress(Exception):  # a closed terminal: the error stays the cell's
        stream.write(line + "\n")
        stream.flush()


def _persons_stderr(shell: Any) -> Any:
    kernel = getattr(shell, "kernel", None)
    if kernel is None:
        return sys.__stderr__
    try:
        from ipykernel.iostream import OutStream
    except ImportError:  # pragma: no cover - a kernel that is not ipykernel
        return None
    stream = getattr(kernel, "_stderr", None)  # never sys.__stderr__: the server's log
    return stream if isinstance(stream, OutStream) else None


def plan_for_sight(plan: CellPlan, shell: Any) -> CellPlan:
    """The plan, for a cell whose reviews may not be seen: a mode that asks a person is a
    one-line error; mode never refuses what it would ask. Replay needs nobody."""
    if plan.replay:
        return plan
    asks_person = plan.interactive or plan.replay_replies is True
    if not asks_person and not plan.attended:
        return plan
    why = unseen(shell)
    if not why:
        return plan
    if asks_person:
        mode = "--replay-replies" if plan.replay_replies is True else f"--mode {plan.mode}"
        refusal = (
            f"agent: {why}, so a review could not be seen and Enter would approve code "
            f"nobody saw; run the %%agent cell outside the capture, or use --mode never "
            f"(steps that must be asked are then refused) instead of {mode}"
        )
        tell_the_person(shell, refusal)
        raise PlanError(refusal)
    return replace(plan, attended=False)
