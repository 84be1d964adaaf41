"""The context sent after a task: every source, fitted into one budget, by one function.

Here: :data:`SOURCES` (the names of the sources, each switchable off), :class:`Around`
(what the kernel knows about itself: namespace, input history, environment, working
directory) and :func:`build_context`, which both the request and ``%agent context`` call,
so what a person is shown is what the model is sent.

Each source gets at most its share of the budget, in this order, and what one leaves
unused goes to the next: the files the task names (they are what the task is about), the
variables, the code run before this cell, the notebook's Markdown.

Not here: each source (:mod:`.files`, :mod:`.summary`, :mod:`.notebook`), hiding
secrets (the cell's redactor, applied to the whole request).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .files import files_block
from .notebook import earlier_cells, notebook_file, notebook_markdown
from .summary import summarize_namespace

SOURCES = ("files", "variables", "cells", "notebook")
# The most of the budget each source may take (of the whole budget, not of what is left).
_SHARES = {"files": 0.45, "variables": 2 / 3, "cells": 0.3, "notebook": 0.25}


@dataclass(frozen=True)
class Around:
    """What the kernel knows about where a task is asked."""

    namespace: Mapping[str, object]
    hidden: Collection[str] = ()
    inputs: Sequence[str] | None = None  # the raw input history (In, as typed)
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: Path = Path(".")


def build_context(
    task: str, around: Around, *, budget: int, sources: Collection[str] = SOURCES
) -> str:
    """The context for ``task``: the enabled ``sources``, in at most ``budget`` characters."""
    blocks = []
    left = budget
    for source in SOURCES:
        if source not in sources:
            continue
        room = min(left, int(budget * _SHARES[source])) - 2  # the blank line between blocks
        if room <= 0:
            continue
        try:
            text = _render(source, task, around, room)
        except Exception:  # an odd file or notebook must not cost the user the cell
            text = ""
        if text:
            blocks.append(text)
            left -= len(text) + 2
    return "\n\n".join(blocks)


def _render(source: str, task: str, around: Around, room: int) -> str:
    if source == "files":
        return files_block(task, around.cwd, room)
    if source == "variables":
        head = "Variables in the session now:\n"
        summary = summarize_namespace(
            around.namespace, budget=room - len(head), hidden=around.hidden
        )
        return head + summary
    if source == "cells":
        return earlier_cells(around.inputs, room)
    path = notebook_file(around.env, around.namespace, around.cwd)
    return notebook_markdown(path, room) if path is not None else ""
