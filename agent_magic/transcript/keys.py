"""Request keys: what makes two requests "the same" for the cache and the replay.

:func:`normalize` masks what legitimately differs between two runs of one notebook
(and a task's blocks about the notebook itself, earlier cells and Markdown, are left out);
:class:`Keyer` hashes requests (``replay key``: messages and tools; ``cache key``: those
plus model, parameters and seed). Never a credential. Not here: the file (:mod:`.store`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from ..text import escape_surrogates, normalize_volatile


def normalize(text: str) -> str:
    """A request's text with run-to-run noise masked (IPython's cell numbers in tracebacks,
    object addresses, kernel and install paths), so a replay on another machine, or after
    running cells out of order, still matches. Linear time (see
    :func:`agent_magic.text.normalize_volatile`)."""
    return normalize_volatile(text)


def normalized(value: Any) -> Any:
    if isinstance(value, str):
        return normalize(value)
    if isinstance(value, Mapping):
        return {k: normalized(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [normalized(v) for v in value]
    return value


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


# The blocks a task carries about the notebook itself (agent_magic.context.block writes
# them last): the code of earlier cells and the saved notebook's Markdown. They depend on
# the frontend (JupyterLab names the notebook, nbconvert does not) and on execution
# counts, not on the conversation, so a replay matches without them.
_NOTEBOOK_BLOCKS = ("\n\nCode run before this cell", "\n\nThe Markdown cells of the notebook")


def _without_notebook(message: Mapping[str, Any]) -> Mapping[str, Any]:
    content = message.get("content")
    if message.get("role") != "user" or not isinstance(content, str):
        return message
    found = [at for at in (content.find(block) for block in _NOTEBOOK_BLOCKS) if at >= 0]
    return {**message, "content": content[: min(found)]} if found else message


def _sha(text: str) -> str:
    # A lone surrogate (a non-UTF-8 file name printed by a step) hashes as its escape.
    return hashlib.sha256(escape_surrogates(text).encode("utf-8")).hexdigest()


class Keyer:
    """Hashes requests; each message is hashed once, so a long conversation stays cheap."""

    def __init__(self) -> None:
        self._memo: dict[int, tuple[Mapping[str, Any], str]] = {}

    def message_digest(self, message: Mapping[str, Any]) -> str:
        # Messages are appended and never changed, so identity is a safe memo key (the
        # memo holds a reference, so an id cannot be reused while it is cached).
        cached = self._memo.get(id(message))
        if cached is not None and cached[0] is message:
            return cached[1]
        digest = _sha(canonical(normalized(_without_notebook(message))))
        self._memo[id(message)] = (message, digest)
        return digest

    def replay_key(
        self, messages: Iterable[Mapping[str, Any]], tools: list[dict[str, Any]] | None
    ) -> str:
        parts = [self.message_digest(m) for m in messages]
        parts.append(_sha(canonical(tools or [])))
        return _sha("\n".join(parts))

    @staticmethod
    def cache_key(rkey: str, model: str, params: Mapping[str, Any], seed: int | None) -> str:
        return _sha(canonical({"request": rkey, "model": model, "params": params, "seed": seed}))

    def forget(self) -> None:
        self._memo.clear()
