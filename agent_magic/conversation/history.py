"""What a conversation remembers across cells: :class:`History`.

Its messages (:class:`Message` records, each rendered once as the :class:`SentMessage`
the API takes), replies and steps, and the wording for why a reply was cut off
(:func:`cut_off_why`). Not here: the loop that appends to it (:mod:`.loop`), fitting it
to a window (:mod:`agent_magic.window`), keeping one per kernel (:mod:`agent_magic.session`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from ..text import fingerprint
from ..window import Kind
from .seams import ChatReply, ToolCallRequest


class SentMessage(dict):  # type: ignore[type-arg]
    """A message as the API takes it, rendered once from its :class:`Message` and knowing
    it: whoever is handed the dict (the chat clients, the request keys, the recorder)
    reads the record's fingerprint and redacted form instead of working them out again.

    Read-only: changing it raises TypeError, so the fingerprint and the redacted form
    worked out from it stay true (a changed copy is ``dict(message) | {...}``; a copy,
    ``copy.copy`` or a pickle gives a plain dict). It stays a ``dict`` so that whatever
    serializes JSON (``json``, httpx, the openai SDK, the recording) takes it as it is,
    and the same object is sent every request, which is how the recorder sees which
    messages a request shares with the one before.
    """

    __slots__ = ("record",)

    def __init__(self, record: Message, fields: Mapping[str, Any]) -> None:
        super().__init__(fields)  # dict's own fill: none of the methods refused below
        self.record = record

    def _read_only(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError("a sent message is read-only; change a copy: dict(message) | {...}")

    __setitem__ = __delitem__ = __ior__ = _read_only
    clear = pop = popitem = setdefault = update = _read_only

    def __reduce__(self) -> tuple[Any, ...]:
        return (dict, (dict(self),))


@dataclass(frozen=True, eq=False)
class Message:
    """One message of a conversation, the one source of its views: :attr:`sent` (the dict
    sent to the API), :attr:`fingerprint` (its request-key hash) and :meth:`redacted` (the
    dict with secrets hidden, for the model and the recording), each worked out once.

    ``kind`` is its :data:`~agent_magic.window.Kind` for fitting (system, task, reply,
    output, feedback; "summary" for a form :func:`agent_magic.window.fit` wrote).
    ``content`` is text, or a list of parts (text and images). ``reasoning_items`` are
    what a Responses API reply reasoned, sent back untouched with the assistant turn;
    the model's thinking text is never part of a message.
    """

    role: str
    kind: Kind
    content: Any = ""
    tool_calls: tuple[ToolCallRequest, ...] = ()
    tool_call_id: str | None = None
    reasoning_items: tuple[Any, ...] = ()

    @classmethod
    def reply(cls, reply: ChatReply) -> Message:
        """The assistant's turn in the history, from its reply."""
        return cls(
            "assistant",
            "reply",
            reply.content,
            tuple(reply.tool_calls),
            reasoning_items=tuple(reply.reasoning_items),
        )

    @classmethod
    def of(cls, sent: Mapping[str, Any], kind: Kind) -> Message:
        """The record of a message given as the API takes it (a shortened or summary form
        that window fitting wrote, a message built by hand); its :attr:`sent` is that dict."""
        calls = tuple(
            ToolCallRequest(
                str(call.get("id") or ""),
                str(call.get("function", {}).get("name") or ""),
                str(call.get("function", {}).get("arguments") or ""),
            )
            for call in sent.get("tool_calls") or ()
        )
        record = cls(
            str(sent.get("role") or ""),
            kind,
            sent.get("content"),
            calls,
            sent.get("tool_call_id"),
            tuple(sent.get("reasoning_items") or ()),
        )
        record.__dict__["sent"] = SentMessage(record, sent)
        return record

    @cached_property
    def sent(self) -> SentMessage:
        fields: dict[str, Any] = {"role": self.role}
        if self.tool_call_id is not None:
            fields["tool_call_id"] = self.tool_call_id
        fields["content"] = self.content
        if self.reasoning_items:  # the API's own reasoning, sent back untouched (Responses)
            fields["reasoning_items"] = list(self.reasoning_items)
        if self.tool_calls:
            fields["tool_calls"] = [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments},
                }
                for call in self.tool_calls
            ]
        return SentMessage(self, fields)

    @cached_property
    def fingerprint(self) -> str:
        """The SHA-256 the request keys are made of (run-to-run noise masked)."""
        return fingerprint(self.sent)

    def redacted(self, redactor: Any) -> Any:
        """:attr:`sent` with ``redactor``'s secrets hidden (the very dict when it hides
        none), worked out once per redactor and its values (a refresh that finds new
        secrets works it out again)."""
        kept = self.__dict__.get("_redacted")
        if kept is not None and kept[0] is redactor and kept[1] is redactor.values:
            return kept[2]
        # One pass over the JSON text (the rules know how values look inside it) says
        # whether anything is hidden, for a fraction of one pass per string.
        text = json.dumps(self.sent, ensure_ascii=False)
        form = self.sent if redactor.redact(text) == text else redactor.redact_json(self.sent)
        self.__dict__["_redacted"] = (redactor, redactor.values, form)
        return form

    @property
    def text(self) -> str:
        """The content as text (the text parts of a list joined by spaces)."""
        if isinstance(self.content, list):
            return " ".join(
                str(part.get("text", "")) for part in self.content if isinstance(part, Mapping)
            )
        return str(self.content or "")


