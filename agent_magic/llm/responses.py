"""The Responses API (``POST /v1/responses``): asking, and the request body.

OpenAI's newer models (gpt-5-codex and later codex models, o3-pro, the gpt-5 "pro"
models) answer only here; chat completions answers them 404 "This model is only
supported in v1/responses and not in v1/chat/completions." (``errors.wants_responses``).
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
and asking again (:mod:`.client`), the one line each error gets (:mod:`.errors`), reading
the reply whole or streamed (:mod:`.responses_reply`).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from ..conversation import ChatError, ChatReply, ThinkingDelta
from .config import Endpoint
from .errors import broken_connection
from .responses_reply import ResponsesStream, reply_from_response
from .wire import send_escaped, sse_events, sse_lines

# Where an assistant message in the history keeps the reasoning items that came with it.
REASONING_KEY = "reasoning_items"

# Models that think: asked for a summary of their reasoning, which the cell shows folded.
_REASONING_MODEL = re.compile(r"^(o\d|gpt-5|codex|computer-use)", re.IGNORECASE)

# Endpoints (as endpoint_key) whose model is served by the Responses API only: learnt
# from the first 404 that says so (see OpenAIChat.stream), kept for the kernel.
RESPONSES_ONLY: set[tuple[str, str | None, str]] = set()


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

    from .errors import status_text

    if not isinstance(error, openai.APIStatusError) or error.status_code != 400:
        return False
    text = status_text(error)
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
        raw = send_escaped(
            lambda b: responses.with_raw_response.create(
                model=endpoint.model, input=[], extra_body=b
            ),
            body,
        )
        yield reply_from_response(json.loads(raw.http_response.content), endpoint)
        return
    state = ResponsesStream()
    with contextlib.ExitStack() as opened:
        # The request goes out when the response is entered: inside send_escaped.
        response = send_escaped(
            lambda b: opened.enter_context(
                responses.with_streaming_response.create(
                    model=endpoint.model, input=[], stream=True, extra_body=b
                )
            ),
            body,
        )
        lines = sse_lines(response.iter_bytes())
        try:
            for event in sse_events(lines):
                shown = state.take(event, endpoint)
                if shown:
                    yield shown
                if state.final is not None:
                    break
        except Exception as error:
            # Broken after the reply began: what came is the reply, marked cut off.
            if not state.begun or not broken_connection(error):
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
