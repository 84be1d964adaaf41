"""Describing numpy, pandas and polars values and other array libraries' arrays.

Here: :func:`library_handler` (which handler a library type gets, found through
``sys.modules`` only, so nothing is imported), arrays (shape and dtype; values only when
there are at most 20), DataFrames (shape, columns with dtypes, a rendered head of a few
rows with object cells and secret-named columns replaced first), Series and Index,
polars frames and series (LazyFrames are never run), and other array-likes (torch, jax,
dask...: shape and dtype, their values never read).

Not here: builtin values (:mod:`.values`), other objects (:mod:`.objects`), change
fingerprints of frames and arrays (:mod:`.changes`).
"""

from __future__ import annotations

import sys
from typing import Any

from ..secrets import is_secret_name
from ._base import (
    ARRAY_LIBRARIES,
    ARRAY_VALUES,
    FRAME_COLUMNS,
    HEAD_COLS,
    HEAD_ROWS,
    MAX_DEPTH,
    PREVIEW_ITEMS,
    SCALARS,
    Handler,
    Walk,
    cap,
    class_attribute,
    describe_value,
    first_line,
    safe_repr,
    type_module,
    type_name,
)
from .values import container

# -- numpy, pandas, polars, other array libraries --------------------------------------


def library_handler(cls: type) -> Handler | None:
    np = sys.modules.get("numpy")
    if np is not None:
        ndarray = getattr(np, "ndarray", None)
        if ndarray is not None and issubclass(cls, ndarray):
            return describe_ndarray
        generic = getattr(np, "generic", None)
        if (
            generic is not None
            and issubclass(cls, generic)
            and type_module(cls).startswith("numpy")
        ):
            return _describe_trusted
        dtype = getattr(np, "dtype", None)
        if dtype is not None and issubclass(cls, dtype) and type_module(cls).startswith("numpy"):
            return _describe_trusted
        if cls is getattr(np, "ufunc", None):
            return _describe_ufunc
    pd = sys.modules.get("pandas")
    handler: Handler
    if pd is not None:
        for name, handler in (
            ("DataFrame", describe_frame),
            ("Series", describe_series),
            ("Index", _describe_index),
        ):
            klass = getattr(pd, name, None)
            if klass is not None and issubclass(cls, klass):
                return handler
    pl = sys.modules.get("polars")
    if pl is not None:
        for name, handler in (
            ("DataFrame", describe_polars_frame),
            ("Series", _describe_polars_series),
            ("LazyFrame", _describe_lazy_frame),
        ):
            klass = getattr(pl, name, None)
            if klass is not None and issubclass(cls, klass):
                return handler
    if type_module(cls).partition(".")[0] in ARRAY_LIBRARIES and (
        class_attribute(cls, "shape") is not None and class_attribute(cls, "dtype") is not None
    ):
        return _describe_array_like
    return None


def _describe_trusted(value: Any, limit: int, depth: int, walk: Walk) -> str:
    return safe_repr(value, limit)


def _describe_ufunc(value: Any, limit: int, depth: int, walk: Walk) -> str:
    name = value.__name__
    if depth < MAX_DEPTH:
        return f"<ufunc {name}>"
    # a ufunc's docstring starts with its signature: "add(x1, x2, /, out=None, ...)"
    first = first_line(value.__doc__)
    return cap(f"ufunc {first if first.startswith(name + '(') else name + '(...)'}", limit)


def _human_bytes(size: int) -> str:
    amount = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if amount < 1024:
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{amount:.1f} TiB"


def _shape_text(shape: Any) -> str:
    try:
        dims = tuple(int(d) for d in shape)
    except Exception:  # unknown dimensions (dask uses nan)
        return str(shape)
    return "(" + ", ".join(map(str, dims)) + ("," if len(dims) == 1 else "") + ")"


