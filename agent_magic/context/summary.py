"""The variables block sent with each task: which names are shown, and fitting them in a budget.

Here: :func:`summarize_namespace`, :func:`visible_names` (the names a model may see: no
private, IPython-hidden or IPython-own names), and the fitting shared with
:mod:`.changes`: :func:`fit_lines` describes names in priority order (frames and arrays first)
and shrinks the largest descriptions first until the block fits, :func:`names_line`
names what was left out.

Not here: describing one value (:mod:`.describe`), what a step changed (:mod:`.changes`).
"""

from __future__ import annotations

import types
from collections.abc import Callable, Collection, Iterable, Mapping

from ..secrets import is_secret_name
from ._base import (
    DATA_FLOOR,
    FLOOR,
    IPYTHON_NAMES,
    MISSING,
    NO_VARIABLES,
    Walk,
    cap,
    type_name,
)
from .describe import describe_top, is_data_type, new_walk


def visible_names(
    ns: Mapping[str, object], hidden: Collection[str], *, include_modules: bool
) -> list[str]:
    """The names a model may see, in namespace order."""
    # IPython's user_ns_hidden maps names to the objects it put there; as in %who, a
    # name is hidden only while it is still bound to that object, so a user's own `In`
    # or `exit` shows.
    by_identity = hidden if isinstance(hidden, Mapping) else None
    names = hidden if isinstance(hidden, (Mapping, set, frozenset)) else frozenset(hidden)
    module = types.ModuleType
    found = []
    # Only names are collected: a (name, value) pair per variable would be 10,000 live
    # tuples, enough to set off a full garbage collection of the user's session.
    for name, value in ns.items():
        if type(name) is not str or name[:1] == "_" or name in IPYTHON_NAMES:
            continue
        if name in names and (by_identity is None or by_identity.get(name, MISSING) is value):
            continue
        if not include_modules and issubclass(type(value), module):
            continue
        found.append(name)
    return found


# -- fitting lines into a budget ---------------------------------------------------------


class _Line:
    """One variable's line while a block is being fitted (mutable scratch, not a result)."""

    __slots__ = ("name", "value", "prefix", "floor", "text")

    def __init__(self, name: str, value: object, prefix: str, is_data: bool) -> None:
        self.name = name
        self.value = value
        self.prefix = prefix
        # The shortest this description is shrunk to before variables are left out
        # instead: a frame or array keeps its shape and columns, anything else a type.
        self.floor = DATA_FLOOR if is_data else FLOOR
        self.text = ""

    @property
    def head(self) -> int:
        return len(self.prefix) + len(self.name) + 3  # ": " and the newline

    @property
    def least(self) -> int:
        return self.head + min(len(self.text), self.floor)

    def describe(self, limit: int, walk: Walk) -> None:
        if is_secret_name(self.name):
            self.text = cap(f"{type_name(type(self.value))} (value hidden)", limit)
            return
        text = describe_top(self.value, limit, walk)
        # Continuation lines are indented under the name; if that pushes a frame over the
        # limit, describe it again with less room rather than cut its table.
        indented = text.replace("\n", "\n    ")
        if len(indented) > limit:
            text = describe_top(self.value, limit - (len(indented) - len(text)), walk)
            indented = text.replace("\n", "\n    ")
        self.text = cap(indented, limit)

    def render(self) -> str:
        return f"{self.prefix}{self.name}: {self.text}"


def _prioritised(ns: Mapping[str, object], names: list[str]) -> tuple[list[str], int]:
    """``names`` with frames and arrays first, then the rest, each in namespace order;
    and how many of them are frames and arrays."""
    kinds: dict[type, bool] = {}
    data: list[str] = []
    rest: list[str] = []
    for name in names:
        cls = type(ns[name])
        is_data = kinds.get(cls)
        if is_data is None:
            is_data = kinds[cls] = is_data_type(cls)
        (data if is_data else rest).append(name)
    return data + rest, len(data)


