"""Describing one value: :func:`describe` and the dispatcher that picks each value's handler.

Here: :func:`describe` (the public entry), :func:`describe_top` (a top-level description
that never raises), :func:`_dispatch` (exact builtin types first, then library types,
trusted reprs, enums, callables, modules, builtin subclasses, exceptions, other objects),
:func:`new_walk` (per-call state bound to that dispatcher) and :func:`is_data_type` (frames
and arrays, which a summary lists first).

Not here: the handlers themselves (:mod:`.values`, :mod:`.objects`, :mod:`.libraries`).
"""

from __future__ import annotations

import functools
import types
from collections import deque
from enum import Enum

from ._base import (
    FUNCTION_TYPES,
    MAX_DEPTH,
    RENDERS,
    Handler,
    Walk,
    cap,
    describe_value,
    module_name,
    safe_repr,
    trusted_repr,
    type_name,
)
from .libraries import DATA_HANDLERS, library_handler
from .objects import (
    describe_callable,
    describe_enum,
    describe_exception,
    describe_object,
    describe_partial,
)
from .values import (
    describe_bytes,
    describe_dict,
    describe_float,
    describe_int,
    describe_scalar,
    describe_sequence,
    describe_set,
    describe_str,
)


def describe(value: object, *, limit: int = 300) -> str:
    """A bounded description of ``value``: its type and what matters about it.

    - pandas DataFrame: shape, columns with dtypes, the first rows (``to_string`` of a
      3-row slice, 5 rows from ``limit=1500`` up, never the whole frame); Series and
      Index: length, dtype, name, first values.
    - polars DataFrame/Series likewise when polars is imported; LazyFrames are not run.
    - numpy arrays (and torch/jax/cupy/dask/xarray... array-likes): shape and dtype; the
      values only when there are at most 20.
    - list/tuple/set/frozenset/dict/deque: length and the first few items, each described
      the same way with a smaller limit, up to three levels deep; cycles show as ``[...]``.
    - str/bytes: length and a truncated preview; credential-looking strings are hidden.
    - None/bool/int/float/complex: their repr (huge ints by digit count).
    - functions, methods and classes: ``name(signature)`` and the first docstring line.
    - modules: ``module name``.
    - anything else: see the module docstring; a user-defined ``__repr__`` is not called.

    Never raises (a failure is described) and never returns more than ``limit``
    characters; frames may span several lines.
    """
    return describe_top(value, max(limit, 1), new_walk())


def new_walk(renders: int = RENDERS) -> Walk:
    """Fresh per-call state whose nested values are described by :func:`_dispatch`."""
    return Walk(_dispatch, renders)


def describe_top(value: object, limit: int, walk: Walk) -> str:
    try:
        text = describe_value(value, limit, MAX_DEPTH, walk)
    except Exception as exc:  # a description must never take the summary down with it
        text = f"<{type_name(type(value))}: not described ({type(exc).__name__})>"
    return cap(text, limit)


def _dispatch(value: object, limit: int, depth: int, walk: Walk) -> str:
    """Describe ``value``; ``depth`` < ``MAX_DEPTH`` means it sits inside something else."""
    cls = type(value)
    handler = _EXACT.get(cls)
    if handler is not None:
        return handler(value, limit, depth, walk)
    handler = library_handler(cls)
    if handler is not None:
        return handler(value, limit, depth, walk)
    if trusted_repr(cls):
        return safe_repr(value, limit)
    if issubclass(cls, Enum):
        return describe_enum(value, cls)
    if issubclass(cls, FUNCTION_TYPES) or issubclass(cls, type):
        return describe_callable(value, limit, depth, walk)
    if issubclass(cls, types.ModuleType):
        return f"module {module_name(value)}"
    for base, base_handler in _BASES:
        if issubclass(cls, base):
            return base_handler(value, limit, depth, walk)
    if issubclass(cls, BaseException):
        return describe_exception(value, limit, depth, walk)
    return describe_object(value, limit, depth, walk)


_EXACT: dict[type, Handler] = {
    type(None): describe_scalar,
    bool: describe_scalar,
    int: describe_int,
    float: describe_float,
    complex: describe_scalar,
    str: describe_str,
    bytes: describe_bytes,
    bytearray: describe_bytes,
    list: describe_sequence,
    tuple: describe_sequence,
    deque: describe_sequence,
    dict: describe_dict,
    set: describe_set,
    frozenset: describe_set,
    range: describe_scalar,
    type(...): describe_scalar,
    type(NotImplemented): describe_scalar,
    functools.partial: describe_partial,
}
# Subclasses of builtins, read through the base type (int before its subclass bool).
_BASES: tuple[tuple[type | tuple[type, ...], Handler], ...] = (
    (str, describe_str),
    (int, describe_int),
    (float, describe_float),
    ((bytes, bytearray), describe_bytes),
    (dict, describe_dict),
    ((list, tuple, deque), describe_sequence),
    ((set, frozenset), describe_set),
)


def is_data_type(cls: type) -> bool:
    """Frames, series and arrays: what a data-analysis model most needs to know about."""
    return cls not in _EXACT and library_handler(cls) in DATA_HANDLERS
