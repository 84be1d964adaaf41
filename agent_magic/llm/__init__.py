"""Talking to OpenAI-compatible chat endpoints: the config list, fallback, streaming.

:class:`OpenAIChat` implements the :class:`~agent_magic.conversation.ChatClient`
seam on top of the openai SDK, which already retries 429/5xx/timeouts with
exponential backoff and honours ``Retry-After``; we do not add a second retry
layer. What we add: a list of endpoints tried in order (AutoGen's
``OAI_CONFIG_LIST`` format), one-line errors that name the fix, keys kept out of
every message, and a worker thread so the kernel's interrupt stops a request
within a tick even when the socket is silent.

Also here, because they are about what an endpoint is and says: replies that were
cut off (``ChatReply.cut_off``), usage that is None when the server sent none and
the ``%agent usage`` table (:func:`usage_table`), context-length errors
(:class:`ContextWindowExceeded`), the context window of an endpoint
(:func:`context_window_for`: the config list, then what the server says, then a
table of well-known models), the endpoint's model list (:func:`list_models`) and
``--model`` cleaning (:func:`clean_model_name`). Fitting a conversation into a
window is not here (``agent_magic.window``), nor deciding what to do with a cut-off
reply (the conversation loop).

The SDK is never imported at module level, so ``%load_ext`` stays fast:
:func:`agent_magic.warmup.start` imports it (and builds the likely client) in a background
thread from ``%load_ext`` on, and a first request made before that finishes
imports what it needs itself.

The parts: ``config`` (endpoints, ``--model``), ``wire`` (SSE, replies,
usage), ``errors`` (what each error means, the one line it gets), ``client``
(:class:`OpenAIChat`, :func:`list_models`, :func:`~.client.warm_client`), ``sdk`` (shared
SDK clients, worker threads), ``windows`` (context windows), ``usage`` (the usage table),
``prices`` (what tokens cost: AgentMagics.prices, then genai-prices) and ``responses``
(the Responses API). Import from here: the split is for reading, the names are these.
"""

from __future__ import annotations

from ..conversation import ChatError, ContextWindowExceeded
from .client import OpenAIChat, list_models
from .config import (
    ConfigError,
    Endpoint,
    clean_model_name,
    load_config_list,
    resolve_endpoints,
    shown_url,
)
from .prices import Price, price_of, set_prices
from .usage import cost, usage_table
from .windows import (
    KNOWN_WINDOWS,
    OLLAMA_DEFAULT_NUM_CTX,
    context_window_for,
    known_window,
)
from .wire import CUT_INCOMPLETE

__all__ = [
    "CUT_INCOMPLETE",
    "KNOWN_WINDOWS",
    "OLLAMA_DEFAULT_NUM_CTX",
    "Price",
    "ChatError",
    "ConfigError",
    "ContextWindowExceeded",
    "Endpoint",
    "OpenAIChat",
    "clean_model_name",
    "context_window_for",
    "cost",
    "known_window",
    "list_models",
    "load_config_list",
    "price_of",
    "resolve_endpoints",
    "set_prices",
    "shown_url",
    "usage_table",
]
