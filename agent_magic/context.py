"""What the model is told about the user's namespace.

Here: :func:`describe` (a bounded description of one value), :func:`summarize_namespace`
(the variables block sent with each task), :func:`snapshot` and :func:`describe_changes`
(what a step created, rebound, changed in place or deleted) and :func:`interpolate`
(``{name}`` in a task becomes a description of that variable).

Not here: IPython (callers pass ``user_ns`` and ``user_ns_hidden``), and no numpy, pandas
or polars import. Those libraries are recognised through ``sys.modules`` only when the
user has already imported them, so describing a namespace never imports one.

Everything here runs in the user's kernel on objects we did not write, so the rules are
about not running their code:

* Types are recognised by ``type(value)`` and ``issubclass`` against known classes, never
  by ``hasattr``/``isinstance`` on the value: a ``__getattr__`` that claims every
  attribute (a Mock "with" ``.shape``) or a ``__class__`` property would fool or stall
  those.
* ``repr()`` is called only on builtin scalars and an allowlist of stdlib and library
  value types (datetime, Decimal, UUID, paths, regex patterns, files, numpy scalars and
  dtypes, pandas Timestamp, ...), matched by exact type, so a subclass that overrides
  ``__repr__`` is not trusted. Their reprs are short and do not recurse into arbitrary
  objects; one that raises becomes ``<repr failed: ExcType>``.
* Everything else is described structurally. Builtin containers (and their subclasses)
  are read through the base type's C methods, so an overridden ``__len__`` or
  ``__iter__`` is not called. Other objects become ``<ClassName object: attr=..., ...>``
  from the instance ``__dict__`` or slots, read without running properties or
  ``__getattr__``. A user-defined ``__repr__`` is never called, so a slow or failing one
  cannot stall a summary.
* Only bounded slices are ever rendered: the first items of a container, ``head`` rows
  of a frame, an array's values only when it has at most 20 elements.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import itertools
import math
import re
import sys
import types
from collections import deque
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

# -- tuning ---------------------------------------------------------------------------

_MAX_DEPTH = 3  # nesting levels shown inside containers and objects
_PREVIEW_ITEMS = 8  # items shown from a container at the top level
_NESTED_ITEMS = 4  # ... and from a container inside a container
_STR_PREVIEW = 200  # most characters of a string shown, whatever the limit
_ARRAY_VALUES = 20  # an array's values are shown only up to this many elements
_HEAD_ROWS = 3
_HEAD_COLS = 8
_FRAME_COLUMNS = 60  # most columns listed with their dtypes
# A summary renders at most this many frame heads (pandas' to_string costs 0.3-1 ms);
# later frames still get shape, columns and dtypes.
_RENDERS = 8
# The shortest a description is shrunk to before a variable is left out instead; frames
# and arrays keep room for their shape and columns.
_FLOOR = 48
_DATA_FLOOR = 200
_SMALL_INT_BITS = 3000  # ~900 digits; int -> str is quadratic, so bigger ints are sized

_SECRET_NAME = re.compile(r"key|token|secret|password|passwd|credential|apikey", re.IGNORECASE)
# Values that are credentials whatever they are called: OpenAI, Anthropic, GitHub, Slack,
# AWS, Google API keys, and bearer tokens.
_SECRET_VALUE = re.compile(
    r"\s*(?:sk-|sk_live_|rk_live_|ghp_|gho_|ghs_|github_pat_|xox[abprs]-|AKIA[0-9A-Z]{12}"
    r"|AIza[0-9A-Za-z_-]{20}|Bearer\s)"
)
# IPython's own entries, hidden even when a caller passes no ``hidden``.
_IPYTHON_NAMES = frozenset({"In", "Out", "exit", "quit", "get_ipython"})

_NO_VARIABLES = "(no user variables)"

# Exact types whose repr is trusted, by (module, qualname); checked against the module
# object so a look-alike class cannot borrow the name, and so nothing gets imported.
_TRUSTED_REPR = frozenset(
    {
        ("datetime", "date"),
        ("datetime", "datetime"),
        ("datetime", "time"),
        ("datetime", "timedelta"),
        ("datetime", "timezone"),
        ("decimal", "Decimal"),
        ("fractions", "Fraction"),
        ("uuid", "UUID"),
        ("pathlib", "PurePath"),
        ("pathlib", "PurePosixPath"),
        ("pathlib", "PureWindowsPath"),
        ("pathlib", "Path"),
        ("pathlib", "PosixPath"),
        ("pathlib", "WindowsPath"),
        ("ipaddress", "IPv4Address"),
        ("ipaddress", "IPv6Address"),
        ("ipaddress", "IPv4Network"),
        ("ipaddress", "IPv6Network"),
        ("ipaddress", "IPv4Interface"),
        ("ipaddress", "IPv6Interface"),
        ("re", "Pattern"),
        ("zoneinfo", "ZoneInfo"),
        ("_io", "TextIOWrapper"),
        ("_io", "BufferedReader"),
        ("_io", "BufferedWriter"),
        ("_io", "BufferedRandom"),
        ("_io", "FileIO"),
        ("_io", "StringIO"),
        ("_io", "BytesIO"),
        ("logging", "Logger"),
        ("logging", "RootLogger"),
        ("pandas", "Timestamp"),
        ("pandas", "Timedelta"),
        ("pandas", "Period"),
        ("pandas", "Interval"),
        ("pandas.api.typing", "NaTType"),
        ("pandas.api.typing", "NAType"),
    }
)
_SCALARS = (type(None), bool, int, float, complex)
# Objects this module treats as array-likes when their class (not the instance) defines
# both .shape and .dtype. Restricted to known libraries because reading .shape runs the
# class's code; their values are never read (that could mean a GPU sync or a dask compute).
_ARRAY_LIBRARIES = frozenset(
    {"torch", "jax", "jaxlib", "cupy", "dask", "xarray", "tensorflow", "mlx", "scipy", "h5py"}
)
_FUNCTION_TYPES = (
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodType,
    types.MethodDescriptorType,
    types.WrapperDescriptorType,
    types.MethodWrapperType,
    types.ClassMethodDescriptorType,
)
_MISSING = object()


class _Walk:
    """Per-call state: how many costly frame renders are left, and what is being described."""

    __slots__ = ("renders", "path")

    def __init__(self, renders: int = _RENDERS) -> None:
        self.renders = renders
        self.path: set[int] = set()  # ids of containers on the way down, to spot cycles


# How each kind of value is described: (value, limit, depth, walk) -> text. ``depth`` is
# how many levels may still be opened; below the top the short, nested form is used.
_Handler = Callable[[Any, int, int, _Walk], str]


# -- describe -------------------------------------------------------------------------


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
    walk = _Walk()
    return _describe_top(value, max(limit, 1), walk)


def _describe_top(value: object, limit: int, walk: _Walk) -> str:
    try:
        text = _describe(value, limit, _MAX_DEPTH, walk)
    except Exception as exc:  # a description must never take the summary down with it
        text = f"<{_type_name(type(value))}: not described ({type(exc).__name__})>"
    return _cap(text, limit)


def _describe(value: object, limit: int, depth: int, walk: _Walk) -> str:
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


def _cap(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    if limit <= 3:
        return text[:limit]
    return text[: limit - 3] + "..."


def _type_name(cls: type) -> str:
    try:  # through type's own descriptor: a metaclass cannot intercept it
        name = type.__dict__["__qualname__"].__get__(cls)
    except Exception:
        return "object"
    # a class made in a function is "f.<locals>.Point"; the model knows it as Point
    return name.rpartition("<locals>.")[2] if type(name) is str else "object"


def _type_module(cls: type) -> str:
    try:
        module = type.__dict__["__module__"].__get__(cls)
    except Exception:
        return ""
    return module if type(module) is str else ""


def _trusted_repr(cls: type) -> bool:
    module = _type_module(cls)
    name = _type_name(cls)
    if (module, name) not in _TRUSTED_REPR:
        return False
    owner = sys.modules.get(module)
    return owner is not None and getattr(owner, name.rpartition(".")[2], None) is cls


def _safe_repr(value: object, limit: int) -> str:
    try:
        text = repr(value)
    except Exception as exc:
        return f"<repr failed: {type(exc).__name__}>"
    return _cap(text if type(text) is str else "<repr failed: not a str>", limit)


def _is_secret_name(name: str) -> bool:
    return _SECRET_NAME.search(name) is not None


# -- scalars and strings ---------------------------------------------------------------


def _describe_scalar(value: Any, limit: int, depth: int, walk: _Walk) -> str:
    return _cap(repr(value), limit)


def _describe_int(value: Any, limit: int, depth: int, walk: _Walk) -> str:
    number = int.__int__(value)  # the base's: no __int__ override
    prefix = "" if type(value) in (int, bool) else f"{_type_name(type(value))} "
    bits = number.bit_length()
    if bits > _SMALL_INT_BITS:
        return f"{prefix}int with ~{int(bits * math.log10(2)) + 1} digits"
    text = int.__repr__(number)
    if len(prefix) + len(text) > limit:
        return f"{prefix}int with {len(text.lstrip('-'))} digits"
    return prefix + text


def _describe_float(value: Any, limit: int, depth: int, walk: _Walk) -> str:
    text = float.__repr__(value)
    return _cap(text if type(value) is float else f"{_type_name(type(value))}({text})", limit)


def _describe_str(value: Any, limit: int, depth: int, walk: _Walk) -> str:
    length = str.__len__(value)
    head = str.__getitem__(value, slice(0, _STR_PREVIEW))
    kind = "str" if type(value) is str else _type_name(type(value))
    if _SECRET_VALUE.match(head):
        return f"<{kind} len={length}, looks like a credential: hidden>"
    nested = depth < _MAX_DEPTH
    label = "" if nested else f"{kind} len={length}: "
    text = repr(head)
    if length <= _STR_PREVIEW and len(label) + len(text) <= limit:
        return label + text
    # Cut the repr rather than the string, so escapes count against the limit.
    tail = f"... (len {length})" if nested else "..."
    room = limit - len(label) - len(tail)
    if room < 4:
        return f"<{kind} len={length}>"
    return label + text[:room] + tail


def _describe_bytes(value: Any, limit: int, depth: int, walk: _Walk) -> str:
    base = bytes if issubclass(type(value), bytes) else bytearray
    length = base.__len__(value)
    head = bytes(base.__getitem__(value, slice(0, 64)))
    preview = repr(head) + ("..." if length > 64 else "")
    return _cap(f"{_type_name(type(value))} len={length}: {preview}", limit)


# -- containers ------------------------------------------------------------------------


def _describe_sequence(value: Any, limit: int, depth: int, walk: _Walk) -> str:
    cls = type(value)
    base: Any  # the builtin whose C methods are used, so overrides never run
    if issubclass(cls, tuple):
        base = tuple
        brackets = "()"
        fields = _class_attribute(cls, "_fields")
        if type(fields) is tuple and all(type(f) is str for f in fields):
            return _describe_namedtuple(value, fields, limit, depth, walk)
    elif issubclass(cls, deque):
        base, brackets = deque, "[]"
    else:
        base, brackets = list, "[]"
    length = base.__len__(value)
    count = _NESTED_ITEMS if depth < _MAX_DEPTH else _PREVIEW_ITEMS
    items = (base.__getitem__(value, i) for i in range(min(count, length)))
    return _container(value, cls, base, length, items, brackets, limit, depth, walk)


def _describe_set(value: Any, limit: int, depth: int, walk: _Walk) -> str:
    cls = type(value)
    base = frozenset if issubclass(cls, frozenset) else set
    length = base.__len__(value)
    count = _NESTED_ITEMS if depth < _MAX_DEPTH else _PREVIEW_ITEMS
    items = itertools.islice(base.__iter__(value), count)
    return _container(value, cls, base, length, items, "{}", limit, depth, walk)


def _describe_dict(value: Any, limit: int, depth: int, walk: _Walk) -> str:
    cls = type(value)
    length = dict.__len__(value)
    count = _NESTED_ITEMS if depth < _MAX_DEPTH else _PREVIEW_ITEMS
    # dict.items via the base class: no __iter__ override runs and no key is hashed
    pairs = itertools.islice(iter(dict.items(value)), count)
    return _container(value, cls, dict, length, pairs, "{}", limit, depth, walk, pairs=True)


def _container(
    value: object,
    cls: type,
    base: type,
    length: int,
    items: Iterable[Any],
    brackets: str,
    limit: int,
    depth: int,
    walk: _Walk,
    *,
    pairs: bool = False,
    note: bool = True,
) -> str:
    """``list len=N: [a, b, ...]`` at the top; ``[a, b, ...] (len N)`` inside another value."""
    name = _type_name(cls)
    open_, close = brackets[0], brackets[1]
    nested = depth < _MAX_DEPTH
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
                key_text = _describe(key, per_item // 2, depth - 1, walk)
                if type(key) is str and _is_secret_name(key):
                    val_text = "(value hidden)"
                else:
                    val_text = _describe(val, per_item, depth - 1, walk)
                text = f"{key_text}: {val_text}"
            else:
                text = _describe(item, per_item, depth - 1, walk)
            if shown and used + len(text) + 2 > room:
                break
            shown.append(_cap(text, max(room - used, 8)))
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
    value: Any, fields: tuple[str, ...], limit: int, depth: int, walk: _Walk
) -> str:
    values = [tuple.__getitem__(value, i) for i in range(min(len(fields), tuple.__len__(value)))]
    return _with_fields(
        _type_name(type(value)),
        list(zip(fields, values, strict=False)),
        len(fields),
        "(",
        ")",
        limit,
        depth,
        walk,
    )


def _with_fields(
    title: str,
    pairs: list[tuple[str, object]],
    total: int,
    open_: str,
    close: str,
    limit: int,
    depth: int,
    walk: _Walk,
) -> str:
    """``title(a=..., b=...)``: fields described one level down, as many as fit."""
    if depth <= 0 or not pairs:
        return f"{title}{open_}{'...' if total else ''}{close}"
    budget = limit - len(title) - len(open_) - len(close) - 5
    per_item = max(12, min(80, budget // min(len(pairs), 3)))
    shown: list[str] = []
    used = 0
    for name, val in pairs:
        if _is_secret_name(name):
            text = f"{name}=(value hidden)"
        else:
            text = f"{name}={_describe(val, per_item, depth - 1, walk)}"
        if shown and used + len(text) + 2 > budget:
            break
        shown.append(_cap(text, max(budget - used, 8)))
        used += len(shown[-1]) + 2
    body = ", ".join(shown) + (", ..." if total > len(shown) else "")
    return f"{title}{open_}{body}{close}"


# -- functions, classes, modules, enums, exceptions, other objects ----------------------


class _Shown:
    """Stands in for a default value in a signature, so str(signature) uses our text."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def _describe_callable(value: Any, limit: int, depth: int, walk: _Walk) -> str:
    cls = type(value)
    if issubclass(cls, type):
        kind = "class"
        name = _type_name(value)
        doc = _class_dict(value).get("__doc__")  # own, not inherited
    else:
        kind = "method" if issubclass(cls, types.MethodType) else "function"
        if issubclass(cls, (types.BuiltinFunctionType, types.MethodDescriptorType)):
            kind = "builtin"
        found = getattr(value, "__qualname__", None) or getattr(value, "__name__", None)
        doc = getattr(value, "__doc__", None)
        name = found.rpartition("<locals>.")[2] if type(found) is str else _type_name(cls)
    if depth < _MAX_DEPTH:  # inside a container the name is enough
        return f"<{kind} {name}>"
    text = f"{kind} {name}{_signature(value, walk) or '(...)'}"
    if kind == "class":
        methods = [
            attr
            for attr, member in itertools.islice(_class_dict(value).items(), 200)
            if not attr.startswith("_")
            and issubclass(type(member), (types.FunctionType, classmethod, staticmethod))
        ]
        if methods:
            text = _cap(text + "; methods: " + ", ".join(methods), limit)
    first = _first_line(doc)
    if first and len(text) + len(first) + 4 <= limit:
        text += f"  # {first}"
    return _cap(text, limit)


