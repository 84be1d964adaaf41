"""Request keys: what makes two requests "the same" for the cache and the replay.

:func:`normalize` masks what legitimately differs between two runs of one notebook;
:class:`Keyer` hashes requests (``replay key``: messages and tools; ``cache key``: those
plus model, parameters and seed). Never a credential. Not here: the file (:mod:`.store`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..conversation import SentMessage
from ..text import canonical, fingerprint, normalize_volatile, sha


def normalize(text: str) -> str:
    """A request's text with run-to-run noise masked (IPython's cell numbers in tracebacks,
    object addresses, kernel and install paths), so a replay on another machine, or after
    running cells out of order, still matches. Linear time (see
    :func:`agent_magic.text.normalize_volatile`)."""
    return normalize_volatile(text)


class Keyer:
    """Hashes requests. A message of the history carries its fingerprint, computed once
    (:attr:`agent_magic.conversation.Message.fingerprint`), so a long conversation stays
    cheap; any other message is hashed as it comes."""

    @staticmethod
    def message_digest(message: Mapping[str, Any]) -> str:
        if isinstance(message, SentMessage):
            return message.record.fingerprint
        return fingerprint(message)

    def replay_key(
        self, messages: Iterable[Mapping[str, Any]], tools: list[dict[str, Any]] | None
    ) -> str:
        parts = [self.message_digest(m) for m in messages]
        parts.append(sha(canonical(tools or [])))
        return sha("\n".join(parts))

    @staticmethod
    def cache_key(rkey: str, model: str, params: Mapping[str, Any], seed: int | None) -> str:
        return sha(canonical({"request": rkey, "model": model, "params": params, "seed": seed}))

    def forget(self) -> None:
        """Nothing to forget: the fingerprints live on the messages."""
