"""The openai-SDK-backed chat client: :class:`OpenAIChat` and :func:`list_models`.

:class:`OpenAIChat` tries the endpoints in order, runs each request in a worker thread
(so an interrupt lands within a tick), asks again without tools or ``stream_options``
when a server refuses them, and words every error in one line; :func:`list_models`
asks an endpoint's ``GET /models``. Not here: the shared SDK clients, the worker
threads and the warm-up import (:mod:`.sdk`), reading SSE and replies (:mod:`.wire`),
what each error means (:mod:`.errors`), the endpoints themselves (:mod:`.config`).
"""

from __future__ import annotations

import contextlib
import importlib
import itertools
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from ..conversation import ChatError, ChatReply, ContextWindowExceeded, ThinkingDelta
from ..secrets import redact_message
from .config import (
    ConfigError,
    Endpoint,
    client_settings,
    resolve_endpoints,
    shown_url,
)
from .errors import (
    broken_connection,
    connection_reset,
    context_error,
    explain,
    falls_through,
    http,
    rejects_stream_options,
    rejects_tools,
    stream_error,
    wants_responses,
)
from .responses import (
    RESPONSES_ONLY,
    chat_messages,
    endpoint_key,
    learn_refusal,
    respond,
)
from .sdk import WORKERS, in_thread, shared_client, transport_of
from .transport import post as transport_post
from .transport import raw_pieces
from .windows import context_window_for, model_entries, remember_window
from .wire import (
    EmptyStream,
    StreamState,
    completion_usage,
    json_body,
    reply_from_completion,
    send_escaped,
    sse_events,
    sse_lines,
)


