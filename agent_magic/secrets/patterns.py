"""The rules: which names look secret, which value shapes are credentials, and
:class:`SecretRules`, the rules as data that users extend (see the package docstring).

Not here: finding and replacing values in text (:mod:`.redactor`).
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace

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
# What all of a shape's needles share, looked for first when it is cheaper than they are:
# ``"ghp_" in text`` reads a digit-heavy log at ~3 ns a character, ``"gh"`` at ~1.
_GATES: dict[str, str] = {
    regex: gate
    for regex, needles in _NEEDLES.items()
    if len(needles) > 1 and len(gate := os.path.commonprefix(needles)) > 1
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
    _compiled: tuple[tuple[str, re.Pattern[str], tuple[str, ...], str], ...] = field(
        default=(), init=False, repr=False, compare=False
    )
    # Names already judged: a summary asks about the same few names again and again.
    _names: dict[str, bool] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        compiled = []
        for label, pattern in self.shapes:
            try:
                compiled.append(
                    (label, re.compile(pattern), _NEEDLES.get(pattern, ()), _GATES.get(pattern, ""))
                )
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
        for label, pattern, needles, gate in self._compiled:
            if gate and gate not in text:
                continue
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

# For the one-line messages the extension words from what a server or a config said: the
# default rules, plus any ``sk-`` word (servers echo a refused key masked, as in
# "sk-proj-abc***xyz") and whatever follows ``Bearer``, and values from 4 characters. Not
# for a step's output, where ``sk-learn`` is a word.
MESSAGE_RULES = replace(
    DEFAULT_RULES.extended(
        patterns={"api key": r"sk-[A-Za-z0-9_\-*.]{3,}", "bearer token": r"Bearer\s+\S+"}
    ),
    min_length=4,
)


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
