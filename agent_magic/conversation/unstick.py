"""What a model is told when it sends failing code again: something it can act on.

Refusing the same failing step saves a run, but repeating "it would fail the same way"
rescued no task (17 refusals over 8 tasks, each followed by the same code until the turn
limit). :func:`repeat_help` says instead what the model needs to change the code: the
error and the line that raised it, what the error usually means and what to try that
the code does not do yet, and the start of the data files the code reads (the preview
of :mod:`agent_magic.context.files`, bounded and with secrets hidden), so a parse can be
written for the file as it is. A second refusal of the same code says more plainly that
a different approach is needed.

Pure text from the step's record and the code; the only thing read is the start of the
files the code names, under the working directory. Not here: deciding to refuse
(:mod:`.loop`), the refusal's first words (:func:`.rules.repeat_text`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from ..codeblocks import CodeBlock
from .seams import StepOutcome

_PREVIEW_CHARS = 1200  # the most of the data files shown with one refusal
# The line a traceback blames: IPython's arrow, or the code under Python's last "File".
_ARROW = re.compile(r"^-+>\s*(\d+)\s(.*)$", re.M)
_FILE_LINE = re.compile(r'^\s*(?:File "[^"\n]*"|Cell In\[\d+\]), line (\d+).*\n(.+)$', re.M)
_CARET = re.compile(r"^(.*)\n\s*\^+\s*$", re.M)

# (error type, a pattern its message matches or None, what to try instead).
_ADVICE: tuple[tuple[str, str | None, str], ...] = (
    (
        "KeyError",
        None,
        "The key or column is not there as written: print the actual keys or columns "
        "(`print(list(df.columns))`) and use the exact name; a header read as data, extra "
        "spaces or a different separator change the names.",
    ),
    (
        "UnicodeDecodeError",
        None,
        "The file is not UTF-8: pass the encoding (`encoding='latin-1'` or the one the "
        "preview below names).",
    ),
    (
        "ParserError",
        None,
        "The rows do not split as the code assumes: check the separator (`sep=`), lines "
        "above the header (`skiprows=`) and the quote character against the file's first "
        "lines.",
    ),
    (
        "ValueError",
        r"could not convert|invalid literal|Unable to parse",
        "A value is not a plain number: look at it in the data; thousands separators and "
        "decimal commas need `thousands=`/`decimal=` (or a replace before converting), "
        "missing values need `na_values=`.",
    ),
    (
        "FileNotFoundError",
        None,
        "The path does not exist from the working directory: list the files "
        "(`import os; print(os.listdir('.'))`) and use the name as it is.",
    ),
    (
        "NameError",
        None,
        "The name is not defined in the session: define it in this step, or use a "
        "variable that exists.",
    ),
    (
        "AttributeError",
        None,
        "That object has no such attribute: print its type (`type(x)`) and use a method it has.",
    ),
    (
        "TypeError",
        None,
        "A value has another type than the code assumes: print the types involved "
        "(`df.dtypes`, `type(x)`) and convert first.",
    ),
    (
        "SyntaxError",
        None,
        "The code does not parse: fix the line shown (a bracket or quote left open, a "
        "missing colon) and send the whole corrected step.",
    ),
    (
        "IndentationError",
        None,
        "The indentation is inconsistent: send the whole step again with four spaces per level.",
    ),
)
_GENERAL = (
    "Print what the failing line works on (the data's first lines, the variable's type "
    "and shape) before changing the code again."
)


def repeat_help(
    blocks: Iterable[CodeBlock], outcome: StepOutcome | None, times: int, cwd: Path | None = None
) -> str:
    """What to tell the model after refusing ``blocks`` (which failed with ``outcome``)
    for the ``times``-th time: the error and its line, what to try, the data's start."""
    blocks = list(blocks)
    parts = []
    error = outcome.error if outcome is not None else None
    if error is not None:
        what = f"{error.type}: {error.message}".strip().rstrip(":")
        line = failing_line(error.text, blocks)
        parts.append(f"The error was {what}" + (f", raised by `{line}`." if line else "."))
        parts.append(_advice(error.type, error.message))
    else:
        parts.append(_GENERAL)
    if times > 1:
        parts.append(
            f"This is the {_ordinal(times)} time the same code was sent: a small change is "
            "not enough; take a different approach (another function, another parameter, "
            "or first a step that only prints the data)."
        )
    data = _data_preview("\n".join(b.code for b in blocks), cwd or Path.cwd())
    if data:
        parts.append(data)
    return "\n".join(parts)


def failing_line(text: str, blocks: Iterable[CodeBlock] = ()) -> str:
    """The code line a traceback blames (the step's own, when it names several)."""
    if not text:
        return ""
    found = [m.group(2).strip() for m in _ARROW.finditer(text)]
    if not found:
        found = [m.group(2).strip() for m in _FILE_LINE.finditer(text)]
    if not found:
        found = [m.group(1).strip() for m in _CARET.finditer(text)]
    code = "\n".join(b.code for b in blocks)
    own = [line for line in found if line and line in code]
    line = (own or found or [""])[-1 if not own else 0]
    return line if len(line) <= 200 else line[:197] + "..."


def _advice(kind: str, message: str) -> str:
    for name, pattern, text in _ADVICE:
        if kind == name and (pattern is None or re.search(pattern, message or "")):
            return f"Not tried yet: {text}"
    return f"Not tried yet: {_GENERAL}"


def _data_preview(code: str, cwd: Path) -> str:
    from ..context.files import files_block

    block = files_block(code, cwd, _PREVIEW_CHARS, absolute=False)
    if not block:
        return ""
    return block.replace(
        "Files the task names (the start of each; never read whole):",
        "The data the code reads, as it is (the start of each file):",
        1,
    )


def _ordinal(n: int) -> str:
    return {2: "second", 3: "third"}.get(n, f"{n}th")
