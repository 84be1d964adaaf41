"""Our own shorthand copied into a proposed step: :func:`copied_markers`.

The extension shortens what it shows the model: cut marks in step outputs and in
requests fitted to the context window (``«526 characters cut here»``), the namespace
preview's elision (``list len=30: [30, 3, 11, 8, ...]``), folded turns, secret markers
(``[hidden: $TOKEN]``), and a step's report notes what it changed (``rebound df:
DataFrame shape=(4, 3)``). A small model copies them back as if they were data: a cut
mark or a change note pasted into code, or
``df_sales = pd.DataFrame({"units": [30, 3, 11, 8, ...]})``, valid Python that would
silently replace the user's 30 rows with five values. Such a step is
not run unseen (:mod:`.loop`); a review says so (:func:`.rules.review_warnings`).

Pure functions over the code's text and, for Python, its ``ast``: not here is what the
loop does about it.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from typing import Any

from ..codeblocks import PYTHON, CodeBlock
from ..guard.touches import parsed

# Our marks, as written today (text.cut_mark, window.recap, the redactor, the
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
# Each of _MARKS's forms holds one of these: a text without any holds none of our marks,
# which three substring scans say in ~2 ms for a megabyte (the regex alone: ~10 ms).
_MARK_NEEDLES = ("[", "«", "hidden")
_SHOWN = 60  # characters of the copied text quoted back


def copied_markers(
    blocks: Iterable[CodeBlock],
    transform: Callable[[str], str] | None = None,
    previews: Collection[Preview] = (),
) -> str:
    """One line naming the first of our marks a step's code holds, or "".

    ``transform`` turns IPython syntax into Python before the code is parsed (the
    session passes ``shell.transform_cell``). ``previews`` are the shortened previews
    the model was shown (:func:`elided_previews`): a display holding exactly the values
    one of them shows, its ``...`` dropped, is a copy too.
    """
    for block in blocks:
        found = _text_mark(block.code)
        if not found and block.language == PYTHON:
            found = _elision(block.code, transform, previews) or _change_note(block.code, transform)
        if found:
            return found
    return ""


# A shortened preview, as our descriptions write one: ``[30, 3, 11, ...]``,
# ``(0, 1, ...)``, ``{'a': 1, ...}``: the shown items and the closing bracket.
_PREVIEW = re.compile(r"([\[({])([^\[\](){}\n]{1,400}?), \.\.\.([\])}])")
_SAME_KIND = {"[": "]", "(": ")", "{": "}"}


@dataclass(frozen=True)
class Preview:
    """The values a shortened preview shows (a tuple of items, or of (key, value)
    pairs for a dict), and how it was written."""

    items: tuple[Any, ...]
    text: str


def elided_previews(text: str) -> set[Preview]:
    """The shortened previews in ``text`` (a namespace summary, a step's report) that
    show at least four literal items, not counting a run such as ``0, 1, 2, 3``."""
    found: set[Preview] = set()
    for match in _PREVIEW.finditer(text):
        open_, body, close = match.groups()
        if _SAME_KIND[open_] != close:
            continue
        try:
            value = ast.literal_eval(f"{open_}{body}{',' if open_ == '(' else ''}{close}")
        except Exception:  # items we describe without a literal (objects, cut strings)
            continue
        items = _items(value)
        if items is not None and len(items) >= 4 and not _progression(items):
            found.add(Preview(items, match.group(0)))
    return found


def _progression(items: tuple[Any, ...]) -> bool:
    """``0, 1, 2, 3``, ``10, 20, 30, 40``: values a step may well write on its own."""
    if not all(type(item) is int for item in items):
        return False
    steps = {b - a for a, b in zip(items, items[1:])}  # noqa: B905 (one shorter, by design)
    return len(steps) == 1


def _items(value: Any) -> tuple[Any, ...] | None:
    if isinstance(value, dict):
        pairs = tuple(value.items())
        return pairs if all(_hashable(pair) for pair in pairs) else None
    if isinstance(value, (list, tuple, set)):
        items = tuple(value)
        return items if all(_hashable(item) for item in items) else None
    return None


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def _text_mark(code: str) -> str:
    if not any(needle in code for needle in _MARK_NEEDLES):
        return ""
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


def _elision(
    code: str, transform: Callable[[str], str] | None, previews: Collection[Preview] = ()
) -> str:
    """An ``...`` among the elements of a list, tuple, set or dict display: how a
    shortened preview reads when copied. Not ``x[..., 0]``, ``Tuple[int, ...]``,
    ``def f(): ...`` or ``Field(...)``: subscripts, stub bodies, lone arguments. And a
    display holding exactly what one of ``previews`` shows: the copy without its
    ``...``, which would silently keep only the values shown."""
    if not previews and "..." not in code:
        return ""  # no ``...`` to find (only that token makes one) and no preview to match
    read = parsed(code, transform)
    if read is None:  # not Python (yet): the step's own error will say so
        return ""
    source, tree = read
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
        preview = _shown_as(node, previews) if previews and len(items) >= 3 else None
        if preview is not None:
            return (
                f"line {node.lineno} writes out the values a shortened preview showed, "
                f"{_quote(preview.text)}, without the rest (the `...` stood for them)"
            )
    return ""


def _shown_as(node: ast.AST, previews: Collection[Preview]) -> Preview | None:
    if not isinstance(node, (ast.List, ast.Tuple, ast.Set, ast.Dict)):
        return None
    try:
        items = _items(ast.literal_eval(node))
    except Exception:  # not all literals: not a copy of a preview
        return None
    return next((p for p in previews if p.items == items), None)


def _is_ellipsis(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and node.value is Ellipsis


# A line of a step's report saying what it changed (context.changes): ``new x: int 5``,
# ``rebound df: DataFrame shape=...``, ``changed rows: list len=4``, ``deleted: a, b``.
_CHANGE_NOTE = re.compile(r"^[ \t]*(?:(?:new|rebound|changed) [A-Za-z_]\w*|deleted): \S", re.M)


def _change_note(code: str, transform: Callable[[str], str] | None) -> str:
    """The first line of ``code`` that is a note of what a step changed, pasted as code.

    Only when the code is not Python: such a line never parses, and inside a string it
    is not a copy."""
    if ": " not in code or parsed(code, transform) is not None:
        return ""
    match = _CHANGE_NOTE.search(code)
    if match is None:
        return ""
    line = code.count("\n", 0, match.start()) + 1
    text = code[match.start() :].split("\n", 1)[0]
    return f"line {line} holds the session's note of what a step changed, not code: {_quote(text)}"


def _quote(text: str) -> str:
    text = " ".join(text.split())
    if len(text) > _SHOWN:
        text = text[: _SHOWN - 1] + "…"
    return f"`{text}`"


def copied_text(copies: str) -> str:
    """What the model is told when its step was not run for holding our shorthand."""
    return (
        f"That step was not run: its code copies the session's shorthand, not data ({copies}). "
        "Previews and cut marks leave values out, and the notes of what a step changed "
        "are not code. Use the variable by name, or recompute or reload the data, instead "
        "of writing the shown values or notes into the code."
    )
