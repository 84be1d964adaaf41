"""The seam fake: :class:`ScriptedChat`, a scripted chat client with no HTTP at all.

For tests of the conversation loop and of other edges; :class:`ScriptedCall` records
each request. Not here: the wire-level fake (:class:`~.server.FakeOpenAIServer`), which
end-to-end tests of ``%%agent`` use instead.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..conversation.seams import ChatBase


@dataclass(frozen=True)
class ScriptedCall:
    """One request a :class:`ScriptedChat` was asked: the messages (copied) and tools."""

    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] | None


class ScriptedChat(ChatBase):
    """A scripted :class:`~agent_magic.conversation.ChatClient`: the loop's seam, faked.

    Like simonw/llm's ``MockModel``: enqueue the replies, run the loop, then read what it
    was asked. No HTTP, no openai; for tests of the conversation loop and of your own
    edges (a UI, an executor). For end-to-end tests of ``%%agent`` serve the wire with
    :class:`FakeOpenAIServer` instead.

    Each queued item answers one request, in order:

    * ``str``: a reply streamed in ``chunks`` deltas, then the whole
      :class:`~agent_magic.conversation.ChatReply`;
    * a ``ChatReply`` (tool calls, usage, a finish reason, ``thinking``): its thinking
      first as one :class:`~agent_magic.conversation.ThinkingDelta`, then the reply as it
      is (a ``str`` may also hold inline ``<think>...</think>``, as local servers send);
    * an exception (e.g. ``ChatError("model down")``, ``KeyboardInterrupt()``): raised.

    A request with nothing queued raises ``ChatError`` naming the request. ``calls``
    keeps every request (``seen`` its messages only)::

        from agent_magic.conversation import Conversation, drive
        from agent_magic.testing import ScriptedChat

        chat = ScriptedChat("```python\\nx = 1\\n```", "x is 1. TERMINATE")
        conversation = Conversation(chat, my_executor, mode="never")
        finished = drive(conversation.run("set x"), lambda event: None)
        assert finished.reason == "terminated" and len(chat.calls) == 2
        assert "x = 1" in chat.calls[1].messages[-2]["content"]
    """

    def __init__(self, *replies: Any, model: str = "scripted", chunks: int = 2) -> None:
        self.model = model
        self.chunks = max(1, chunks)
        self.calls: list[ScriptedCall] = []
        self._queue: deque[Any] = deque()
        self.enqueue(*replies)

    def enqueue(self, *replies: Any) -> ScriptedChat:
        """Queue replies (str, ChatReply or an exception to raise); returns self."""
        self._queue.extend(replies)
        return self

    @property
    def seen(self) -> list[list[dict[str, Any]]]:
        """The messages of every request, in order."""
        return [call.messages for call in self.calls]

    @property
    def pending(self) -> int:
        """How many queued replies are still unused."""
        return len(self._queue)

    def stream(
        self, messages: list[dict[str, Any]], *, tools: list[dict[str, Any]] | None = None
    ) -> Iterable[Any]:
        from ..conversation import ChatError, ChatReply, ThinkingDelta

        self.calls.append(ScriptedCall([dict(m) for m in messages], tools))
        if not self._queue:
            raise ChatError(f"ScriptedChat: no scripted reply left for request {len(self.calls)}")
        reply = self._queue.popleft()
        if isinstance(reply, BaseException):
            raise reply
        if isinstance(reply, str):
            size = -(-len(reply) // self.chunks) or 1
            for start in range(0, len(reply), size):
                yield reply[start : start + size]
            reply = ChatReply(reply, model=self.model)
        elif isinstance(reply, ChatReply) and reply.thinking:
            yield ThinkingDelta(reply.thinking)
        yield reply
