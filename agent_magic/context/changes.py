"""What a step did to the namespace: :func:`step_start` before it, :func:`step_changes` after.

Here: :class:`StepStart` (the namespace held for one step), the fingerprints (container
lengths, array and Series shapes and dtypes, DataFrame shape, columns and dtypes) and
:func:`step_changes` (``new``, ``rebound``, ``changed``, ``deleted`` lines, bounded like
the summary).

Not here: describing values (:mod:`.describe`), fitting lines (:mod:`.summary`).
"""

from __future__ import annotations

import functools
from collections import deque
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from itertools import compress, repeat
from operator import is_not, ne
from typing import Any

from ._base import IPYTHON_NAMES, MISSING, cap
from .describe import new_walk
from .libraries import (
    describe_frame,
    describe_ndarray,
    describe_polars_frame,
    describe_series,
    library_handler,
)
from .summary import fit_lines, names_line

# -- fingerprints and changes ---------------------------------------------------------------


@functools.lru_cache(maxsize=512)
def _fingerprinter(cls: type) -> Callable[[Any], object] | None:
    """How to fingerprint in-place changes cheaply: lengths, shapes, columns, dtypes.

    Kept per type (the last 512): a type's library, found by its bases, does not change
    while the type exists, and every step fingerprints the whole namespace."""
    base: Any
    for base in (list, dict, set, bytearray, deque):
        if issubclass(cls, base):
            return base.__len__  # the base's: a subclass's __len__ is not run
    handler = library_handler(cls)
    if handler is describe_frame:
        return _frame_fingerprint
    if handler in (describe_series, describe_ndarray):
        return _array_fingerprint
    if handler is describe_polars_frame:
        return _polars_fingerprint
    return None


def _array_fingerprint(array: Any) -> object:
    return (array.shape, array.dtype)


def _polars_fingerprint(frame: Any) -> object:
    return (frame.shape, tuple(frame.columns[:100]))


def _frame_fingerprint(frame: Any) -> object:
    columns = frame.columns
    if len(columns) > 200:  # wide frames: the shape and the ends of the column list
        return (frame.shape, tuple(columns[:100]), tuple(columns[-100:]))
    return (frame.shape, tuple(columns), tuple(map(str, frame.dtypes)))


def _mark_moved(before: object, after: object) -> bool:
    """Whether a name's fingerprint moved (same object, changed in place)."""
    if before is after or (type(before) is int and type(after) is int and before == after):
        return False  # the usual case, a length, without a call
    try:  # column labels are compared; they can be any hashable, with any __eq__
        return not bool(before == after)
    except Exception:
        return False


