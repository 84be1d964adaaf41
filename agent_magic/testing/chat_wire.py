"""What goes on the wire: the request as recorded, and the answer to it as JSON or SSE.

:class:`RecordedRequest` (one request as the server saw it), :class:`Answer` (a reply
bound to one request: the completion and its stream chunks), usage counted roughly as
characters / 4, and the SSE and JSON helpers. Not here: the HTTP handling
(:mod:`.handler`), the script (:mod:`.scripting`), the server's state (:mod:`.server`).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from .scripting import Reply

_AZURE_CHAT = re.compile(r"^/openai/deployments/(?P<name>[^/]+)/chat/completions$")


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server saw it. Header names are lower-cased.

    ``path`` excludes the query string, which is parsed into ``query``. ``json`` is the
    parsed body, or None when the body is empty or not JSON. ``time`` is
    ``time.monotonic()`` at arrival, for asserting on gaps (retries, backoff).
    """

    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes
    json: Any
    time: float

    @property
    def messages(self) -> list[dict[str, Any]]:
        if isinstance(self.json, dict) and isinstance(self.json.get("messages"), list):
            return self.json["messages"]
        return []

    @property
    def deployment(self) -> str | None:
        """The Azure deployment named in the path, if this is an Azure-style request."""
        match = _AZURE_CHAT.match(self.path)
        return unquote(match["name"]) if match else None

    @property
    def model(self) -> str | None:
        """The model asked for: Azure's deployment name, else the body's ``model``."""
        if self.deployment is not None:
            return self.deployment
        model = self.json.get("model") if isinstance(self.json, dict) else None
        return model if isinstance(model, str) else None

    @property
    def stream(self) -> bool:
        return isinstance(self.json, dict) and bool(self.json.get("stream"))

    @property
    def include_usage(self) -> bool:
        options = self.json.get("stream_options") if isinstance(self.json, dict) else None
        return isinstance(options, dict) and bool(options.get("include_usage"))


def rough_tokens(text: str) -> int:
    return math.ceil(len(text) / 4)


def prompt_text(messages: Iterable[Any]) -> str:
    parts: list[str] = []
    for message in messages:
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts.extend(str(p.get("text", "")) for p in content if isinstance(p, dict))
        for call in message.get("tool_calls") or ():
            if isinstance(call, dict) and isinstance(call.get("function"), dict):
                parts.append(str(call["function"].get("arguments", "")))
    return "".join(parts)


def _usage(reply: Reply, request: RecordedRequest) -> dict[str, Any]:
    reasoning = reply.reasoning_tokens
    if not reasoning and reply.thinking:
        reasoning = rough_tokens(reply.thinking)
    if reply.usage is not None:
        prompt, completion = reply.usage
    else:
        prompt = rough_tokens(prompt_text(request.messages))
        answer = (reply.content or "") + "".join(c.arguments_json for c in reply.tool_calls)
        completion = rough_tokens(answer) + reasoning
    usage: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    if reasoning:
        usage["completion_tokens_details"] = {"reasoning_tokens": reasoning}
    return usage


def _content(reply: Reply) -> str | None:
    """The content as sent: with the thinking inline before it, when it goes there."""
    if not reply.thinking or reply.thinking_field not in ("think", "think-unopened"):
        return reply.content
    opening = "<think>\n" if reply.thinking_field == "think" else ""
    return f"{opening}{reply.thinking}\n</think>\n\n{reply.content or ''}"


def _thinking_field(reply: Reply) -> str | None:
    """The delta's or message's field the thinking goes in, or None (none, or inline)."""
    if not reply.thinking or reply.thinking_field in ("think", "think-unopened"):
        return None
    return reply.thinking_field


def _finish_reason(reply: Reply) -> str:
    if reply.finish_reason is not None:
        return reply.finish_reason
    return "tool_calls" if reply.tool_calls else "stop"


def content_pieces(text: str) -> list[str]:
    # Word-sized pieces with their leading space, like a tokenizer's; "".join gives text.
    return re.findall(r"\s*\S{1,8}|\s+", text)


def argument_pieces(arguments: str) -> list[str]:
    return [arguments[i : i + 8] for i in range(0, len(arguments), 8)] or [""]


@dataclass(frozen=True)
class Answer:
    """A reply bound to one request: the ids and model it goes out with."""

    reply: Reply
    request: RecordedRequest
    id: str
    created: int
    model: str
    tool_call_ids: tuple[str, ...] = ()

    def completion(self) -> dict[str, Any]:
        reply = self.reply
        content = _content(reply)
        message: dict[str, Any] = {
            "role": "assistant",
            # OpenAI sends null content beside tool calls when there is no text.
            "content": (content or None) if reply.tool_calls else content,
            "refusal": None,
        }
        field = _thinking_field(reply)
        if field:
            message[field] = reply.thinking
        if reply.tool_calls:
            message["tool_calls"] = [
                {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments_json},
                }
                for call, call_id in zip(reply.tool_calls, self.tool_call_ids, strict=True)
            ]
        completion: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": []
            if reply.no_choices
            else [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": _finish_reason(reply) if reply.send_finish else None,
                }
            ],
        }
        if reply.send_usage:
            completion["usage"] = _usage(reply, self.request)
        return completion

    def chunk(
        self, delta: dict[str, Any] | None, finish_reason: str | None = None
    ) -> dict[str, Any]:
        """One ``chat.completion.chunk``; ``delta=None`` makes the trailing usage chunk."""
        chunk: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": []
            if delta is None
            else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
        }
        if self.request.include_usage and self.reply.send_usage:
            chunk["usage"] = _usage(self.reply, self.request) if delta is None else None
        return chunk

    def stream(self) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
        """(role chunk, content and tool-call chunks, finish and usage chunks)."""
        reply = self.reply
        if reply.no_choices:
            usage = [self.chunk(None)] if self.request.include_usage and reply.send_usage else []
            return self.chunk(None), [], usage
        first = self.chunk({"role": "assistant", "content": "", "refusal": None})
        field = _thinking_field(reply)
        body = (
            [
                self.chunk({"content": None, field: piece})
                for piece in content_pieces(reply.thinking)
            ]
            if field
            else []
        )
        pieces = reply.pieces if reply.pieces is not None else content_pieces(_content(reply) or "")
        body.extend(self.chunk({"content": piece}) for piece in pieces)
        for index, (call, call_id) in enumerate(
            zip(reply.tool_calls, self.tool_call_ids, strict=True)
        ):
            pieces = argument_pieces(call.arguments_json)
            opening = {
                "index": index,
                "id": call_id,
                "type": "function",
                "function": {"name": call.name, "arguments": ""},
            }
            body.append(self.chunk({"tool_calls": [opening]}))
            body.extend(
                self.chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
                for piece in pieces
                if piece
            )
        last = [self.chunk({}, _finish_reason(reply))] if reply.send_finish else []
        if self.request.include_usage and reply.send_usage:
            last.append(self.chunk(None))
        return first, body, last


def sse(data: dict[str, Any] | str) -> bytes:
    """One ``data:`` event. Its JSON is UTF-8 text, not ASCII escapes, as llama.cpp's and
    OpenAI's servers send it: a U+2028 or U+0085 in a reply arrives as itself, and must
    not end a line (text with a lone surrogate, which UTF-8 cannot hold, is escaped)."""
    if isinstance(data, str):
        return f"data: {data}\n\n".encode()
    try:
        return f"data: {json.dumps(data, ensure_ascii=False, separators=(',', ':'))}\n\n".encode()
    except UnicodeEncodeError:
        return f"data: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def parse_json(body: bytes) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None
