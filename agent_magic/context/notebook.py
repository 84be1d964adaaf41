"""The notebook around the cell: the code run before it, and the saved notebook's Markdown.

Here: :func:`earlier_cells` (the code of the cells this kernel ran before, newest first,
within a budget; from IPython's raw input history), :func:`notebook_file` (where the
kernel's notebook is saved, when the kernel knows: ``JPY_SESSION_NAME``, which Jupyter
Server sets for every kernel JupyterLab starts, or ``__vsc_ipynb_file__``, which VS Code
puts in the namespace) and :func:`notebook_markdown` (that file's Markdown cells and
headings, within a budget).

The notebook file is only ever opened for reading, and not at all when it is larger than
:data:`MAX_NOTEBOOK_BYTES`. Not here: choosing how much each source gets
(:mod:`.block`), hiding secrets (the caller's redactor; :mod:`agent_magic.secrets`).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from ..text import fence

MAX_NOTEBOOK_BYTES = 32 * 1024 * 1024  # a notebook heavier than this (outputs) is not read
_CELL_LINES = 40  # most lines shown of one earlier cell
_MIN_CELL_ROOM = 80  # below this much room left, no further cell is begun
_MORE_ROOM = 40  # kept for "(N earlier cells not shown)"
# A cell that only talks to this extension says nothing about the user's work (and the
# %%agent cell being run is one): %%agent cells, and cells of nothing but %agent,
# %load_ext agent_magic and %config AgentMagics lines.
_AGENT_CELL = re.compile(
    r"\s*(?:%%agent\b|(?:(?:%agent\b|%load_ext agent_magic\b|%config AgentMagics\b)[^\n]*"
    r"(?:\n\s*|$))+$)"
)


def earlier_cells(inputs: Sequence[str] | None, limit: int) -> str:
    """The code of the cells run before this one, newest first, in at most ``limit``
    characters; "" when there are none.

    ``inputs`` is IPython's raw input history (``In`` as typed, index = execution count).
    Empty cells and ``%agent``/``%%agent`` cells are left out. A long cell shows its first
    lines and says how many more it has, outside the code block, so the model never
    copies our note as code. Only as many cells as fit are looked at, however long the
    history.
    """
    if not inputs or limit <= 0:
        return ""
    head = "Code run before this cell in this kernel (newest first):"
    parts = [head]
    used = len(head)
    left = 0
    seen: set[str] = set()
    for number in range(len(inputs) - 1, 0, -1):
        source = inputs[number]
        if type(source) is not str or not source.strip() or _AGENT_CELL.match(source):
            continue
        if source in seen:
            continue  # the same code run again: shown once, at its latest run
        seen.add(source)
        room = limit - used - 1 - _MORE_ROOM
        part = _cell(number, source.strip("\n"), room) if room >= _MIN_CELL_ROOM else ""
        if not part:
            # the rest are only counted (up to a bound), so 10,000 cells cost little
            left = _count_code_cells(inputs, number)
            break
        parts.append(part)
        used += len(part) + 1
    if len(parts) == 1:
        return ""
    if left:
        parts.append(f"({left} earlier cell{'s' if left != 1 else ''} not shown)")
    return "\n".join(parts)


def _count_code_cells(inputs: Sequence[str], last: int, bound: int = 100_000) -> int:
    count = 0
    for number in range(last, max(0, last - bound), -1):
        source = inputs[number]
        if type(source) is str and source.strip() and not _AGENT_CELL.match(source):
            count += 1
    return count


def _cell(number: int, source: str, room: int) -> str:
    """``In [n]:`` and the cell's code in a fence, cut by whole lines to ``room``."""
    lines = source.splitlines()
    keep = min(len(lines), _CELL_LINES)
    while keep > 0:
        code = "\n".join(lines[:keep])
        note = f"\n(the first {keep} of {len(lines)} lines)" if keep < len(lines) else ""
        text = f"In [{number}]:\n{fence(code, 'python')}{note}"
        if len(text) <= room:
            return text
        keep = keep - 1 if keep <= 8 else keep // 2
    return ""


def notebook_file(
    env: Mapping[str, str], namespace: Mapping[str, object], cwd: Path
) -> Path | None:
    """The saved notebook this kernel belongs to, when the kernel knows it; else None.

    VS Code puts the notebook's absolute path in ``__vsc_ipynb_file__``. Jupyter Server
    sets ``JPY_SESSION_NAME`` to the notebook's path relative to the server's root (the
    kernel starts in the notebook's folder), so that path is looked for from the working
    directory and each folder above it.
    """
    given = namespace.get("__vsc_ipynb_file__")
    if type(given) is str and given.endswith(".ipynb") and os.path.isfile(given):
        return Path(given)
    name = env.get("JPY_SESSION_NAME") or ""
    if not name.endswith(".ipynb"):
        return None
    path = Path(name)
    if path.is_absolute():
        return path if path.is_file() else None
    for folder in (cwd, *cwd.parents):
        candidate = folder / path
        if candidate.is_file():
            return candidate
    return None


def notebook_markdown(path: Path, limit: int) -> str:
    """The Markdown cells of the notebook saved at ``path``, in order, in at most ``limit``
    characters; "" when it cannot be read or has none.

    When they do not all fit, every heading is kept and each other cell shrinks to its
    first line; what is still left out is counted.
    """
    if limit <= 0:
        return ""
    try:
        if path.stat().st_size > MAX_NOTEBOOK_BYTES:
            return ""
        with open(path, encoding="utf-8") as file:  # read-only, never written
            notebook = json.load(file)
    except (OSError, ValueError, UnicodeDecodeError):
        return ""
    cells = notebook.get("cells") if isinstance(notebook, dict) else None
    if not isinstance(cells, list):
        return ""
    texts = []
    for cell in cells:
        if not isinstance(cell, dict) or cell.get("cell_type") != "markdown":
            continue
        source = cell.get("source", "")
        text = "".join(source) if isinstance(source, list) else str(source)
        if text.strip():
            texts.append(text.strip())
    if not texts:
        return ""
    head = f"The Markdown cells of the notebook {path.name}, in order:"
    for shrink in (_whole, _first_lines):
        body = "\n\n".join(filter(None, (shrink(text) for text in texts)))
        if len(head) + 1 + len(body) <= limit:
            return f"{head}\n{body}"
    return _headings_within(head, texts, limit)


def _whole(text: str) -> str:
    return text


def _first_lines(text: str) -> str:
    """Headings whole; any other cell's first line, cut to 160 characters."""
    lines = [line for line in text.splitlines() if line.strip()]
    headings = [line for line in lines if line.lstrip().startswith("#")]
    if headings:
        return "\n".join(line[:160] for line in headings)
    first = lines[0] if lines else ""
    return first if len(first) <= 160 else first[:157] + "..."


def _headings_within(head: str, texts: list[str], limit: int) -> str:
    parts = [head]
    used = len(head)
    left = 0
    for text in texts:
        piece = _first_lines(text)
        if used + 1 + len(piece) + 40 > limit:
            left += 1
            continue
        parts.append(piece)
        used += len(piece) + 1
    if len(parts) == 1:
        return ""
    if left:
        parts.append(f"({left} more Markdown cell{'s' if left != 1 else ''} not shown)")
    return "\n".join(parts)
