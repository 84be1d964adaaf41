"""Our own shorthand copied into a proposed step: :func:`copied_markers`.

The extension shortens what it shows the model: cut marks in step outputs and in
requests fitted to the context window (``«526 characters cut here»``), the namespace
preview's elision (``list len=30: [30, 3, 11, 8, ...]``), folded turns, secret markers
(``[hidden: $TOKEN]``). A small model copies them back as if they were data: a cut mark
pasted into code, or ``df_sales = pd.DataFrame({"units": [30, 3, 11, 8, ...]})``, valid
Python that would silently replace the user's 30 rows with five values. Such a step is
not run unseen (:mod:`.loop`); a review says so (:func:`.rules.review_warnings`).

Pure functions over the code's text and, for Python, its ``ast``: not here is what the
loop does about it.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterable

from ..codeblocks import PYTHON, CodeBlock

# Our marks, as written today (text.cut_mark, window.summary, the redactor, the
# namespace preview) and as older recordings wrote them.
_MARKS = re.compile(
    r"«\d+ (?:characters|more lines) cut here[^»\n]*»"
    r"|\[\.\.\. ?\d+ (?:characters|more lines) cut to fit the context window"
    r"|\.\.\. \[\d+ characters cut\] \.\.\."
    r"|\[\d+ earlier messages folded to fit the context window"
    r"|\[The variables summary is left out to fit the context window"
    r"|\[hidden: [^\]\n]{1,200}\]"
    r"|looks like a credential: hidden>"
    r"|\(value hidden\)"
)
_SHOWN = 60  # characters of the copied text quoted back


def copied_markers(
    blocks: Iterable[CodeBlock], transform: Callable[[str], str] | None = None
) -> str:
    """One line naming the first of our marks a step's code holds, or "".

    ``transform`` turns IPython syntax into Python before the code is parsed (the
    session passes ``shell.transform_cell``).
    """
    for block in blocks:
        found = _text_mark(block.code)
        if not found and block.language == PYTHON:
            found = _elision(block.code, transform)
        if found:
            return found
    return ""


def _text_mark(code: str) -> str:
    match = _MARKS.search(code)
    if match is None:
        return ""
    line = code.count("\n", 0, match.start()) + 1
    mark = match.group(0)
    if "hidden" in mark:
        what = "a marker that stands for a hidden secret"
    elif "folded" in mark or "left out" in mark:
        what = "a note that turns were folded to fit the context window"
    else:
        what = "a cut mark (text left out of an output or a request)"
    return f"line {line} holds {what}: {_quote(mark)}"


def _elision(code: str, transform: Callable[[str], str] | None) -> str:
    """An ``...`` among the elements of a list, tuple, set or dict display: how a
    shortened preview reads when copied. Not ``x[..., 0]``, ``Tuple[int, ...]``,
    ``def f(): ...`` or ``Field(...)``: subscripts, stub bodies, lone arguments."""
    try:
        source = transform(code) if transform is not None else code
        tree = ast.parse(source)
    except Exception:  # not Python (yet): the step's own error will say so
        return ""
    subscripted: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript):
            subscripted.update(id(inner) for inner in ast.walk(node.slice))
    for node in ast.walk(tree):
        if id(node) in subscripted:
            continue
        if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
            items = node.elts
        elif isinstance(node, ast.Dict):
            items = node.values
        elif isinstance(node, ast.Call):
            items = node.args if len(node.args) > 2 else []  # f(1, 2, ...): values, not a stub
        else:
            continue
        if len(items) > 1 and any(_is_ellipsis(item) for item in items):
            text = ast.get_source_segment(source, node) or "..."
            return (
                f"line {node.lineno} holds a shortened preview, copied as values: "
                f"{_quote(text)} (the `...` stands for values that were not shown)"
            )
    return ""


def _is_ellipsis(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and node.value is Ellipsis


def _quote(text: str) -> str:
    text = " ".join(text.split())
    if len(text) > _SHOWN:
        text = text[: _SHOWN - 1] + "…"
    return f"`{text}`"


def copied_text(copies: str) -> str:
    """What the model is told when its step was not run for holding our shorthand."""
    return (
        f"That step was not run: its code copies the session's shorthand, not data ({copies}). "
        "Previews and cut marks leave values out. Use the variable by name, or recompute "
        "or reload the data, instead of writing the shown values into the code."
    )
