"""Describing functions, classes, modules, enums, exceptions, partials and other objects.

Here: ``name(signature)`` with the first docstring line for callables (defaults and
annotations described by us, never repr'd), ``Color.RED`` for enum members,
``Error(args)`` for exceptions, and ``<ClassName object: attr=..., ...>`` from an
object's own ``__dict__`` or plain slots, read without running properties,
``__getattr__`` or a user-defined ``__repr__``.

Not here: builtin values and containers (:mod:`.values`), data libraries
(:mod:`.libraries`), choosing the handler for a type (:mod:`.describe`).
"""

from __future__ import annotations

import contextlib
import inspect
import itertools
import types
from typing import Any

from ._base import (
    MAX_DEPTH,
    PREVIEW_ITEMS,
    Walk,
    cap,
    class_dict,
    describe_value,
    first_line,
    instance_dict,
    type_module,
    type_mro,
    type_name,
)
from .values import with_fields

# -- functions, classes, modules, enums, exceptions, other objects ----------------------


class _Shown:
    """Stands in for a default value in a signature, so str(signature) uses our text."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def describe_callable(value: Any, limit: int, depth: int, walk: Walk) -> str:
    cls = type(value)
    if issubclass(cls, type):
        kind = "class"
        name = type_name(value)
        doc = class_dict(value).get("__doc__")  # own, not inherited
    else:
        kind = "method" if issubclass(cls, types.MethodType) else "function"
        if issubclass(cls, (types.BuiltinFunctionType, types.MethodDescriptorType)):
            kind = "builtin"
        found = getattr(value, "__qualname__", None) or getattr(value, "__name__", None)
        doc = getattr(value, "__doc__", None)
        name = found.rpartition("<locals>.")[2] if type(found) is str else type_name(cls)
    if depth < MAX_DEPTH:  # inside a container the name is enough
        return f"<{kind} {name}>"
    text = f"{kind} {name}{_signature(value, walk) or '(...)'}"
    if kind == "class":
        methods = [
            attr
            for attr, member in itertools.islice(class_dict(value).items(), 200)
            if not attr.startswith("_")
            and issubclass(type(member), (types.FunctionType, classmethod, staticmethod))
        ]
        if methods:
            text = cap(text + "; methods: " + ", ".join(methods), limit)
    first = first_line(doc)
    if first and len(text) + len(first) + 4 <= limit:
        text += f"  # {first}"
    return cap(text, limit)


def _signature(value: Any, walk: Walk) -> str | None:
    try:
        signature = inspect.signature(value)
    except Exception:  # builtins without text signatures, odd callables
        return None
    params = []
    try:
        for param in signature.parameters.values():
            # str(signature) reprs the defaults; a default may be any object, so show ours
            if param.default is not param.empty:
                param = param.replace(default=_Shown(describe_value(param.default, 40, 1, walk)))
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


def _annotation(annotation: object, walk: Walk) -> object:
    """An annotation as inspect may print it: classes and typing forms as they are,
    strings (postponed annotations) bare, anything else described."""
    cls = type(annotation)
    if cls is str:
        return _Shown(cap(str(annotation), 60))
    if issubclass(cls, type) or type_module(cls) in ("typing", "types"):
        return annotation
    return _Shown(describe_value(annotation, 40, 1, walk))


def describe_enum(value: Any, cls: type) -> str:
    members = instance_dict(value) or {}
    name = members.get("_name_")
    return f"{type_name(cls)}.{name}" if type(name) is str else f"<{type_name(cls)} member>"


def describe_exception(value: Any, limit: int, depth: int, walk: Walk) -> str:
    args = BaseException.__dict__["args"].__get__(value)
    name = type_name(type(value))
    if depth <= 0:
        return f"{name}(...)"
    parts = [describe_value(arg, max(20, limit // 2), depth - 1, walk) for arg in args[:3]]
    return cap(f"{name}({', '.join(parts)}{', ...' if len(args) > 3 else ''})", limit)


def describe_object(value: Any, limit: int, depth: int, walk: Walk) -> str:
    """Any other object, from its own attributes; its methods, properties and repr never run."""
    cls = type(value)
    title = f"<{type_name(cls)} object"
    attributes = _public_attributes(value, cls)
    if not attributes or depth <= 0 or id(value) in walk.path:
        return title + ">"
    walk.path.add(id(value))
    try:
        text = with_fields(
            title, attributes[:PREVIEW_ITEMS], len(attributes), ": ", ">", limit, depth, walk
        )
    finally:
        walk.path.discard(id(value))
    return text


def _public_attributes(value: object, cls: type) -> list[tuple[str, object]]:
    found: list[tuple[str, object]] = []
    own = instance_dict(value)
    if own is not None:
        for name, val in itertools.islice(iter(dict.items(own)), 100):
            if type(name) is str and not name.startswith("_"):
                found.append((name, val))
    for klass in type_mro(cls):
        namespace = class_dict(klass)
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


def describe_partial(value: Any, limit: int, depth: int, walk: Walk) -> str:
    func, args, keywords = value.func, value.args, value.keywords
    parts = [describe_value(func, 60, depth - 1, walk)]
    parts += [describe_value(arg, 40, depth - 1, walk) for arg in args[:4]]
    parts += [
        f"{key}={describe_value(val, 40, depth - 1, walk)}"
        for key, val in list(keywords.items())[:4]
    ]
    return cap(f"partial({', '.join(parts)})", limit)
