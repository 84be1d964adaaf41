"""Describing one value: :func:`describe` and the dispatcher that picks each value's handler.

Here: :func:`describe` (the public entry), :func:`_describe_top` (a top-level description
that never raises), :func:`_dispatch` (exact builtin types first, then library types,
trusted reprs, enums, callables, modules, builtin subclasses, exceptions, other objects),
:func:`_new_walk` (per-call state bound to that dispatcher) and :func:`_is_data` (frames
and arrays, which a summary lists first).

Not here: the handlers themselves (:mod:`.values`, :mod:`.objects`, :mod:`.libraries`).
"""

from __future__ import annotations

import functools
import types
from collections import deque
from enum import Enum

from ._base import (
    _FUNCTION_TYPES,
    _MAX_DEPTH,
    _RENDERS,
    _cap,
    _describe,
    _Handler,
    _module_name,
    _safe_repr,
    _trusted_repr,
    _type_name,
    _Walk,
)
from .libraries import _DATA_HANDLERS, _library_handler
from .objects import (
    _describe_callable,
    _describe_enum,
    _describe_exception,
    _describe_object,
    _describe_partial,
)
from .values import (
    _describe_bytes,
    _describe_dict,
    _describe_float,
    _describe_int,
    _describe_scalar,
    _describe_sequence,
    _describe_set,
    _describe_str,
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
    return _describe_top(value, max(limit, 1), _new_walk())


def _new_walk(renders: int = _RENDERS) -> _Walk:
    """Fresh per-call state whose nested values are described by :func:`_dispatch`."""
    return _Walk(_dispatch, renders)


def _describe_top(value: object, limit: int, walk: _Walk) -> str:
    try:
        text = _describe(value, limit, _MAX_DEPTH, walk)
    except Exception as exc:  # a description must never take the summary down with it
        text = f"<{_type_name(type(value))}: not described ({type(exc).__name__})>"
    return _cap(text, limit)


def _dispatch(value: object, limit: int, depth: int, walk: _Walk) -> str:
    """Describe ``value``; ``depth`` < ``_MAX_DEPTH`` means it sits inside something else."""
    cls = type(value)
    handler = _EXACT.get(cls)
    if handler is not None:
        return handler(value, limit, depth, walk)
    handler = _library_handler(cls)
    if handler is not None:
        return handler(value, limit, depth, walk)
    if _trusted_repr(cls):
        return _safe_repr(value, limit)
    if issubclass(cls, Enum):
        return _describe_enum(value, cls)
    if issubclass(cls, _FUNCTION_TYPES) or issubclass(cls, type):
        return _describe_callable(value, limit, depth, walk)
    if issubclass(cls, types.ModuleType):
        return f"module {_module_name(value)}"
    for base, base_handler in _BASES:
        if issubclass(cls, base):
            return base_handler(value, limit, depth, walk)
    if issubclass(cls, BaseException):
        return _describe_exception(value, limit, depth, walk)
    return _describe_object(value, limit, depth, walk)


_EXACT: dict[type, _Handler] = {
    type(None): _describe_scalar,
    bool: _describe_scalar,
    int: _describe_int,
    float: _describe_float,
    complex: _describe_scalar,
    str: _describe_str,
    bytes: _describe_bytes,
    bytearray: _describe_bytes,
    list: _describe_sequence,
    tuple: _describe_sequence,
    deque: _describe_sequence,
    dict: _describe_dict,
    set: _describe_set,
    frozenset: _describe_set,
    range: _describe_scalar,
    type(...): _describe_scalar,
    type(NotImplemented): _describe_scalar,
    functools.partial: _describe_partial,
}
# Subclasses of builtins, read through the base type (int before its subclass bool).
_BASES: tuple[tuple[type | tuple[type, ...], _Handler], ...] = (
    (str, _describe_str),
    (int, _describe_int),
    (float, _describe_float),
    ((bytes, bytearray), _describe_bytes),
    (dict, _describe_dict),
    ((list, tuple, deque), _describe_sequence),
    ((set, frozenset), _describe_set),
)


def _is_data(cls: type) -> bool:
    """Frames, series and arrays: what a data-analysis model most needs to know about."""
    return cls not in _EXACT and _library_handler(cls) in _DATA_HANDLERS
