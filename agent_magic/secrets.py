"""Which values are secrets, and hiding them from text that leaves the kernel or is saved.

Here: :func:`is_secret_name` (does a variable, column, key or environment variable name
look like it holds a credential), :func:`looks_like_credential` (does a value start like
one), :class:`SecretRules` (the rules, as data), :func:`extended_rules` (the rules with
the user's ``AgentMagics.secret_patterns`` and ``secret_names``), :class:`Redactor`
(replaces secret values in text and JSON-shaped data with a marker naming what was hidden,
and :meth:`Redactor.refresh` keeps it up to date with a changing namespace) and
:func:`hidden_note` (how a step record says how many it hid).

Not here: where redaction is applied (the chat client and the recorder call
:meth:`Redactor.redact` on what they send or write, the log and the export read the
recorded records, and a step's output capture, :mod:`agent_magic.kernel.capture`, hides
values in what the step shows as it runs), describing values
(:mod:`agent_magic.context` uses :func:`is_secret_name` to hide a value's contents).

What is hidden (``DEFAULT_RULES``):

* **Environment variables with secret-looking names** (see names below) whose value has at
  least ``min_length`` (8) characters: ``[hidden: $MY_SERVICE_TOKEN]``.
* **Namespace variables with secret-looking names** holding a ``str`` of 8+ characters,
  and ``str`` values under secret-looking keys of a top-level ``dict``:
  ``[hidden: variable db_password]``, ``[hidden: variable config['api_key']]``.
* **Extra values** given by the caller (the configured api keys): ``[hidden: api key]``.
* **Strings shaped like credentials**, whatever holds them: OpenAI / Anthropic keys
  (``sk-...``, ``sk-proj-...``, ``sk-ant-...``), AWS access key ids (``AKIA``/``ASIA`` +
  16) and a 40-character secret access key printed near one, GitHub tokens (``ghp_``,
  ``gho_``, ``ghu_``, ``ghs_``, ``ghr_``, ``github_pat_``), Slack tokens (``xoxb-`` ...),
  Google API keys (``AIza`` + 35), Stripe secret keys (``sk_live_``), Hugging Face tokens
  (``hf_``), JSON Web Tokens (``eyJ...``.``...``.``...``), ``Bearer`` tokens and PEM
  private-key blocks (``-----BEGIN ... PRIVATE KEY-----`` to its ``END`` line, or to the
  end of its base64 when the block was cut): ``[hidden: AWS access key id]``.

Names. A name is split into words at ``_``, ``-``, ``.``, spaces, digits and lower-to-upper
changes (``GithubToken`` -> github, token; ``OPENAI_API_KEY`` -> openai, api, key). It
looks secret when it contains one of ``name_parts`` anywhere (``secret``, ``password``,
``passwd``, ``passphrase``, ``credential``, ``apikey``) or has one of ``name_words`` as a
word (``key``, ``token``, ``auth``, ``bearer``, ``pwd`` in a name of two words or more),
unless its last word is one of ``not_secret_last_words`` (``file``, ``path``, ``dir``,
``sock``, ...: ``SSH_AUTH_SOCK``, ``KEY_FILE`` name a place, not a secret). So ``PATH``,
``KEYBOARD``, ``MONKEY``, ``tokenizer``, ``author`` and ``PWD`` are not secret names.

Extending the rules. ``SecretRules.extended(patterns=..., names=...)`` returns new rules
(in a notebook: ``%config AgentMagics.secret_patterns = [r"acme_[A-Za-z0-9]{32}"]`` and
``%config AgentMagics.secret_names = ["dsn"]``, read by :func:`extended_rules`):

* ``patterns``: more value shapes, as regular expressions (Python ``re`` syntax), either a
  mapping ``{label: regex}`` (the marker says ``[hidden: <label>]``) or a list of regexes
  (labelled ``custom pattern``). Keep them linear: start with a literal prefix
  (``acme_[A-Za-z0-9]{32}``), avoid nested quantifiers.
* ``names``: more secret names. A single word (``dsn``) is matched as a word of a name; a
  name of several words (``SENTRY_DSN``, ``sessionCookie``) matches any name containing
  those words in that order, adjacent (``MY_SENTRY_DSN``).

Every function here is linear in the length of its input (a 1 MB unbroken line included),
never raises on odd text (lone surrogates, ``str`` subclasses) and never returns a secret
it knows of.
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

__all__ = [
    "DEFAULT_RULES",
    "Redactor",
    "SecretRules",
    "extended_rules",
    "hidden_note",
    "is_secret_name",
    "looks_like_credential",
]

# -- names -------------------------------------------------------------------------------

_WORDS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[^\W\d_]+")


def _words(name: str) -> tuple[str, ...]:
    """``"GithubToken"`` -> ("github", "token"); ``"APIKey"`` -> ("api", "key")."""
    return tuple(word.lower() for word in _WORDS.findall(name))


def _start(prefix: str, word: str) -> str:
    """``prefix``, not inside a longer word (the character before it is not in ``word``),
    except after a JSON or repr escape: a key at the start of a line of a message sent as
    JSON follows ``\\n``, and the ``n`` must not count as a letter of its word."""
    return f"{prefix}(?:(?<![{word}]{prefix})|(?<=\\\\[nrt]{prefix}))"


# Value shapes that are credentials whatever holds them: (label, regex). Each begins with
# its literal prefix (so the regex engine jumps from one occurrence to the next instead of
# trying every position) and then refuses to start inside a longer word (the lookbehind
# just after the prefix, see _start), so a failed attempt scans one word once; a callback
# (see _SHAPE_CHECKS) rejects look-alikes.
_DEFAULT_SHAPES: tuple[tuple[str, str], ...] = (
    ("Anthropic API key", _start("sk-ant-", "A-Za-z0-9_-") + r"[A-Za-z0-9_-]{20,}"),
    ("OpenAI API key", _start("sk-", "A-Za-z0-9_-") + r"(?!ant-)[A-Za-z0-9_-]{20,}"),
    ("Stripe secret key", _start("sk_live_", "A-Za-z0-9_") + r"[A-Za-z0-9]{16,}"),
    ("Stripe secret key", _start("rk_live_", "A-Za-z0-9_") + r"[A-Za-z0-9]{16,}"),
    ("AWS access key id", _start("A[KS]IA", "A-Za-z0-9") + r"[A-Z0-9]{16}(?![A-Za-z0-9])"),
    ("GitHub token", _start("gh[pousr]_", "A-Za-z0-9_") + r"[A-Za-z0-9]{30,}"),
    ("GitHub token", _start("github_pat_", "A-Za-z0-9_") + r"[A-Za-z0-9_]{22,}"),
    ("Slack token", _start("xox[abprs]-", "A-Za-z0-9-") + r"[A-Za-z0-9-]{10,}"),
    ("Google API key", _start("AIza", "A-Za-z0-9_-") + r"[0-9A-Za-z_-]{35}(?![0-9A-Za-z_-])"),
    ("Hugging Face token", _start("hf_", "A-Za-z0-9_") + r"[A-Za-z0-9]{30,}"),
    (
        "JSON web token",
        _start("eyJ", "A-Za-z0-9_-") + r"[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",
    ),
    ("bearer token", _start("Bearer", "A-Za-z0-9") + r"[ \t]{1,8}[A-Za-z0-9._~+/=-]{16,}"),
)


# What every match of a default shape contains, looked for with ``in`` before its regex
# runs: most text holds none, and a dozen substring tests cost less than one regex call
# (a step's output is redacted line by line as it is shown).
_NEEDLES: dict[str, tuple[str, ...]] = {
    regex: needles
    for (_, regex), needles in zip(
        _DEFAULT_SHAPES,
        (
            ("sk-ant-",),
            ("sk-",),
            ("sk_live_",),
            ("rk_live_",),
            ("AKIA", "ASIA"),
            ("ghp_", "gho_", "ghu_", "ghs_", "ghr_"),
            ("github_pat_",),
            ("xox",),
            ("AIza",),
            ("hf_",),
            ("eyJ",),
            ("Bearer",),
        ),
        strict=True,
    )
}

_DIGIT = re.compile(r"[0-9]")
_LOWER = re.compile(r"[a-z]")
_UPPER = re.compile(r"[A-Z]")


def _has_digit(text: str) -> bool:
    return _DIGIT.search(text) is not None


def _mixed_case(text: str) -> bool:
    return _LOWER.search(text) is not None and _UPPER.search(text) is not None


def _openai_key(text: str) -> bool:
    return text.startswith(_OPENAI_KINDS) or _has_digit(text)


_OPENAI_KINDS = ("sk-proj-", "sk-svcacct-", "sk-admin-")
# A random key has digits (or both cases): this tells ``sk-learn-compatible-estimators``
# and "Bearer authentication-required" from keys; a project key's prefix says enough.
_SHAPE_CHECKS: dict[str, Callable[[str], bool]] = {
    "OpenAI API key": _openai_key,
    "Slack token": _has_digit,
    "Hugging Face token": _mixed_case,
    "bearer token": _has_digit,
}

_PEM_BEGIN = re.compile(r"-----BEGIN (?:[A-Z0-9]+ ){0,4}PRIVATE KEY-----")
_PEM_END = re.compile(r"-----END (?:[A-Z0-9]+ ){0,4}PRIVATE KEY-----")
# What follows a BEGIN line whose END was cut off: base64, line breaks (also as the
# two characters \n of a JSON string) and "Proc-Type: 4,ENCRYPTED"-style headers.
_PEM_BODY = re.compile(r"[A-Za-z0-9+/=\s\\:,-]*")
# An AWS secret access key: 40 characters of base64, near an access key id.
_AWS_SECRET = re.compile(r"(?<![A-Za-z0-9/+])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])")
_AWS_NEAR = 200


@dataclass(frozen=True)
class SecretRules:
    """What counts as a secret: name rules, value shapes and the shortest value hidden.

    See the module docstring for the format; extend with :meth:`extended`.
    """

    name_parts: tuple[str, ...] = (
        "secret",
        "password",
        "passwd",
        "passphrase",
        "credential",
        "apikey",
    )
    name_words: tuple[str, ...] = ("key", "token", "auth", "bearer")
    # Words that count only in a name of two or more words: ``PWD`` is the current folder.
    compound_words: tuple[str, ...] = ("pwd",)
    # Names of several words to match in order, as given to ``extended(names=...)``.
    name_phrases: tuple[tuple[str, ...], ...] = ()
    not_secret_last_words: tuple[str, ...] = (
        "file",
        "files",
        "path",
        "paths",
        "dir",
        "dirs",
        "directory",
        "sock",
        "socket",
        "url",
        "uri",
        "type",
        "types",
        "length",
        "len",
        "size",
        "count",
    )
    shapes: tuple[tuple[str, str], ...] = _DEFAULT_SHAPES
    min_length: int = 8
    _compiled: tuple[tuple[str, re.Pattern[str], tuple[str, ...]], ...] = field(
        default=(), init=False, repr=False, compare=False
    )
    # Names already judged: a summary asks about the same few names again and again.
    _names: dict[str, bool] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        compiled = []
        for label, pattern in self.shapes:
            try:
                compiled.append((label, re.compile(pattern), _NEEDLES.get(pattern, ())))
            except re.error as exc:
                raise ValueError(
                    f"secret pattern {pattern!r} is not a valid regular expression ({exc}); "
                    "fix it in AgentMagics.secret_patterns"
                ) from None
        object.__setattr__(self, "_compiled", tuple(compiled))

    def extended(
        self,
        *,
        patterns: Mapping[str, str] | Iterable[str] = (),
        names: Iterable[str] = (),
    ) -> SecretRules:
        """New rules with more value shapes (regexes) and more secret names (see above)."""
        if isinstance(patterns, Mapping):
            shapes = tuple((str(label), str(regex)) for label, regex in patterns.items())
        else:
            shapes = tuple(("custom pattern", str(regex)) for regex in patterns)
        words, phrases = list(self.name_words), list(self.name_phrases)
        for name in names:
            parts = _words(str(name))
            if len(parts) == 1:
                words.append(parts[0])
            elif parts:
                phrases.append(parts)
        return replace(
            self,
            shapes=self.shapes + shapes,
            name_words=tuple(dict.fromkeys(words)),
            name_phrases=tuple(dict.fromkeys(phrases)),
        )

    def is_secret_name(self, name: str) -> bool:
        # Names are short; a huge dict key is judged by its start (and not cached whole).
        name = name[:_NAME_LIMIT]
        known = self._names.get(name)
        if known is None:
            known = _secret_name(self, name)
            if len(self._names) < _NAMES_CACHED:
                self._names[name] = known
        return known

    def find(self, text: str) -> Iterator[tuple[int, int, str]]:
        """(start, end, label) of each credential-shaped string in ``text``, in no set order."""
        for label, pattern, needles in self._compiled:
            if needles:  # a plain loop: a generator per shape would cost more than the test
                for needle in needles:
                    if needle in text:
                        break
                else:
                    continue
            check = _SHAPE_CHECKS.get(label)
            for match in pattern.finditer(text):
                if check is None or check(match.group()):
                    yield match.start(), match.end(), label
                    if label == "AWS access key id":
                        yield from _aws_secrets(text, match.start(), match.end())
        yield from _pem_blocks(text)


_NAME_LIMIT = 256
_NAMES_CACHED = 4096


def _secret_name(rules: SecretRules, name: str) -> bool:
    lowered = name.lower()
    if any(part in lowered for part in rules.name_parts):
        return _not_a_place(rules, _words(name))
    words = _words(name)
    if not words:
        return False
    hit = any(word in rules.name_words for word in words) or (
        len(words) > 1 and any(word in rules.compound_words for word in words)
    )
    if not hit:
        hit = any(_contains(words, phrase) for phrase in rules.name_phrases)
    return hit and _not_a_place(rules, words)


def _not_a_place(rules: SecretRules, words: tuple[str, ...]) -> bool:
    return not words or words[-1] not in rules.not_secret_last_words


def _contains(words: tuple[str, ...], phrase: tuple[str, ...]) -> bool:
    n = len(phrase)
    return any(words[i : i + n] == phrase for i in range(len(words) - n + 1))


def _aws_secrets(text: str, start: int, end: int) -> Iterator[tuple[int, int, str]]:
    lo, hi = max(0, start - _AWS_NEAR), min(len(text), end + _AWS_NEAR)
    for match in _AWS_SECRET.finditer(text, lo, hi):
        value = match.group()
        if _mixed_case(value) and _has_digit(value):
            yield match.start(), match.end(), "AWS secret access key"


def _pem_blocks(text: str) -> Iterator[tuple[int, int, str]]:
    # One forward pass: each BEGIN looks for the next END from where it stands; when there
    # is none, no later BEGIN has one either, so the search never rescans text.
    if "PRIVATE KEY-----" not in text:
        return
    pos = 0
    while True:
        begin = _PEM_BEGIN.search(text, pos)
        if begin is None:
            return
        end = _PEM_END.search(text, begin.end())
        if end is None:
            body = _PEM_BODY.match(text, begin.end())
            yield begin.start(), body.end() if body else begin.end(), "private key"
            return
        yield begin.start(), end.end(), "private key"
        pos = end.end()


DEFAULT_RULES = SecretRules()


@functools.lru_cache(maxsize=16)
def extended_rules(patterns: tuple[str, ...] = (), names: tuple[str, ...] = ()) -> SecretRules:
    """:data:`DEFAULT_RULES` with the user's patterns and names (``AgentMagics.secret_patterns``
    and ``secret_names``); the same settings give the same rules object, so its memory of
    judged names lasts across cells. A pattern that is not a regex is a ``ValueError``."""
    if not patterns and not names:
        return DEFAULT_RULES
    return DEFAULT_RULES.extended(patterns=patterns, names=names)


def hidden_note(count: int) -> str:
    """What a step record says: ``"1 secret value hidden"``, ``"3 secret values hidden"``."""
    return f"{count} secret value{'' if count == 1 else 's'} hidden"


def is_secret_name(name: str, rules: SecretRules = DEFAULT_RULES) -> bool:
    """True when ``name`` (a variable, key, column or environment variable) looks secret."""
    if not isinstance(name, str):
        return False
    return rules.is_secret_name(str.__str__(name))


_CREDENTIAL_PREFIX = re.compile(
    r"\s*(?:sk-|sk_live_|rk_live_|ghp_|gho_|ghu_|ghs_|ghr_|github_pat_|xox[abprs]-"
    r"|AKIA[0-9A-Z]{12}|ASIA[0-9A-Z]{12}|AIza[0-9A-Za-z_-]{20}|Bearer\s|eyJ[A-Za-z0-9_-]{8,}\."
    r"|-----BEGIN (?:[A-Z0-9]+ ){0,4}PRIVATE KEY-----)"
)


def looks_like_credential(value: str) -> bool:
    """True when a string value starts like a credential (``sk-``, ``ghp_``, ``AKIA...``).

    Stricter shapes are for finding keys inside text (:class:`Redactor`); a whole value that
    starts like a key is hidden on sight, as a description of it would show that start.
    """
    if not isinstance(value, str):
        return False
    return _CREDENTIAL_PREFIX.match(str.__getitem__(value, slice(0, 200))) is not None


# -- redaction ---------------------------------------------------------------------------

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
        spans = sorted(self.rules.find(text))
        if not spans:
            return text
        pieces, last = [], 0
        for start, end, label in spans:
            if start < last:  # inside (or overlapping) a span already hidden
                if end > last:
                    last = end
                continue
            pieces.append(text[last:start])
            pieces.append(f"[hidden: {label}]")
            self.hidden += 1
            last = end
        pieces.append(text[last:])
        return "".join(pieces)

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
    for name, value in _items(env):
        if type(name) is str and is_secret_name(name, rules):
            _add(found, value, f"[hidden: ${name}]", rules)
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


def _namespace_secrets(
    namespace: Mapping[str, Any], rules: SecretRules
) -> Iterator[tuple[str, Any]]:
    """(label, value) of str values held under secret-looking names, two dict levels deep.

    Only exact ``dict`` objects are opened (through ``dict.items``), so no user code runs.
    """
    for name, value in _items(namespace):
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
