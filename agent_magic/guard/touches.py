"""Which top-level names a step would change: :func:`touches`, read with :mod:`ast`.

:func:`touches` lists every top-level name a Python step would rebind, delete or change
in place, as :class:`~.records.Touch` records; :class:`_Finder` is the walk that does it,
magics included (IPython turns them into ``get_ipython()`` calls). Not here: the scoping
rules the walk relies on (:mod:`.scopes`), which names are protected and the one-line
description for the review (:mod:`.protected`), putting names back (:mod:`.undo`).
Nothing here imports IPython (callers pass ``shell.transform_cell`` for IPython syntax).

What static analysis cannot see
-------------------------------
:func:`touches` reads the code; it does not run it. It cannot see:

* code run by ``exec()``, ``eval()``, magics (``%run``, ``%reset``, ``%store -r``) or
  ``get_ipython()`` (``.user_ns``, ``.push()``, ``.del_var()``): these are listed in
  :attr:`Touches.unseen`, but what they change is not known;
* ``globals()`` / ``vars()`` used with a computed key or ``.update()`` (a constant key,
  ``globals()["x"] = 1``, is seen), and ``from m import *`` (listed in ``unseen``);
* aliasing: after ``y = x``, ``y.append(1)`` changes ``x``, but only ``y`` is named;
* functions and methods that change their arguments or globals: ``f(x)``,
  ``random.seed(0)``, a function defined in an earlier cell that does ``global x``
  (a function defined in the step itself is read, and counts as if it were called);
* which methods change their object: every method call on a name counts as a possible
  in-place change (``df.head()`` as much as ``df.drop(columns="a", inplace=True)``);
  such touches have ``maybe=True``;
* C extensions, ``__setattr__`` / ``__getattr__`` / property hooks, ``__del__``;
* whether a branch, loop or function body runs at all: everything that could run counts.

:class:`~.undo.Undo` compares the namespace before and after the step, so it restores
names bound in ways this analysis cannot see (see :mod:`.undo`).
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Collection
from typing import Any, TypeVar

from .model import How, Touch, Touches
from .scopes import (
    COMPREHENSIONS,
    SCOPE_NODES,
    TOUCHING_NODES,
    Scope,
    bound_name,
    make_scope,
    outer_inner,
    own_nodes,
    param_names,
)

_DETAIL_LIMIT = 40
T = TypeVar("T")


def touches(code: str, *, transform: Callable[[str], str] | None = None) -> Touches:
    """Every top-level name ``code`` would rebind, delete or change in place.

    ``transform`` turns IPython syntax into Python first (pass ``shell.transform_cell``:
    ``%magic`` and ``!cmd`` lines become ``get_ipython()`` calls). When the code is not
    Python (IPython syntax and no transform, or a real syntax error), the result is empty
    with ``parsed=False``. After the shell's transform that means IPython cannot compile
    the cell either, so none of it would run. Never raises.

    The last few results are kept: each step's code is read by the loop's guard and
    again by the executor's undo, and a result is never changed once made.
    """
    return _kept(_touched, code, transform, _touches)


def parsed(code: str, transform: Callable[[str], str] | None = None) -> Parsed | None:
    """``code`` turned into Python by ``transform`` (IPython syntax) and parsed: the
    source and its tree, or None when it is not Python (a transformer choking on odd
    input, a syntax error, null bytes, absurdly nested expressions). Never raises.

    The last few are kept: a step's code is read by the loop's check for copied
    markers, by its guard and by the executor's undo, and the shell's transform costs
    about as much as the rest of that reading. The tree is shared: read it, never
    change it.
    """
    return _kept(_parsed, code, transform, _parse)


Parsed = tuple[str, ast.Module]
_Key = tuple[str, Callable[[str], str] | None]
_RECENT = 8
_MISSING: Any = object()
_touched: dict[_Key, Touches] = {}
_parsed: dict[_Key, Parsed | None] = {}


def _kept(
    recent: dict[_Key, T],
    code: str,
    transform: Callable[[str], str] | None,
    make: Callable[[str, Callable[[str], str] | None], T],
) -> T:
    """``make(code, transform)``, kept for the last few keys (oldest dropped first)."""
    key = (code, transform)
    try:
        found = recent.get(key, _MISSING)
    except TypeError:  # a transform that cannot be hashed: nothing is kept
        return make(code, transform)
    if found is _MISSING:
        found = make(code, transform)
        if len(recent) >= _RECENT:
            recent.pop(next(iter(recent)), None)
        recent[key] = found
    return found


def _parse(code: str, transform: Callable[[str], str] | None) -> Parsed | None:
    source = code
    if transform is not None:
        try:
            source = transform(code)
        except Exception:  # a transformer choking on odd input: treat as unparsed
            return None
    try:
        return source, _read(source)
    except Exception:  # SyntaxError; ValueError: null bytes; RecursionError: nesting
        return None


def _read(source: str) -> ast.Module:
    try:
        return ast.parse(source)
    except SystemError:
        # CPython 3.11 fails an ast.parse while another thread is in one ("AST constructor
        # recursion depth mismatch": one counter per interpreter); read once more rather
        # than leave the step unread and its touches unasked.
        return ast.parse(source)


def _touches(code: str, transform: Callable[[str], str] | None) -> Touches:
    read = parsed(code, transform)
    if read is None:
        return Touches(parsed=False)
    tree = read[1]
    finder = _Finder(transform)
    try:
        finder.scope(Scope("module"), list(tree.body), "")
    except RecursionError:
        return Touches(parsed=False)
    found = sorted(finder.found, key=lambda item: (item[0], item[1]))
    return Touches((t for _, _, t in found), unseen=dict.fromkeys(finder.unseen))


def _root(node: ast.AST) -> ast.Name | None:
    """The name an attribute / item chain starts from (``x`` in ``x.a[0].b``), if any."""
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        node = node.value
    return node if isinstance(node, ast.Name) else None


def _shorten(text: str) -> str:
    return text if len(text) <= _DETAIL_LIMIT else text[: _DETAIL_LIMIT - 3] + "..."


def _is_call_to(node: ast.AST, names: Collection[str]) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in names


_OPS = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.MatMult: "@",
    ast.Div: "/",
    ast.FloorDiv: "//",
    ast.Mod: "%",
    ast.Pow: "**",
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.BitOr: "|",
    ast.BitXor: "^",
    ast.BitAnd: "&",
}
# magics that run their argument as Python in the user's namespace: read it too
_RUNS_LINE = frozenset({"time"})
_RUNS_CELL = frozenset({"time", "capture"})
# IPython calls that cannot rebind names (shell commands set only ``_exit_code``)
_HARMLESS_IPYTHON = frozenset({"system", "getoutput"})
# magics that only show, configure or install things: no user names change (``%cd``
# appends to ``_dh``, IPython's own use of it); any other magic is reported as unseen
_HARMLESS_LINE = frozenset(
    {
        "matplotlib", "pip", "conda", "mamba", "timeit", "pwd", "cd", "ls", "env", "who",
        "whos", "history", "config", "pinfo", "pinfo2", "pdef", "pdoc", "psource", "pfile",
        "lsmagic", "magic", "precision", "xmode",
    }
)  # fmt: skip
_HARMLESS_CELL = frozenset(
    {
        "bash", "sh", "script", "html", "HTML", "markdown", "javascript", "js", "latex",
        "svg", "writefile", "timeit", "perl", "ruby",
    }
)  # fmt: skip


class _Finder:
    """Walks scopes, recording touches on module-level names and what it cannot see."""

    def __init__(self, transform: Callable[[str], str] | None) -> None:
        self.transform = transform
        self.found: list[tuple[int, int, Touch]] = []
        self.unseen: list[str] = []
        self.handled: set[int] = set()  # ids of calls already accounted for

    def scope(self, scope: Scope, roots: list[ast.AST], where: str) -> None:
        for node in own_nodes(roots):
            if type(node) in TOUCHING_NODES:
                self.node(node, scope, where)
            if isinstance(node, SCOPE_NODES):
                inner = outer_inner(node)[1]
                if isinstance(node, ast.ClassDef):
                    kind, label = "class", f" in class {node.name}"
                elif isinstance(node, COMPREHENSIONS):
                    kind, label = "comprehension", where
                else:
                    kind = "function"
                    label = " in a lambda" if isinstance(node, ast.Lambda) else f" in {node.name}()"
                self.scope(make_scope(kind, inner, scope, param_names(node)), inner, label)

    def add(self, node: ast.AST, name: str, how: How, detail: str, maybe: bool = False) -> None:
        line, col = getattr(node, "lineno", 1), getattr(node, "col_offset", 0)
        self.found.append((line, col, Touch(name, how, detail, line, maybe)))

    def bind(self, node: ast.AST, name: str, scope: Scope, how: How, detail: str) -> None:
        if scope.is_global(name):
            self.add(node, name, how, detail)

    def node(self, node: ast.AST, scope: Scope, where: str) -> None:
        if isinstance(node, ast.Assign):
            for target in node.targets:
                self.target(target, scope, "assignment", where)
        elif isinstance(node, ast.AnnAssign):
            if node.value is not None:
                self.target(node.target, scope, "annotated assignment", where)
        elif isinstance(node, ast.AugAssign):
            self.augmented(node, scope, where)
        elif isinstance(node, ast.Delete):
            for target in node.targets:
                self.target(target, scope, "del", where, deleting=True)
        elif isinstance(node, (ast.For, ast.AsyncFor)):
            self.target(node.target, scope, "for loop", where)
        elif isinstance(node, (ast.With, ast.AsyncWith)):
            for item in node.items:
                if item.optional_vars is not None:
                    self.target(item.optional_vars, scope, "with ... as", where)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            self.imports(node, scope, where)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            self.bind(node, node.name, scope, "rebind", "def" + where)
        elif isinstance(node, ast.ClassDef):
            self.bind(node, node.name, scope, "rebind", "class" + where)
        elif isinstance(node, ast.NamedExpr) and isinstance(node.target, ast.Name):
            self.bind(node, node.target.id, scope.binding_scope(), "rebind", "walrus :=" + where)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            detail = "except ... as, unbound after the handler" + where
            self.bind(node, node.name, scope, "delete", detail)
        elif isinstance(node, (ast.MatchAs, ast.MatchStar)) and node.name:
            self.bind(node, node.name, scope, "rebind", "match capture" + where)
        elif isinstance(node, ast.MatchMapping) and node.rest:
            self.bind(node, node.rest, scope, "rebind", "match capture" + where)
        elif isinstance(node, ast.Call):
            self.call(node, scope, where)
        elif type(node).__name__ == "TypeAlias":  # ``type X = ...`` (Python 3.12+)
            self.target(node.name, scope, "type alias", where)  # type: ignore[attr-defined]

    def target(
        self, node: ast.AST, scope: Scope, context: str, where: str, deleting: bool = False
    ) -> None:
        """An assignment, loop or ``del`` target: a name, an unpacking, an attribute, an item.

        ``context`` names the statement (``"for loop"``); ``where`` the function it is in.
        """
        how: How = "delete" if deleting else "rebind"
        if isinstance(node, ast.Name):
            self.bind(node, node.id, scope, how, context + where)
        elif isinstance(node, ast.Starred):
            self.target(node.value, scope, context, where, deleting)
        elif isinstance(node, (ast.Tuple, ast.List)):
            for elt in node.elts:
                self.target(elt, scope, context, where, deleting)
        elif isinstance(node, (ast.Attribute, ast.Subscript)):
            key = _namespace_key(node)
            if key is not None:  # globals()["x"] = ...
                self.handled.add(id(node.value))
                action = "deletion" if deleting else "assignment"
                self.bind(node, key, scope, how, f"globals()[{key!r}] {action}" + where)
                return
            plain = context in ("assignment", "annotated assignment", "del")
            self.change(
                node,
                scope,
                "deletion" if deleting else "assignment",
                ("" if plain else f", {context}") + where,
            )

    def change(
        self,
        node: ast.Attribute | ast.Subscript,
        scope: Scope,
        action: str,
        suffix: str,
        op: str = "",
    ) -> None:
        """An attribute or item of a name is assigned or deleted: the name's object changes.

        Details read ``item assignment``, ``attribute deletion .a``,
        ``augmented attribute assignment .a +=``, then ``suffix`` (statement, function).
        """
        root = _root(node)
        if root is None or not scope.is_global(root.id):
            return
        what = "attribute" if isinstance(node, ast.Attribute) else "item"
        detail = f"{'augmented ' if op else ''}{what} {action}"
        if isinstance(node, ast.Attribute):
            detail += " " + _shorten(ast.unparse(node)[len(root.id) :])
        detail += (f" {op}" if op else "") + suffix
        self.add(node, root.id, "mutate", detail)

    def augmented(self, node: ast.AugAssign, scope: Scope, where: str) -> None:
        op = _OPS.get(type(node.op), "") + "="
        target = node.target
        if isinstance(target, ast.Name):
            if scope.is_global(target.id):
                self.add(target, target.id, "rebind", op + where)
                self.add(target, target.id, "mutate", op + where, maybe=True)
        elif isinstance(target, (ast.Attribute, ast.Subscript)):
            self.change(target, scope, "assignment", where, op=op)

    def imports(self, node: ast.Import | ast.ImportFrom, scope: Scope, where: str) -> None:
        for alias in node.names:
            if alias.name == "*":
                module = "." * getattr(node, "level", 0) + (getattr(node, "module", "") or "")
                self.unseen.append(f"from {module} import * (line {node.lineno})")
                continue
            if alias.name.split(".")[0] == "__main__":
                self.unseen.append(f"import __main__ (line {node.lineno})")
            detail = "import" if isinstance(node, ast.Import) else "from ... import"
            self.bind(node, bound_name(alias), scope, "rebind", detail + where)

    def call(self, node: ast.Call, scope: Scope, where: str) -> None:
        func = node.func
        if id(node) in self.handled:
            return
        if isinstance(func, ast.Attribute):
            if _is_call_to(func.value, {"get_ipython"}):
                self.handled.add(id(func.value))
                self.ipython_call(node, func.attr)
                return
            if _is_call_to(func.value, {"globals", "vars"}) and not func.value.args:
                self.handled.add(id(func.value))
                self.unseen.append(f"globals().{func.attr}() (line {node.lineno})")
                return
            root = _root(func.value)
            if root is not None and scope.is_global(root.id):
                path = ast.unparse(func)[len(root.id) :]
                self.add(node, root.id, "mutate", _shorten(path + "()") + where, maybe=True)
        elif isinstance(func, ast.Name):
            name = func.id
            if name in ("setattr", "delattr") and node.args:
                first = node.args[0]
                root = first if isinstance(first, ast.Name) else _root(first)
                if root is not None and scope.is_global(root.id):
                    self.add(node, root.id, "mutate", f"{name}()" + where)
            elif name in ("exec", "eval", "get_ipython") or (
                name in ("globals", "vars", "locals") and not node.args
            ):
                self.unseen.append(f"{name}() (line {node.lineno})")

    def ipython_call(self, node: ast.Call, method: str) -> None:
        """``get_ipython().x(...)``: what the transformed magics and ``!cmd`` turn into."""
        if method in _HARMLESS_IPYTHON:
            return
        args = [a.value if isinstance(a, ast.Constant) else None for a in node.args]
        magic = args[0] if args and isinstance(args[0], str) else None
        if method == "run_line_magic" and magic is not None:
            body = args[1] if len(args) > 1 and isinstance(args[1], str) else None
            if magic in _RUNS_LINE and body is not None:
                self.nested(body, node.lineno, f"%{magic}")
            elif magic not in _HARMLESS_LINE:
                self.unseen.append(f"%{magic} magic (line {node.lineno})")
        elif method == "run_cell_magic" and magic is not None:
            body = args[2] if len(args) > 2 and isinstance(args[2], str) else None
            line = args[1] if len(args) > 1 and isinstance(args[1], str) else None
            if magic in _RUNS_CELL and body is not None:
                if magic == "capture" and line:
                    # ``%%capture [--no-stdout ...] name`` binds name to what it caught
                    words = [w for w in line.split() if not w.startswith("-")]
                    if words and words[-1].isidentifier():
                        self.add(node, words[-1], "rebind", "%%capture")
                self.nested(body, node.lineno, f"%%{magic}")
            # ``%%bash --out x`` binds x: only a plain line is harmless
            elif magic not in _HARMLESS_CELL or line is None or "--" in line:
                self.unseen.append(f"%%{magic} magic (line {node.lineno})")
        else:
            self.unseen.append(f"get_ipython().{method}() (line {node.lineno})")

    def nested(self, body: str, line: int, magic: str) -> None:
        """Code a magic runs in the namespace (``%time x = f()``): its touches count."""
        inner = touches(body, transform=self.transform)
        if not inner.parsed:
            self.unseen.append(f"{magic} magic (line {line})")
            return
        # a cell magic's body starts on the line after the magic
        offset = line if magic.startswith("%%") else line - 1
        for t in inner:
            moved = Touch(t.name, t.how, f"{t.detail}, in {magic}", t.line + offset, t.maybe)
            self.found.append((moved.line, 0, moved))
        self.unseen.extend(inner.unseen)


def _namespace_key(node: ast.AST) -> str | None:
    """``x`` for ``globals()["x"]`` / ``vars()["x"]``: a namespace entry named by a constant."""
    if (
        isinstance(node, ast.Subscript)
        and _is_call_to(node.value, {"globals", "vars"})
        and not node.value.args  # type: ignore[attr-defined]
        and isinstance(node.slice, ast.Constant)
        and isinstance(node.slice.value, str)
    ):
        return node.slice.value
    return None
