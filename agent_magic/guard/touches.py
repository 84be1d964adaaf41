"""Which top-level names a step would change, and putting them back afterwards.

Two pure pieces for the loop and the magic; nothing here imports IPython (callers pass
the namespace dict and, for IPython syntax, ``shell.transform_cell``):

* :func:`touches` reads a Python step with :mod:`ast` and lists every top-level name it
  would rebind, delete or change in place, as :class:`Touch` records.
  :func:`protected_touches` keeps those on protected names (:data:`DEFAULT_PROTECTED`
  are the ones IPython and this extension rely on) and :func:`describe` says them in
  one line for the review.
* :class:`Undo` keeps, before a step runs, what it needs to put the namespace back: the
  old bindings by reference, and bounded deep copies of the objects the code changes in
  place. :meth:`Undo.restore` puts them back and returns an :class:`UndoReport`.

Not here: deciding whether to ask the user (the loop), the ``%agent undo`` command (the
magic), and anything outside the namespace: files written, requests sent, processes
started by a step are never undone.

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

:class:`Undo` compares the namespace before and after the step, so names bound or
deleted in ways the analysis cannot see (``exec``, ``globals()[name] = ...``, magics,
functions with ``global``) are restored too. In-place changes it cannot see are not
copied beforehand, so they are not undone.
"""

from __future__ import annotations

import ast
import copy
import gc
import re
import sys
import types
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any, Literal

How = Literal["rebind", "delete", "mutate"]

#: Names whose rebinding or deletion breaks later cells or this extension's magics:
#: ``%%agent`` cells are rewritten to ``await get_ipython()...``; ``{In[N]}`` / ``{Out[N]}``
#: read ``In`` and ``Out``; IPython's display hook writes into ``_oh`` and ``%cd`` into
#: ``_dh``; ``display``, ``exit`` and ``quit`` are what users type; ``__name__`` decides
#: where classes defined in the notebook pickle to. ``_``, ``__``, ``___`` and ``_i*`` are
#: left out: IPython rebinds them every cell, and ``for _ in range(3)`` is idiomatic (a
#: user-assigned ``_`` only stops IPython updating it).
DEFAULT_PROTECTED: frozenset[str] = frozenset(
    {
        "get_ipython",
        "In",
        "Out",
        "_ih",
        "_oh",
        "_dh",
        "exit",
        "quit",
        "display",
        "__builtins__",
        "__builtin__",
        "__name__",
        "__spec__",
    }
)


@dataclass(frozen=True)
class Touch:
    """One way a step would change a top-level name.

    ``how`` is ``"rebind"`` (assignment, import, ``def``, ``for`` target...),
    ``"delete"`` (``del x``, an ``except ... as x`` name) or ``"mutate"`` (the object the
    name holds is changed in place). ``detail`` says how (``"assignment"``, ``".append()"``,
    ``"item assignment"``); ``line`` is 1-based in the code given. ``maybe`` is true when
    the change only may happen: a method call (which methods mutate cannot be known
    statically) or an augmented assignment on a name (``x += 1`` changes a list in place
    but rebinds an int).
    """

    name: str
    how: How
    detail: str
    line: int
    maybe: bool = False


class Touches(tuple[Touch, ...]):
    """The touches of one step, in source order, plus what the analysis could not see.

    ``parsed`` is false when the code is not Python (a ``SyntaxError``): the tuple is
    then empty and callers should treat the code as unknown. ``unseen`` lists constructs
    that may change names the analysis cannot name (``"exec() (line 3)"``).
    """

    parsed: bool
    unseen: tuple[str, ...]

    def __new__(
        cls, items: Iterable[Touch] = (), *, parsed: bool = True, unseen: Iterable[str] = ()
    ) -> Touches:
        self = super().__new__(cls, items)
        self.parsed = parsed
        self.unseen = tuple(unseen)
        return self

    def names(self, how: How | None = None) -> tuple[str, ...]:
        """The distinct names touched (optionally only one way), first occurrence first."""
        return tuple(dict.fromkeys(t.name for t in self if how is None or t.how == how))

    def __repr__(self) -> str:
        return f"Touches({list(self)!r}, parsed={self.parsed}, unseen={self.unseen!r})"