def _signature(value: Any, walk: _Walk) -> str | None:
    try:
        signature = inspect.signature(value)
    except Exception:  # builtins without text signatures, odd callables
        return None
    params = []
    try:
        for param in signature.parameters.values():
            # str(signature) reprs the defaults; a default may be any object, so show ours
            if param.default is not param.empty:
                param = param.replace(default=_Shown(_describe(param.default, 40, 1, walk)))
            if param.annotation is not param.empty:
                param = param.replace(annotation=_annotation(param.annotation, walk))
            params.append(param)
        ret = signature.return_annotation
        if issubclass(type(value), type):  # a class "returns" an instance; __init__'s None is noise
            ret = signature.empty
        elif ret is not signature.empty:
            ret = _annotation(ret, walk)
        return str(signature.replace(parameters=params, return_annotation=ret))
    except Exception:
        return None


def _annotation(annotation: object, walk: _Walk) -> object:
    """An annotation as inspect may print it: classes and typing forms as they are,
    strings (postponed annotations) bare, anything else described."""
    cls = type(annotation)
    if cls is str:
        return _Shown(_cap(str(annotation), 60))
    if issubclass(cls, type) or _type_module(cls) in ("typing", "types"):
        return annotation
    return _Shown(_describe(annotation, 40, 1, walk))


