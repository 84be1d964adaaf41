"""Putting the code that ran into the notebook, as ordinary code cells.

:func:`insert_cells` hands the code to the frontend through the kernel's
``set_next_input`` payload: JupyterLab, Notebook 7 and VS Code put its text in a new
cell below the cell that is running (a terminal IPython pre-fills its next prompt).
That payload carries one cell, so several steps go into one cell, each under a
``# step N`` comment line, N the step's number in the conversation (as the review, the
record and ``%agent log`` number it). A payload travels with the reply to the cell that is
running, so call it while a cell runs: from a magic, or from the final review's
button while the ``%%agent`` cell still awaits the click; written from a widget click
after the cell has ended, it would land below whatever cell runs next.

:func:`sources` turns code blocks into cell text: Python as it is, a shell block as
``!command`` lines (one line) or a ``get_ipython().system(...)`` call (a script).
Nothing here imports ipywidgets; the button lives in :mod:`.widget`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from ..codeblocks import SHELL


class Code(Protocol):
    """Code in a language: a :class:`~agent_magic.codeblocks.CodeBlock`, or the record of
    one that ran (:class:`~agent_magic.transcript.CodeRecord`)."""

    @property
    def language(self) -> str: ...

    @property
    def code(self) -> str: ...


class Ran(Code, Protocol):
    """Code that ran at a step of the conversation (a CodeRecord)."""

    @property
    def step(self) -> int: ...


def sources(blocks: Iterable[Code]) -> list[str]:
    """Each block as the text of a code cell that does what running it did."""
    texts = []
    for block in blocks:
        code = block.code.strip("\n")
        if block.language == SHELL:
            code = f"!{code}" if "\n" not in code else f"get_ipython().system({code!r})"
        texts.append(code)
    return texts


def joined(codes: list[str], steps: Sequence[int] | None = None) -> str:
    """The codes as one cell: each under a ``# step N`` line (``steps``: each code's step
    number; None counts from 1), a blank line between; a step's later blocks follow its
    first under the same line."""
    numbers = list(steps) if steps is not None else list(range(1, len(codes) + 1))
    parts = []
    for index, (step, code) in enumerate(zip(numbers, codes, strict=True)):
        code = code.strip("\n")
        parts.append(code if index and numbers[index - 1] == step else f"# step {step}\n{code}")
    return "\n\n".join(parts)


def insert_cells(shell: Any, codes: list[str], steps: Sequence[int] | None = None) -> int:
    """Put ``codes`` into the notebook below the running cell; return how many cells.

    One cell (the payload's limit) holding every code under its ``# step N`` line (the
    numbers in ``steps``, one per code); no cell at all when ``codes`` is empty.
    """
    numbers = list(steps) if steps is not None else [0] * len(codes)
    kept = [(n, code) for n, code in zip(numbers, codes, strict=True) if code.strip()]
    if not kept:
        return 0
    given = [n for n, _ in kept] if steps is not None else None
    shell.set_next_input(joined([c for _, c in kept], given), replace=False)
    return 1


def insert_below(codes: list[str], steps: Sequence[int] | None = None) -> int:
    """:func:`insert_cells` in the shell that is running (the widget's default)."""
    from IPython import get_ipython

    shell = get_ipython()
    return insert_cells(shell, codes, steps) if shell is not None else 0
