"""The Responses API (``POST /v1/responses``): the request body, the reply, the stream.

OpenAI's newer models (gpt-5-codex and later codex models, o3-pro, the gpt-5 "pro"
models) answer only here; chat completions answers them 404 "This model is only
supported in v1/responses and not in v1/chat/completions." (``errors._wants_responses``).
:data:`RESPONSES_ONLY` remembers such an endpoint and model for the kernel, and
:func:`respond` asks it here through the SDK's ``client.responses``. The conversation
stays a list of chat messages: :func:`responses_body` turns it into Responses input
items each time, stateless (``store: false``, never a ``previous_response_id``), so
window fitting, redaction, budgets, the recording, the ``--seed`` cache and ``--replay``
see the same messages whichever API answers. The model's encrypted reasoning comes back
in :attr:`ChatReply.reasoning_items` and goes back untouched, before the assistant turn
it led to (the loop keeps it on that message under :data:`REASONING_KEY`; chat
completions never sees it).

Also the 400s an unverified OpenAI organisation gets for reasoning summaries or for
streaming (:func:`learn_refusal`: asked again without). Not here: when to use which API
and asking again (:mod:`.client`), the one line each error gets (:mod:`.errors`).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from ..conversation import ChatError, ChatReply, ThinkingDelta, ToolCallRequest, Usage
from .config import Endpoint
from .errors import _broken_connection, _error_text, _stream_error
from .wire import CUT_INCOMPLETE, _send, _sse_events

# Where an assistant message in the history keeps the reasoning items that came with it.
REASONING_KEY = "reasoning_items"

# Models that think: asked for a summary of their reasoning, which the cell shows folded.
_REASONING_MODEL = re.compile(r"^(o\d|gpt-5|codex|computer-use)", re.IGNORECASE)

# Endpoints (as endpoint_key) whose model is served by the Responses API only: learnt
# from the first 404 that says so (see OpenAIChat.stream), kept for the kernel.
RESPONSES_ONLY: set[tuple[str, str | None, str]] = set()
# The api-version Azure OpenAI's Responses API needs, unless the entry gives one.
AZURE_RESPONSES_VERSION = "2025-04-01-preview"


def endpoint_key(endpoint: Endpoint) -> tuple[str, str | None, str]:
    """What the kernel remembers an endpoint and model by: (api_type, base_url, model)."""
    base_url = endpoint.base_url or os.environ.get("OPENAI_BASE_URL") or None
    return (endpoint.api_type, base_url, endpoint.model)


# Endpoints (as endpoint_key) whose organisation may not get reasoning summaries, or
# may not stream this model, until it is verified with OpenAI: 400 "Your organization must
# be verified to generate reasoning summaries." / "... to stream this model". Asked
# without, for the rest of the kernel.
NO_SUMMARY: set[Any] = set()
NO_STREAM: set[Any] = set()
_UNVERIFIED_SUMMARY = re.compile(r"verified to generate reasoning summar", re.IGNORECASE)
_UNVERIFIED_STREAM = re.compile(r"verified to stream", re.IGNORECASE)


def learn_refusal(error: BaseException, key: Any) -> bool:
    """Whether ``error`` refuses reasoning summaries or streaming for an unverified
    organisation; if so, the endpoint (``key``) is asked without them from now on."""
    import openai

    from .errors import _status_text

    if not isinstance(error, openai.APIStatusError) or error.status_code != 400:
        return False
    text = _status_text(error)
    body = error.body if isinstance(error.body, dict) else {}
    param = body.get("param") or (body.get("error") or {}).get("param")
    if key not in NO_SUMMARY and (_UNVERIFIED_SUMMARY.search(text) or param == "reasoning.summary"):
        NO_SUMMARY.add(key)
        return True
    if key not in NO_STREAM and _UNVERIFIED_STREAM.search(text):
        NO_STREAM.add(key)
        return True
    return False


# Why a Responses reply is incomplete -> ChatReply.cut_off (chat completions' words).
_CUT_REASONS = {"max_output_tokens": "length", "content_filter": "content_filter"}


def chat_messages(messages: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The messages as chat completions takes them: without the reasoning items."""
    if not any(REASONING_KEY in m for m in messages):
        return list(messages)
    return [{k: v for k, v in m.items() if k != REASONING_KEY} for m in messages]


# --- the request ---------------------------------------------------------------------