def _first_line(doc: object) -> str:
    if type(doc) is not str:
        return ""
    for line in doc.strip().splitlines()[:1]:
        return _cap(line.strip(), 120)
    return ""


def _module_name(value: object) -> str:
    try:
        name = object.__getattribute__(value, "__dict__").get("__name__")
    except Exception:
        name = None
    return name if type(name) is str else "?"


def _describe_enum(value: Any, cls: type) -> str:
    members = _instance_dict(value) or {}
    name = members.get("_name_")
    return f"{_type_name(cls)}.{name}" if type(name) is str else f"<{_type_name(cls)} member>"


def _describe_exception(value: Any, limit: int, depth: int, walk: _Walk) -> str:
    args = BaseException.__dict__["args"].__get__(value)
    name = _type_name(type(value))
    if depth <= 0:
        return f"{name}(...)"
    parts = [_describe(arg, max(20, limit // 2), depth - 1, walk) for arg in args[:3]]
    return _cap(f"{name}({', '.join(parts)}{', ...' if len(args) > 3 else ''})", limit)


def _describe_object(value: Any, limit: int, depth: int, walk: _Walk) -> str:
    """Any other object, from its own attributes; its methods, properties and repr never run."""
    cls = type(value)
    title = f"<{_type_name(cls)} object"
    attributes = _public_attributes(value, cls)
    if not attributes or depth <= 0 or id(value) in walk.path:
        return title + ">"
    walk.path.add(id(value))
    try:
        text = _with_fields(
            title, attributes[:_PREVIEW_ITEMS], len(attributes), ": ", ">", limit, depth, walk
        )
    finally:
        walk.path.discard(id(value))
    return text


def _public_attributes(value: object, cls: type) -> list[tuple[str, object]]:
    found: list[tuple[str, object]] = []
    own = _instance_dict(value)
    if own is not None:
        for name, val in itertools.islice(iter(dict.items(own)), 100):
            if type(name) is str and not name.startswith("_"):
                found.append((name, val))
    for klass in _mro(cls):
        namespace = _class_dict(klass)
        slots: Any = namespace.get("__slots__", ())
        for slot in (
            (slots,) if type(slots) is str else slots if type(slots) in (tuple, list) else ()
        ):
            if type(slot) is not str or slot.startswith("_"):
                continue
            descriptor = namespace.get(slot)
            if type(descriptor) is types.MemberDescriptorType:  # a plain slot: no code runs
                with contextlib.suppress(AttributeError):  # a slot never assigned
                    found.append((slot, descriptor.__get__(value, cls)))
    return found


def _instance_dict(value: object) -> dict[str, object] | None:
    try:
        own = object.__getattribute__(value, "__dict__")
    except Exception:
        return None
    return own if type(own) is dict else None


def _class_dict(cls: type) -> Mapping[str, object]:
    """``cls.__dict__`` through type's own descriptor, which a metaclass cannot replace."""
    try:
        found = type.__dict__["__dict__"].__get__(cls)
    except Exception:
        return {}
    return found if type(found) is types.MappingProxyType else {}


def _mro(cls: type) -> tuple[type, ...]:
    try:
        mro = type.__dict__["__mro__"].__get__(cls)
    except Exception:
        return ()
    return mro if type(mro) is tuple else ()


def _class_attribute(cls: type, name: str) -> object:
    """``name`` as defined on ``cls`` or a base, without running any descriptor."""
    for klass in _mro(cls):
        found = _class_dict(klass).get(name, _MISSING)
        if found is not _MISSING:
            return found
    return None


# -- numpy, pandas, polars, other array libraries --------------------------------------


def _library_handler(cls: type) -> _Handler | None:
    np = sys.modules.get("numpy")
    if np is not None:
        ndarray = getattr(np, "ndarray", None)
        if ndarray is not None and issubclass(cls, ndarray):
            return _describe_ndarray
        generic = getattr(np, "generic", None)
        if (
            generic is not None
            and issubclass(cls, generic)
            and _type_module(cls).startswith("numpy")
        ):
            return _describe_trusted
        dtype = getattr(np, "dtype", None)
        if dtype is not None and issubclass(cls, dtype) and _type_module(cls).startswith("numpy"):
            return _describe_trusted
        if cls is getattr(np, "ufunc", None):
            return _describe_ufunc
    pd = sys.modules.get("pandas")
    handler: _Handler
    if pd is not None:
        for name, handler in (
            ("DataFrame", _describe_frame),
            ("Series", _describe_series),
            ("Index", _describe_index),
        ):
            klass = getattr(pd, name, None)
            if klass is not None and issubclass(cls, klass):
                return handler
    pl = sys.modules.get("polars")
    if pl is not None:
        for name, handler in (
            ("DataFrame", _describe_polars_frame),
            ("Series", _describe_polars_series),
            ("LazyFrame", _describe_lazy_frame),
        ):
            klass = getattr(pl, name, None)
            if klass is not None and issubclass(cls, klass):
                return handler
    if _type_module(cls).partition(".")[0] in _ARRAY_LIBRARIES and (
        _class_attribute(cls, "shape") is not None and _class_attribute(cls, "dtype") is not None
    ):
        return _describe_array_like
    return None


def _describe_trusted(value: Any, limit: int, depth: int, walk: _Walk) -> str:
    return _safe_repr(value, limit)


def _describe_ufunc(value: Any, limit: int, depth: int, walk: _Walk) -> str:
    name = value.__name__
    if depth < _MAX_DEPTH:
        return f"<ufunc {name}>"
    # a ufunc's docstring starts with its signature: "add(x1, x2, /, out=None, ...)"
    first = _first_line(value.__doc__)
    return _cap(f"ufunc {first if first.startswith(name + '(') else name + '(...)'}", limit)


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


def _describe_ndarray(array: Any, limit: int, depth: int, walk: _Walk) -> str:
    shape, dtype = array.shape, array.dtype
    size, nbytes = int(array.size), int(array.nbytes)
    name = _type_name(type(array))
    if depth < _MAX_DEPTH:
        return f"<{name} {_shape_text(shape)} {dtype}>"
    text = f"{name} shape={_shape_text(shape)} dtype={dtype}"
    if nbytes >= 1 << 20:
        text += f" ({_human_bytes(nbytes)})"
    room = limit - len(text) - 2
    if 0 < size <= _ARRAY_VALUES and nbytes <= 1 << 16 and room > 10:
        if dtype.kind in "OV":  # objects (or records holding them): describe, never repr
            flat = array.ravel().tolist()
            text += ": " + _container(flat, list, list, size, iter(flat), "[]", room, 1, walk)
        else:  # Python numbers, strings, datetimes: reprs we trust
            text += ": " + _cap(repr(array.tolist()), room)
    return _cap(text, limit)


def _describe_array_like(value: Any, limit: int, depth: int, walk: _Walk) -> str:
    shape = _shape_text(value.shape)
    dtype = value.dtype
    module = _type_module(type(value)).partition(".")[0]
    return _cap(f"{module} {_type_name(type(value))} shape={shape} dtype={dtype}", limit)


def _label(label: object, limit: int, walk: _Walk) -> str:
    """A column or index label: bare when it is a plain identifier-like string."""
    if type(label) is str and label.isidentifier():
        return _cap(label, limit)
    return _describe(label, limit, 1, walk)


def _plain_cell(cell: Any) -> bool:
    """A cell pandas may render itself: a builtin scalar or a short string."""
    cls = type(cell)
    return cls in _SCALARS or (cls is str and len(cell) <= 200)


def _describe_frame(frame: Any, limit: int, depth: int, walk: _Walk) -> str:
    rows, ncols = frame.shape
    name = _type_name(type(frame))
    if depth < _MAX_DEPTH:
        return f"<{name} {rows}x{ncols}>"
    listed = min(ncols, _FRAME_COLUMNS)
    part = frame.iloc[:, :listed] if ncols > listed else frame
    dtypes = part.dtypes
    pairs = list(zip(dtypes.index, dtypes.values, strict=True))
    header = f"{name} shape=({rows}, {ncols})"
    text = _columns_text(header, pairs, ncols, limit, walk)
    if rows and ncols and walk.renders > 0:
        # Leave the rows some room: a wide frame lists fewer columns, then shows rows.
        short = _columns_text(header, pairs, ncols, limit * 3 // 5, walk)
        head_rows = 5 if limit >= 1500 else _HEAD_ROWS  # interpolate's default limit
        for shown_cols in (_HEAD_COLS, 4, 2):
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
    return _cap(text, limit)


def _columns_text(
    header: str, pairs: list[tuple[object, object]], ncols: int, limit: int, walk: _Walk
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


def _frame_head(frame: Any, rows: int, cols: int, walk: _Walk) -> str:
    head = frame.iloc[:rows, :cols].copy()
    # Object cells, labels and secret-named columns are replaced before pandas renders
    # them: to_string would call str() on whatever user objects they hold.
    for position, (label, dtype) in enumerate(zip(head.columns, head.dtypes, strict=True)):
        if type(label) is str and _is_secret_name(label):
            head.isetitem(position, ["(hidden)"] * rows)
        elif getattr(dtype, "kind", "O") == "O":
            cells = head.iloc[:, position].tolist()
            if not all(_plain_cell(cell) for cell in cells):
                head.isetitem(position, [_describe(cell, 30, 1, walk) for cell in cells])
    if not all(_plain_cell(label) for label in head.columns):
        head.columns = [_label(label, 30, walk) for label in head.columns]
    if not all(_plain_cell(label) for label in head.index):
        head.index = [_label(label, 30, walk) for label in head.index]
    return str(head.to_string(max_colwidth=30))


def _describe_series(series: Any, limit: int, depth: int, walk: _Walk) -> str:
    length = len(series)
    name = _type_name(type(series))
    if depth < _MAX_DEPTH:
        return f"<{name} len={length} {series.dtype}>"
    text = f"{name} len={length} dtype={series.dtype}"
    label = series.name
    if label is not None:
        text += f" name={_describe(label, 40, 1, walk)}"
    index = series.index
    if _type_name(type(index)) != "RangeIndex":
        text += f" index={_type_name(type(index))}"
    if type(label) is str and _is_secret_name(label):
        return _cap(text + " (values hidden)", limit)
    values = series.iloc[:_PREVIEW_ITEMS].tolist()
    if values:
        room = limit - len(text) - 2
        text += ": " + _container(
            values, list, list, length, iter(values), "[]", room, 2, walk, note=False
        )
    return _cap(text, limit)


def _describe_index(index: Any, limit: int, depth: int, walk: _Walk) -> str:
    length = len(index)
    text = f"{_type_name(type(index))} len={length} dtype={index.dtype}"
    if depth < _MAX_DEPTH:
        return f"<{text}>"
    values = index[:_PREVIEW_ITEMS].tolist()
    if values:
        room = limit - len(text) - 2
        text += ": " + _container(
            values, list, list, length, iter(values), "[]", room, 2, walk, note=False
        )
    return _cap(text, limit)


def _describe_polars_frame(frame: Any, limit: int, depth: int, walk: _Walk) -> str:
    rows, ncols = frame.shape
    if depth < _MAX_DEPTH:
        return f"<polars DataFrame {rows}x{ncols}>"
    columns = frame.columns[:_FRAME_COLUMNS]
    dtypes = frame.dtypes[:_FRAME_COLUMNS]
    pairs = list(zip(columns, dtypes, strict=False))
    header = f"polars DataFrame shape=({rows}, {ncols})"
    text = _columns_text(header, pairs, ncols, limit, walk)
    if rows and ncols and walk.renders > 0:
        short = _columns_text(header, pairs, ncols, limit * 3 // 5, walk)
        for shown_cols in (_HEAD_COLS, 4, 2):
            if walk.renders <= 0:
                break
            walk.renders -= 1
            head = frame.head(_HEAD_ROWS).select(columns[:shown_cols])
            secret = [_is_secret_name(column) for column in head.columns]
            lines = [" | ".join(head.columns)]
            for row in head.rows():
                cells = zip(row, secret, strict=True)
                lines.append(
                    " | ".join(
                        "(hidden)" if hide else _describe(cell, 30, 1, walk) for cell, hide in cells
                    )
                )
            candidate = f"{short}\nfirst {min(_HEAD_ROWS, rows)} rows:\n" + "\n".join(lines)
            if len(candidate) <= limit:
                return candidate
            if shown_cols >= ncols:
                break
    return _cap(text, limit)


def _describe_polars_series(series: Any, limit: int, depth: int, walk: _Walk) -> str:
    length = series.len()
    text = f"polars Series len={length} dtype={series.dtype} name={series.name!r}"
    if depth < _MAX_DEPTH:
        return f"<{text}>"
    values = series.head(_PREVIEW_ITEMS).to_list()
    if values and not _is_secret_name(str(series.name)):
        room = limit - len(text) - 2
        text += ": " + _container(
            values, list, list, length, iter(values), "[]", room, 2, walk, note=False
        )
    return _cap(text, limit)


def _describe_partial(value: Any, limit: int, depth: int, walk: _Walk) -> str:
    func, args, keywords = value.func, value.args, value.keywords
    parts = [_describe(func, 60, depth - 1, walk)]
    parts += [_describe(arg, 40, depth - 1, walk) for arg in args[:4]]
    parts += [
        f"{key}={_describe(val, 40, depth - 1, walk)}" for key, val in list(keywords.items())[:4]
    ]
    return _cap(f"partial({', '.join(parts)})", limit)


def _describe_lazy_frame(value: Any, limit: int, depth: int, walk: _Walk) -> str:
    # Resolving even the schema can read files; a description must not run the query.
    return "<polars LazyFrame (a query, not yet collected)>"


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
_DATA_HANDLERS = frozenset(
    {
        _describe_frame,
        _describe_series,
        _describe_index,
        _describe_ndarray,
        _describe_array_like,
        _describe_polars_frame,
        _describe_polars_series,
        _describe_lazy_frame,
    }
)
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


# -- which names are shown --------------------------------------------------------------


def _visible(
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
        if type(name) is not str or name[:1] == "_" or name in _IPYTHON_NAMES:
            continue
        if name in names and (by_identity is None or by_identity.get(name, _MISSING) is value):
            continue
        if not include_modules and issubclass(type(value), module):
            continue
        found.append(name)
    return found


def _is_data(cls: type) -> bool:
    """Frames, series and arrays: what a data-analysis model most needs to know about."""
    return cls not in _EXACT and _library_handler(cls) in _DATA_HANDLERS


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
        self.floor = _DATA_FLOOR if is_data else _FLOOR
        self.text = ""

    @property
    def head(self) -> int:
        return len(self.prefix) + len(self.name) + 3  # ": " and the newline

    @property
    def least(self) -> int:
        return self.head + min(len(self.text), self.floor)

    def describe(self, limit: int, walk: _Walk) -> None:
        if _is_secret_name(self.name):
            self.text = _cap(f"{_type_name(type(self.value))} (value hidden)", limit)
            return
        text = _describe_top(self.value, limit, walk)
        # Continuation lines are indented under the name; if that pushes a frame over the
        # limit, describe it again with less room rather than cut its table.
        indented = text.replace("\n", "\n    ")
        if len(indented) > limit:
            text = _describe_top(self.value, limit - (len(indented) - len(text)), walk)
            indented = text.replace("\n", "\n    ")
        self.text = _cap(indented, limit)

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
            is_data = kinds[cls] = _is_data(cls)
        (data if is_data else rest).append(name)
    return data + rest, len(data)


def _fit(
    ns: Mapping[str, object],
    names: list[str],
    budget: int,
    walk: _Walk,
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
    item_limit = max(_FLOOR, min(budget, 1000))
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
    """Largest L with sum(min(len, max(L, floor))) <= room (L = _FLOOR if none fits)."""

    def total(level: int) -> int:
        return sum(min(len(line.text), max(level, line.floor)) for line in lines)

    low, high = _FLOOR, max(len(line.text) for line in lines)
    while low < high:
        middle = (low + high + 1) // 2
        if total(middle) <= room:
            low = middle
        else:
            high = middle - 1
    return low


def _names_line(lead: str, names: Iterable[str], count: int, room: int) -> str:
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
    return _cap(text, room)


# -- summarize_namespace ------------------------------------------------------------------


def summarize_namespace(
    ns: Mapping[str, object],
    *,
    budget: int = 4000,
    hidden: Collection[str] = (),
    include_modules: bool = False,
) -> str:
    """The variables block for the model: ``name: description``, one variable per line.

    Skips names starting with ``_``, those in ``hidden`` (IPython's ``user_ns_hidden``:
    hidden while still bound to the object IPython put there), IPython's ``In``, ``Out``,
    ``exit``, ``quit``, ``get_ipython``, and modules unless ``include_modules``. Names that
    look like secrets (containing key, token, secret, password, passwd, credential or
    apikey, any case) show their type only. Frames, series and arrays are described
    first, then the rest in namespace order; lines appear in namespace order. When not
    everything fits in ``budget`` characters the largest descriptions are shrunk first
    (frames and arrays no further than their shape and columns), and what is still left
    out is listed as ``... and N more: a, b, c``. The result is never longer than
    ``budget``; a frame's rows are indented continuation lines.
    """
    names = _visible(ns, hidden, include_modules=include_modules)
    if not names:
        return _cap(_NO_VARIABLES, budget)
    kept, left = _fit(ns, names, budget, _Walk())
    lines = [line.render() for line in kept]
    if left:
        used = sum(len(line) + 1 for line in lines)
        lines.append(_names_line(f"... and {len(left)} more", left, len(left), budget - used))
    return _cap("\n".join(lines), budget)


# -- snapshots and changes ---------------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    """The visible names at one moment: each one's object id and type, and for some a
    cheap fingerprint of shape (see :func:`describe_changes`).

    Holds no references to the values (a snapshot must not keep a deleted 1 GB array
    alive), so an object freed and replaced by a new one at the same address with the
    same type and shape during one step reads as unchanged.
    """

    ids: Mapping[str, int] = field(default_factory=dict)
    types: Mapping[str, type] = field(default_factory=dict)
    marks: Mapping[str, object] = field(default_factory=dict)  # only fingerprinted names


def snapshot(ns: Mapping[str, object], *, hidden: Collection[str] = ()) -> Snapshot:
    """Record ``ns`` before a step so :func:`describe_changes` can tell what it did.

    Modules are included, so an ``import`` shows up as a new name.
    """
    fingerprinters: dict[type, Callable[[Any], object] | None] = {}
    ids: dict[str, int] = {}
    kinds: dict[str, type] = {}
    marks: dict[str, object] = {}
    for name in _visible(ns, hidden, include_modules=True):
        value = ns[name]
        cls = type(value)
        ids[name] = id(value)
        kinds[name] = cls
        if cls in fingerprinters:
            make = fingerprinters[cls]
        else:
            make = fingerprinters[cls] = _fingerprinter(cls)
        if make is not None:
            # a fingerprint is an optimisation; never fail a step for it
            with contextlib.suppress(Exception):
                marks[name] = make(value)
    return Snapshot(ids, kinds, marks)


def _fingerprinter(cls: type) -> Callable[[Any], object] | None:
    """How to fingerprint in-place changes cheaply: lengths, shapes, columns, dtypes."""
    base: Any
    for base in (list, dict, set, bytearray, deque):
        if issubclass(cls, base):
            return base.__len__  # the base's: a subclass's __len__ is not run
    handler = _library_handler(cls)
    if handler is _describe_frame:
        return _frame_fingerprint
    if handler in (_describe_series, _describe_ndarray):
        return _array_fingerprint
    if handler is _describe_polars_frame:
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


def _same_mark(before: object, after: object) -> bool:
    try:  # column labels are compared; they can be any hashable, with any __eq__
        return bool(before == after)
    except Exception:
        return True


def describe_changes(
    before: Snapshot,
    ns: Mapping[str, object],
    *,
    budget: int = 2000,
    hidden: Collection[str] = (),
) -> str:
    """What a step changed since ``before``; ``""`` when nothing did.

    Lines ``new x: ...`` (created), ``rebound x: ...`` (bound to a different object),
    ``changed x: ...`` (same object, different fingerprint) and ``deleted: a, b``.
    Identity cannot see in-place mutation; the fingerprint catches what is cheap to
    check: a list, dict or set's length, an array's or Series' shape and dtype, a
    DataFrame's shape, columns and dtypes (so ``df["x"] = ...`` is seen). A list item
    replaced or array values rewritten in place are not. Bounded to ``budget`` characters
    like :func:`summarize_namespace`; secret-looking names show their type only.
    """
    after = snapshot(ns, hidden=hidden)
    changed: list[str] = []
    labels: dict[str, str] = {}
    for name, ident in after.ids.items():
        old = before.ids.get(name)
        if old is None:
            labels[name] = "new "
        elif old != ident or before.types.get(name) is not after.types[name]:
            labels[name] = "rebound "
        elif not _same_mark(before.marks.get(name), after.marks.get(name)):
            labels[name] = "changed "
        else:
            continue
        changed.append(name)
    deleted = [name for name in before.ids if name not in after.ids]
    if not changed and not deleted:
        return ""
    footer = ""
    if deleted:
        footer = _names_line("deleted", deleted, len(deleted), max(budget // 4, 40))
    room = budget - (len(footer) + 1 if footer else 0)
    lines: list[str] = []
    if changed:
        kept, left = _fit(ns, changed, room, _Walk(), prefix=labels.__getitem__)
        lines = [line.render() for line in kept]
        if left:
            used = sum(len(line) + 1 for line in lines)
            lead = f"... and {len(left)} more changed"
            lines.append(_names_line(lead, left, len(left), room - used))
    if footer:
        lines.append(footer)
    return _cap("\n".join(lines), budget)


# -- interpolate ---------------------------------------------------------------------------

_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([^{}\s]+)\}")
_HISTORY = re.compile(r"(In|Out)\[(-?\d+)\]")


def interpolate(
    template: str,
    ns: Mapping[str, object],
    *,
    limit: int = 1500,
    hidden: Collection[str] = (),
    inputs: Sequence[str] | None = None,
) -> str:
    """Replace ``{name}`` in a task with ``name`` and a description of that variable.

    ``{df}`` becomes the name in backticks, then ``(DataFrame shape=...; columns: ...``
    with its first rows on indented lines, then ``)``: the model needs the name to write
    code and the description to write the right code. Each description is at most ``limit``
    characters. ``{{`` and ``}}`` are literal braces. Anything else in braces stays as
    written, without raising: an unknown, hidden, private or secret-looking name
    (``{api_key}`` is not expanded), or code such as ``{'a': 1}`` and ``{x+1}``.
    ``{In[3]}`` is the code of cell 3 and ``{Out[3]}`` a description of its result, as in
    IPython's own ``In``/``Out`` history (negative numbers count back from this cell);
    ``inputs`` is the cells' code as typed (IPython's ``In`` holds it after transforms).
    """
    walk = _Walk()

    def replace(match: re.Match[str]) -> str:
        whole, name = match.group(0), match.group(1)
        if name is None:
            return whole[0]  # {{ or }}
        history = _HISTORY.fullmatch(name)
        if history:
            return _history(history[1], int(history[2]), ns, inputs, limit, walk) or whole
        if not name.isidentifier() or _is_secret_name(name):
            return whole
        value = ns.get(name, _MISSING)
        if value is _MISSING or not _visible({name: value}, hidden, include_modules=True):
            return whole  # unknown, private or hidden
        text = _describe_top(value, limit, walk).replace("\n", "\n    ")
        return f"`{name}` ({text})"

    return _PLACEHOLDER.sub(replace, template)


def _history(
    kind: str,
    number: int,
    ns: Mapping[str, object],
    inputs: Sequence[str] | None,
    limit: int,
    walk: _Walk,
) -> str:
    """``In[n]`` as a fenced block of the cell's code, ``Out[n]`` described; "" if none."""
    inputs = ns.get("In") if inputs is None else inputs
    if not isinstance(inputs, Sequence) or not inputs:
        return ""
    if number < 0:
        number += len(inputs)  # In[-1] is this very cell, as in IPython
    if kind == "In":
        if not 0 < number < len(inputs) or not isinstance(inputs[number], str):
            return ""
        code = inputs[number].strip()
        if len(code) > limit:
            code = code[:limit] + "\n# ... (cut)"
        fence = "```"
        while fence in code:
            fence += "`"
        return f"`In[{number}]`:\n{fence}python\n{code}\n{fence}\n"
    outputs = ns.get("Out")
    if not isinstance(outputs, dict) or number not in outputs:
        return ""
    text = _describe_top(outputs[number], limit, walk).replace("\n", "\n    ")
    return f"`Out[{number}]` ({text})"
