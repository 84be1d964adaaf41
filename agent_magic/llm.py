"""Talking to OpenAI-compatible chat endpoints: the config list, fallback, streaming.

:class:`OpenAIChat` implements the :class:`~agent_magic.conversation.ChatClient`
seam on top of the openai SDK, which already retries 429/5xx/timeouts with
exponential backoff and honours ``Retry-After``; we do not add a second retry
layer. What we add: a list of endpoints tried in order (AutoGen's
``OAI_CONFIG_LIST`` format), one-line errors that name the fix, keys kept out of
every message, and a worker thread so the kernel's interrupt stops a request
within a tick even when the socket is silent.

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .conversation import ChatError, ChatReply, ToolCallRequest, Usage

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


def cost(model: str, usage: Usage | None) -> float | None:
    """Dollar cost of one call, or None when the model's price is unknown."""
    if usage is None:
        return None
    price = PRICES.get(model) or PRICES.get(re.sub(r"-\d{4}-\d{2}-\d{2}$", "", model))
    if price is None:
        return None
    return (usage.prompt_tokens * price[0] + usage.completion_tokens * price[1]) / 1e6


@dataclass(frozen=True)
class Endpoint:
    """One entry of the config list. ``api_key`` never appears in repr or labels."""

    model: str
    api_key: str | None = field(default=None, repr=False)
    base_url: str | None = None
    api_type: str = "openai"  # "openai" or "azure"
    api_version: str | None = None

    @property
    def label(self) -> str:
        where = self.base_url or ("Azure OpenAI" if self.api_type == "azure" else "api.openai.com")
        return f"{self.model} @ {where}"


class ConfigError(ValueError):
    """The configuration cannot work; the message says how to fix it."""


def load_config_list(source: str) -> list[dict[str, Any]]:
    """Read a config list from a JSON string, a JSON file path, or an env var holding either."""
    text = source.strip()
    if not text.startswith("["):
        path = Path(os.path.expanduser(text))
        if not path.is_file():
            raise ConfigError(
                f"config list {text!r} is neither a JSON list nor a readable file; "
                "give a path to a JSON file or the JSON itself"
            )
        text = path.read_text(encoding="utf-8")
    try:
        entries = json.loads(text)
    except ValueError as error:
        raise ConfigError(
            f"config list is not valid JSON ({error.msg} at line {error.lineno})"
        ) from None
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
            entries = [
                Endpoint(e.model, e.api_key, base_url, e.api_type, e.api_version) for e in entries
            ]
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
    )


_KEYISH = re.compile(r"(sk-[A-Za-z0-9_\-*.]{3,}|Bearer\s+\S+)")