def describe_ndarray(array: Any, limit: int, depth: int, walk: Walk) -> str:
    shape, dtype = array.shape, array.dtype
    size, nbytes = int(array.size), int(array.nbytes)
    name = type_name(type(array))
    if depth < MAX_DEPTH:
        return f"<{name} {_shape_text(shape)} {dtype}>"
    text = f"{name} shape={_shape_text(shape)} dtype={dtype}"
    if nbytes >= 1 << 20:
        text += f" ({_human_bytes(nbytes)})"
    room = limit - len(text) - 2
    if 0 < size <= ARRAY_VALUES and nbytes <= 1 << 16 and room > 10:
        if dtype.kind in "OV":  # objects (or records holding them): describe, never repr
            flat = array.ravel().tolist()
            text += ": " + container(flat, list, list, size, iter(flat), "[]", room, 1, walk)
        else:  # Python numbers, strings, datetimes: reprs we trust
            text += ": " + cap(repr(array.tolist()), room)
    return cap(text, limit)


def _describe_array_like(value: Any, limit: int, depth: int, walk: Walk) -> str:
    shape = _shape_text(value.shape)
    dtype = value.dtype
    module = type_module(type(value)).partition(".")[0]
    return cap(f"{module} {type_name(type(value))} shape={shape} dtype={dtype}", limit)


def _label(label: object, limit: int, walk: Walk) -> str:
    """A column or index label: bare when it is a plain identifier-like string."""
    if type(label) is str and label.isidentifier():
        return cap(label, limit)
    return describe_value(label, limit, 1, walk)


def _plain_cell(cell: Any) -> bool:
    """A cell pandas may render itself: a builtin scalar or a short string."""
    cls = type(cell)
    return cls in SCALARS or (cls is str and len(cell) <= 200)


