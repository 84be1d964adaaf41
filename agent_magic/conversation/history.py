"""What a conversation remembers across cells: :class:`History`.

Its messages, replies and steps, each message's :data:`~agent_magic.window.Kind` label for
fitting, and the wording for why a reply was cut off (:func:`cut_off_why`). Not here:
the loop that appends to it (:mod:`.loop`), fitting it to a window
(:mod:`agent_magic.window`), keeping one per kernel (:mod:`agent_magic.session`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ..window import Kind
from .seams import ChatReply


@dataclass
class History:
    """What a conversation remembers across cells: the messages sent, the replies got,
    the steps taken. One lives per kernel (see :class:`~agent_magic.session.Session`);
    each cell's :class:`Conversation` appends to it.

    ``kinds`` labels each message for :func:`agent_magic.window.fit` (system, task,
    reply, output, feedback), parallel to ``messages``; :meth:`add` keeps them in step.
    ``trim_noted`` is set once the user has been told the conversation was trimmed;
    ``window_cap`` is the size a retry after a context-length error fitted to, which
    later requests keep to (the server may never say its size).
    """

    messages: list[dict[str, Any]] = field(default_factory=list)
    replies: list[ChatReply] = field(default_factory=list)
    steps_taken: int = 0
    kinds: list[Kind] = field(default_factory=list)
    trim_noted: bool = False
    window_cap: int | None = None  # the window a context-length error taught, if any
    _forms: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)

    def add(self, message: dict[str, Any], kind: Kind) -> None:
        self.labels()  # catch up first, should anyone have appended a bare message
        self.messages.append(message)
        self.kinds.append(kind)

    def labels(self) -> list[Kind]:
        """``kinds``, made to match ``messages`` (messages appended without a kind are
        labelled by their role; dropped ones drop their labels)."""
        if len(self.kinds) > len(self.messages):
            del self.kinds[len(self.messages) :]
        for message in self.messages[len(self.kinds) :]:
            self.kinds.append(_kind_of(message))
        return self.kinds

    def interned(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """``messages`` with each shortened or summary form that was sent before replaced
        by the very dict sent then. What goes out is the same; but the redaction memo,
        the request keys and the recording (which writes what follows the previous
        request's identical messages) then see one object per form, not a new one per
        request, so they stay cheap and small over a long trimmed conversation."""
        own = {id(m) for m in self.messages}
        out = []
        for message in messages:
            if id(message) not in own:
                key = json.dumps(message, sort_keys=True, default=str)
                message = self._forms.setdefault(key, message)
            out.append(message)
        if len(self._forms) > _FORMS_KEPT:  # forms long out of use: start afresh
            self._forms = {}
        return out

    def truncate(self, length: int) -> None:
        del self.messages[length:]
        del self.kinds[length:]

    def reset(self) -> None:
        self.messages.clear()
        self.replies.clear()
        self.kinds.clear()
        self.steps_taken = 0
        self.trim_noted = False
        self.window_cap = None
        self._forms = {}


def _kind_of(message: dict[str, Any]) -> Kind:
    role = message.get("role")
    if role == "system":
        return "system"
    if role == "assistant":
        return "reply"
    if role == "tool":
        return "output"
    return "feedback"


_FORMS_KEPT = 4096  # shortened forms History.interned remembers

# Why a reply was cut off, said to the model and to the person reviewing it.
CUT_OFF_WHY = {
    "length": "it reached the token limit",
    "content_filter": "the server's content filter stopped it",
    "incomplete stream": "the stream ended before the reply was complete",
    "unfinished thinking": "it ended inside its thinking (<think> without </think>)",
}


def cut_off_why(cut_off: str) -> str:
    return CUT_OFF_WHY.get(cut_off, cut_off)
