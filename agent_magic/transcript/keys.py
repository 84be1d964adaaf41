"""Request keys: what makes two requests "the same" for the cache and the replay.

:func:`normalize` masks what legitimately differs between two runs of one notebook;
:class:`Keyer` hashes requests (``replay key``: messages and tools; ``cache key``: those
plus model, parameters and seed). Never a credential. Not here: the file (:mod:`.store`).
"""

from __future__ import annotations

import hashlib
import operator
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
    cheap; any other message is hashed as it comes.

    A request starts with the previous request's messages (the very same objects) and
    adds one or two: the hash of those it shares is taken up where the previous one
    left it, so a request costs what it adds, not the length of the conversation. Only
    history messages (read-only) are kept for that; a list with any other dict, or one
    that does not start with the kept messages, is hashed whole.
    """

    def __init__(self) -> None:
        self._kept: list[SentMessage] = []
        self._hashed = hashlib.sha256()  # of "fingerprint\n" of each kept message

    @staticmethod
    def message_digest(message: Mapping[str, Any]) -> str:
        if isinstance(message, SentMessage):
            return message.record.fingerprint
        return fingerprint(message)

    def replay_key(
        self, messages: Iterable[Mapping[str, Any]], tools: list[dict[str, Any]] | None
    ) -> str:
        # sha("\n".join(fingerprints + [the tools' digest])), fed piece by piece: the
        # pieces are hex digits, so hashing them one by one gives the same bytes.
        messages = list(messages)
        kept = self._kept
        if kept and len(messages) >= len(kept) and all(map(operator.is_, messages, kept)):
            hashed, added = self._hashed.copy(), messages[len(kept) :]
        else:
            hashed, added = hashlib.sha256(), messages
        keep = True
        for message in added:
            if isinstance(message, SentMessage):
                digest = message.record.fingerprint
            else:
                digest, keep = fingerprint(message), False
            hashed.update(f"{digest}\n".encode())
        if keep:
            self._kept, self._hashed = messages, hashed.copy()
        hashed.update((_NO_TOOLS if not tools else sha(canonical(tools))).encode())
        return hashed.hexdigest()

    @staticmethod
    def cache_key(rkey: str, model: str, params: Mapping[str, Any], seed: int | None) -> str:
        return sha(canonical({"request": rkey, "model": model, "params": params, "seed": seed}))

    def forget(self) -> None:
        """Drop the hash kept for the next request (a new conversation)."""
        self._kept, self._hashed = [], hashlib.sha256()


_NO_TOOLS = sha(canonical([]))