def respond(
    client: Any,
    endpoint: Endpoint,
    messages: list[dict[str, Any]],
    tools: list[dict[str, Any]] | None,
    params: Mapping[str, Any],
    *,
    streamed: bool,
) -> Iterator[str | ThinkingDelta | ChatReply]:
    """One request through the SDK's ``client.responses`` (``POST /responses``),
    stateless; run in OpenAIChat's worker thread, like a chat completions request.

    The body goes through ``extra_body`` and the answer is read as plain JSON, as for
    chat completions (see ``OpenAIChat._request``): the SDK's retries, errors and Azure
    routing, without its models.
    """
    key = endpoint_key(endpoint)
    body = responses_body(messages, tools, params, endpoint.model, summary=key not in NO_SUMMARY)
    responses = client.responses
    if not streamed or key in NO_STREAM:
        raw = _send(
            lambda b: responses.with_raw_response.create(
                model=endpoint.model, input=[], extra_body=b
            ),
            body,
        )
        yield reply_from_response(json.loads(raw.http_response.content), endpoint)
        return
    state = ResponsesStream()
    with contextlib.ExitStack() as opened:
        # The request goes out when the response is entered: inside _send.
        response = _send(
            lambda b: opened.enter_context(
                responses.with_streaming_response.create(
                    model=endpoint.model, input=[], stream=True, extra_body=b
                )
            ),
            body,
        )
        lines = response.iter_lines()
        try:
            for event in _sse_events(lines):
                shown = state.take(event, endpoint)
                if shown:
                    yield shown
                if state.final is not None:
                    break
        except Exception as error:
            # Broken after the reply began: what came is the reply, marked cut off.
            if not state.begun or not _broken_connection(error):
                raise
            state.broken = True
        if not state.begun and state.final is None:
            raise ChatError(f"{endpoint.label}: the stream ended before any reply arrived")
        yield state.reply(endpoint, endpoint.model)
        if state.broken:
            return
        # Read on to the end of the body, so the connection goes back to the pool.
        with contextlib.suppress(Exception):
            for _ in itertools.islice(lines, 16):
                pass


def responses_body(
    messages: Sequence[Mapping[str, Any]],
    tools: Sequence[Mapping[str, Any]] | None,
    params: Mapping[str, Any],
    model: str,
    *,
    summary: bool = True,
) -> dict[str, Any]:
    """The ``POST /v1/responses`` body for a chat conversation (``model`` goes separately).

    ``summary=False`` leaves out the reasoning summary (an unverified organisation)."""
    instructions: list[str] = []
    items: list[dict[str, Any]] = []
    for message in messages:
        role = message.get("role")
        if role == "system" and not items:
            instructions.append(_plain(message.get("content")))
        else:
            items.extend(_input_items(message))
    body: dict[str, Any] = {"input": items, "store": False}
    if instructions:
        body["instructions"] = "\n\n".join(t for t in instructions if t)
    if tools:
        body["tools"] = [_function_tool(t) for t in tools]
    options = dict(params)
    effort = options.pop("reasoning_effort", None)
    if "max_tokens" in options:
        options["max_output_tokens"] = options.pop("max_tokens")
    options.pop("seed", None)  # chat completions only
    reasoning: dict[str, Any] = {}
    if effort:
        reasoning["effort"] = effort
    if _REASONING_MODEL.match(model) and effort != "none":
        # The summary is what the cell shows while the model thinks; the encrypted
        # reasoning goes back next time (store=false keeps nothing on the server).
        if summary:
            reasoning["summary"] = "auto"
        body["include"] = ["reasoning.encrypted_content"]
    if reasoning:
        body["reasoning"] = reasoning
    body.update(options)
    return body


def _input_items(message: Mapping[str, Any]) -> list[dict[str, Any]]:
    role = message.get("role")
    content = message.get("content")
    if role == "tool":
        return [
            {
                "type": "function_call_output",
                "call_id": str(message.get("tool_call_id") or ""),
                "output": _tool_output(content),
            }
        ]
    if role == "assistant":
        items: list[dict[str, Any]] = [dict(i) for i in message.get(REASONING_KEY) or ()]
        text = _plain(content)
        if text:
            items.append({"role": "assistant", "content": text})
        for call in message.get("tool_calls") or ():
            function = call.get("function") or {}
            items.append(
                {
                    "type": "function_call",
                    "call_id": str(call.get("id") or ""),
                    "name": str(function.get("name") or ""),
                    "arguments": str(function.get("arguments") or ""),
                }
            )
        return items
    shown = "system" if role == "system" else "user"
    if isinstance(content, list):
        return [{"role": shown, "content": [_input_part(p) for p in content]}]
    return [{"role": shown, "content": _plain(content)}]