def touches(code: str, *, transform: Callable[[str], str] | None = None) -> Touches:
    """Every top-level name ``code`` would rebind, delete or change in place.

    ``transform`` turns IPython syntax into Python first (pass ``shell.transform_cell``:
    ``%magic`` and ``!cmd`` lines become ``get_ipython()`` calls). When the code is not
    Python (IPython syntax and no transform, or a real syntax error), the result is empty
    with ``parsed=False``. After the shell's transform that means IPython cannot compile
    the cell either, so none of it would run. Never raises.
    """
    source = code
    if transform is not None:
        try:
            source = transform(code)
        except Exception:  # a transformer choking on odd input: treat as unparsed
            return Touches(parsed=False)
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):  # ValueError: null bytes in the source
        return Touches(parsed=False)
    except RecursionError:  # absurdly nested expressions
        return Touches(parsed=False)
    finder = _Finder(transform)
    try:
        finder.scope(_Scope("module"), list(tree.body), "")
    except RecursionError:
        return Touches(parsed=False)
    found = sorted(finder.found, key=lambda item: (item[0], item[1]))
    return Touches((t for _, _, t in found), unseen=dict.fromkeys(finder.unseen))


def protected_touches(
    code: str | Touches,
    protected: Collection[str] = DEFAULT_PROTECTED,
    *,
    transform: Callable[[str], str] | None = None,
) -> Touches:
    """The touches of ``code`` (or of an earlier :func:`touches` result) on protected names."""
    found = code if isinstance(code, Touches) else touches(code, transform=transform)
    return Touches(
        (t for t in found if t.name in protected), parsed=found.parsed, unseen=found.unseen
    )


def describe(found: Iterable[Touch], *, limit: int = 6) -> str:
    """One line for the review: ``would rebind get_ipython (assignment, line 1); ...``.

    Each name and way is said once, at its first line; ``""`` when there is nothing.
    """
    first: dict[tuple[str, str], Touch] = {}
    for t in found:
        first.setdefault((t.how, t.name), t)
    phrases = [_phrase(t) for t in first.values()]
    if len(phrases) > limit:
        phrases[limit:] = [f"and {len(phrases) - limit} more"]
    return "; ".join(phrases)


def _phrase(t: Touch) -> str:
    where = f"({t.detail}, line {t.line})"
    if t.how == "rebind":
        return f"would rebind {t.name} {where}"
    if t.how == "delete":
        return f"would delete {t.name} {where}"
    return f"{'may' if t.maybe else 'would'} change {t.name} in place {where}"


# -- scopes ------------------------------------------------------------------------------

_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)
_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)
_SCOPE_NODES = (*_FUNCTIONS, ast.ClassDef, *_COMPREHENSIONS)
# the node types that can bind a name in their scope, or touch one (most nodes are
# neither: skipping them by type keeps the walk near the cost of ast.parse)
_BINDING_NODES = frozenset(
    {
        ast.Global, ast.Nonlocal, ast.Name, ast.NamedExpr, ast.FunctionDef,
        ast.AsyncFunctionDef, ast.ClassDef, ast.Import, ast.ImportFrom, ast.ExceptHandler,
        ast.MatchAs, ast.MatchStar, ast.MatchMapping, *_COMPREHENSIONS,
    }
)  # fmt: skip
_TOUCHING_NODES = frozenset(
    {
        ast.Assign, ast.AnnAssign, ast.AugAssign, ast.Delete, ast.For, ast.AsyncFor,
        ast.With, ast.AsyncWith, ast.Import, ast.ImportFrom, ast.FunctionDef,
        ast.AsyncFunctionDef, ast.ClassDef, ast.NamedExpr, ast.ExceptHandler, ast.MatchAs,
        ast.MatchStar, ast.MatchMapping, ast.Call,
        *((ast.TypeAlias,) if hasattr(ast, "TypeAlias") else ()),
    }
)  # fmt: skip
_DETAIL_LIMIT = 40


