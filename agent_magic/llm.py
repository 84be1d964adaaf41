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
:func:`warm_import` imports it (and builds the likely client) in a background
thread from ``%load_ext`` on, and a first request made before that finishes
imports what it needs itself.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import itertools
import json
import os
import queue
import re
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .conversation import ChatError, ChatReply, ContextWindowExceeded, ToolCallRequest, Usage

__all__ = [
    "KNOWN_WINDOWS",
    "PRICES",
    "ChatError",
    "ConfigError",
    "ContextWindowExceeded",
    "Endpoint",
    "OpenAIChat",
    "clean_model_name",
    "context_window_for",
    "cost",
    "list_models",
    "load_config_list",
    "redact",
    "resolve_endpoints",
    "shown_url",
    "usage_table",
    "warm_import",
]

# US$ per million tokens (input, output), for `%agent usage`. Public list prices;
# unknown models simply show no cost.
PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o": (2.5, 10.0),
    "gpt-4o-mini": (0.15, 0.6),
    "gpt-4.1": (2.0, 8.0),
    "gpt-4.1-mini": (0.4, 1.6),
    "gpt-4.1-nano": (0.1, 0.4),
    "gpt-4-turbo": (10.0, 30.0),
    "gpt-4": (30.0, 60.0),
    "gpt-3.5-turbo": (0.5, 1.5),
    "o3-mini": (1.1, 4.4),
    "o4-mini": (1.1, 4.4),
}


def _price(model: str) -> tuple[float, float] | None:
    return PRICES.get(model) or PRICES.get(re.sub(r"-\d{4}-\d{2}-\d{2}$", "", model))


def cost(model: str, usage: Usage | None) -> float | None:
    """Dollar cost of one call, or None when the usage or the model's price is unknown."""
    if usage is None:
        return None
    price = _price(model)
    if price is None:
        return None
    return (usage.prompt_tokens * price[0] + usage.completion_tokens * price[1]) / 1e6


UNKNOWN = "unknown"


def usage_table(replies: Sequence[ChatReply]) -> tuple[str, str]:
    """``%agent usage``: one row per model call and a total, as (plain text, Markdown).

    A call whose server reported no usage shows "unknown", never 0 (llama.cpp's server
    sends none in streams); the totals add up what is known and a note says how many
    calls are missing from them. Cost is shown where the model's price is known.
    """
    if not replies:
        return ("(no model calls yet)", "*(no model calls yet)*")
    rows: list[tuple[str, ...]] = []
    total_in = total_out = 0
    total_cost = 0.0
    unknown_usage: list[int] = []
    unknown_cost = 0
    for i, reply in enumerate(replies, 1):
        usage = reply.usage
        price = cost(reply.model, usage)
        if usage is None:
            unknown_usage.append(i)
            tokens = (UNKNOWN, UNKNOWN, UNKNOWN)
        else:
            total_in += usage.prompt_tokens
            total_out += usage.completion_tokens
            tokens = (
                str(usage.prompt_tokens),
                str(usage.completion_tokens),
                str(usage.total_tokens),
            )
        if price is None:
            unknown_cost += 1
        else:
            total_cost += price
        shown_cost = "" if price is None else f"${price:.5f}"
        rows.append((str(i), reply.model, reply.endpoint, *tokens, shown_cost, reply.source))
    everything_unknown = len(unknown_usage) == len(replies)
    totals = (
        (UNKNOWN,) * 3
        if everything_unknown
        else (str(total_in), str(total_out), str(total_in + total_out))
    )
    some_cost = unknown_cost < len(replies)
    rows.append(("total", "", "", *totals, f"${total_cost:.5f}" if some_cost else "", ""))
    head = ("call", "model", "endpoint", "prompt", "completion", "total", "cost", "source")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    plain = "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
        for r in [head, *rows]
    )
    md = "| " + " | ".join(head) + " |\n|" + "---|" * len(head) + "\n"
    md += "\n".join("| " + " | ".join(r) + " |" for r in rows)
    notes = []
    if unknown_usage:
        which = ", ".join(map(str, unknown_usage[:20])) + (
            ", ..." if len(unknown_usage) > 20 else ""
        )
        notes.append(
            f"The server reported no token usage for call{'s' if len(unknown_usage) > 1 else ''} "
            f"{which} (llama.cpp sends none in streams): unknown, not 0"
            + ("" if everything_unknown else ", and not in the totals")
            + "."
        )
    if unknown_cost:
        notes.append(
            ("The total leaves out calls without a known price. " if some_cost else "")
            + "Cost is shown for models with a known price: "
            + ", ".join(sorted(PRICES))
        )
    for note in notes:
        plain += "\n" + note
        md += "\n\n" + note
    return (plain, md)


# Context windows (tokens, prompt and reply together) of well-known models, used when
# neither the config list nor the server says. Keys are matched as the longest prefix
# of the model name with its provider ("openai/", "meta-llama/") and Ollama tag
# (":8b") removed, lower-cased, and "-", "_" and spaces dropped, so "gpt-4o-mini-2024-
# 07-18", "Meta-Llama-3.1-8B-Instruct" and "llama3.1:8b" all find their row. For
# open-weight models the figure is the model's own maximum: a local server may run a
# smaller window (llama.cpp's --n_ctx, Ollama's num_ctx), which is why the server's
# word, when it gives one, wins over this table.
KNOWN_WINDOWS: dict[str, int] = {
    # OpenAI, from the model pages at platform.openai.com/docs/models.
    "gpt-4o": 128_000,
    "gpt-4o-mini": 128_000,
    "chatgpt-4o": 128_000,
    "gpt-4.1": 1_047_576,
    "gpt-4.1-mini": 1_047_576,
    "gpt-4.1-nano": 1_047_576,
    "gpt-4.5": 128_000,
    "gpt-4-turbo": 128_000,
    "gpt-4": 8_192,
    "gpt-4-32k": 32_768,
    "gpt-3.5-turbo": 16_385,
    "gpt-5": 400_000,
    "o1": 200_000,
    "o1-mini": 128_000,
    "o1-preview": 128_000,
    "o3": 200_000,
    "o3-mini": 200_000,
    "o4-mini": 200_000,
    # Meta Llama, from the model cards on huggingface.co/meta-llama (3.0: 8K; 3.1, 3.2
    # and 3.3: 128K = 131072).
    "llama3": 8_192,
    "llama3.1": 131_072,
    "llama3.2": 131_072,
    "llama3.3": 131_072,
    "llama2": 4_096,
    "codellama": 16_384,
    # Qwen, from the Qwen2.5 / Qwen2.5-Coder model cards (config.json's 32768; 128K
    # only with YaRN scaling, which servers do not enable by default) and Qwen3's (32K
    # native).
    "qwen2.5": 32_768,
    "qwen2.5-coder": 32_768,
    "qwen2": 32_768,
    "qwen3": 32_768,
    # Mistral AI, from docs.mistral.ai's model pages and the model cards: Mistral 7B
    # v0.2+ 32K, Mixtral 8x7B 32K, Nemo 128K, Small 3 32K, Codestral 32K (v0.1).
    "mistral": 32_768,
    "mistral-nemo": 131_072,
    "mistral-small": 32_768,
    "mixtral": 32_768,
    "codestral": 32_768,
    # Google Gemma, from the model cards: Gemma 2 8K; Gemma 3 128K (1B and 270M: 32K).
    "gemma2": 8_192,
    "gemma-2": 8_192,
    "gemma3": 131_072,
    "gemma-3": 131_072,
    "gemma3:1b": 32_768,
    "gemma-3-1b": 32_768,
    "gemma-3-270m": 32_768,
    "gemma3:270m": 32_768,
    # Microsoft Phi, from the model cards: Phi-3 mini 4K (the -128k variants say so in
    # their name), Phi-4 16K.
    "phi3": 4_096,
    "phi-3": 4_096,
    "phi-3-mini-128k": 131_072,
    "phi4": 16_384,
    "phi-4": 16_384,
    # Hugging Face SmolLM2, from its model card (8K).
    "smollm2": 8_192,
    # DeepSeek, from api-docs.deepseek.com (deepseek-chat / -reasoner: 64K) and the
    # R1 distills' model cards (128K).
    "deepseek-chat": 65_536,
    "deepseek-reasoner": 65_536,
    "deepseek-r1": 131_072,
}