def redact(text: str, secrets: Sequence[str | None] = ()) -> str:
    """Remove anything that looks like a key, and the given secrets, from a message."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return _KEYISH.sub("***", text)


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

    @property
    def model(self) -> str:
        return self.endpoints[0].model

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
            while True:
                items = _in_thread(
                    lambda c=client, e=endpoint, t=offered: self._request(c, e, messages, t),
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
                except Exception as error:  # the SDK's errors, re-raised from the worker
                    if offered and not yielded and _rejects_tools(error):
                        # This endpoint (or model) cannot take tools: ask again without
                        # them; the model then writes fenced blocks, which run the same.
                        self.without_tools.add(index)
                        offered = None
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
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None,
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
        if not self.stream_replies:
            raw = completions.with_raw_response.create(
                model=endpoint.model, messages=[], extra_body=body
            )
            yield _reply_from_completion(json.loads(raw.http_response.content), endpoint)
            return
        body["stream_options"] = {"include_usage": True}
        parts: list[str] = []
        calls: dict[int, dict[str, str]] = {}
        usage: Usage | None = None
        finish: str | None = None
        model = endpoint.model
        with completions.with_streaming_response.create(
            model=endpoint.model, messages=[], stream=True, extra_body=body
        ) as response:
            lines = response.iter_lines()
            for chunk in _sse_events(lines):
                if chunk.get("error"):
                    raise ChatError(
                        f"{endpoint.label}: the server sent an error: {_error_text(chunk['error'])}"
                    )
                model = chunk.get("model") or model
                if chunk.get("usage"):
                    usage = _usage(chunk["usage"])
                for choice in chunk.get("choices") or ():
                    finish = choice.get("finish_reason") or finish
                    delta = choice.get("delta") or {}
                    if delta.get("content"):
                        parts.append(delta["content"])
                        yield delta["content"]
                    for call in delta.get("tool_calls") or ():
                        slot = calls.setdefault(
                            call.get("index") or 0, {"id": "", "name": "", "arguments": ""}
                        )
                        if call.get("id"):
                            slot["id"] = call["id"]
                        function = call.get("function") or {}
                        slot["name"] += function.get("name") or ""
                        slot["arguments"] += function.get("arguments") or ""
            if finish is None and not parts and not calls:
                raise ChatError(f"{endpoint.label}: the stream ended before any reply arrived")
            tool_calls = tuple(
                ToolCallRequest(slot["id"] or f"call_{i}", slot["name"], slot["arguments"])
                for i, slot in sorted(calls.items())
            )
            yield ChatReply("".join(parts), tool_calls, usage, model, endpoint.label, finish)
            # The reply is handed on; now read on to the end of the body, in this worker
            # thread, so the connection goes back to the pool: a response closed
            # part-read closes its connection, and the next request would open a new
            # one. After [DONE] only the chunked encoding's last chunk is left (openai
            # 1.x read it too); a server that keeps the body open after [DONE] holds up
            # this worker, never the caller, and a body that goes on is dropped.
            with contextlib.suppress(Exception):
                for _ in itertools.islice(lines, 16):
                    pass

    def _explain(self, error: BaseException, endpoint: Endpoint) -> str:
        return redact(
            _explain(error, endpoint),
            [
                endpoint.api_key,
                os.environ.get("OPENAI_API_KEY"),
                os.environ.get("AZURE_OPENAI_API_KEY"),
            ],
        )


def _reply_from_completion(completion: Any, endpoint: Endpoint) -> ChatReply:
    if not isinstance(completion, dict) or not completion.get("choices"):
        raise ChatError(f"{endpoint.label}: the reply had no choices")
    choice = completion["choices"][0]
    message = choice.get("message") or {}
    calls = tuple(
        ToolCallRequest(
            c.get("id") or "", c["function"].get("name") or "", c["function"].get("arguments") or ""
        )
        for c in (message.get("tool_calls") or ())
        if isinstance(c.get("function"), dict)
    )
    usage = _usage(completion["usage"]) if completion.get("usage") else None
    return ChatReply(
        message.get("content") or "",
        calls,
        usage,
        completion.get("model") or endpoint.model,
        endpoint.label,
        choice.get("finish_reason"),
    )


def _usage(usage: Mapping[str, Any]) -> Usage:
    return Usage(usage.get("prompt_tokens") or 0, usage.get("completion_tokens") or 0)


def _error_text(error: Any) -> str:
    if isinstance(error, dict):
        error = error.get("message") or error
    return " ".join(str(error).split())[:300]


def _sse_events(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    """The JSON objects of a server-sent event stream, up to ``[DONE]``.

    Comments, event names and keep-alives are skipped, and so is a payload that is
    JSON but not an object (some proxies send ``data: null`` or a bare number).
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
            return
        event = json.loads(payload)
        if isinstance(event, dict):
            yield event


def _rejects_tools(error: BaseException) -> bool:
    """A 400/422/501 that blames the tools: servers and models without tool calling.

    Only messages that say tools are unsupported or invalid: any other 400 (a context
    too long, a bad message) is the user's to see, not a reason to ask again.
    """
    import openai

    if not isinstance(error, openai.APIStatusError) or error.status_code not in (400, 422, 501):
        return False
    return bool(_TOOLS_REJECTED.search(_detail(error) or str(error)))


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


def _falls_through(error: BaseException) -> bool:
    """Errors after which the next endpoint is worth trying."""
    import openai

    if isinstance(error, (openai.APITimeoutError, openai.APIConnectionError)):
        return True
    if isinstance(error, openai.APIStatusError):
        return error.status_code in (401, 403, 404, 408, 429) or error.status_code >= 500
    return isinstance(error, ChatError)


def _explain(error: BaseException, endpoint: Endpoint) -> str:
    import openai

    where = endpoint.label
    if isinstance(error, ChatError):
        return str(error)
    if isinstance(error, openai.APITimeoutError):
        return f"{where}: the request timed out; raise AgentMagics.timeout or try again"
    if isinstance(error, openai.APIConnectionError):
        return (
            f"cannot reach {endpoint.base_url or where}: is the server running? "
            "Check --base-url / OPENAI_BASE_URL"
        )
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
    return f"{where}: {type(error).__name__}: {error}"


def _detail(error: Any) -> str:
    body = getattr(error, "body", None)
    if isinstance(body, dict):
        message = body.get("message") or (body.get("error") or {}).get("message")
        if message:
            return " ".join(str(message).split())[:300]
    return ""


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