@dataclass
class _Scope:
    """Which names a scope binds itself, so a use can be resolved to the module or not."""

    kind: Literal["module", "function", "class", "comprehension"]
    parent: _Scope | None = None
    bound: set[str] = field(default_factory=set)
    declared_global: set[str] = field(default_factory=set)
    declared_nonlocal: set[str] = field(default_factory=set)

    def is_global(self, name: str) -> bool:
        """Whether ``name`` used here means the module's (the namespace's) binding."""
        scope: _Scope | None = self
        while scope is not None:
            if scope.kind == "module" or name in scope.declared_global:
                return True
            if name in scope.declared_nonlocal:
                return False
            # enclosing class bodies are not visible from the functions inside them
            if (scope is self or scope.kind != "class") and name in scope.bound:
                return False
            scope = scope.parent
        return True

    def binding_scope(self) -> _Scope:
        """Where a walrus binds: the nearest scope that is not a comprehension."""
        scope = self
        while scope.kind == "comprehension" and scope.parent is not None:
            scope = scope.parent
        return scope


def _outer_inner(node: ast.AST) -> tuple[list[ast.AST], list[ast.AST]]:
    """The parts of a scope-making node evaluated where it stands, and those inside it."""
    if isinstance(node, _FUNCTIONS):
        args = node.args
        outer: list[ast.AST] = [*args.defaults, *(d for d in args.kw_defaults if d is not None)]
        if isinstance(node, ast.Lambda):
            return outer, [node.body]
        every = (*args.posonlyargs, *args.args, args.vararg, *args.kwonlyargs, args.kwarg)
        outer[:0] = node.decorator_list
        outer += [a.annotation for a in every if a is not None and a.annotation is not None]
        if node.returns is not None:
            outer.append(node.returns)
        return outer, list(node.body)
    if isinstance(node, ast.ClassDef):
        return [*node.decorator_list, *node.bases, *node.keywords], list(node.body)
    if isinstance(node, _COMPREHENSIONS):
        first, *rest = node.generators
        inner: list[ast.AST] = [first.target, *first.ifs]
        for gen in rest:
            inner += [gen.target, gen.iter, *gen.ifs]
        if isinstance(node, ast.DictComp):
            inner += [node.key, node.value]
        else:
            inner.append(node.elt)
        return [first.iter], inner
    return list(ast.iter_child_nodes(node)), []


def _own_nodes(roots: Iterable[ast.AST]) -> Iterator[ast.AST]:
    """Nodes run in the current scope, pre-order; nested scopes are yielded, not entered."""
    stack = list(roots)[::-1]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, _SCOPE_NODES):
            stack.extend(reversed(_outer_inner(node)[0]))
        else:
            stack.extend(reversed(list(ast.iter_child_nodes(node))))


def _params(node: ast.AST) -> set[str]:
    if not isinstance(node, _FUNCTIONS):
        return set()
    args = node.args
    every = (*args.posonlyargs, *args.args, args.vararg, *args.kwonlyargs, args.kwarg)
    return {a.arg for a in every if a is not None}


def _comprehension_walrus(node: ast.AST) -> Iterator[str]:
    """Walrus targets inside a comprehension, which bind in the enclosing scope."""
    for inner in _outer_inner(node)[1]:
        for sub in _own_nodes([inner]):
            if isinstance(sub, ast.NamedExpr) and isinstance(sub.target, ast.Name):
                yield sub.target.id
            elif isinstance(sub, _COMPREHENSIONS):
                yield from _comprehension_walrus(sub)