def _model_key(model: str) -> str:
    """The lookup form of a model name: see KNOWN_WINDOWS."""
    name = model.strip().lower().rsplit("/", 1)[-1]
    name = name.removeprefix("meta-")
    return re.sub(r"[-_ ]", "", name)


_WINDOW_KEYS = sorted(
    ((_model_key(name), size) for name, size in KNOWN_WINDOWS.items()),
    key=lambda item: -len(item[0]),
)


def known_window(model: str) -> int | None:
    """The context window of a well-known model by name, or None (see KNOWN_WINDOWS)."""
    key = _model_key(model)
    if not key:
        return None
    for candidate in (key, key.split(":", 1)[0]):
        for name, size in _WINDOW_KEYS:  # longest first: "gpt4omini" before "gpt4o"
            if candidate.startswith(name):
                return size
    return None


@dataclass(frozen=True)
class Endpoint:
    """One entry of the config list. ``api_key`` never appears in repr or labels.

    ``context_window`` is the size in tokens the entry declares (config-list field
    ``context_window``); :func:`context_window_for` falls back to what the server and
    the table of known models say.
    """

    model: str
    api_key: str | None = field(default=None, repr=False)
    base_url: str | None = None
    api_type: str = "openai"  # "openai" or "azure"
    api_version: str | None = None
    context_window: int | None = None

    @property
    def label(self) -> str:
        where = shown_url(self.base_url) or (
            "Azure OpenAI" if self.api_type == "azure" else "api.openai.com"
        )
        return f"{self.model} @ {where}"


def shown_url(url: str | None) -> str:
    """A URL as messages and labels show it: without ``user:password@`` or the query
    string (``?api-key=...``), where credentials hide in URLs."""
    if not url:
        return ""
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    host, slash, path = rest.partition("/")
    host = host.rpartition("@")[2]
    path = path.split("?", 1)[0].split("#", 1)[0]
    return f"{scheme}{sep}{host}{slash}{path}"


class ConfigError(ValueError):
    """The configuration cannot work; the message says how to fix it."""


_QUOTES = "\"'`“”‘’"  # noqa: RUF001  (curly quotes come from pasted text)


def clean_model_name(text: str) -> str:
    """A model name as typed after ``--model``: surrounding whitespace and quotes removed.

    ``--model '"gpt-4o"'`` reaches the magic with the quotes as part of the text, which
    the server would take for part of the name; ``--model ''`` leaves nothing, which
    is refused here with the fix.
    """
    name = text.strip()
    while len(name) >= 2 and name[0] in _QUOTES and name[-1] in _QUOTES:
        name = name[1:-1].strip()
    if name and name[0] in _QUOTES and name.count(name[0]) == 1:
        name = name[1:].strip()  # a quote opened and never closed
    if name and name[-1] in _QUOTES and name.count(name[-1]) == 1:
        name = name[:-1].strip()
    if not name:
        raise ConfigError(
            "--model is empty; give a model name (e.g. --model gpt-4o-mini) or leave the "
            "flag out to use AgentMagics.model"
        )
    return name


def load_config_list(source: str) -> list[dict[str, Any]]:
    """Read a config list from a JSON string, a JSON file path, or an env var holding either.

    No message quotes the source itself: it may hold keys.
    """
    text = source.strip()
    if not text.startswith(("[", "{")):
        path = Path(os.path.expanduser(text))
        try:
            is_file = path.is_file()
        except (OSError, ValueError):  # a name too long for a path, a NUL in it
            is_file = False
        if not is_file:
            # Echo it only when it looks like a path: anything else may be a mistyped
            # list, holding a key.
            pathlike = len(text) <= 200 and not any(
                c.isspace() or c in "\"'{}:,=" for c in text[2:]
            )
            shown = repr(redact(text, _environment_keys())) if pathlike else "given"
            raise ConfigError(
                f"config list {shown} is neither a JSON list nor a readable file; "
                "give a path to a JSON file or the JSON itself"
            )
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
            raise ConfigError(f"cannot read the config list file {str(path)!r}: {reason}") from None
    try:
        entries = json.loads(text)
    except ValueError as error:
        raise ConfigError(
            f"config list is not valid JSON ({error.msg} at line {error.lineno})"
        ) from None
    if isinstance(entries, dict):
        raise ConfigError(
            "config list is one JSON object, not a list: wrap it in [ ] "
            '(a list of entries like [{"model": "gpt-4o"}])'
        )
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ConfigError('config list must be a JSON list of objects like {"model": "gpt-4o"}')
    return entries


