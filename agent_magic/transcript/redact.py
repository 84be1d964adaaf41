"""What is never sent or written: the cell's one :class:`Redactor` and the client that applies it.

The rules live in :mod:`agent_magic.secrets` (environment variables with secret-looking
names, configured API keys, secret-named variables in the namespace, credential-shaped
strings); :func:`cell_redactor` builds the one :class:`Redactor` a cell uses, and the
session hands it to :class:`RedactingChat` (everything sent to the model passes there)
and to the recorder (so the recording, and the log and export read from it, hide the
same values with the same markers).

Not here: the rules themselves (:mod:`agent_magic.secrets`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ..secrets import Redactor

__all__ = ["RedactingChat", "Redactor", "cell_redactor"]


def cell_redactor(chat: Any = None, namespace: Mapping[str, Any] | None = None) -> Redactor:
    """The rules for one cell: the environment's secrets, ``chat``'s configured API keys
    (its ``endpoints``), and the secret-named variables of ``namespace``."""
    keys = [getattr(e, "api_key", None) or "" for e in getattr(chat, "endpoints", ()) or ()]
    return Redactor.build(namespace=namespace, values=keys)


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

    def context_window(self, *, ask_server: bool = True) -> int | None:
        """The inner client's context window (None when it knows none)."""
        from .replay import _context_window

        return _context_window(self.inner, ask_server)

    def _clean(self, message: Mapping[str, Any]) -> Any:
        cached = self._memo.get(id(message))
        if cached is not None and cached[0] is message:
            return cached[1]
        # One pass over the message's JSON text (the rules read values inside JSON) costs
        # less than one per string; the message itself is sent when nothing was hidden.
        text = json.dumps(message, ensure_ascii=False)
        hidden = self.redactor.redact(text)
        try:
            clean = message if hidden == text else json.loads(hidden)
        except ValueError:  # a marker broke the JSON: hide string by string instead
            clean = self.redactor.redact_json(message)
        self._memo[id(message)] = (message, clean)
        return clean

    def stream(self, messages: list[dict[str, Any]], *, tools: Any = None) -> Any:
        return self.inner.stream([self._clean(m) for m in messages], tools=tools)