def _say(text: str) -> None:
    print(text)


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
        api: str = "auto",
        notice: Any = None,
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
        self._clients: dict[tuple[int, str], Any] = {}
        self.without_tools: set[int] = set()  # endpoints that refused tool definitions
        # Endpoints that refused stream_options (usage in streams): asked without it.
        self.without_stream_options: set[int] = set()
        # "chat", "responses", or "auto": chat completions until the endpoint says the
        # model is served by the Responses API only (remembered for the kernel).
        self.api = api
        self.notice = notice if notice is not None else _say

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
    ) -> Iterator[str | ThinkingDelta | ChatReply]:
        failures: list[str] = []
        for index, endpoint in enumerate(self.endpoints):
            try:
                self._settings(endpoint)  # a missing key is said here, before any request
            except ConfigError as error:
                failures.append(str(error))
                continue
            offered = None if index in self.without_tools else tools
            streamed = self.stream_replies
            reasked = False  # asked again without streaming after an empty stream
            while True:
                api = self.api_for(endpoint)
                # Azure's Responses API has its own api-version, so its own client.
                kind = api if api == "responses" and endpoint.api_type == "azure" else "chat"
                # The SDK client is built in the worker too: its first build imports the SDK,
                # and an interrupt must never land in this thread while it waits on an
                # import lock the warm-up holds (that left the kernel's imports deadlocked).
                items = in_thread(
                    lambda e=endpoint, i=index, t=offered, s=streamed, a=api, k=kind: self._request(
                        self._client(i, e, k), e, messages, t, index=i, streamed=s, api=a
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
                except EmptyStream:
                    streamed = False  # once: the next answer is a JSON body or an error
                    reasked = True
                    continue
                except Exception as error:  # the SDK's errors, re-raised from the worker
                    if reasked and connection_reset(error):
                        # llama-cpp-python resets the connection behind a failed stream;
                        # the question asked again may have gone out on it: once more.
                        reasked = False
                        continue
                    window = context_error(error)
                    if window is not False:
                        # The next endpoint would get the same conversation: say so now.
                        raise self._too_long(endpoint, window) from None
                    if (
                        api == "chat"
                        and self._asked_api(endpoint) == "auto"
                        and (not yielded and wants_responses(error))
                    ):
                        # The model is served by the Responses API only: ask it there,
                        # now and for the rest of the kernel (one such 404 per kernel).
                        RESPONSES_ONLY.add(endpoint_key(endpoint))
                        self.notice(
                            f"agent: {endpoint.model} is served by the Responses API only; "
                            "asking it through /responses from now on"
                        )
                        continue
                    if (
                        api == "responses"
                        and not yielded
                        and learn_refusal(error, endpoint_key(endpoint))
                    ):
                        continue  # asked again without a summary, or without streaming
                    if offered and not yielded and rejects_tools(error):
                        # This endpoint (or model) cannot take tools: ask again without
                        # them; the model then writes fenced blocks, which run the same.
                        self.without_tools.add(index)
                        offered = None
                        continue
                    if (
                        streamed
                        and not yielded
                        and index not in self.without_stream_options
                        and rejects_stream_options(error)
                    ):
                        # Usage in streams is a nicety; a server that refuses to be
                        # asked for it streams without it (and its usage is unknown).
                        self.without_stream_options.add(index)
                        continue
                    if yielded or not falls_through(error):
                        raise ChatError(self.explain(error, endpoint, api)) from None
                    failures.append(self.explain(error, endpoint, api))
                    break
        if len(failures) == 1:
            raise ChatError(failures[0])
        numbered = "; ".join(f"[{i + 1}] {text}" for i, text in enumerate(failures))
        raise ChatError(f"all {len(failures)} endpoints failed: {numbered}")

    def _asked_api(self, endpoint: Endpoint) -> str:
        """The API asked for: the config entry's ``api``, else AgentMagics.api."""
        return endpoint.api or self.api

    def api_for(self, endpoint: Endpoint) -> str:
        """The API this endpoint is asked through now: "chat" or "responses"."""
        asked = self._asked_api(endpoint)
        if asked != "auto":
            return asked
        return "responses" if endpoint_key(endpoint) in RESPONSES_ONLY else "chat"

    # -- internals -----------------------------------------------------------------

    def _client(self, index: int, endpoint: Endpoint, api: str = "chat") -> Any:
        if (index, api) in self._clients:
            return self._clients[index, api]
        client = self._clients[index, api] = shared_client(self._settings(endpoint, api))
        return client

    def _settings(self, endpoint: Endpoint, api: str = "chat") -> tuple[Any, ...]:
        """What an SDK client is built from (held in memory only, never written)."""
        return client_settings(endpoint, self.timeout, self.max_retries, api=api)

    def _request(
        self,
        client: Any,
        endpoint: Endpoint,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None,
        *,
        index: int = 0,
        streamed: bool | None = None,
        api: str = "chat",
    ) -> Iterator[str | ThinkingDelta | ChatReply]:
        """One request to one endpoint (``index`` in the list), run in a worker thread."""
        if streamed is None:
            streamed = self.stream_replies
        if api == "responses":
            params = self._params(endpoint)
            yield from respond(client, endpoint, messages, tools, params, streamed=streamed)
            return
        # Messages and tools go through extra_body: the SDK would otherwise walk
        # and re-validate the whole history on every call (milliseconds per step
        # in long conversations) while retries, errors, Azure routing and
        # streaming stay the SDK's.
        body: dict[str, Any] = {"messages": chat_messages(messages), **self._params(endpoint)}
        if tools:
            body["tools"] = tools
        # The reply is read as plain JSON (the HTTP response itself) rather than parsed
        # into the SDK's pydantic models, and the request goes through the SDK's own
        # post() rather than create(), which walks its typed parameters on every call:
        # the same retries, errors, headers and Azure routing, a fraction of the time.
        # Over a local server's transport, a head the SDK built twice alike is sent again
        # with the new body (transport.post); anything but a 200 goes back to the SDK.
        transport = transport_of(client)

        def post(b: dict[str, Any]) -> Any:
            sent = {"model": endpoint.model, **({"stream": True} if streamed else {}), **b}
            return transport_post(client, transport, "/chat/completions", sent, streamed)

        if not streamed:
            yield reply_from_completion(json_body(send_escaped(post, body), endpoint), endpoint)
            return
        if index not in self.without_stream_options:
            body["stream_options"] = {"include_usage": True}
        state = StreamState()
        model = endpoint.model
        with contextlib.ExitStack() as opened:
            # The request goes out inside send_escaped; the response is closed on the way out.
            response = send_escaped(post, body)
            opened.callback(response.close)
            # The body as it came when it is not compressed (one generator less per
            # event); a compressed one through httpx's decoder.
            encoded = response.headers.get("content-encoding", "identity") != "identity"
            lines = sse_lines(response.iter_bytes() if encoded else raw_pieces(response))
            try:
                for chunk in sse_events(lines, state):
                    if chunk.get("error"):
                        raise stream_error(chunk["error"], endpoint)
                    if isinstance(chunk.get("model"), str) and chunk["model"]:
                        model = chunk["model"]
                    if chunk.get("usage"):
                        state.usage = completion_usage(chunk["usage"])
                    yield from state.take(chunk)
            except Exception as error:
                # A connection that breaks (or stalls past the timeout) after the reply
                # began: what arrived is the reply, marked as cut off, so it is never
                # taken for whole. Before anything arrived it is an ordinary failure.
                if not state.begun or not broken_connection(error):
                    raise
                state.broken = True
            if not state.begun and state.finish is None:
                # Nothing arrived, with or without [DONE]: llama-cpp-python ends a stream
                # like this when it fails, and when another request queues behind it
                # (its interrupt_requests), as one does right after an interrupted cell.
                raise EmptyStream
            yield from state.rest()
            yield state.reply(model, endpoint.label)
            if state.broken:
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

    def _params(self, endpoint: Endpoint) -> dict[str, Any]:
        """The request's parameters: AgentMagics' (temperature, reasoning_effort), then
        the config entry's reasoning_effort where it gives one."""
        if endpoint.reasoning_effort:
            return {**self.params, "reasoning_effort": endpoint.reasoning_effort}
        return self.params

    def _keys(self, endpoint: Endpoint) -> list[str | None]:
        return [endpoint.api_key, *(e.api_key for e in self.endpoints)]

    def explain(self, error: BaseException, endpoint: Endpoint, api: str = "chat") -> str:
        return redact_message(explain(error, endpoint, self.timeout, api), self._keys(endpoint))

    def _too_long(self, endpoint: Endpoint, window: int | None) -> ContextWindowExceeded:
        if window:
            remember_window(endpoint, window)
        size = f" ({window} tokens)" if window else ""
        message = (
            f"{endpoint.label}: the conversation no longer fits the model's context "
            f"window{size}; start afresh with --new or %agent reset, or run the model "
            "with a larger context (llama.cpp --n_ctx, Ollama num_ctx)"
        )
        return ContextWindowExceeded(redact_message(message, self._keys(endpoint)), window)


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
            [data] = in_thread(
                lambda c=client: iter([_call_models(c, timeout)]), tick, where=endpoint.label
            )
        except Exception as error:
            failures.append(redact_message(_explain_listing(error, endpoint), chat._keys(endpoint)))
            continue
        ids = [str(e["id"]) for e in model_entries(data) if e.get("id")]
        if not ids and not (isinstance(data, dict) and isinstance(data.get("data"), list)):
            failures.append(f"{endpoint.label}: the server's model list could not be read")
            continue
        return ids
    if len(failures) == 1:
        raise ChatError(failures[0])
    numbered = "; ".join(f"[{i + 1}] {text}" for i, text in enumerate(failures))
    raise ChatError(f"no endpoint listed its models: {numbered}")


def _call_models(client: Any, timeout: float) -> Any:
    httpx = http()

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
    return explain(error, endpoint)


def warm_client(
    *,
    base_url: str | None = None,
    config_list: str | None = None,
    timeout: float = 120.0,
    max_retries: int = 2,
) -> None:
    """The first request's slow work, in the calling thread (the warm-up's).

    The openai SDK's import (~0.5-1 s), the client the first cell is likely to use (the
    endpoint the settings given here and the environment point at: its transport's and
    chat resources' imports, the CA bundle) and a request thread. A first cell run at
    once waits for the parts it needs (the import lock, the client's lock); anything that
    fails here is left for the first request to report. A cell with other settings builds
    its own client.
    """
    with contextlib.suppress(Exception):
        importlib.import_module("openai")
        WORKERS.submit(lambda: None)  # a request thread, started and waiting
        [endpoint, *_] = resolve_endpoints(model="", base_url=base_url, config_list=config_list)
        chat = OpenAIChat([endpoint], timeout=timeout, max_retries=max_retries)
        client = shared_client(chat._settings(endpoint))
        # Loaded on first use: the chat resources (~40 ms of imports and models).
        client.chat.completions.with_raw_response  # noqa: B018
        client.chat.completions.with_streaming_response  # noqa: B018