def resolve_endpoints(
    *,
    model: str,
    base_url: str | None = None,
    config_list: str | None = None,
    env: Mapping[str, str] | None = None,
) -> list[Endpoint]:
    """Decide which endpoints to try, in order.

    A config list (trait, or ``OAI_CONFIG_LIST``) wins; ``--model`` then picks
    its entries for that model when any match. Without one, a single endpoint
    is built from the model, ``base_url`` and the SDK's own variables.
    """
    env = os.environ if env is None else env
    source = config_list or env.get("OAI_CONFIG_LIST")
    if source:
        entries = [_endpoint(entry, i) for i, entry in enumerate(load_config_list(source))]
        if not entries:
            raise ConfigError('config list is empty; add at least one {"model": ...} entry')
        if base_url:
            entries = [replace(e, base_url=base_url) for e in entries]
        return entries
    if base_url:
        return [Endpoint(model, None, base_url)]
    azure = env.get("AZURE_OPENAI_ENDPOINT") and not env.get("OPENAI_BASE_URL")
    if azure and (not env.get("OPENAI_API_KEY") or env.get("AZURE_OPENAI_API_KEY")):
        return [
            Endpoint(
                model,
                None,
                env["AZURE_OPENAI_ENDPOINT"],
                "azure",
                env.get("OPENAI_API_VERSION"),
            )
        ]
    return [Endpoint(model, None, env.get("OPENAI_BASE_URL") or None)]


def _endpoint(entry: dict[str, Any], index: int) -> Endpoint:
    if not entry.get("model"):
        raise ConfigError(f'config list entry {index + 1} has no "model"')
    api_type = str(entry.get("api_type") or "openai").lower()
    if api_type not in ("openai", "azure", "open_ai"):
        raise ConfigError(f"config list entry {index + 1}: api_type must be openai or azure")
    return Endpoint(
        model=str(entry["model"]),
        api_key=entry.get("api_key") or None,
        base_url=entry.get("base_url") or entry.get("api_base") or None,
        api_type="azure" if api_type == "azure" else "openai",
        api_version=entry.get("api_version") or None,
        context_window=_window_field(entry.get("context_window"), index),
    )


def _window_field(value: Any, index: int) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(
            f"config list entry {index + 1}: context_window must be a whole number of "
            'tokens, like "context_window": 8192'
        )
    return value


_KEYISH = re.compile(r"(sk-[A-Za-z0-9_\-*.]{3,}|Bearer\s+\S+)")