def _render(
    ns: Mapping[str, object],
    changed: list[str],
    labels: Mapping[str, str],
    deleted: list[str],
    budget: int,
) -> str:
    """The lines for ``changed`` names (each with its label) and the ``deleted`` ones."""
    if not changed and not deleted:
        return ""
    footer = ""
    if deleted:
        footer = names_line("deleted", deleted, len(deleted), max(budget // 4, 40))
    room = budget - (len(footer) + 1 if footer else 0)
    lines: list[str] = []
    if changed:
        kept, left = fit_lines(ns, changed, room, new_walk(), prefix=labels.__getitem__)
        lines = [line.render() for line in kept]
        if left:
            used = sum(len(line) + 1 for line in lines)
            lead = f"... and {len(left)} more changed"
            lines.append(names_line(lead, left, len(left), room - used))
    if footer:
        lines.append(footer)
    return cap("\n".join(lines), budget)


@dataclass(frozen=True)
class StepStart:
    """The namespace just before one step, for :func:`step_changes` right after it.

    It holds the values themselves (a shallow copy of the namespace), so it lives for
    the length of one step only, as the step's undo does (it must not keep a deleted
    1 GB array alive past the step); what outlives the step are the fingerprints
    (:func:`fingerprints`), which hold none. Names are compared by identity in passes the
    interpreter runs in C, and only the few that moved are judged one by one: a step
    costs what it changed, not what the namespace holds.
    """

    names: dict[str, object]
    marks: Mapping[str, object]


def step_start(ns: Mapping[str, object], marks: Mapping[str, object] | None = None) -> StepStart:
    """The namespace before a step; ``marks``: its :func:`fingerprints` when the caller has
    them (those the previous step ended with), else taken now."""
    return StepStart(dict(ns), fingerprints(ns) if marks is None else marks)


def fingerprints(ns: Mapping[str, object]) -> dict[str, object]:
    """The cheap fingerprint (:func:`_fingerprinter`) of every name that has one: what
    identity cannot see, a change in place. Hidden and private names too (telling them
    apart costs more than their fingerprints)."""
    marks: dict[str, object] = {}
    for name, value in ns.items():
        try:
            make = _fingerprinter(type(value))
        except TypeError:  # a metaclass that makes its classes unhashable
            make = _fingerprinter.__wrapped__(type(value))
        if make is not None:
            try:  # noqa: SIM105
                marks[name] = make(value)
            except Exception:  # a fingerprint is an optimisation; never fail a step for it
                pass
    return marks


def step_changes(
    start: StepStart,
    ns: Mapping[str, object],
    *,
    budget: int = 2000,
    hidden: Collection[str] = (),
) -> tuple[str, dict[str, object]]:
    """What the step changed since ``start``, and the namespace's fingerprints now, for
    the next step's :func:`step_start`.

    Lines ``new x: ...`` (created), ``rebound x: ...`` (bound to a different object),
    ``changed x: ...`` (same object, different fingerprint) and ``deleted: a, b``, in
    namespace order; ``""`` when nothing changed. The fingerprint catches what is cheap
    to check: a list, dict or set's length, an array's or Series' shape and dtype, a
    DataFrame's shape, columns and dtypes (so ``df["x"] = ...`` is seen); a list item
    replaced or array values rewritten in place are not. Bounded to ``budget`` characters
    like the summary; secret-looking names show their type only; modules are included,
    so an ``import`` shows as a new name; names IPython hides (``hidden``, its
    ``user_ns_hidden``) are left out while bound to what it put there."""
    before, old_marks = start.names, start.marks
    new_marks = fingerprints(ns)
    names = list(ns)
    moved = set(compress(names, map(is_not, map(before.get, names, repeat(MISSING)), ns.values())))
    gone = before.keys() - ns.keys()
    try:
        marked = set(old_marks.keys() ^ new_marks.keys())
        if not old_marks.items() <= new_marks.items():
            keys = list(new_marks)
            marked.update(compress(keys, map(ne, map(old_marks.get, keys), new_marks.values())))
    except Exception:  # a fingerprint that cannot be compared: each is compared on its own
        marked = set(old_marks.keys() | new_marks.keys())
    candidates = (moved | marked) - gone
    changed: list[str] = []
    labels: dict[str, str] = {}
    lost: set[str] = set()  # visible before, hidden now (rebound to IPython's own object)
    for name in [n for n in names if n in candidates] if len(candidates) > 1 else candidates:
        value, was = ns[name], before.get(name, MISSING)
        shown = was is not MISSING and _visible(name, was, hidden)
        if not _visible(name, value, hidden):
            if shown:
                lost.add(name)
            continue
        if not shown:
            labels[name] = "new "
        elif was is not value:
            labels[name] = "rebound "
        elif _mark_moved(old_marks.get(name), new_marks.get(name)):
            labels[name] = "changed "
        else:
            continue
        changed.append(name)
    lost.update(name for name in gone if _visible(name, before[name], hidden))
    deleted = [name for name in before if name in lost] if lost else []
    return _render(ns, changed, labels, deleted, budget), new_marks


def _visible(name: object, value: object, hidden: Collection[str]) -> bool:
    """Whether :func:`visible_names` (modules included) shows ``name`` bound to ``value``."""
    if type(name) is not str or name[:1] == "_" or name in IPYTHON_NAMES:
        return False
    if name not in hidden:
        return True
    return isinstance(hidden, Mapping) and hidden.get(name, MISSING) is not value
