"""What is never written or sent: today's secret rules, behind the ``Redactor`` shape.

One :class:`Redactor` is built per cell by the session and used by every place text
leaves the kernel or is saved: the requests sent to the model (a redacting chat client),
the recording, and so the log and the export, which read the recording's records.

The rules (unchanged from before the redesign): values of environment variables whose
names look secret (KEY, TOKEN, SECRET, PASSWORD, PASSWD, CREDENTIAL) and configured API
keys, 8 characters or more, become ``***``; OpenAI-shaped keys (``sk-...``) anywhere
become ``sk-***``. ``agent_magic.secrets`` (the secrets helper) extends these rules with
the same interface; this module then only adapts it.

Not here: where the rules are applied (the session wires them).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

_SECRET_NAMES = re.compile(r"key|token|secret|password|passwd|credential", re.IGNORECASE)
# OpenAI-style keys, whoever holds them; the word boundary keeps "task-..." text intact.
_KEY_SHAPED = re.compile(r"(?<![A-Za-z0-9])sk-[A-Za-z0-9][A-Za-z0-9_\-]{15,}")


def secrets_from(env: Mapping[str, str] | None = None, chat: Any = None) -> tuple[str, ...]:
    """Values never to write: key-like environment variables and configured api keys."""
    env = os.environ if env is None else env
    found = {value for name, value in env.items() if _SECRET_NAMES.search(name)}
    for endpoint in getattr(chat, "endpoints", ()) or ():
        found.add(getattr(endpoint, "api_key", None) or "")
    # Longest first, so a key that contains another is replaced whole.
    return tuple(sorted((s for s in found if len(s) >= 8), key=len, reverse=True))


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, "***")
    return _KEY_SHAPED.sub("sk-***", text)


class Redactor:
    """Hides the given secret values and key-shaped strings in text and JSON values."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        self.values = tuple(sorted({v for v in values if len(v) >= 8}, key=len, reverse=True))
        self.hidden = 0  # values hidden so far

    @classmethod
    def build(
        cls, *, env: Mapping[str, str] | None = None, values: Iterable[str] = (), chat: Any = None
    ) -> Redactor:
        """The rules for this cell: the environment's secrets, the chat's keys, ``values``."""
        return cls((*secrets_from(env, chat), *values))

    def needs(self, text: str) -> bool:
        """Whether :meth:`redact` would change ``text`` (cheaper than redacting)."""
        return any(v in text for v in self.values) or _KEY_SHAPED.search(text) is not None

    def redact(self, text: str) -> str:
        if not self.needs(text):
            return text
        for value in self.values:
            self.hidden += text.count(value)
            text = text.replace(value, "***")
        text, shaped = _KEY_SHAPED.subn("sk-***", text)
        self.hidden += shaped
        return text

    def redact_json(self, value: Any) -> Any:
        """``value`` with every string in it (deep, through dicts and lists) redacted."""
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, Mapping):
            return {k: self.redact_json(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.redact_json(v) for v in value]
        return value


class RedactingChat:
    """A chat client that hides secrets in every message before ``inner`` sends it.

    The one place where everything sent to the model passes: the task, the namespace
    summary, step outputs, tracebacks and feedback are all messages. Each message is
    redacted once (messages are appended and never changed, so identity is a safe memo
    key while the memo holds a reference); the caller's history keeps the original, so
    request keys (cache, replay) do not depend on the rules.
    """

    def __init__(self, inner: Any, redactor: Redactor) -> None:
        self.inner = inner
        self.redactor = redactor
        self._memo: dict[int, tuple[Mapping[str, Any], Any]] = {}

    @property
    def model(self) -> str:
        return self.inner.model

    @property
    def params(self) -> dict[str, Any]:
        return dict(getattr(self.inner, "params", None) or {})

    @property
    def endpoints(self) -> Any:
        return getattr(self.inner, "endpoints", ())

    def _clean(self, message: Mapping[str, Any]) -> Any:
        cached = self._memo.get(id(message))
        if cached is not None and cached[0] is message:
            return cached[1]
        clean = self.redactor.redact_json(message)
        self._memo[id(message)] = (message, clean)
        return clean

    def stream(self, messages: list[dict[str, Any]], *, tools: Any = None) -> Any:
        return self.inner.stream([self._clean(m) for m in messages], tools=tools)
