"""Python's scoping rules, as far as :mod:`.touches` needs them: which names a scope binds.

:class:`Scope` says whether a name used in a function, class body or comprehension means
the module's (the namespace's) binding; :func:`make_scope` builds one from the nodes a
scope runs; :func:`own_nodes` walks a scope without entering the scopes nested in it;
the node-type tables say which nodes can bind or touch a name. Not here: recording
touches (:mod:`.touches`), anything about IPython or magics.
"""

from __future__ import annotations

import ast
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Literal

_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)
COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)
SCOPE_NODES = (*_FUNCTIONS, ast.ClassDef, *COMPREHENSIONS)
# the node types that can bind a name in their scope, or touch one (most nodes are
# neither: skipping them by type keeps the walk near the cost of ast.parse)
_BINDING_NODES = frozenset(
    {
        ast.Global, ast.Nonlocal, ast.Name, ast.NamedExpr, ast.FunctionDef,
        ast.AsyncFunctionDef, ast.ClassDef, ast.Import, ast.ImportFrom, ast.ExceptHandler,
        ast.MatchAs, ast.MatchStar, ast.MatchMapping, *COMPREHENSIONS,
    }
)  # fmt: skip
TOUCHING_NODES = frozenset(
    {
        ast.Assign, ast.AnnAssign, ast.AugAssign, ast.Delete, ast.For, ast.AsyncFor,
        ast.With, ast.AsyncWith, ast.Import, ast.ImportFrom, ast.FunctionDef,
        ast.AsyncFunctionDef, ast.ClassDef, ast.NamedExpr, ast.ExceptHandler, ast.MatchAs,
        ast.MatchStar, ast.MatchMapping, ast.Call,
        *((ast.TypeAlias,) if hasattr(ast, "TypeAlias") else ()),
    }
)  # fmt: skip


@dataclass
class Scope:
    """Which names a scope binds itself, so a use can be resolved to the module or not."""

    kind: Literal["module", "function", "class", "comprehension"]
    parent: Scope | None = None
    bound: set[str] = field(default_factory=set)
    declared_global: set[str] = field(default_factory=set)
    declared_nonlocal: set[str] = field(default_factory=set)

    def is_global(self, name: str) -> bool:
        """Whether ``name`` used here means the module's (the namespace's) binding."""
        scope: Scope | None = self
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

    def binding_scope(self) -> Scope:
        """Where a walrus binds: the nearest scope that is not a comprehension."""
        scope = self
        while scope.kind == "comprehension" and scope.parent is not None:
            scope = scope.parent
        return scope


def outer_inner(node: ast.AST) -> tuple[list[ast.AST], list[ast.AST]]:
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
    if isinstance(node, COMPREHENSIONS):
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


# Nodes with no children that never bind or touch a name (``Load``, ``Add``, ``Eq``...):
# not walked into, which is about a third of a step's nodes.
_LEAVES = (ast.expr_context, ast.operator, ast.unaryop, ast.cmpop, ast.boolop)


def own_nodes(roots: Iterable[ast.AST]) -> Iterator[ast.AST]:
    """Nodes run in the current scope, pre-order; nested scopes are yielded, not entered
    (nor the leaves in :data:`_LEAVES`)."""
    stack = list(roots)[::-1]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, SCOPE_NODES):
            stack.extend(reversed(outer_inner(node)[0]))
        else:
            stack.extend(reversed(_children(node)))


def _children(node: ast.AST) -> list[ast.AST]:
    """``ast.iter_child_nodes(node)`` as a list, without the leaves (one loop, no
    generators: the walk visits every node of a step)."""
    children: list[ast.AST] = []
    for name in node._fields:
        value = getattr(node, name, None)
        if isinstance(value, ast.AST):
            if not isinstance(value, _LEAVES):
                children.append(value)
        elif isinstance(value, list):
            children += [v for v in value if isinstance(v, ast.AST) and not isinstance(v, _LEAVES)]
    return children


def param_names(node: ast.AST) -> set[str]:
    """The names a function's or lambda's parameters bind; empty for any other node."""
    if not isinstance(node, _FUNCTIONS):
        return set()
    args = node.args
    every = (*args.posonlyargs, *args.args, args.vararg, *args.kwonlyargs, args.kwarg)
    return {a.arg for a in every if a is not None}


def _comprehension_walrus(node: ast.AST) -> Iterator[str]:
    """Walrus targets inside a comprehension, which bind in the enclosing scope."""
    for inner in outer_inner(node)[1]:
        for sub in own_nodes([inner]):
            if isinstance(sub, ast.NamedExpr) and isinstance(sub.target, ast.Name):
                yield sub.target.id
            elif isinstance(sub, COMPREHENSIONS):
                yield from _comprehension_walrus(sub)


def make_scope(
    kind: Literal["module", "function", "class", "comprehension"],
    roots: list[ast.AST],
    parent: Scope | None,
    params: Collection[str] = (),
) -> Scope:
    scope = Scope(kind, parent, set(params))
    walrus: set[str] = set()
    for node in own_nodes(roots):
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
            scope.bound.update(bound_name(a) for a in node.names if a.name != "*")
        elif isinstance(node, (ast.ExceptHandler, ast.MatchAs, ast.MatchStar)) and node.name:
            scope.bound.add(node.name)
        elif isinstance(node, ast.MatchMapping) and node.rest:
            scope.bound.add(node.rest)
        if isinstance(node, COMPREHENSIONS) and kind != "comprehension":
            scope.bound.update(_comprehension_walrus(node))
    if kind == "comprehension":
        scope.bound -= walrus
    return scope


def bound_name(alias: ast.alias) -> str:
    # ``import a.b.c`` binds ``a``; ``import a.b as c`` binds ``c``
    return alias.asname or alias.name.split(".")[0]