def redact(text: str, secrets: Sequence[str | None] = ()) -> str:
    """Remove anything that looks like a key, and the given secrets, from a message."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return _KEYISH.sub("***", text)


def _environment_keys() -> list[str | None]:
    return [os.environ.get("OPENAI_API_KEY"), os.environ.get("AZURE_OPENAI_API_KEY")]


class _EmptyStream(Exception):
    """A stream that ended with nothing in it: no delta, no finish reason, no [DONE].

    llama-cpp-python's server answers a failed streamed request like this (a request
    over its context window among them: the error goes to its log only), so the
    request is asked once more without streaming, which gets the server's real error.
    """


CUT_INCOMPLETE = "incomplete stream"
_CUT_REASONS = ("length", "content_filter")


class OpenAIChat:
    """The openai-SDK-backed chat client, trying each endpoint in order."""

    def __init__(
        self,
        endpoints: Sequence[Endpoint],
        *,
        stream: bool = True,
        timeout: float = 120.0,
        max_retries: int = 2,
        params: Mapping[str, Any] | None = None,
        tick: float = 0.1,
        retry_budget: float | None = None,
    ) -> None:
        if not endpoints:
            raise ConfigError("no endpoint configured")
        self.endpoints = list(endpoints)
        self.stream_replies = stream
        self.timeout = timeout
        self.max_retries = max_retries
        self.params = dict(params or {})
        self.tick = tick
        # Seconds an endpoint may take to start answering, its retries included; then
        # the next endpoint is tried (None: bounded by timeout x retries only).
        self.retry_budget = retry_budget or None
        self._clients: dict[int, Any] = {}
        self.without_tools: set[int] = set()  # endpoints that refused tool definitions
        # Endpoints that refused stream_options (usage in streams): asked without it.
        self.without_stream_options: set[int] = set()

    @property
    def model(self) -> str:
        return self.endpoints[0].model

    def context_window(self, *, ask_server: bool = True) -> int | None:
        """The smallest known context window among the endpoints, or None if none is known.

        The smallest, because the conversation is fitted before it is known which
        endpoint will answer. See :func:`context_window_for`.
        """
        sizes = [
            size
            for index, endpoint in enumerate(self.endpoints)
            if (size := context_window_for(endpoint, self, index=index, ask_server=ask_server))
        ]
        return min(sizes) if sizes else None

    # -- the seam ----------------------------------------------------------------

    def stream(
        self, messages: list[dict[str, Any]], *, tools: list[dict[str, Any]] | None = None
    ) -> Iterator[str | ChatReply]:
        failures: list[str] = []
        for index, endpoint in enumerate(self.endpoints):
            try:
                client = self._client(index, endpoint)
            except ConfigError as error:
                failures.append(str(error))
                continue
            offered = None if index in self.without_tools else tools
            streamed = self.stream_replies
            while True:
                items = _in_thread(
                    lambda c=client, e=endpoint, i=index, t=offered, s=streamed: self._request(
                        c, e, i, messages, t, s
                    ),
                    self.tick,
                    first_within=self.retry_budget,
                    where=endpoint.label,
                )
                yielded = False
                try:
                    for item in items:
                        if isinstance(item, ChatReply):
                            # The reply comes last; the worker may still be reading the
                            # end of the body (see _request), which nobody waits for.
                            items.close()
                            yield item
                            return
                        yielded = True
                        yield item
                    return
                except _EmptyStream:
                    streamed = False  # once: the next answer is a JSON body or an error
                    continue
                except Exception as error:  # the SDK's errors, re-raised from the worker
                    window = _context_error(error)
                    if window is not False:
                        # The next endpoint would get the same conversation: say so now.
                        raise self._too_long(endpoint, window) from None
                    if offered and not yielded and _rejects_tools(error):
                        # This endpoint (or model) cannot take tools: ask again without
                        # them; the model then writes fenced blocks, which run the same.
                        self.without_tools.add(index)
                        offered = None
                        continue
                    if (
                        streamed
                        and not yielded
                        and index not in self.without_stream_options
                        and _rejects_stream_options(error)
                    ):
                        # Usage in streams is a nicety; a server that refuses to be
                        # asked for it streams without it (and its usage is unknown).
                        self.without_stream_options.add(index)
                        continue
                    if yielded or not _falls_through(error):
                        raise ChatError(self._explain(error, endpoint)) from None
                    failures.append(self._explain(error, endpoint))
                    break
        if len(failures) == 1:
            raise ChatError(failures[0])
        numbered = "; ".join(f"[{i + 1}] {text}" for i, text in enumerate(failures))
        raise ChatError(f"all {len(failures)} endpoints failed: {numbered}")

    # -- internals -----------------------------------------------------------------

    def _client(self, index: int, endpoint: Endpoint) -> Any:
        if index in self._clients:
            return self._clients[index]
        client = self._clients[index] = _shared_client(self._settings(endpoint))
        return client

    def _settings(self, endpoint: Endpoint) -> tuple[Any, ...]:
        """What an SDK client is built from (held in memory only, never written)."""

        if endpoint.api_type == "azure":
            key = endpoint.api_key or os.environ.get("AZURE_OPENAI_API_KEY")
            if not key:
                raise ConfigError(
                    f"{endpoint.label}: no Azure key; set AZURE_OPENAI_API_KEY or the entry's "
                    "api_key"
                )
            azure_endpoint = endpoint.base_url or os.environ.get("AZURE_OPENAI_ENDPOINT")
            version = endpoint.api_version or os.environ.get("OPENAI_API_VERSION") or "2024-10-21"
            return ("azure", key, azure_endpoint, version, self.timeout, self.max_retries)
        key = endpoint.api_key or os.environ.get("OPENAI_API_KEY")
        base_url = endpoint.base_url or os.environ.get("OPENAI_BASE_URL") or None
        if not key and not base_url:
            raise ConfigError(
                "no API key: set OPENAI_API_KEY, give a config list (OAI_CONFIG_LIST), "
                "point --base-url at a local server (Ollama, vLLM...), or use --replay"
            )
        # Local servers (Ollama, llama.cpp) accept any key, but the SDK wants one.
        return ("openai", key or "no-key-needed", base_url, None, self.timeout, self.max_retries)

    def _request(
        self,
        client: Any,
        endpoint: Endpoint,
        index: int,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None,
        streamed: bool,
    ) -> Iterator[str | ChatReply]:
        # Messages and tools go through extra_body: the SDK would otherwise walk
        # and re-validate the whole history on every call (milliseconds per step
        # in long conversations) while retries, errors, Azure routing and
        # streaming stay the SDK's.
        body: dict[str, Any] = {"messages": messages, **self.params}
        if tools:
            body["tools"] = tools
        # The reply is read as plain JSON (raw_response / streaming_response) rather than
        # parsed into the SDK's pydantic models: the same retries and errors, a fraction
        # of the time per reply and per streamed chunk.
        completions = client.chat.completions
        if not streamed:
            raw = _send(
                lambda b: completions.with_raw_response.create(
                    model=endpoint.model, messages=[], extra_body=b
                ),
                body,
            )
            yield _reply_from_completion(json.loads(raw.http_response.content), endpoint)
            return
        if index not in self.without_stream_options:
            body["stream_options"] = {"include_usage": True}
        wire = _StreamState()
        model = endpoint.model
        with contextlib.ExitStack() as opened:
            # The request goes out when the response is entered: inside _send.
            response = _send(
                lambda b: opened.enter_context(
                    completions.with_streaming_response.create(
                        model=endpoint.model, messages=[], stream=True, extra_body=b
                    )
                ),
                body,
            )
            lines = response.iter_lines()
            try:
                for chunk in _sse_events(lines, wire):
                    if chunk.get("error"):
                        raise _stream_error(chunk["error"], endpoint)
                    model = chunk.get("model") or model
                    if chunk.get("usage"):
                        wire.usage = _usage(chunk["usage"])
                    delta = wire.take(chunk)
                    if delta:
                        yield delta
            except Exception as error:
                # A connection that breaks (or stalls past the timeout) after the reply
                # began: what arrived is the reply, marked as cut off, so it is never
                # taken for whole. Before anything arrived it is an ordinary failure.
                if not wire.begun or not _broken_connection(error):
                    raise
                wire.broken = True
            if not wire.begun and wire.finish is None:
                if not wire.done:
                    raise _EmptyStream
                raise ChatError(f"{endpoint.label}: the stream ended before any reply arrived")
            yield wire.reply(model, endpoint.label)
            if wire.broken:
                return
            # The reply is handed on; now read on to the end of the body, in this worker
            # thread, so the connection goes back to the pool: a response closed
            # part-read closes its connection, and the next request would open a new
            # one. After [DONE] only the chunked encoding's last chunk is left (openai
            # 1.x read it too); a server that keeps the body open after [DONE] holds up
            # this worker, never the caller, and a body that goes on is dropped.
            with contextlib.suppress(Exception):
                for _ in itertools.islice(lines, 16):
                    pass

    def _keys(self, endpoint: Endpoint) -> list[str | None]:
        return [endpoint.api_key, *(e.api_key for e in self.endpoints), *_environment_keys()]

    def _explain(self, error: BaseException, endpoint: Endpoint) -> str:
        return redact(_explain(error, endpoint, self.timeout), self._keys(endpoint))

    def _too_long(self, endpoint: Endpoint, window: int | None) -> ContextWindowExceeded:
        if window:
            _remember_window(endpoint, window)
        size = f" ({window} tokens)" if window else ""
        message = (
            f"{endpoint.label}: the conversation no longer fits the model's context "
            f"window{size}; start afresh with --new or %agent reset, or give the model a "
            "larger context (the config list's context_window; llama.cpp --n_ctx, "
            "Ollama num_ctx)"
        )
        return ContextWindowExceeded(redact(message, self._keys(endpoint)), window)


class _StreamState:
    """What a stream has said so far: the text, the tool calls, how (and if) it ended."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.calls: dict[int, dict[str, str]] = {}
        self.usage: Usage | None = None
        self.finish: str | None = None
        self.done = False  # [DONE] arrived
        self.broken = False  # the connection broke (or stalled) after the reply began

    @property
    def begun(self) -> bool:
        return bool(self.parts or self.calls)

    def take(self, chunk: Mapping[str, Any]) -> str:
        """Fold one chunk in; returns its text delta ("" when it has none)."""
        text = ""
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, dict):
                continue
            self.finish = choice.get("finish_reason") or self.finish
            delta = choice.get("delta") or {}
            if delta.get("content"):
                self.parts.append(delta["content"])
                text += delta["content"]
            for call in delta.get("tool_calls") or ():
                slot = self.calls.setdefault(
                    call.get("index") or 0, {"id": "", "name": "", "arguments": ""}
                )
                if call.get("id"):
                    slot["id"] = call["id"]
                function = call.get("function") or {}
                slot["name"] += function.get("name") or ""
                slot["arguments"] += function.get("arguments") or ""
        return text

    def reply(self, model: str, label: str) -> ChatReply:
        tool_calls = tuple(
            ToolCallRequest(slot["id"] or f"call_{i}", slot["name"], slot["arguments"])
            for i, slot in sorted(self.calls.items())
        )
        if self.finish in _CUT_REASONS:
            cut_off: str | None = self.finish
        elif self.broken or self.finish is None or not self.done:
            cut_off = CUT_INCOMPLETE
        else:
            cut_off = None
        return ChatReply(
            "".join(self.parts), tool_calls, self.usage, model, label, self.finish, cut_off=cut_off
        )