def describe_frame(frame: Any, limit: int, depth: int, walk: Walk) -> str:
    rows, ncols = frame.shape
    name = type_name(type(frame))
    if depth < MAX_DEPTH:
        return f"<{name} {rows}x{ncols}>"
    listed = min(ncols, FRAME_COLUMNS)
    part = frame.iloc[:, :listed] if ncols > listed else frame
    dtypes = part.dtypes
    pairs = list(zip(dtypes.index, dtypes.values, strict=True))
    header = f"{name} shape=({rows}, {ncols})"
    text = _columns_text(header, pairs, ncols, limit, walk)
    if rows and ncols and walk.renders > 0:
        # Leave the rows some room: a wide frame lists fewer columns, then shows rows.
        short = _columns_text(header, pairs, ncols, limit * 3 // 5, walk)
        head_rows = 5 if limit >= 1500 else HEAD_ROWS  # interpolate's default limit
        for shown_cols in (HEAD_COLS, 4, 2):
            if walk.renders <= 0:
                break
            walk.renders -= 1
            head = _frame_head(frame, min(head_rows, rows), min(shown_cols, ncols), walk)
            note = f"first {min(head_rows, rows)} rows" + (
                f", first {shown_cols} columns" if ncols > shown_cols else ""
            )
            candidate = f"{short}\n{note}:\n{head}"
            if len(candidate) <= limit:
                return candidate
            if shown_cols >= ncols:
                break
    return cap(text, limit)


def _columns_text(
    header: str, pairs: list[tuple[object, object]], ncols: int, limit: int, walk: Walk
) -> str:
    """``header; columns: a int64, b str, ... (+N more)``, as many columns as fit."""
    entries = []
    used = len(header) + 30  # "; columns: " and the "(+N more)" note
    for label, dtype in pairs:
        entry = f"{_label(label, 40, walk)} {dtype}"
        if used + len(entry) + 2 > limit:
            break
        entries.append(entry)
        used += len(entry) + 2
    if not entries:
        return f"{header}; {ncols} columns" if ncols else header
    more = ncols - len(entries)
    return f"{header}; columns: {', '.join(entries)}" + (f", ... (+{more} more)" if more else "")


def _frame_head(frame: Any, rows: int, cols: int, walk: Walk) -> str:
    head = frame.iloc[:rows, :cols].copy()
    # Object cells, labels and secret-named columns are replaced before pandas renders
    # them: to_string would call str() on whatever user objects they hold.
    for position, (label, dtype) in enumerate(zip(head.columns, head.dtypes, strict=True)):
        if type(label) is str and is_secret_name(label):
            head.isetitem(position, ["(hidden)"] * rows)
        elif getattr(dtype, "kind", "O") == "O":
            cells = head.iloc[:, position].tolist()
            if not all(_plain_cell(cell) for cell in cells):
                head.isetitem(position, [describe_value(cell, 30, 1, walk) for cell in cells])
    if not all(_plain_cell(label) for label in head.columns):
        head.columns = [_label(label, 30, walk) for label in head.columns]
    if not all(_plain_cell(label) for label in head.index):
        head.index = [_label(label, 30, walk) for label in head.index]
    return str(head.to_string(max_colwidth=30))


def describe_series(series: Any, limit: int, depth: int, walk: Walk) -> str:
    length = len(series)
    name = type_name(type(series))
    if depth < MAX_DEPTH:
        return f"<{name} len={length} {series.dtype}>"
    text = f"{name} len={length} dtype={series.dtype}"
    label = series.name
    if label is not None:
        text += f" name={describe_value(label, 40, 1, walk)}"
    index = series.index
    if type_name(type(index)) != "RangeIndex":
        text += f" index={type_name(type(index))}"
    if type(label) is str and is_secret_name(label):
        return cap(text + " (values hidden)", limit)
    values = series.iloc[:PREVIEW_ITEMS].tolist()
    if values:
        room = limit - len(text) - 2
        text += ": " + container(
            values, list, list, length, iter(values), "[]", room, 2, walk, note=False
        )
    return cap(text, limit)


def _describe_index(index: Any, limit: int, depth: int, walk: Walk) -> str:
    length = len(index)
    text = f"{type_name(type(index))} len={length} dtype={index.dtype}"
    if depth < MAX_DEPTH:
        return f"<{text}>"
    values = index[:PREVIEW_ITEMS].tolist()
    if values:
        room = limit - len(text) - 2
        text += ": " + container(
            values, list, list, length, iter(values), "[]", room, 2, walk, note=False
        )
    return cap(text, limit)


def describe_polars_frame(frame: Any, limit: int, depth: int, walk: Walk) -> str:
    rows, ncols = frame.shape
    if depth < MAX_DEPTH:
        return f"<polars DataFrame {rows}x{ncols}>"
    columns = frame.columns[:FRAME_COLUMNS]
    dtypes = frame.dtypes[:FRAME_COLUMNS]
    pairs = list(zip(columns, dtypes, strict=False))
    header = f"polars DataFrame shape=({rows}, {ncols})"
    text = _columns_text(header, pairs, ncols, limit, walk)
    if rows and ncols and walk.renders > 0:
        short = _columns_text(header, pairs, ncols, limit * 3 // 5, walk)
        for shown_cols in (HEAD_COLS, 4, 2):
            if walk.renders <= 0:
                break
            walk.renders -= 1
            head = frame.head(HEAD_ROWS).select(columns[:shown_cols])
            secret = [is_secret_name(column) for column in head.columns]
            lines = [" | ".join(head.columns)]
            for row in head.rows():
                cells = zip(row, secret, strict=True)
                lines.append(
                    " | ".join(
                        "(hidden)" if hide else describe_value(cell, 30, 1, walk)
                        for cell, hide in cells
                    )
                )
            candidate = f"{short}\nfirst {min(HEAD_ROWS, rows)} rows:\n" + "\n".join(lines)
            if len(candidate) <= limit:
                return candidate
            if shown_cols >= ncols:
                break
    return cap(text, limit)


def _describe_polars_series(series: Any, limit: int, depth: int, walk: Walk) -> str:
    length = series.len()
    text = f"polars Series len={length} dtype={series.dtype} name={series.name!r}"
    if depth < MAX_DEPTH:
        return f"<{text}>"
    values = series.head(PREVIEW_ITEMS).to_list()
    if values and not is_secret_name(str(series.name)):
        room = limit - len(text) - 2
        text += ": " + container(
            values, list, list, length, iter(values), "[]", room, 2, walk, note=False
        )
    return cap(text, limit)


def _describe_lazy_frame(value: Any, limit: int, depth: int, walk: Walk) -> str:
    # Resolving even the schema can read files; a description must not run the query.
    return "<polars LazyFrame (a query, not yet collected)>"


DATA_HANDLERS = frozenset(
    {
        describe_frame,
        describe_series,
        _describe_index,
        describe_ndarray,
        _describe_array_like,
        describe_polars_frame,
        _describe_polars_series,
        _describe_lazy_frame,
    }
)
