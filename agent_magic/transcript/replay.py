"""Answering from the recording: the seeded cache and the replay, as chat clients.

* :class:`CachedChat` - the same request (model, messages, parameters, seed) gets the
  reply recorded for it without calling the model; other requests go through.
* :class:`Replay` - answers only from the recording: every request by its replay key,
  every review with the decision recorded on that request's reply. A pure lookup from
  the request (or the request key) it is given: it keeps no state between calls. With
  ``decisions=False`` (``--replay-replies``) it plays the replies only and a person makes
  the decisions; where they lead off the recording (or a re-run no longer matches it),
  the cell ends as stopped, not failed, with one line that says it cannot follow and how
  to go on with a model, naming what turned the replay on (``off``).

Not here: writing the recording (:mod:`.recorder`), the file (:mod:`.store`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from ..conversation import (
    ChatBase,
    ChatClient,
    ChatError,
    ChatReply,
    ChatStopped,
    ChatWrapper,
    Decided,
    Decision,
    ThinkingDelta,
)
from .keys import Keyer
from .store import Recorded, Store


class CachedChat(ChatWrapper):
    """The seeded cache: the same request (model, messages, parameters, seed) gets the
    reply recorded for it, without calling the model; other requests go through."""

    def __init__(self, inner: ChatClient, store: Store, keyer: Keyer, seed: int) -> None:
        super().__init__(inner)
        self.store = store
        self.keyer = keyer
        self.seed = seed

    def stream(
        self, messages: list[dict[str, Any]], *, tools: list[dict[str, Any]] | None = None
    ) -> Iterator[str | ThinkingDelta | ChatReply]:
        rkey = self.keyer.replay_key(messages, tools)
        hit = self.store.cached.get(self.keyer.cache_key(rkey, self.model, self.params, self.seed))
        if hit is None:
            yield from self.inner.stream(messages, tools=tools)
            return
        reply = replace(hit.reply, source="cache")
        yield from _deltas(reply)
        yield reply


def _deltas(reply: ChatReply) -> Iterator[str | ThinkingDelta]:
    """A recorded reply streamed again: its thinking (as it was recorded), then its text."""
    if reply.thinking:
        yield ThinkingDelta(reply.thinking)
    if reply.content:
        yield reply.content


class Replay(ChatBase):
    """Answers every request from the recording, and every review with the recorded
    decision. It never calls a model: a request that is not in the recording (the task,
    the namespace or a step's output changed) is a one-line error naming the step."""

    model = "replay"

    def __init__(
        self,
        store: Store,
        keyer: Keyer,
        *,
        decisions: bool = True,
        off: str = "run %%agent without --replay-replies",
    ) -> None:
        self.store = store
        self.keyer = keyer
        self.decisions = decisions  # False: the replies only; a person decides each step
        self.off = off  # how to turn the replay of replies off (what turned it on)

    def stream(
        self, messages: list[dict[str, Any]], *, tools: list[dict[str, Any]] | None = None
    ) -> Iterator[str | ThinkingDelta | ChatReply]:
        # The step a request asks for: one reply (one assistant message) per step before it.
        step = 1 + sum(1 for m in messages if m.get("role") == "assistant")
        entry = self.store.replies.get(self.keyer.replay_key(messages, tools))
        if entry is None:
            if not self.decisions and step > 1:
                raise ChatStopped(self._cannot_follow(step, messages, tools))
            if not self.decisions:  # a person's earlier decisions changed the task's context
                said = self.store.explain_drift(step, messages)
                drift = said.rpartition("; ")[0] or said
                raise ChatStopped(f"{drift}; {self._way_on()}")
            raise ChatError(self.store.explain_drift(step, messages))
        if entry.decision is None and self.decisions:
            raise ChatError(
                f"replay: the recording stops at step {step} before a decision was "
                "made (it was interrupted there); re-run without replay to record the rest"
            )
        reply = replace(entry.reply.reply, source="replay")
        yield from _deltas(reply)
        yield reply

    def _cannot_follow(
        self, step: int, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None
    ) -> str:
        """The one line for a request the person's decisions led to, off the recording."""
        last = max(i for i, m in enumerate(messages) if m.get("role") == "assistant")
        before = self.store.replies.get(self.keyer.replay_key(messages[:last], tools))
        recorded = before.decision.label if before and before.decision else None
        how = f"at step {step - 1} it has {recorded!r}" if recorded else f"it has no step {step}"
        went = f"({how}; this run went another way)"
        return f"replay: the recording cannot follow from here {went}; {self._way_on()}"

    def _way_on(self) -> str:
        return (
            "to go on with a model, set OPENAI_API_KEY or run %agent key, then "
            f"{self.off}: the conversation so far is kept"
        )

    def _entry(self, rkey: str) -> Recorded | None:
        entry = self.store.replies.get(rkey)
        return entry if entry is not None and entry.decision is not None else None

    def decide(self, rkey: str) -> Decision:
        """The decision recorded on the reply to the request with replay key ``rkey``."""
        entry = self._entry(rkey)
        if entry is None or entry.decision is None:
            raise ChatError("replay: no recorded decision for this step")
        return entry.decision.decision

    def as_recorded(self, event: Decided, rkey: str) -> Decided:
        """The decision as it was taken when recorded (by the mode, or by a person)."""
        entry = self._entry(rkey)
        if entry is None or entry.decision is None:
            return event
        return replace(event, automatic=entry.decision.automatic)