def _send(create: Any, body: dict[str, Any]) -> Any:
    """``create(body)``; a body holding lone surrogates (text decoded from bytes that were
    not UTF-8, e.g. ``os.fsdecode`` of an odd file name) is sent with them escaped as
    ``\\udcXX`` text instead of failing to encode. Clean bodies cost nothing extra."""
    try:
        return create(body)
    except UnicodeEncodeError:
        return create(_escape_surrogates(body))


_SURROGATE = re.compile("[\ud800-\udfff]")


def _escape_surrogates(value: Any) -> Any:
    if isinstance(value, str):
        return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", value)
    if isinstance(value, dict):
        return {_escape_surrogates(k): _escape_surrogates(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_escape_surrogates(v) for v in value]
    return value


def _reply_from_completion(completion: Any, endpoint: Endpoint) -> ChatReply:
    if not isinstance(completion, dict) or not completion.get("choices"):
        if isinstance(completion, dict) and completion.get("error"):
            raise _stream_error(completion["error"], endpoint)
        raise ChatError(f"{endpoint.label}: the reply had no choices")
    choice = completion["choices"][0]
    if not isinstance(choice, dict):
        raise ChatError(f"{endpoint.label}: the reply had no choices")
    message = choice.get("message") or {}
    calls = tuple(
        ToolCallRequest(
            c.get("id") or "", c["function"].get("name") or "", c["function"].get("arguments") or ""
        )
        for c in (message.get("tool_calls") or ())
        if isinstance(c, dict) and isinstance(c.get("function"), dict)
    )
    usage = _usage(completion["usage"]) if completion.get("usage") else None
    finish = choice.get("finish_reason")
    return ChatReply(
        message.get("content") or "",
        calls,
        usage,
        completion.get("model") or endpoint.model,
        endpoint.label,
        finish,
        cut_off=finish if finish in _CUT_REASONS else None,
    )


def _usage(usage: Any) -> Usage | None:
    """The reply's usage, or None when the server sent no counts (never a zero Usage)."""
    if not isinstance(usage, Mapping):
        return None
    prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
    if not isinstance(prompt, int) and not isinstance(completion, int):
        return None
    return Usage(prompt if isinstance(prompt, int) else 0, completion or 0)


def _error_text(error: Any) -> str:
    if isinstance(error, dict):
        error = error.get("message") or error
    return " ".join(str(error)[:2000].split())[:300]


def _stream_error(error: Any, endpoint: Endpoint) -> ChatError:
    """The error a server put inside a 200 answer (llama.cpp's server, vLLM, proxies)."""
    window = _context_error_in(error, _error_text(error))
    if window is not False:
        return _ContextInBody(window)
    return ChatError(f"{endpoint.label}: the server sent an error: {_error_text(error)}")


class _ContextInBody(ChatError):
    """A context-length error found in a stream or body; OpenAIChat words it."""

    def __init__(self, window: int | None) -> None:
        super().__init__("context window exceeded")
        self.window = window


def _sse_events(
    lines: Iterator[str], state: _StreamState | None = None
) -> Iterator[dict[str, Any]]:
    """The JSON objects of a server-sent event stream, up to ``[DONE]``.

    Comments, event names and keep-alives are skipped, and so is a payload that is
    JSON but not an object (some proxies send ``data: null`` or a bare number).
    ``state.done`` is set when ``[DONE]`` arrives. Linear in the stream's length,
    however long a line is.
    """
    data: list[str] = []
    # A stream cut before its last blank line still ends its event.
    for line in itertools.chain(lines, [""]):
        if line.startswith("data:"):
            data.append(line[5:].lstrip())
            continue
        if line or not data:
            continue
        payload = "\n".join(data).strip()
        data = []
        if payload == "[DONE]":
            if state is not None:
                state.done = True
            return
        event = json.loads(payload)
        if isinstance(event, dict):
            yield event


def _http() -> Any:
    """The HTTP library the openai SDK is built on: httpx, or its fork httpx2 (openai 3.x).

    Its exception and response classes are the ones to test against and ask for.
    """
    import openai._base_client as base

    return getattr(base, "httpx2", None) or base.httpx


def _broken_connection(error: BaseException) -> bool:
    """A transport failure while reading a body: a cut connection or a stall."""
    import openai

    httpx = _http()

    return isinstance(error, (httpx.TransportError, openai.APIConnectionError))


def _status_text(error: BaseException) -> str:
    """What a status error says, bounded (the regexes below then stay linear)."""
    return (_detail(error) or str(error))[:2000]


def _rejects_tools(error: BaseException) -> bool:
    """A 400/422/501 that blames the tools: servers and models without tool calling.

    Only messages that say tools are unsupported or invalid: any other 400 (a context
    too long, a bad message) is the user's to see, not a reason to ask again.
    """
    import openai

    if not isinstance(error, openai.APIStatusError) or error.status_code not in (400, 422, 501):
        return False
    return bool(_TOOLS_REJECTED.search(_status_text(error)))


_TOOLS_REJECTED = re.compile(
    r"\b(tools?|tool_choice|function calling)\b.{0,40}\b(not |un)"
    r"(supported|available|allowed|recognized|permitted|enabled)"
    r"|\b(does not|doesn't|do not|cannot|can't) (support|use|accept|take) (tools?|function)"
    r"|\bunsupported\b.{0,40}\b(tools?|tool_choice|function[ _]call)"
    r"|\b(unrecognized|unknown|unexpected|extra|invalid)\b.{0,30}\b(tools|tool_choice)\b"
    r"|\btools(\[\d*\]|\.\d|\b.{0,20}\bextra (fields|inputs) (are )?not permitted)"
    r"|\btools? (param|parameter|choice|calling)\b.{0,20}\brequires\b"  # vLLM, llama.cpp
    r"|enable-auto-tool-choice",
    re.IGNORECASE | re.DOTALL,
)


def _rejects_stream_options(error: BaseException) -> bool:
    """A 400/422 that names stream_options (older Azure API versions, some proxies)."""
    import openai

    if not isinstance(error, openai.APIStatusError) or error.status_code not in (400, 422):
        return False
    text = _status_text(error).lower()
    return "stream_options" in text or "include_usage" in text


# Context-length errors, as each server words them. Kept to bounded text (_status_text),
# with no nested repetition: linear in the message.
_CONTEXT_WORDS = re.compile(
    r"context_length_exceeded"  # OpenAI's code, llama-cpp-python's 400
    r"|exceed_context_size_error"  # llama.cpp's server (llama-server) type
    r"|maximum context length"  # OpenAI, vLLM, llama-cpp-python, Ollama's MLX runner
    r"|exceeds? (the )?(context window|available context size)"  # llama.cpp, llama-server
    r"|longer than the (context length|maximum model length)"  # Ollama, vLLM
    r"|input length exceeds the context length"  # Ollama
    r"|(prompt|input) is too long"  # Anthropic's compatible API, proxies
    r"|context window (is )?(full|exceeded)",
    re.IGNORECASE,
)
_CONTEXT_SIZE = re.compile(
    r"maximum context length (?:is |of )?\(?(\d+)"  # "...is 8192 tokens", "(8192 tokens)"
    r"|context window of (\d+)"  # "Requested tokens (1091) exceed context window of 1024"
    r"|available context size \((\d+)"  # "...exceeds the available context size (4096 tokens)"
    r"|maximum model length (?:of |is )?(\d+)",  # vLLM: "...maximum model length of 8192"
    re.IGNORECASE,
)


def _context_error(error: BaseException) -> int | None | bool:
    """For a context-length error: the window it names, or None; False for other errors."""
    import openai

    if isinstance(error, _ContextInBody):
        return error.window
    if not isinstance(error, openai.APIStatusError):
        return False
    return _context_error_in(getattr(error, "body", None), _status_text(error))


def _context_error_in(body: Any, text: str) -> int | None | bool:
    fields = body if isinstance(body, dict) else {}
    if isinstance(fields.get("error"), dict):
        fields = fields["error"]
    marked = fields.get("code") == "context_length_exceeded" or (
        fields.get("type") == "exceed_context_size_error"
    )
    if not marked and not _CONTEXT_WORDS.search(text):
        return False
    n_ctx = fields.get("n_ctx")  # llama-server says it as a field too
    if isinstance(n_ctx, int) and n_ctx > 0:
        return n_ctx
    match = _CONTEXT_SIZE.search(text)
    if match:
        return int(next(g for g in match.groups() if g))
    return None


def _falls_through(error: BaseException) -> bool:
    """Errors after which the next endpoint is worth trying."""
    import openai

    if isinstance(error, (openai.APITimeoutError, openai.APIConnectionError)):
        return True
    if isinstance(error, openai.APIStatusError):
        return error.status_code in (401, 403, 404, 408, 429) or error.status_code >= 500
    if _broken_connection(error):
        return True
    return isinstance(error, ChatError)


def _explain(error: BaseException, endpoint: Endpoint, timeout: float | None = None) -> str:
    import openai

    httpx = _http()

    where = endpoint.label
    if isinstance(error, ChatError):
        return str(error)
    if isinstance(error, openai.APITimeoutError):
        return f"{where}: the request timed out; raise AgentMagics.timeout or try again"
    if isinstance(error, openai.APIConnectionError):
        return (
            f"cannot reach {shown_url(endpoint.base_url) or where}: is the server running? "
            "Check --base-url / OPENAI_BASE_URL"
        )
    if isinstance(error, httpx.TimeoutException):
        after = f" for {timeout:g} s" if timeout else ""
        return (
            f"{where}: the server stopped sending{after} before the reply began; "
            "raise AgentMagics.timeout or try again"
        )
    if isinstance(error, httpx.TransportError):
        return f"{where}: the connection broke before the reply began; try again"
    if isinstance(error, openai.APIStatusError):
        detail = _detail(error)
        status = error.status_code
        if status in (401, 403):
            return (
                f"{where}: authentication failed ({status}); check OPENAI_API_KEY "
                "or the config entry's api_key"
            )
        if status == 404:
            return (
                f"{where}: model {endpoint.model!r} not found (404); choose another with "
                "--model or %config AgentMagics.model"
            )
        if status == 429:
            return (
                f"{where}: rate limited (429) after retries; wait, raise "
                f"AgentMagics.max_retries, or add another endpoint. {detail}"
            ).strip()
        if status >= 500:
            return f"{where}: server error {status}. {detail}".strip()
        return f"{where}: request rejected ({status}): {detail}".strip()
    if isinstance(error, ValueError):  # JSON decoding of a malformed body
        return f"{where}: the server's reply could not be read ({type(error).__name__})"
    return f"{where}: {type(error).__name__}: {_error_text(str(error))}"


def _detail(error: Any) -> str:
    body = getattr(error, "body", None)
    if isinstance(body, dict):
        inner = body.get("error")
        message = body.get("message") or (
            inner.get("message") if isinstance(inner, dict) else inner
        )
        if message:
            return " ".join(str(message)[:2000].split())[:300]
    elif isinstance(body, str) and body:
        return " ".join(body[:2000].split())[:300]
    return ""


# -- the context window and the model list -------------------------------------------

# Windows learned per endpoint (what its server said, or what a context-length error
# named), so each server is asked once per kernel. Keyed by what answers, never a key.
_WINDOWS: dict[tuple[str, str, str], int | None] = {}
_WINDOWS_LOCK = threading.Lock()
# Ollama's num_ctx when nothing sets it: 4096 since 0.6 (2048 before; more with
# OLLAMA_CONTEXT_LENGTH or enough VRAM in the newest releases). Its /api/show gives the
# model's trained maximum only, so that figure is capped at this one: trimming a little
# early is harmless, overflowing is not (Ollama then drops the start of the prompt).
OLLAMA_DEFAULT_NUM_CTX = 4096


def _window_key(endpoint: Endpoint) -> tuple[str, str, str]:
    return (
        endpoint.api_type,
        endpoint.base_url or os.environ.get("OPENAI_BASE_URL", ""),
        endpoint.model,
    )


def _remember_window(endpoint: Endpoint, window: int) -> None:
    with _WINDOWS_LOCK:
        _WINDOWS[_window_key(endpoint)] = window


def context_window_for(
    endpoint: Endpoint,
    chat: OpenAIChat | None = None,
    *,
    index: int = 0,
    ask_server: bool = True,
    timeout: float = 3.0,
) -> int | None:
    """The endpoint's context window in tokens, or None when nothing says it.

    In order: the config list's ``context_window``; what this endpoint's server said
    (asked once per kernel and cached; a context-length error that named the window
    counts too); the table of well-known models (:data:`KNOWN_WINDOWS`). The server is
    asked only for a ``base_url`` that is not api.openai.com, and only what it reports
    as the *running* window counts: vLLM's ``max_model_len`` and similar fields in
    ``GET /models``, llama.cpp's server ``GET /props`` (``n_ctx``), Ollama's
    ``GET /api/ps`` (``context_length`` of a loaded model) or, for a model not loaded,
    its ``POST /api/show`` maximum capped at Ollama's default num_ctx.
    llama-cpp-python's server says nothing (its ``/v1/models`` has ids only): its window
    is learned from its first context-length error. ``chat`` (with ``index``, the
    endpoint's position in it) lends its SDK client and settings; without it a client
    is built from the endpoint and the environment.
    """
    if endpoint.context_window:
        return endpoint.context_window
    key = _window_key(endpoint)
    with _WINDOWS_LOCK:
        if key in _WINDOWS and _WINDOWS[key]:
            return _WINDOWS[key]
        asked = key in _WINDOWS
    if ask_server and not asked and _asks_server(endpoint):
        found, window = _server_window(endpoint, chat, index, timeout)
        if found:  # the server answered (saying a window or not): do not ask again
            with _WINDOWS_LOCK:
                _WINDOWS.setdefault(key, window)
            if window:
                return window
    return known_window(endpoint.model)


def _asks_server(endpoint: Endpoint) -> bool:
    if endpoint.api_type == "azure":
        return False
    url = endpoint.base_url or os.environ.get("OPENAI_BASE_URL") or ""
    return bool(url) and "api.openai.com" not in url


def _server_window(
    endpoint: Endpoint, chat: OpenAIChat | None, index: int, timeout: float
) -> tuple[bool, int | None]:
    """(whether the server answered at all, the window it reports or None)."""
    try:
        chat = chat or OpenAIChat([endpoint], max_retries=0)
        client = chat._client(index, endpoint)
    except ConfigError:
        return (False, None)
    base = str(client.base_url).rstrip("/")
    root = base[: -len("/v1")] if base.endswith("/v1") else base
    answered = False
    probes: list[tuple[str, str, dict[str, Any] | None, Any]] = [
        ("get", base + "/models", None, lambda data: _window_in_models(data, endpoint.model)),
        ("get", root + "/props", None, _window_in_props),
        ("get", root + "/api/ps", None, lambda data: _window_in_ollama_ps(data, endpoint.model)),
        ("post", root + "/api/show", {"model": endpoint.model}, _window_in_ollama_show),
    ]
    for method, url, body, read in probes:
        try:
            data = _call_json(client, method, url, body, timeout)
        except _Unanswered:
            return (answered, None)  # unreachable or silent: no point asking further
        except Exception:
            answered = True  # an error status (404 for a route it lacks), or not JSON
            continue
        answered = True
        with contextlib.suppress(Exception):
            window = read(data)
            if isinstance(window, int) and not isinstance(window, bool) and window > 0:
                return (True, window)
    return (answered, None)


class _Unanswered(Exception):
    """The server could not be reached or did not answer in time."""


def _call_json(client: Any, method: str, url: str, body: Any, timeout: float) -> Any:
    import openai

    httpx = _http()

    options: Any = {"timeout": timeout, "max_retries": 0}
    try:
        if method == "get":
            response = client.get(url, cast_to=httpx.Response, options=options)
        else:
            response = client.post(url, body=body, cast_to=httpx.Response, options=options)
    except (openai.APIConnectionError, httpx.TransportError) as error:
        raise _Unanswered from error
    return response.json()


def _entries(data: Any) -> list[dict[str, Any]]:
    items = data.get("data") if isinstance(data, dict) else data
    return [e for e in items if isinstance(e, dict)] if isinstance(items, list) else []


def _window_in_models(data: Any, model: str) -> int | None:
    entries = _entries(data)
    matching = [e for e in entries if e.get("id") == model] or (
        entries if len(entries) == 1 else []  # one model served, whatever it is called
    )
    for entry in matching:
        # vLLM: max_model_len; Groq and proxies: context_window; OpenRouter:
        # context_length; LM Studio: max_context_length; llama.cpp server forks put the
        # running n_ctx in "meta" (never n_ctx_train: that is the model's maximum).
        meta = entry.get("meta") if isinstance(entry.get("meta"), dict) else {}
        for value in (
            entry.get("max_model_len"),
            entry.get("context_window"),
            entry.get("context_length"),
            entry.get("max_context_length"),
            meta.get("n_ctx"),
        ):
            if isinstance(value, int) and value > 0:
                return value
    return None


def _window_in_props(data: Any) -> int | None:
    if not isinstance(data, dict):
        return None
    settings = data.get("default_generation_settings")
    n_ctx = settings.get("n_ctx") if isinstance(settings, dict) else None
    return n_ctx if isinstance(n_ctx, int) else data.get("n_ctx")


def _ollama_names(model: str) -> set[str]:
    return {model, model if ":" in model else model + ":latest"}


def _window_in_ollama_ps(data: Any, model: str) -> int | None:
    names = _ollama_names(model)
    for entry in (data.get("models") if isinstance(data, dict) else None) or ():
        if isinstance(entry, dict) and (entry.get("name") in names or entry.get("model") in names):
            return entry.get("context_length")
    return None


def _window_in_ollama_show(data: Any) -> int | None:
    info = data.get("model_info") if isinstance(data, dict) else None
    if not isinstance(info, dict):
        return None
    for name, value in info.items():
        if str(name).endswith(".context_length") and isinstance(value, int) and value > 0:
            return min(value, OLLAMA_DEFAULT_NUM_CTX)
    return None


def list_models(
    endpoints: Endpoint | Sequence[Endpoint], *, timeout: float = 10.0, tick: float = 0.1
) -> list[str]:
    """The model ids the endpoint's server lists (``GET /models``), in its order.

    With several endpoints (a config list), the first whose server answers. A server
    without such a list (404), an unreachable one or a refused key raises a
    :class:`ChatError` with one line, never holding a key.
    """
    given = [endpoints] if isinstance(endpoints, Endpoint) else list(endpoints)
    chat = OpenAIChat(given, timeout=timeout, max_retries=0, tick=tick)
    failures: list[str] = []
    for index, endpoint in enumerate(given):
        if endpoint.api_type == "azure":
            failures.append(
                f"{endpoint.label}: Azure OpenAI lists no deployments through this API; "
                "see the resource's deployments in the Azure portal"
            )
            continue
        try:
            client = chat._client(index, endpoint)
        except ConfigError as error:
            failures.append(str(error))
            continue
        try:
            [data] = _in_thread(
                lambda c=client: iter([_call_models(c, timeout)]), tick, where=endpoint.label
            )
        except Exception as error:
            failures.append(redact(_explain_listing(error, endpoint), chat._keys(endpoint)))
            continue
        ids = [str(e["id"]) for e in _entries(data) if e.get("id")]
        if not ids and not (isinstance(data, dict) and isinstance(data.get("data"), list)):
            failures.append(f"{endpoint.label}: the server's model list could not be read")
            continue
        return ids
    if len(failures) == 1:
        raise ChatError(failures[0])
    numbered = "; ".join(f"[{i + 1}] {text}" for i, text in enumerate(failures))
    raise ChatError(f"no endpoint listed its models: {numbered}")


def _call_models(client: Any, timeout: float) -> Any:
    httpx = _http()

    options: Any = {"timeout": timeout, "max_retries": 0}
    return client.get("/models", cast_to=httpx.Response, options=options).json()


def _explain_listing(error: BaseException, endpoint: Endpoint) -> str:
    import openai

    where = shown_url(endpoint.base_url) or "api.openai.com"
    if isinstance(error, openai.APIStatusError) and error.status_code in (404, 405, 501):
        return (
            f"{where}: this server has no model list (GET /models answered "
            f"{error.status_code}); name the model with --model"
        )
    if isinstance(error, ValueError):
        return f"{where}: the server's model list could not be read"
    return _explain(error, endpoint)


# SDK clients are shared by every cell that uses the same endpoint and settings: building
# one costs ~0.1 s the first time (the HTTP transport's imports, and ~20 ms loading the CA
# bundle each time), and a shared client keeps its connections open between requests.
_CLIENTS: dict[tuple[Any, ...], Any] = {}
_CLIENTS_LOCK = threading.Lock()
_BUILDING: dict[tuple[Any, ...], threading.Lock] = {}


def _shared_client(settings: tuple[Any, ...]) -> Any:
    with _CLIENTS_LOCK:
        client = _CLIENTS.get(settings)
        if client is not None:
            return client
        # One lock per settings: a client being built in the background for other
        # settings does not hold this one up.
        building = _BUILDING.setdefault(settings, threading.Lock())
    with building:
        with _CLIENTS_LOCK:
            client = _CLIENTS.get(settings)
        if client is None:
            client = _new_client(settings)
            with _CLIENTS_LOCK:
                _CLIENTS[settings] = client
                _BUILDING.pop(settings, None)
    return client


@atexit.register
def _close_clients() -> None:
    """Close the shared clients at exit, while the modules are still there.

    The SDK's HTTP client closes itself in ``__del__``, which fails noisily ("Exception
    ignored in ... __del__") when it runs after the interpreter has begun tearing its
    modules down, as it does for a client kept alive until then.
    """
    with _CLIENTS_LOCK:
        clients = list(_CLIENTS.values())
        _CLIENTS.clear()
    for client in clients:
        with contextlib.suppress(Exception):
            client.close()
        with contextlib.suppress(Exception):
            vars(client).pop("_client", None)  # its __del__ runs now, and finds it closed


def _new_client(settings: tuple[Any, ...]) -> Any:
    import openai  # deferred: the SDK takes most of a second to import

    kind, key, url, version, timeout, retries = settings
    common = {"timeout": timeout, "max_retries": retries}
    if kind == "azure":
        return openai.AzureOpenAI(api_key=key, azure_endpoint=url, api_version=version, **common)
    return openai.OpenAI(api_key=key, base_url=url, **common)


def warm_import(
    *,
    base_url: str | None = None,
    config_list: str | None = None,
    timeout: float = 120.0,
    max_retries: int = 2,
) -> None:
    """Get the first cell's slow work done in a background thread, while the user reads.

    The openai SDK's import (~0.5-1 s), the client the first cell is likely to use (the
    endpoint the settings given here and the environment point at: its transport's and
    chat resources' imports, the CA bundle), a request thread, and the modules a cell
    imports on first use. A first cell run at once waits for the parts it needs (the
    import lock, the client's lock); anything that fails here is left for the first
    request to report. A cell with other settings builds its own client.
    """

    def work() -> None:
        with contextlib.suppress(Exception):
            importlib.import_module("openai")
            _WORKERS.submit(lambda: None)  # a request thread, started and waiting
            [endpoint, *_] = resolve_endpoints(model="", base_url=base_url, config_list=config_list)
            chat = OpenAIChat([endpoint], timeout=timeout, max_retries=max_retries)
            client = _shared_client(chat._settings(endpoint))
            # Loaded on first use: the chat resources (~40 ms of imports and models).
            client.chat.completions.with_raw_response  # noqa: B018
            client.chat.completions.with_streaming_response  # noqa: B018
        for name in ("executor", "context", "export"):
            with contextlib.suppress(Exception):
                importlib.import_module(f"{__package__}.{name}")

    threading.Thread(target=work, name="agent_magic-import", daemon=True).start()


class _Workers:
    """Daemon threads that run requests, reused from one request to the next.

    Starting a thread per request cost about a millisecond per step. An interrupted
    request is abandoned, not joined: its thread finishes at the client's timeout and
    meanwhile a new request simply gets another thread.
    """

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._idle = 0
        self._lock = threading.Lock()

    def submit(self, job: Any) -> None:
        with self._lock:
            start = self._idle == 0
            if not start:
                self._idle -= 1
        if start:
            threading.Thread(target=self._serve, name="agent_magic-request", daemon=True).start()
        self._jobs.put(job)

    def _serve(self) -> None:
        while True:
            job = self._jobs.get()
            try:
                job()
            finally:
                with self._lock:
                    self._idle += 1


_WORKERS = _Workers()
_DONE = object()


def _in_thread(
    produce: Any, tick: float, first_within: float | None = None, where: str = ""
) -> Iterator[str | ChatReply]:
    """Run a blocking generator in a worker thread and hand its items over a queue.

    The main thread waits in short ticks, so a KeyboardInterrupt from the
    kernel's interrupt button lands within one tick even while the socket is
    silent. The worker is a daemon and is abandoned on interrupt; its request
    ends at the client's timeout. With ``first_within``, a ChatError naming ``where``
    is raised when no item came in that many seconds (the SDK retrying all the while);
    once the answer has begun, only the client's timeout between reads applies.
    """
    items: queue.SimpleQueue[Any] = queue.SimpleQueue()
    cancelled = threading.Event()

    def work() -> None:
        try:
            for item in produce():
                if cancelled.is_set():
                    return
                items.put(item)
            items.put(_DONE)
        except BaseException as error:  # handed to the main thread, raised there
            items.put(error)

    _WORKERS.submit(work)
    pending: Any = None
    deadline = time.monotonic() + first_within if first_within else None
    try:
        while True:
            if pending is not None:
                item, pending = pending, None
            else:
                try:
                    item = items.get(timeout=tick)
                except queue.Empty:
                    if deadline is not None and time.monotonic() >= deadline:
                        raise ChatError(
                            f"{where}: no answer within {first_within:g} s, retries "
                            "included; raise AgentMagics.retry_budget or try again"
                        ) from None
                    continue
                deadline = None
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            if isinstance(item, str):
                # Deltas that arrived together are handed on as one: fewer events and
                # redraws when the model (or a network buffer) sends a burst.
                parts = [item]
                while pending is None:
                    try:
                        more = items.get_nowait()
                    except queue.Empty:
                        break
                    if isinstance(more, str):
                        parts.append(more)
                    else:
                        pending = more
                item = "".join(parts)
            yield item
    finally:
        cancelled.set()
