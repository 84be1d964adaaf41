"""The :class:`Redactor`: collects the secret values of a cell (environment,
namespace, configured keys) and replaces them, and every credential shape the rules
know, with a marker naming what was hidden.

Not here: the rules themselves (:mod:`.patterns`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import compress
from operator import itemgetter
from typing import Any

from .patterns import DEFAULT_RULES, MESSAGE_RULES, SecretRules, is_secret_name
from .pieces import Pieces

# Containers of a top-level dict walked for secret-named keys, and how many items of each.
_NAMESPACE_DEPTH = 2
_NAMESPACE_ITEMS = 1000


@dataclass
class Redactor:
    """Replaces known secret values and credential-shaped strings in text.

    Build one with :meth:`build` where text is about to leave (a request, a record);
    :attr:`hidden` counts the values replaced so far, so a step can say how many it hid.
    A redactor built from a namespace that code keeps changing (the kernel's, while a
    cell's steps run) is brought up to date with :meth:`refresh`, in place, so every
    holder of it (the chat client, the recorder, the executor) hides the new values too.
    """

    values: tuple[tuple[str, str], ...] = ()  # (value, marker), longest value first
    rules: SecretRules = DEFAULT_RULES
    hidden: int = 0
    # Where build() found the values, for refresh(): env (None: os.environ), the
    # namespace, the caller's values, and what was found (value -> marker).
    _env: Mapping[str, str] | None = field(default=None, repr=False, compare=False)
    _namespace: Mapping[str, Any] | None = field(default=None, repr=False, compare=False)
    _extra: tuple[str, ...] = field(default=(), repr=False, compare=False)
    _found: dict[str, str] = field(default_factory=dict, repr=False, compare=False)
    _built: bool = field(default=False, repr=False, compare=False)
    _pieces_of: tuple[tuple[str, str], ...] | None = field(default=None, repr=False, compare=False)
    _piece_index: Pieces = field(default_factory=lambda: Pieces(()), repr=False, compare=False)

    @classmethod
    def build(
        cls,
        *,
        env: Mapping[str, str] | None = None,
        namespace: Mapping[str, Any] | None = None,
        values: Iterable[str] = (),
        rules: SecretRules = DEFAULT_RULES,
    ) -> Redactor:
        """Secrets from ``env`` (default ``os.environ``), ``namespace`` and ``values``."""
        extra = tuple(v for v in values if type(v) is str)
        found = _collect(env, namespace, extra, rules)
        return cls(
            values=_pairs(found),
            rules=rules,
            _env=env,
            _namespace=namespace,
            _extra=extra,
            _found=found,
            _built=True,
        )

    def refresh(self, namespace: Mapping[str, Any] | None = None) -> bool:
        """Read the environment and the namespace again (``namespace``, else the one this
        was built from); True when the secret values changed.

        Costs one pass over both (names already judged are remembered by the rules), and
        nothing more when no secret changed: the common case between two steps. A
        redactor made without :meth:`build` has no sources and stays as it is.
        """
        if not self._built:
            return False
        if namespace is not None:
            self._namespace = namespace
        found = _collect(self._env, self._namespace, self._extra, self.rules)
        if found == self._found:
            return False
        self._found = found
        self.values = _pairs(found)
        return True

    def with_rules(self, rules: SecretRules) -> Redactor:
        """A new redactor from the same sources under other rules (more shapes or names)."""
        return Redactor.build(
            env=self._env, namespace=self._namespace, values=self._extra, rules=rules
        )

    def redact(self, text: str) -> str:
        """``text`` with every secret replaced by its marker; counts them in :attr:`hidden`."""
        if not isinstance(text, str):
            try:
                text = str(text)
            except Exception:
                return "[hidden: value that could not be read]"
        text = str.__str__(text)
        for value, marker in self.values:
            if value in text:
                self.hidden += text.count(value)
                text = text.replace(value, marker)
        pieces = self._pieces()
        if pieces:
            text = self._replace(text, pieces.spans(text), "{}")
        spans = sorted(self.rules.find(text))
        return self._replace(text, spans, "[hidden: {}]")

    def _pieces(self) -> Pieces:
        """The index of pieces of the values, made again when the values change."""
        if self._pieces_of is not self.values:
            self._piece_index = Pieces(self.values)
            self._pieces_of = self.values
        return self._piece_index

    def _replace(self, text: str, spans: list[tuple[int, int, str]], marker: str) -> str:
        """``text`` with each (start, end, label) span, in order, replaced by its marker."""
        if not spans:
            return text
        kept, last = [], 0
        for start, end, label in spans:
            if start < last:  # inside (or overlapping) a span already hidden
                if end > last:
                    last = end
                continue
            kept.append(text[last:start])
            kept.append(marker.format(label))
            self.hidden += 1
            last = end
        kept.append(text[last:])
        return "".join(kept)

    def redact_json(self, obj: Any) -> Any:
        """``obj`` with :meth:`redact` applied to every string in it (dicts, lists, tuples).

        Keys are redacted too; other values are returned as they are. A new object is
        built only where something changed below it.
        """
        return self._deep(obj, set())

    def _deep(self, obj: Any, path: set[int]) -> Any:
        if isinstance(obj, str):
            return self.redact(obj)
        if isinstance(obj, (dict, list, tuple)):
            if id(obj) in path:  # a cycle: JSON cannot hold one, leave it be
                return obj
            path.add(id(obj))
            try:
                if isinstance(obj, dict):
                    pairs = list(obj.items())
                    items = [(self._deep(k, path), self._deep(v, path)) for k, v in pairs]
                    same = zip(items, pairs, strict=True)
                    if all(a is k and b is v for (a, b), (k, v) in same):
                        return obj
                    return dict(items)
                original = list(obj)
                seq = [self._deep(item, path) for item in original]
                if all(a is b for a, b in zip(seq, original, strict=True)):
                    return obj
                return seq if isinstance(obj, list) else tuple(seq)
            finally:
                path.discard(id(obj))
        return obj


def redact_message(text: str, keys: Iterable[str | None] = ()) -> str:
    """A one-line message about a server or a config with ``keys`` (the configured API
    keys), the environment's secrets and anything key-like hidden (:data:`MESSAGE_RULES`)."""
    return Redactor.build(values=[k for k in keys if k], rules=MESSAGE_RULES).redact(text)


def _collect(
    env: Mapping[str, str] | None,
    namespace: Mapping[str, Any] | None,
    values: Iterable[str],
    rules: SecretRules,
) -> dict[str, str]:
    """value -> marker of every secret value the sources hold."""
    env = os.environ if env is None else env
    found: dict[str, str] = {}
    for value in values:
        _add(found, value, "[hidden: api key]", rules)
    for value, marker in _environ_secrets(env, rules):
        found.setdefault(value, marker)
    if namespace is not None:
        for label, value in _namespace_secrets(namespace, rules):
            _add(found, value, f"[hidden: variable {label}]", rules)
    return found


def _pairs(found: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """(text, marker) to replace, longest first: each value and how JSON or repr write it."""
    markers = "".join(found.values())
    pairs = []
    for value, marker in found.items():
        if value in markers:  # replacing it would break the markers already written
            continue
        pairs.append((value, marker))
        for variant in _encodings(value):
            if variant != value and variant not in markers:
                pairs.append((variant, marker))
    pairs.sort(key=lambda pair: len(pair[0]), reverse=True)
    return tuple(dict(pairs).items())


def _add(found: dict[str, str], value: Any, marker: str, rules: SecretRules) -> None:
    if type(value) is str and len(value) >= max(rules.min_length, 1):
        found.setdefault(value, marker)


def _items(mapping: Mapping[str, Any]) -> list[tuple[Any, Any]]:
    try:
        return list(mapping.items())
    except Exception:  # an odd mapping must not stop a request
        return []


_environ_seen: tuple[dict[Any, Any], list[tuple[Any, Any]]] | None = None


def _environ_items(env: Mapping[str, str]) -> list[tuple[Any, Any]]:
    """``env``'s (name, value) pairs. ``os.environ`` decodes each variable as it is read,
    which cost more than the rest of a refresh at every step: its pairs are kept and read
    again only when its raw mapping changed (a dict comparison in C)."""
    global _environ_seen
    raw = getattr(env, "_data", None)
    if env is not os.environ or type(raw) is not dict:
        return _items(env)
    seen = _environ_seen
    if seen is not None and seen[0] == raw:
        return seen[1]
    items = _items(env)
    _environ_seen = (dict(raw), items)
    return items


_environ_judged: tuple[list[tuple[Any, Any]], SecretRules, list[tuple[str, str]]] | None = None


def _environ_secrets(env: Mapping[str, str], rules: SecretRules) -> list[tuple[str, str]]:
    """(value, marker) of the secrets among ``env``'s variables; judged again only when its
    pairs (:func:`_environ_items`, kept while it does not change) or the rules changed."""
    global _environ_judged
    items = _environ_items(env)
    judged = _environ_judged
    if judged is not None and judged[0] is items and judged[1] is rules:
        return judged[2]
    found: dict[str, str] = {}
    for name, value in items:
        if type(name) is str and is_secret_name(name, rules):
            _add(found, value, f"[hidden: ${name}]", rules)
    secrets = list(found.items())
    _environ_judged = (items, rules, secrets)
    return secrets


def _encodings(value: str) -> tuple[str, ...]:
    """How ``value`` appears once written into JSON or printed by repr."""
    variants = []
    try:
        variants.append(json.dumps(value, ensure_ascii=False)[1:-1])
        variants.append(json.dumps(value)[1:-1])
    except (TypeError, ValueError):
        pass
    variants.append(repr(value)[1:-1])
    return tuple(v for v in variants if len(v) >= 8)


_SCANNED = frozenset({str, dict})


def _namespace_secrets(
    namespace: Mapping[str, Any], rules: SecretRules
) -> Iterator[tuple[str, Any]]:
    """(label, value) of str values held under secret-looking names, two dict levels deep.

    Only exact ``dict`` objects are opened (through ``dict.items``), so no user code runs.
    """
    items = _items(namespace)
    # Every step, over every name: only the str and dict values are looked at one by
    # one, picked out in a pass the interpreter runs in C.
    picked = map(_SCANNED.__contains__, map(type, map(itemgetter(1), items)))
    for name, value in compress(items, picked):
        if type(name) is not str or name.startswith("_"):
            continue
        if type(value) is str:
            if is_secret_name(name, rules):
                yield name, value
        elif type(value) is dict:
            yield from _dict_secrets(value, name, rules, _NAMESPACE_DEPTH)


def _dict_secrets(
    mapping: dict[Any, Any], label: str, rules: SecretRules, depth: int
) -> Iterator[tuple[str, Any]]:
    for count, (key, value) in enumerate(dict.items(mapping)):
        if count >= _NAMESPACE_ITEMS:
            return
        if type(key) is not str:
            continue
        inner = f"{label}[{key!r}]"
        if type(value) is str:
            if is_secret_name(key, rules):
                yield inner, value
        elif type(value) is dict and depth > 1:
            yield from _dict_secrets(value, inner, rules, depth - 1)
