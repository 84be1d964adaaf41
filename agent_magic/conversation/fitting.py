"""Each request fitted to the context window: which window (:func:`request_window`) and
the messages sent in it (:func:`fitted_request`, with the one-line note the first time
the conversation was trimmed). The fitting itself is :func:`agent_magic.window.fit`;
the loop that asks is :mod:`.loop`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ..window import estimate_tokens, fit
from .history import History
from .seams import ChatClient

# A request estimated above this many tokens asks an endpoint whose window is not known
# otherwise (a local server under a model name no table knows) for its size. Below it no
# probe is sent: such a request fits the windows local servers usually run with, and a
# smaller one (llama.cpp with --n_ctx 1024) names its size in its context-length error,
# which trims and asks again. Probing every unknown model's first request cost each cell
# a handful of GETs, and seconds on a server that hangs.
_PROBE_ABOVE = 3072


def request_window(
    chat: ChatClient, history: History, context_window: int | None, messages: list[Any]
) -> int | None:
    """The window to fit to: the one set for the conversation, else the client's (asked
    of the server only for a request that may not fit a local server's usual window),
    capped by what a context-length error taught; None when nothing says."""
    window = context_window
    if not window:
        # Without a network probe first: config lists, learned sizes, known models.
        window = chat.context_window(ask_server=False)
        if window is None and estimate_tokens(messages) > _PROBE_ABOVE:
            window = chat.context_window()  # asks each endpoint once (the client caches)
    cap = history.window_cap
    return cap if cap and (window is None or cap < window) else window


def reply_room(window: int, room: int | None) -> int:
    """What is kept free for the reply: ``room`` when set, else a quarter of the window
    (at most 4,096 tokens)."""
    return room if room is not None else min(window // 4, 4096)


def fitted_request(
    history: History, window: int | None, room: int | None, tools: list[dict[str, Any]] | None
) -> tuple[list[dict[str, Any]], str]:
    """The history's messages fitted to ``window`` and the note to show once, or ""."""
    if not window:
        return history.messages, ""
    fitted = fit(
        history.messages,
        history.kinds,
        window=window,
        reply_room=reply_room(window, room),
        tools=tools,
    )
    note = ""
    if fitted.trimmed or fitted.shortened:
        messages = history.interned(fitted.messages, fitted.kinds)
        fitted = replace(fitted, messages=messages)
    if fitted.trimmed and (not history.trim_noted or not fitted.fits):
        history.trim_noted = True
        note = fitted.note
    return fitted.messages, note
