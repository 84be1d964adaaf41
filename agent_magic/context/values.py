"""Describing builtin values: scalars, strings, bytes and containers.

Here: the handlers for ``None``/``bool``/``int``/``float``/``complex``, ``str`` (credential-
looking strings hidden), ``bytes``, lists, tuples (and namedtuples), deques, dicts and sets,
and the two shared renderers :func:`container` (``list len=N: [a, b, ...]``) and
:func:`with_fields` (``Title(a=..., b=...)``) used for objects and frames too. Builtin
containers and their subclasses are read through the base type's C methods, so an
overridden ``__len__`` or ``__iter__`` never runs.

Not here: functions, classes and other objects (:mod:`.objects`), numpy/pandas/polars
(:mod:`.libraries`), choosing the handler for a type (:mod:`.describe`).
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from collections.abc import Iterable
from typing import Any

from ..secrets import is_secret_name, looks_like_credential
from ._base import (
    MAX_DEPTH,
    NESTED_ITEMS,
    PREVIEW_ITEMS,
    SMALL_INT_BITS,
    STR_PREVIEW,
    Walk,
    cap,
    class_attribute,
    describe_value,
    type_name,
)


def describe_scalar(value: Any, limit: int, depth: int, walk: Walk) -> str:
    return cap(repr(value), limit)


def describe_int(value: Any, limit: int, depth: int, walk: Walk) -> str:
    number = int.__int__(value)  # the base's: no __int__ override
    prefix = "" if type(value) in (int, bool) else f"{type_name(type(value))} "
    bits = number.bit_length()
    if bits > SMALL_INT_BITS:
        return f"{prefix}int with ~{int(bits * math.log10(2)) + 1} digits"
    text = int.__repr__(number)
    if len(prefix) + len(text) > limit:
        return f"{prefix}int with {len(text.lstrip('-'))} digits"
    return prefix + text


def describe_float(value: Any, limit: int, depth: int, walk: Walk) -> str:
    text = float.__repr__(value)
    return cap(text if type(value) is float else f"{type_name(type(value))}({text})", limit)


def describe_str(value: Any, limit: int, depth: int, walk: Walk) -> str:
    length = str.__len__(value)
    head = str.__getitem__(value, slice(0, STR_PREVIEW))
    kind = "str" if type(value) is str else type_name(type(value))
    if looks_like_credential(head):
        return f"<{kind} len={length}, looks like a credential: hidden>"
    nested = depth < MAX_DEPTH
    label = "" if nested else f"{kind} len={length}: "
    text = repr(head)
    if length <= STR_PREVIEW and len(label) + len(text) <= limit:
        return label + text
    # Cut the repr rather than the string, so escapes count against the limit.
    tail = f"... (len {length})" if nested else "..."
    room = limit - len(label) - len(tail)
    if room < 4:
        return f"<{kind} len={length}>"
    return label + text[:room] + tail


def describe_bytes(value: Any, limit: int, depth: int, walk: Walk) -> str:
    base = bytes if issubclass(type(value), bytes) else bytearray
    length = base.__len__(value)
    head = bytes(base.__getitem__(value, slice(0, 64)))
    preview = repr(head) + ("..." if length > 64 else "")
    return cap(f"{type_name(type(value))} len={length}: {preview}", limit)


# -- containers ------------------------------------------------------------------------


def describe_sequence(value: Any, limit: int, depth: int, walk: Walk) -> str:
    cls = type(value)
    base: Any  # the builtin whose C methods are used, so overrides never run
    if issubclass(cls, tuple):
        base = tuple
        brackets = "()"
        fields = class_attribute(cls, "_fields")
        if type(fields) is tuple and all(type(f) is str for f in fields):
            return _describe_namedtuple(value, fields, limit, depth, walk)
    elif issubclass(cls, deque):
        base, brackets = deque, "[]"
    else:
        base, brackets = list, "[]"
    length = base.__len__(value)
    count = NESTED_ITEMS if depth < MAX_DEPTH else PREVIEW_ITEMS
    items = (base.__getitem__(value, i) for i in range(min(count, length)))
    return container(value, cls, base, length, items, brackets, limit, depth, walk)


def describe_set(value: Any, limit: int, depth: int, walk: Walk) -> str:
    cls = type(value)
    base = frozenset if issubclass(cls, frozenset) else set
    length = base.__len__(value)
    count = NESTED_ITEMS if depth < MAX_DEPTH else PREVIEW_ITEMS
    items = itertools.islice(base.__iter__(value), count)
    return container(value, cls, base, length, items, "{}", limit, depth, walk)


def describe_dict(value: Any, limit: int, depth: int, walk: Walk) -> str:
    cls = type(value)
    length = dict.__len__(value)
    count = NESTED_ITEMS if depth < MAX_DEPTH else PREVIEW_ITEMS
    # dict.items via the base class: no __iter__ override runs and no key is hashed
    pairs = itertools.islice(iter(dict.items(value)), count)
    return container(value, cls, dict, length, pairs, "{}", limit, depth, walk, pairs=True)


def container(
    value: object,
    cls: type,
    base: type,
    length: int,
    items: Iterable[Any],
    brackets: str,
    limit: int,
    depth: int,
    walk: Walk,
    *,
    pairs: bool = False,
    note: bool = True,
) -> str:
    """``list len=N: [a, b, ...]`` at the top; ``[a, b, ...] (len N)`` inside another value."""
    name = type_name(cls)
    open_, close = brackets[0], brackets[1]
    nested = depth < MAX_DEPTH
    if not nested:
        label = f"{name} len={length}: "
    elif cls is base:
        label = ""
    else:
        label, open_, close = name, f"({open_}", f"{close})"
    size_note = f" (len {length})" if nested and note else ""
    if length == 0:
        if issubclass(base, (set, frozenset)):
            return f"{label}{base.__name__}()" if nested else f"{label.rstrip(': ')}"
        return f"{label}{open_}{close}"
    if id(value) in walk.path:  # a cycle: shown as Python shows it
        return f"{label}{open_}...{close}"
    if depth <= 0:
        return f"{label}{open_}...{close}{size_note}"
    room = limit - len(label) - len(open_) - len(close) - len(size_note) - 5
    preview = list(items)  # the callers bound it: a handful of items
    # share the room among the first few items; one or two items get more of it each
    per_item = max(12, min(80, room // max(1, min(len(preview), 3))))
    shown: list[str] = []
    used = 0
    walk.path.add(id(value))
    try:
        for item in preview:
            if pairs:
                key, val = item
                key_text = describe_value(key, per_item // 2, depth - 1, walk)
                if type(key) is str and is_secret_name(key):
                    val_text = "(value hidden)"
                else:
                    val_text = describe_value(val, per_item, depth - 1, walk)
                text = f"{key_text}: {val_text}"
            else:
                text = describe_value(item, per_item, depth - 1, walk)
            if shown and used + len(text) + 2 > room:
                break
            shown.append(cap(text, max(room - used, 8)))
            used += len(shown[-1]) + 2
    finally:
        walk.path.discard(id(value))
    more = length > len(shown)
    if base is tuple and length == 1:
        body = shown[0] + ","
    else:
        body = ", ".join(shown) + (", ..." if more else "")
    return f"{label}{open_}{body}{close}{size_note if more else ''}"


def _describe_namedtuple(
    value: Any, fields: tuple[str, ...], limit: int, depth: int, walk: Walk
) -> str:
    values = [tuple.__getitem__(value, i) for i in range(min(len(fields), tuple.__len__(value)))]
    return with_fields(
        type_name(type(value)),
        list(zip(fields, values, strict=False)),
        len(fields),
        "(",
        ")",
        limit,
        depth,
        walk,
    )


def with_fields(
    title: str,
    pairs: list[tuple[str, object]],
    total: int,
    open_: str,
    close: str,
    limit: int,
    depth: int,
    walk: Walk,
) -> str:
    """``title(a=..., b=...)``: fields described one level down, as many as fit."""
    if depth <= 0 or not pairs:
        return f"{title}{open_}{'...' if total else ''}{close}"
    budget = limit - len(title) - len(open_) - len(close) - 5
    per_item = max(12, min(80, budget // min(len(pairs), 3)))
    shown: list[str] = []
    used = 0
    for name, val in pairs:
        if is_secret_name(name):
            text = f"{name}=(value hidden)"
        else:
            text = f"{name}={describe_value(val, per_item, depth - 1, walk)}"
        if shown and used + len(text) + 2 > budget:
            break
        shown.append(cap(text, max(budget - used, 8)))
        used += len(shown[-1]) + 2
    body = ", ".join(shown) + (", ..." if total > len(shown) else "")
    return f"{title}{open_}{body}{close}"
