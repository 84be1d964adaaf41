"""Shared ground of :mod:`agent_magic.context`: tuning, per-call state, safe introspection.

Here: the limits every description respects, :class:`Walk` (the state of one call:
frame renders left, containers on the way down, and the dispatcher for nested values),
the cutter for descriptions (:func:`cap`), and the ways of reading a type's name,
module, ``__dict__`` and MRO through ``type``'s own descriptors so no user code runs.

Not here: how any kind of value is described (:mod:`.values`, :mod:`.objects`,
:mod:`.libraries`), choosing the handler (:mod:`.describe`), nor which names are secret
(:mod:`agent_magic.secrets`, imported from there by the describing modules).
"""

from __future__ import annotations

import sys
import types
from collections.abc import Callable, Mapping
from typing import Any

# -- tuning ---------------------------------------------------------------------------

MAX_DEPTH = 3  # nesting levels shown inside containers and objects
PREVIEW_ITEMS = 8  # items shown from a container at the top level
NESTED_ITEMS = 4  # ... and from a container inside a container
STR_PREVIEW = 200  # most characters of a string shown, whatever the limit
ARRAY_VALUES = 20  # an array's values are shown only up to this many elements
HEAD_ROWS = 3
HEAD_COLS = 8
FRAME_COLUMNS = 60  # most columns listed with their dtypes
# A summary renders at most this many frame heads (pandas' to_string costs 0.3-1 ms);
# later frames still get shape, columns and dtypes.
RENDERS = 8
# The shortest a description is shrunk to before a variable is left out instead; frames
# and arrays keep room for their shape and columns.
FLOOR = 48
DATA_FLOOR = 200
SMALL_INT_BITS = 3000  # ~900 digits; int -> str is quadratic, so bigger ints are sized
# IPython's own entries, hidden even when a caller passes no ``hidden``.
IPYTHON_NAMES = frozenset({"In", "Out", "exit", "quit", "get_ipython"})

NO_VARIABLES = "(no user variables)"

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
SCALARS = (type(None), bool, int, float, complex)
# Objects this module treats as array-likes when their class (not the instance) defines
# both .shape and .dtype. Restricted to known libraries because reading .shape runs the
# class's code; their values are never read (that could mean a GPU sync or a dask compute).
ARRAY_LIBRARIES = frozenset(
    {"torch", "jax", "jaxlib", "cupy", "dask", "xarray", "tensorflow", "mlx", "scipy", "h5py"}
)
FUNCTION_TYPES = (
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodType,
    types.MethodDescriptorType,
    types.WrapperDescriptorType,
    types.MethodWrapperType,
    types.ClassMethodDescriptorType,
)
MISSING = object()


class Walk:
    """Per-call state: how many costly frame renders are left, what is being described,
    and the dispatcher that describes nested values (given by :mod:`.describe`)."""

    __slots__ = ("renders", "path", "dispatch")

    def __init__(self, dispatch: Handler, renders: int = RENDERS) -> None:
        self.renders = renders
        self.path: set[int] = set()  # ids of containers on the way down, to spot cycles
        self.dispatch = dispatch


# How each kind of value is described: (value, limit, depth, walk) -> text. ``depth`` is
# how many levels may still be opened; below the top the short, nested form is used.
Handler = Callable[[Any, int, int, Walk], str]


def describe_value(value: object, limit: int, depth: int, walk: Walk) -> str:
    """Describe a value inside another one (or at the top): the walk's dispatcher decides."""
    return walk.dispatch(value, limit, depth, walk)


def cap(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    if limit <= 3:
        return text[:limit]
    return text[: limit - 3] + "..."


def type_name(cls: type) -> str:
    try:  # through type's own descriptor: a metaclass cannot intercept it
        name = type.__dict__["__qualname__"].__get__(cls)
    except Exception:
        return "object"
    # a class made in a function is "f.<locals>.Point"; the model knows it as Point
    return name.rpartition("<locals>.")[2] if type(name) is str else "object"


def type_module(cls: type) -> str:
    try:
        module = type.__dict__["__module__"].__get__(cls)
    except Exception:
        return ""
    return module if type(module) is str else ""


def trusted_repr(cls: type) -> bool:
    module = type_module(cls)
    name = type_name(cls)
    if (module, name) not in _TRUSTED_REPR:
        return False
    owner = sys.modules.get(module)
    return owner is not None and getattr(owner, name.rpartition(".")[2], None) is cls


def safe_repr(value: object, limit: int) -> str:
    try:
        text = repr(value)
    except Exception as exc:
        return f"<repr failed: {type(exc).__name__}>"
    return cap(text if type(text) is str else "<repr failed: not a str>", limit)


def first_line(doc: object) -> str:
    if type(doc) is not str:
        return ""
    for line in doc.strip().splitlines()[:1]:
        return cap(line.strip(), 120)
    return ""


def module_name(value: object) -> str:
    try:
        name = object.__getattribute__(value, "__dict__").get("__name__")
    except Exception:
        name = None
    return name if type(name) is str else "?"


def instance_dict(value: object) -> dict[str, object] | None:
    try:
        own = object.__getattribute__(value, "__dict__")
    except Exception:
        return None
    return own if type(own) is dict else None


def class_dict(cls: type) -> Mapping[str, object]:
    """``cls.__dict__`` through type's own descriptor, which a metaclass cannot replace."""
    try:
        found = type.__dict__["__dict__"].__get__(cls)
    except Exception:
        return {}
    return found if type(found) is types.MappingProxyType else {}


def type_mro(cls: type) -> tuple[type, ...]:
    try:
        mro = type.__dict__["__mro__"].__get__(cls)
    except Exception:
        return ()
    return mro if type(mro) is tuple else ()


def class_attribute(cls: type, name: str) -> object:
    """``name`` as defined on ``cls`` or a base, without running any descriptor."""
    for klass in type_mro(cls):
        found = class_dict(klass).get(name, MISSING)
        if found is not MISSING:
            return found
    return None