def _input_part(part: Any) -> dict[str, Any]:
    if isinstance(part, Mapping) and part.get("type") == "image_url":
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, Mapping) else image
        return {"type": "input_image", "image_url": str(url or "")}
    text = part.get("text") if isinstance(part, Mapping) else part
    return {"type": "input_text", "text": str(text or "")}


def _tool_output(content: Any) -> Any:
    if isinstance(content, list):
        return [_input_part(p) for p in content]
    return _plain(content)


def _plain(content: Any) -> str:
    if isinstance(content, list):
        return "".join(
            str(p.get("text", "")) for p in content if isinstance(p, Mapping) and "text" in p
        )
    return content if isinstance(content, str) else ""


def _function_tool(tool: Mapping[str, Any]) -> dict[str, Any]:
    """A chat tool (``{"type": "function", "function": {...}}``) as a Responses tool."""
    function = tool.get("function")
    if not isinstance(function, Mapping):
        return dict(tool)
    converted: dict[str, Any] = {"type": "function", "name": function.get("name")}
    for field in ("description", "parameters", "strict"):
        if field in function:
            converted[field] = function[field]
    return converted


# --- the reply ----------------------------------------------------------------------


def reply_from_response(data: Any, endpoint: Endpoint) -> ChatReply:
    """The reply in a whole Responses answer (``object: "response"``)."""
    if not isinstance(data, dict):
        raise ChatError(f"{endpoint.label}: the reply could not be read (not a response)")
    if data.get("error") and data.get("status") in (None, "failed"):
        raise _failed(data, endpoint)
    parts = _Parts()
    for item in data.get("output") or ():
        parts.add_item(item)
    return parts.reply(data, endpoint)


def _failed(response: Mapping[str, Any], endpoint: Endpoint) -> ChatError:
    error = response.get("error")
    if isinstance(error, Mapping) and error.get("code") == "context_length_exceeded":
        return _stream_error(error, endpoint)
    text = _error_text(error) if error else "no reason given"
    return ChatError(f"{endpoint.label}: the model failed to answer: {text}")


class _Parts:
    """The output items of one answer, whole or as they stream: text, calls, reasoning."""

    def __init__(self) -> None:
        self.text: list[str] = []
        self.thinking: list[str] = []
        self.calls: dict[str, dict[str, str]] = {}  # by item id (or call id), in order
        self.reasoning: list[dict[str, Any]] = []
        self.streamed_text = False
        self.streamed_thinking = False
        self.summary_part: tuple[Any, Any] | None = None  # the summary being streamed

    @property
    def begun(self) -> bool:
        return bool(self.text or self.calls or self.thinking)

    def add_item(self, item: Any) -> None:
        """A whole output item (from ``output`` or ``response.output_item.done``)."""
        if not isinstance(item, dict):
            return
        kind = item.get("type")
        if kind == "message":
            if not self.streamed_text:
                for part in item.get("content") or ():
                    if isinstance(part, dict):
                        text = part.get("text") if "text" in part else part.get("refusal")
                        self.text.append(text if isinstance(text, str) else "")
        elif kind == "reasoning":
            if not self.streamed_thinking:
                self.thinking.extend(_summary_texts(item))
            self.reasoning.append(item)
        elif kind == "function_call":
            slot = self._call(item)
            slot["call_id"] = str(item.get("call_id") or slot["call_id"])
            slot["name"] = str(item.get("name") or slot["name"])
            if isinstance(item.get("arguments"), str):
                slot["arguments"] = item["arguments"]

    def _call(self, item: Mapping[str, Any]) -> dict[str, str]:
        key = str(item.get("id") or item.get("item_id") or item.get("call_id") or len(self.calls))
        return self.calls.setdefault(key, {"call_id": "", "name": "", "arguments": ""})

    def reply(self, response: Mapping[str, Any], endpoint: Endpoint) -> ChatReply:
        calls = tuple(
            ToolCallRequest(c["call_id"] or f"call_{i}", c["name"], c["arguments"])
            for i, c in enumerate(self.calls.values())
        )
        status = response.get("status")
        cut_off: str | None = None
        if status == "incomplete":
            details = response.get("incomplete_details")
            reason = details.get("reason") if isinstance(details, Mapping) else None
            cut_off = _CUT_REASONS.get(str(reason), str(reason or "incomplete"))
        finish = cut_off or ("tool_calls" if calls else "stop")
        model = response.get("model")
        return ChatReply(
            "".join(self.text),
            calls,
            response_usage(response.get("usage")),
            model if isinstance(model, str) and model else endpoint.model,
            endpoint.label,
            finish,
            cut_off=cut_off,
            # Streamed deltas join as they came; whole summaries are said apart.
            thinking=("" if self.streamed_thinking else "\n\n").join(self.thinking),
            reasoning_items=tuple(self.reasoning),
        )


