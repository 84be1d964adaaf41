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

import operator
from collections.abc import Iterable, Mapping
from typing import Any

from ..conversation import ChatClient, ChatWrapper, SentMessage
from ..secrets import DEFAULT_RULES, Redactor, SecretRules

__all__ = ["RedactingChat", "Redactor", "cell_redactor"]


def cell_redactor(
    chat: ChatClient | None = None,
    namespace: Mapping[str, Any] | None = None,
    *,
    values: Iterable[str | None] = (),
    rules: SecretRules = DEFAULT_RULES,
) -> Redactor:
    """The rules for one cell: the environment's secrets, ``chat``'s configured API keys
    (its ``endpoints``), other ``values`` to hide (the key typed with ``%agent key``) and
    the secret-named variables of ``namespace``, under ``rules``."""
    keys = [e.api_key or "" for e in (chat.endpoints if chat is not None else ())]
    keys.extend(value or "" for value in values)
    return Redactor.build(namespace=namespace, values=keys, rules=rules)


class RedactingChat(ChatWrapper):
    """A chat client that hides secrets in every message before ``inner`` sends it.

    The one place where everything sent to the model passes: the task, the namespace
    summary, step outputs, tracebacks and feedback are all messages. A message of the
    history is redacted once (its record keeps the form, :meth:`Message.redacted`, which
    the recorder writes too); the history keeps the original, so request keys (cache,
    replay) do not depend on the rules.
    """

    def __init__(self, inner: ChatClient, redactor: Redactor) -> None:
        super().__init__(inner)
        self.redactor = redactor
        # The previous request's history messages, their redacted forms and the values
        # they were hidden with: a request that starts with the same messages (the same
        # objects, under the same values) takes those forms as they are, so it costs
        # what it adds, not the length of the conversation.
        self._kept: tuple[list[Any], list[Any], Any] = ([], [], None)

    def _clean(self, message: Mapping[str, Any]) -> Any:
        if isinstance(message, SentMessage):  # the history's: its redacted form is kept
            return message.record.redacted(self.redactor)
        return self.redactor.redact_json(message)

    def stream(self, messages: list[dict[str, Any]], *, tools: Any = None) -> Any:
        messages = list(messages)
        kept, forms, values = self._kept
        n = len(kept)
        if (
            n
            and values is self.redactor.values
            and len(messages) >= n
            and all(map(operator.is_, messages, kept))
        ):
            added = messages[n:]
            clean = forms + [self._clean(m) for m in added]
        else:
            added = messages
            clean = [self._clean(m) for m in messages]
        if all(isinstance(m, SentMessage) for m in added):  # read-only: safe to keep
            self._kept = (messages, clean, self.redactor.values)
        return self.inner.stream(list(clean), tools=tools)