def _make_scope(
    kind: Literal["module", "function", "class", "comprehension"],
    roots: list[ast.AST],
    parent: _Scope | None,
    params: Collection[str] = (),
) -> _Scope:
    scope = _Scope(kind, parent, set(params))
    walrus: set[str] = set()
    for node in _own_nodes(roots):
        if type(node) not in _BINDING_NODES:
            continue
        if isinstance(node, ast.Global):
            scope.declared_global.update(node.names)
        elif isinstance(node, ast.Nonlocal):
            scope.declared_nonlocal.update(node.names)
        elif isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            scope.bound.add(node.id)
        elif isinstance(node, ast.NamedExpr) and isinstance(node.target, ast.Name):
            walrus.add(node.target.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            scope.bound.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            scope.bound.update(_bound_name(a) for a in node.names if a.name != "*")
        elif isinstance(node, (ast.ExceptHandler, ast.MatchAs, ast.MatchStar)) and node.name:
            scope.bound.add(node.name)
        elif isinstance(node, ast.MatchMapping) and node.rest:
            scope.bound.add(node.rest)
        if isinstance(node, _COMPREHENSIONS) and kind != "comprehension":
            scope.bound.update(_comprehension_walrus(node))
    if kind == "comprehension":
        scope.bound -= walrus
    return scope


def _bound_name(alias: ast.alias) -> str:
    # ``import a.b.c`` binds ``a``; ``import a.b as c`` binds ``c``
    return alias.asname or alias.name.split(".")[0]


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

    def scope(self, scope: _Scope, roots: list[ast.AST], where: str) -> None:
        for node in _own_nodes(roots):
            if type(node) in _TOUCHING_NODES:
                self.node(node, scope, where)
            if isinstance(node, _SCOPE_NODES):
                inner = _outer_inner(node)[1]
                if isinstance(node, ast.ClassDef):
                    kind, label = "class", f" in class {node.name}"
                elif isinstance(node, _COMPREHENSIONS):
                    kind, label = "comprehension", where
                else:
                    kind = "function"
                    label = " in a lambda" if isinstance(node, ast.Lambda) else f" in {node.name}()"
                self.scope(_make_scope(kind, inner, scope, _params(node)), inner, label)

    def add(self, node: ast.AST, name: str, how: How, detail: str, maybe: bool = False) -> None:
        line, col = getattr(node, "lineno", 1), getattr(node, "col_offset", 0)
        self.found.append((line, col, Touch(name, how, detail, line, maybe)))

    def bind(self, node: ast.AST, name: str, scope: _Scope, how: How, detail: str) -> None:
        if scope.is_global(name):
            self.add(node, name, how, detail)

    def node(self, node: ast.AST, scope: _Scope, where: str) -> None:
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
        self, node: ast.AST, scope: _Scope, context: str, where: str, deleting: bool = False
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
        scope: _Scope,
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

    def augmented(self, node: ast.AugAssign, scope: _Scope, where: str) -> None:
        op = _OPS.get(type(node.op), "") + "="
        target = node.target
        if isinstance(target, ast.Name):
            if scope.is_global(target.id):
                self.add(target, target.id, "rebind", op + where)
                self.add(target, target.id, "mutate", op + where, maybe=True)
        elif isinstance(target, (ast.Attribute, ast.Subscript)):
            self.change(target, scope, "assignment", where, op=op)

    def imports(self, node: ast.Import | ast.ImportFrom, scope: _Scope, where: str) -> None:
        for alias in node.names:
            if alias.name == "*":
                module = "." * getattr(node, "level", 0) + (getattr(node, "module", "") or "")
                self.unseen.append(f"from {module} import * (line {node.lineno})")
                continue
            if alias.name.split(".")[0] == "__main__":
                self.unseen.append(f"import __main__ (line {node.lineno})")
            detail = "import" if isinstance(node, ast.Import) else "from ... import"
            self.bind(node, _bound_name(alias), scope, "rebind", detail + where)

    def call(self, node: ast.Call, scope: _Scope, where: str) -> None:
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


# -- undo --------------------------------------------------------------------------------

#: Bytes of deep copies an :class:`Undo` may take for one step, all names together.
DEFAULT_COPY_LIMIT_BYTES = 10_000_000
#: Objects a copied value may consist of; past this a deep copy would be slow.
DEFAULT_COPY_LIMIT_OBJECTS = 10_000

_BOOKKEEPING = re.compile(r"_{1,3}|_i{1,3}|_i?\d+|_exit_code")
# deepcopy keeps these by reference (or fails on them): never worth copying or walking
_SHARED = (
    type,
    types.ModuleType,
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodType,
    types.CodeType,
)
_IMMUTABLE = frozenset({str, bytes, int, float, complex, bool, type(None), range})
_CONTAINERS = frozenset({list, tuple, dict, set, frozenset, bytearray})
_MISSING: Any = object()


def ipython_bookkeeping(name: str) -> bool:
    """Names IPython itself rebinds around every cell (``_``, ``_i3``, ``_5``, ``_exit_code``).

    :class:`Undo` leaves them alone: putting an old ``_i`` back would lie about history.
    """
    return _BOOKKEEPING.fullmatch(name) is not None


@dataclass(frozen=True)
class UndoReport:
    """What :meth:`Undo.restore` did, name by name."""

    removed: tuple[str, ...] = ()  # created by the step, deleted again
    rebound: tuple[str, ...] = ()  # rebound by the step, old object back
    put_back: tuple[str, ...] = ()  # deleted by the step, bound again
    from_copy: tuple[str, ...] = ()  # changed in place, contents back from the copy
    not_restored: tuple[tuple[str, str], ...] = ()  # (name, why)
    analysed: bool = True  # False: the code was not Python, nothing was copied
    already_undone: bool = False

    @property
    def restored(self) -> tuple[str, ...]:
        return self.removed + self.rebound + self.put_back + self.from_copy

    def text(self) -> str:
        """One short paragraph for the user."""
        if self.already_undone:
            return "The last step was already undone; nothing changed."
        parts = []
        if self.removed:
            parts.append(f"removed {_names(self.removed)}, which it created")
        if self.rebound:
            held = "the object it" if len(self.rebound) == 1 else "the objects they"
            parts.append(f"gave {_names(self.rebound)} back {held} held before")
        if self.put_back:
            parts.append(f"put back {_names(self.put_back)}, which it deleted")
        if self.from_copy:
            parts.append(
                f"restored the contents of {_names(self.from_copy)} from a copy taken before it"
            )
        if parts:
            sentences = ["Undid the last step: " + "; ".join(parts) + "."]
        elif self.not_restored:
            sentences = ["Nothing of the last step could be undone."]
        else:
            sentences = ["The last step changed no names; there was nothing to restore."]
        if self.not_restored:
            shown = [f"{name} ({why})" for name, why in self.not_restored[:6]]
            if len(self.not_restored) > 6:
                shown.append(f"{len(self.not_restored) - 6} more")
            sentences.append("Not restored: " + "; ".join(shown) + ".")
        if not self.analysed:
            sentences.append(
                "Its code could not be analysed, so nothing it changed in place was copied."
            )
        sentences.append(
            "Changes made through other names or by functions the code called, and side "
            "effects outside the namespace (files, network, processes), are not undone."
        )
        return " ".join(sentences)


class Undo:
    """What one step may change in a namespace, kept so :meth:`restore` can put it back.

    Per step: ``undo = Undo.before(ns, code)`` just before it runs, ``undo.after(ns)`` when
    it ends, and later ``undo.restore(ns)``. :meth:`before` keeps a shallow copy of the
    whole namespace (references only: a C-level dict copy, ~µs per hundred names, and the
    only way to catch names bound by ``exec`` or ``globals()[...]`` that the code does not
    show), plus deep copies of the objects the code changes in place, when they are small.
    :meth:`after` drops every reference the step did not change, so afterwards only the
    objects the step replaced or deleted are kept alive (until the next step's undo
    replaces this one).
    """

    def __init__(
        self,
        before: dict[str, Any],
        copies: dict[str, tuple[Any, Any]],
        uncopied: dict[str, str],
        *,
        analysed: bool,
        skip: Callable[[str], bool],
    ) -> None:
        self._before = before
        self._copies = copies  # name -> (the object, its deep copy)
        self._uncopied = uncopied  # name -> why no copy was taken
        self._analysed = analysed
        self._skip = skip
        self._after: dict[str, Any] | None = None
        self._created: tuple[str, ...] = ()
        self._rebound: tuple[str, ...] = ()
        self._deleted: tuple[str, ...] = ()
        self._done = False

    @classmethod
    def before(
        cls,
        ns: Mapping[str, Any],
        code: str,
        *,
        copy_limit_bytes: int = DEFAULT_COPY_LIMIT_BYTES,
        copy_limit_objects: int = DEFAULT_COPY_LIMIT_OBJECTS,
        transform: Callable[[str], str] | None = None,
        found: Touches | None = None,
        skip: Callable[[str], bool] = ipython_bookkeeping,
    ) -> Undo:
        """Take what undoing ``code`` needs from ``ns``, just before ``code`` runs.

        ``found`` reuses a :func:`touches` result, the full one rather than
        :func:`protected_touches`' (else ``code`` is analysed with ``transform``).
        Objects the code changes in place are deep-copied while their estimated size
        (see :func:`_estimate_size`) fits in what is left of ``copy_limit_bytes`` and
        they have at most ``copy_limit_objects`` parts; copy errors are caught and
        named. Names ``skip`` accepts are never touched. For a shell step pass
        ``code=""``: nothing is copied, but the report still says what changed.
        """
        if found is None:
            found = touches(code, transform=transform)
        copies: dict[str, tuple[Any, Any]] = {}
        uncopied: dict[str, str] = {}
        room = copy_limit_bytes
        for name in found.names("mutate"):
            value = ns.get(name, _MISSING)
            if value is _MISSING or skip(name) or type(value) in _IMMUTABLE:
                continue
            changes = [t for t in found if t.name == name and t.how == "mutate"]
            label = f"{'may have changed' if all(t.maybe for t in changes) else 'changed'} "
            label += f"in place ({changes[0].detail})"
            if isinstance(value, _SHARED):
                # calling a module's or class's functions is not changing it; assigning is
                if not all(t.maybe for t in changes):
                    uncopied[name] = f"{label}; a {type(value).__name__} is not copied"
                continue
            try:
                size = _estimate_size(value, room, copy_limit_objects)
                if isinstance(size, str):
                    uncopied[name] = f"{label}; not copied: {size}"
                    continue
                copies[name] = (value, copy.deepcopy(value))
                room -= size
            except Exception as exc:  # any object may refuse to be sized or copied
                uncopied[name] = f"{label}; could not be copied ({type(exc).__name__})"
        return cls(dict(ns), copies, uncopied, analysed=found.parsed, skip=skip)

    def after(self, ns: Mapping[str, Any]) -> Undo:
        """Record what the step left in ``ns`` (once), so later changes are not undone."""
        if self._after is not None:
            return self
        created, rebound, deleted = _diff(self._before, ns, self._skip)
        self._after = {name: ns[name] for name in (*created, *rebound)}
        self._before = {name: self._before[name] for name in (*rebound, *deleted)}
        self._created, self._rebound, self._deleted = created, rebound, deleted
        return self

    def restore(self, ns: MutableMapping[str, Any]) -> UndoReport:
        """Put back what the step changed in ``ns``; once only.

        Names the step created are deleted, rebound names get their old object back,
        deleted names are bound again; objects it changed in place get their copied
        contents back (lists, dicts, sets and bytearrays in place, so other references
        see it; other objects by rebinding the name to the copy). A name changed again
        since :meth:`after` (by the user, or a later step) is left as it is and named.
        """
        if self._done:
            return UndoReport(already_undone=True)
        self._done = True
        if self._after is None:  # no after(): take ns as the step left it
            self.after(ns)
        after, before = self._after or {}, self._before
        removed: list[str] = []
        rebound: list[str] = []
        put_back: list[str] = []
        not_restored: dict[str, str] = {}
        for name in self._created:
            if ns.get(name, _MISSING) is after[name]:
                del ns[name]
                removed.append(name)
            else:
                not_restored[name] = "changed again after the step"
        for name in self._rebound:
            if ns.get(name, _MISSING) is after[name]:
                ns[name] = before[name]
                rebound.append(name)
            else:
                not_restored[name] = "changed again after the step"
        for name in self._deleted:
            if name not in ns:
                ns[name] = before[name]
                put_back.append(name)
            else:
                not_restored[name] = "bound again after the step"
        from_copy: list[str] = []
        for name, (original, saved) in self._copies.items():
            if ns.get(name, _MISSING) is original:
                ns[name] = _put_contents(original, saved)
                from_copy.append(name)
            elif name not in not_restored:
                not_restored[name] = "bound to another object now; its old contents not put back"
        for name, why in self._uncopied.items():
            not_restored.setdefault(name, why)
        self._copies.clear()  # the copies now live in the namespace
        return UndoReport(
            removed=tuple(removed),
            rebound=tuple(rebound),
            put_back=tuple(put_back),
            from_copy=tuple(from_copy),
            not_restored=tuple(not_restored.items()),
            analysed=self._analysed,
        )


def _diff(
    before: Mapping[str, Any], after: Mapping[str, Any], skip: Callable[[str], bool]
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """Names created, rebound (a different object) and deleted between two namespaces."""
    created = tuple(n for n in after if n not in before and not skip(n))
    rebound = tuple(n for n in after if n in before and after[n] is not before[n] and not skip(n))
    deleted = tuple(n for n in before if n not in after and not skip(n))
    return created, rebound, deleted


def _put_contents(original: Any, saved: Any) -> Any:
    """Give ``original`` its saved contents back, in place for the builtin containers."""
    cls = type(original)
    if cls is list or cls is bytearray:
        original[:] = saved
        return original
    if cls is dict or cls is set:
        original.clear()
        original.update(saved)
        return original
    return saved


def _estimate_size(value: Any, limit_bytes: int, limit_objects: int) -> int | str:
    """Bytes a deep copy of ``value`` would take, or why it is too big to copy.

    Walks what deepcopy would visit (``gc.get_referents``, skipping the classes, modules
    and functions it shares) and adds up each object's size: ``nbytes`` for array-likes
    (NumPy arrays and their views, pandas Series, tensors: what copying their buffer
    costs), else ``sys.getsizeof`` when the type's ``__sizeof__`` is C code, else the bare
    object (a ``__sizeof__`` written in Python, like pandas' ``memory_usage(deep=True)``,
    may be slow; what it owns is reached by the walk). Memory a C extension hides from
    all three is not counted. Stops as soon as a limit is passed, so it is bounded too.
    """
    total = 0
    count = 0
    seen: set[int] = set()
    stack = [value]
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, _SHARED):
            continue
        seen.add(id(obj))
        count += 1
        cls = type(obj)
        if cls in _IMMUTABLE:
            total += sys.getsizeof(obj)
            refs: list[Any] = []
        else:
            nbytes = None if cls in _CONTAINERS else getattr(obj, "nbytes", None)
            if isinstance(nbytes, int):
                total += object.__sizeof__(obj) + nbytes
                refs = []  # the buffer is counted; its parts are not objects
            else:
                python_sizeof = isinstance(getattr(cls, "__sizeof__", None), types.FunctionType)
                total += object.__sizeof__(obj) if python_sizeof else sys.getsizeof(obj, 64)
                if cls in _CONTAINERS and count + len(obj) > limit_objects:
                    return f"more than {limit_objects:,} objects"  # before listing them all
                refs = gc.get_referents(obj)
        if count + len(refs) > limit_objects:
            # a deep copy of this many objects would be slow (repeats count too: cheap check)
            return f"more than {limit_objects:,} objects"
        if total > limit_bytes:
            return f"over the {_bytes(limit_bytes)} left of the copy limit"
        stack.extend(refs)
    return total


def _bytes(n: int) -> str:
    for unit, size in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n} B"


def _names(names: tuple[str, ...], limit: int = 8) -> str:
    text = ", ".join(names[:limit])
    return text + (f" and {len(names) - limit} more" if len(names) > limit else "")
