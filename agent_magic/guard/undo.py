"""Putting a step's names back afterwards: :class:`Undo` and its :class:`UndoReport`.

:meth:`Undo.before` keeps, before a step runs, what it needs to put the namespace back:
the old bindings by reference, and bounded deep copies of the objects the code changes
in place (:func:`_estimate_size` bounds them). :meth:`Undo.restore` puts them back and
returns an :class:`UndoReport`. Not here: which names a step touches (:mod:`.touches`),
the ``%agent undo`` command (the magic), and anything outside the namespace: files
written, requests sent, processes started by a step are never undone.

:class:`Undo` compares the namespace before and after the step, so names bound or
deleted in ways the analysis cannot see (``exec``, ``globals()[name] = ...``, magics,
functions with ``global``) are restored too. In-place changes it cannot see are not
copied beforehand, so they are not undone.
"""

from __future__ import annotations

import copy
import gc
import re
import sys
import types
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass
from itertools import compress, filterfalse, repeat
from operator import is_not
from typing import Any

from .model import Touches
from .touches import touches

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
MISSING: Any = object()


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
            value = ns.get(name, MISSING)
            if value is MISSING or skip(name) or type(value) in _IMMUTABLE:
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
            if ns.get(name, MISSING) is after[name]:
                del ns[name]
                removed.append(name)
            else:
                not_restored[name] = "changed again after the step"
        for name in self._rebound:
            if ns.get(name, MISSING) is after[name]:
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
            if ns.get(name, MISSING) is original:
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
    """Names created, rebound (a different object) and deleted between two namespaces.

    Every step, over every name: the names bound to another object than before (or to
    none before) and the names gone are found in passes the interpreter runs in C, and
    only those few are looked at one by one."""
    names = list(after)
    moved = list(
        compress(names, map(is_not, map(before.get, names, repeat(MISSING)), after.values()))
    )
    created = tuple(n for n in moved if n not in before and not skip(n))
    rebound = tuple(n for n in moved if n in before and not skip(n))
    deleted = tuple(n for n in filterfalse(after.__contains__, before) if not skip(n))
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
            # Only where the class has it: getattr on the object itself runs its
            # __getattr__, which may do anything (a traitlets Config adds the key).
            has = cls not in _CONTAINERS and getattr(cls, "nbytes", None) is not None
            nbytes = getattr(obj, "nbytes", None) if has else None
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