@dataclass
class History:
    """What a conversation remembers across cells: the messages sent (:class:`Message`
    records), the replies got, the steps taken. One lives per kernel (see
    :class:`~agent_magic.session.Session`); each cell's :class:`Conversation` appends to it.

    ``trim_noted`` is set once the user has been told the conversation was trimmed;
    ``window_cap`` is the size a retry after a context-length error fitted to, which
    later requests keep to (the server may never say its size).
    """

    records: list[Message] = field(default_factory=list)
    replies: list[ChatReply] = field(default_factory=list)
    steps_taken: int = 0
    trim_noted: bool = False
    window_cap: int | None = None  # the window a context-length error taught, if any
    # Shortened and summary forms window fitting wrote, by their JSON text.
    _forms: dict[str, Message] = field(default_factory=dict, repr=False)

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The messages as the API takes them, rendered from the records."""
        return [record.sent for record in self.records]

    @property
    def kinds(self) -> list[Kind]:
        return [record.kind for record in self.records]

    def add(self, message: Message) -> None:
        self.records.append(message)

    def interned(self, messages: Sequence[Mapping[str, Any]], kinds: Sequence[Kind]) -> list[Any]:
        """``messages`` (fitted to a window, with their ``kinds``) as messages of records:
        each shortened or summary form that was sent before is the very one sent then. What
        goes out is the same; but its fingerprint and redacted form are worked out once,
        and the recording (which writes what follows the previous request's identical
        messages) sees one object per form, not a new one per request, so it stays cheap
        and small over a long trimmed conversation."""
        out = []
        for message, kind in zip(messages, kinds, strict=True):
            if not isinstance(message, SentMessage):
                key = json.dumps(message, sort_keys=True, default=str)
                form = self._forms.get(key)
                if form is None:
                    form = self._forms[key] = Message.of(message, kind)
                message = form.sent
            out.append(message)
        if len(self._forms) > _FORMS_KEPT:  # forms long out of use: start afresh
            self._forms = {}
        return out

    def open_tool_calls(self) -> list[str | None]:
        """The ids of the last reply's tool calls that no tool message answers yet."""
        answered: set[str | None] = set()
        for message in reversed(self.records):
            if message.role == "tool":
                answered.add(message.tool_call_id)
            elif message.role == "assistant":
                return [call.id for call in message.tool_calls if call.id not in answered]
            else:
                break
        return []

    def truncate(self, length: int) -> None:
        del self.records[length:]

    def reset(self) -> None:
        self.records.clear()
        self.replies.clear()
        self.steps_taken = 0
        self.trim_noted = False
        self.window_cap = None
        self._forms = {}


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