def _summary_texts(item: Mapping[str, Any]) -> list[str]:
    texts = []
    for field in ("summary", "content"):  # summaries; raw reasoning text (gpt-oss)
        for part in item.get(field) or ():
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                texts.append(part["text"])
    return texts


def response_usage(usage: Any) -> Usage | None:
    """A Responses ``usage`` (input/output tokens, reasoning among the output) as Usage."""
    if not isinstance(usage, Mapping):
        return None
    prompt, completion = usage.get("input_tokens"), usage.get("output_tokens")
    if not isinstance(prompt, int) and not isinstance(completion, int):
        return None
    details = usage.get("output_tokens_details")
    reasoning = details.get("reasoning_tokens") if isinstance(details, Mapping) else None
    return Usage(
        prompt if isinstance(prompt, int) else 0,
        completion if isinstance(completion, int) else 0,
        reasoning if isinstance(reasoning, int) else 0,
    )


# --- the stream ---------------------------------------------------------------------


class ResponsesStream:
    """What a Responses event stream has said so far, and the reply it makes.

    :meth:`take` folds one event in and returns what to show (answer text, or a
    :class:`ThinkingDelta`); the stream is whole once ``response.completed`` (or
    ``response.incomplete``) arrived, which carries the status and the usage.
    """

    def __init__(self) -> None:
        self.parts = _Parts()
        self.final: dict[str, Any] | None = None
        self.broken = False

    @property
    def begun(self) -> bool:
        return self.parts.begun

    def take(self, event: Mapping[str, Any], endpoint: Endpoint) -> str | ThinkingDelta | None:
        kind = event.get("type")
        parts = self.parts
        if kind == "response.output_text.delta" or kind == "response.refusal.delta":
            delta = _delta(event)
            parts.streamed_text = True
            parts.text.append(delta)
            return delta or None
        if kind in ("response.reasoning_summary_text.delta", "response.reasoning_text.delta"):
            delta = _delta(event)
            part = (event.get("item_id"), event.get("summary_index"))
            if parts.streamed_thinking and part != parts.summary_part:
                delta = "\n\n" + delta  # a new summary part: said apart by a blank line
            parts.summary_part = part
            parts.streamed_thinking = True
            parts.thinking.append(delta)
            return ThinkingDelta(delta) if delta else None
        if kind == "response.output_item.added":
            item = event.get("item")
            if isinstance(item, dict) and item.get("type") == "function_call":
                parts.add_item({**item, "arguments": None})
        elif kind == "response.function_call_arguments.delta":
            parts._call(event)["arguments"] += _delta(event)
        elif kind == "response.output_item.done":
            parts.add_item(event.get("item"))
        elif kind in ("response.completed", "response.incomplete"):
            response = event.get("response")
            self.final = response if isinstance(response, dict) else {}
        elif kind == "response.failed":
            response = event.get("response")
            raise _failed(response if isinstance(response, dict) else {}, endpoint)
        elif kind == "error":
            raise _stream_error(event.get("error") or event, endpoint)
        return None

    def reply(self, endpoint: Endpoint, model: str) -> ChatReply:
        if self.final is not None:
            return self.parts.reply({"model": model, **self.final}, endpoint)
        # No completed event: the stream ended (or broke) early; what came is cut off.
        reply = self.parts.reply({"model": model}, endpoint)
        return ChatReply(
            reply.content,
            reply.tool_calls,
            None,
            reply.model,
            reply.endpoint,
            None,
            cut_off=CUT_INCOMPLETE,
            thinking=reply.thinking,
            reasoning_items=reply.reasoning_items,
        )


def _delta(event: Mapping[str, Any]) -> str:
    delta = event.get("delta")
    return delta if isinstance(delta, str) else ""