def fit_lines(
    ns: Mapping[str, object],
    names: list[str],
    budget: int,
    walk: Walk,
    prefix: Callable[[str], str] = lambda name: "",
) -> tuple[list[_Line], list[str]]:
    """Describe ``names`` and shrink the descriptions to fit ``budget`` characters.

    Returns the lines kept, in namespace order, and the names left out, most important
    first. Describing goes in priority order and stops as soon as even the shrunk lines
    could not all fit, which is what keeps a 10,000-variable namespace fast: the rest are
    only counted and named.
    """
    candidates, data_count = _prioritised(ns, names)
    # Generous at first: shrinking a few lines costs less than describing everything small.
    item_limit = max(FLOOR, min(budget, 1000))
    kept: list[_Line] = []
    least = 0
    described = len(candidates)
    for position, name in enumerate(candidates):
        line = _Line(name, ns[name], prefix(name), position < data_count)
        line.describe(item_limit, walk)
        kept.append(line)
        least += line.least
        if least > budget:
            described = position + 1
            break
    left = candidates[described:]
    # Room for "... and N more: a, b, ..." once anything is left out.
    reserve = min(max(budget // 8, 40), 400)
    while kept and least > budget - (reserve if left else 0):
        line = kept.pop()
        left.insert(0, line.name)
        least -= line.least
    room = budget - (reserve if left else 0) - sum(line.head for line in kept)
    if kept and sum(len(line.text) for line in kept) > room:
        # Shrink the largest first: the largest level L such that cutting every
        # description to max(L, its floor) fits; those over it are described again.
        level = _water_level(kept, room)
        for line in kept:
            target = max(level, line.floor)
            if len(line.text) > target:
                line.describe(target, walk)
    by_name = {line.name: line for line in kept}
    return [by_name[name] for name in names if name in by_name], left


def _water_level(lines: list[_Line], room: int) -> int:
    """Largest L with sum(min(len, max(L, floor))) <= room (L = FLOOR if none fits)."""

    def total(level: int) -> int:
        return sum(min(len(line.text), max(level, line.floor)) for line in lines)

    low, high = FLOOR, max(len(line.text) for line in lines)
    while low < high:
        middle = (low + high + 1) // 2
        if total(middle) <= room:
            low = middle
        else:
            high = middle - 1
    return low


def names_line(lead: str, names: Iterable[str], count: int, room: int) -> str:
    """``lead`` + as many names as fit in ``room`` characters, then ``...``."""
    text = lead
    shown = 0
    for name in names:
        addition = (": " if shown == 0 else ", ") + name
        if len(text) + len(addition) + 5 > room:
            break
        text += addition
        shown += 1
    if shown < count:
        text += ", ..." if shown else ""
    return cap(text, room)


# -- summarize_namespace ------------------------------------------------------------------


def summarize_namespace(
    ns: Mapping[str, object],
    *,
    budget: int = 4000,
    hidden: Collection[str] = (),
    include_modules: bool = False,
) -> str:
    """The variables block for the model: ``name: description``, one variable per line.

    Skips names starting with ``_``, those in ``hidden`` (IPython's ``user_ns_hidden``: hidden
    while still bound to the object IPython put there), IPython's ``In``, ``Out``, ``exit``,
    ``quit``, ``get_ipython``, and modules unless ``include_modules``. Names that look like
    secrets (:func:`agent_magic.secrets.is_secret_name`: a word key, token or auth, or secret,
    password, credential, apikey anywhere) show their type only. Frames, series and arrays are
    described first, then the rest in namespace order; lines appear in namespace order. When not
    everything fits in ``budget`` characters the largest descriptions are shrunk first (frames
    and arrays no further than their shape and columns), and what is still left out is listed as
    ``... and N more: a, b, c``. The result is never longer than ``budget``; a frame's rows are
    indented continuation lines.
    """
    names = visible_names(ns, hidden, include_modules=include_modules)
    if not names:
        return cap(NO_VARIABLES, budget)
    kept, left = fit_lines(ns, names, budget, new_walk())
    lines = [line.render() for line in kept]
    if left:
        used = sum(len(line) + 1 for line in lines)
        lines.append(names_line(f"... and {len(left)} more", left, len(left), budget - used))
    return cap("\n".join(lines), budget)
