"""The Responses API as :class:`~.server.FakeOpenAIServer` speaks it: ``POST /v1/responses``.

:class:`ResponseAnswer` turns a scripted :class:`~.scripting.Reply` into a whole
``response`` object (``output`` items: reasoning with its summary and encrypted
content, the message, function calls; ``usage`` with ``output_tokens_details``) or
into the event stream api.openai.com sends (``response.created`` ...
``response.output_text.delta`` ... ``response.completed``), with ``status:
"incomplete"`` for a reply whose ``finish_reason`` is "length" or "content_filter".
Also the 404 chat completions gives a Responses-only model (:data:`RESPONSES_ONLY`).
Not here: routing and writing (:mod:`.handler`), the chat completions wire (:mod:`.chat_wire`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .chat_wire import RecordedRequest, argument_pieces, content_pieces, rough_tokens
from .scripting import Failure, Reply

# api.openai.com's words, on chat completions, for a model served by Responses only.
RESPONSES_ONLY = "This model is only supported in v1/responses and not in v1/chat/completions."

# api.openai.com's path, and Azure OpenAI's (``?api-version=...`` in the query).
RESPONSES_PATHS = ("/v1/responses", "/openai/responses", "/openai/v1/responses")

_INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


def responses_only_failure() -> Failure:
    return Failure(404, RESPONSES_ONLY, type="invalid_request_error", param="model")


def input_text(request: RecordedRequest) -> str:
    """The text of a Responses request's instructions and input, for rough token counts."""
    body = request.json if isinstance(request.json, dict) else {}
    parts = [str(body.get("instructions") or "")]
    items = body.get("input")
    if isinstance(items, str):
        parts.append(items)
    for item in items if isinstance(items, list) else ():
        if not isinstance(item, dict):
            continue
        content = item.get("content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts.extend(str(p.get("text", "")) for p in content if isinstance(p, dict))
        for field in ("arguments", "output"):
            if isinstance(item.get(field), str):
                parts.append(item[field])
    return "".join(parts)


@dataclass(frozen=True)
class ResponseAnswer:
    """A reply bound to one Responses request: its ids, model and items."""

    reply: Reply
    request: RecordedRequest
    id: str
    created: int
    model: str
    item_ids: tuple[str, ...]  # reasoning, message, then one per tool call
    call_ids: tuple[str, ...]

    @property
    def encrypted(self) -> bool:
        include = self.request.json.get("include") if isinstance(self.request.json, dict) else None
        return isinstance(include, list) and "reasoning.encrypted_content" in include

    @property
    def status(self) -> str:
        return "incomplete" if self.reply.finish_reason in _INCOMPLETE else "completed"

    def usage(self) -> dict[str, Any]:
        reply = self.reply
        if reply.usage is not None:
            prompt, completion = reply.usage
        else:
            prompt = rough_tokens(input_text(self.request))
            answer = (reply.content or "") + "".join(c.arguments_json for c in reply.tool_calls)
            completion = rough_tokens(answer) + reply.reasoning_tokens
        return {
            "input_tokens": prompt,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": completion,
            "output_tokens_details": {"reasoning_tokens": reply.reasoning_tokens},
            "total_tokens": prompt + completion,
        }

    def items(self) -> list[dict[str, Any]]:
        reply = self.reply
        items: list[dict[str, Any]] = []
        if reply.reasoning_summary is not None:
            reasoning: dict[str, Any] = {
                "id": self.item_ids[0],
                "type": "reasoning",
                "summary": [{"type": "summary_text", "text": reply.reasoning_summary}]
                if reply.reasoning_summary
                else [],
            }
            if self.encrypted:
                reasoning["encrypted_content"] = f"gAAAA-fake-encrypted-{self.item_ids[0]}"
            items.append(reasoning)
        if reply.content or not reply.tool_calls:
            items.append(
                {
                    "id": self.item_ids[1],
                    "type": "message",
                    "status": self.status,
                    "role": "assistant",
                    "content": [
                        {"type": "output_text", "text": reply.content or "", "annotations": []}
                    ],
                }
            )
        for call, item_id, call_id in zip(
            reply.tool_calls, self.item_ids[2:], self.call_ids, strict=True
        ):
            items.append(
                {
                    "id": item_id,
                    "type": "function_call",
                    "status": "completed",
                    "call_id": call_id,
                    "name": call.name,
                    "arguments": call.arguments_json,
                }
            )
        return items

    def response(self, *, whole: bool = True) -> dict[str, Any]:
        """The ``response`` object: whole, or as ``response.created`` shows it."""
        body = self.request.json if isinstance(self.request.json, dict) else {}
        status = self.status if whole else "in_progress"
        return {
            "id": self.id,
            "object": "response",
            "created_at": self.created,
            "status": status,
            "error": None,
            "incomplete_details": {"reason": _INCOMPLETE[self.reply.finish_reason or ""]}
            if whole and status == "incomplete"
            else None,
            "instructions": body.get("instructions"),
            "model": self.model,
            "output": self.items() if whole else [],
            "parallel_tool_calls": True,
            "previous_response_id": None,
            "reasoning": body.get("reasoning") or {"effort": None, "summary": None},
            "store": body.get("store", True),
            "tools": body.get("tools") or [],
            "usage": self.usage() if whole and self.reply.send_usage else None,
        }

    def events(self) -> list[dict[str, Any]]:
        """The stream's events in api.openai.com's order, numbered."""
        reply = self.reply
        events: list[dict[str, Any]] = [
            {"type": "response.created", "response": self.response(whole=False)},
            {"type": "response.in_progress", "response": self.response(whole=False)},
        ]
        for index, item in enumerate(self.items()):
            events.extend(self._item_events(index, item))
        if reply.send_finish:
            kind = "response.completed" if self.status == "completed" else "response.incomplete"
            events.append({"type": kind, "response": self.response()})
        return [{**event, "sequence_number": n} for n, event in enumerate(events)]

    def _item_events(self, index: int, item: dict[str, Any]) -> list[dict[str, Any]]:
        kind, item_id = item["type"], item["id"]
        where = {"item_id": item_id, "output_index": index}
        opened = {**item}
        if kind == "message":
            opened = {**item, "status": "in_progress", "content": []}
        elif kind == "reasoning":
            opened = {**item, "summary": []}
        elif kind == "function_call":
            opened = {**item, "status": "in_progress", "arguments": ""}
        events = [{"type": "response.output_item.added", "output_index": index, "item": opened}]
        if kind == "reasoning":
            for n, part in enumerate(item["summary"]):
                at = {**where, "summary_index": n}
                empty = {"type": "summary_text", "text": ""}
                events.append(
                    {"type": "response.reasoning_summary_part.added", **at, "part": empty}
                )
                events.extend(
                    {"type": "response.reasoning_summary_text.delta", **at, "delta": piece}
                    for piece in content_pieces(part["text"])
                )
                events.append(
                    {"type": "response.reasoning_summary_text.done", **at, "text": part["text"]}
                )
                events.append({"type": "response.reasoning_summary_part.done", **at, "part": part})
        elif kind == "message":
            text = item["content"][0]["text"]
            at = {**where, "content_index": 0}
            part = {"type": "output_text", "text": "", "annotations": []}
            events.append({"type": "response.content_part.added", **at, "part": part})
            pieces = self.reply.pieces if self.reply.pieces is not None else content_pieces(text)
            events.extend(
                {"type": "response.output_text.delta", **at, "delta": piece, "logprobs": []}
                for piece in pieces
            )
            events.append({"type": "response.output_text.done", **at, "text": text})
            events.append(
                {"type": "response.content_part.done", **at, "part": {**part, "text": text}}
            )
        elif kind == "function_call":
            events.extend(
                {"type": "response.function_call_arguments.delta", **where, "delta": piece}
                for piece in argument_pieces(item["arguments"])
                if piece
            )
            events.append(
                {
                    "type": "response.function_call_arguments.done",
                    **where,
                    "arguments": item["arguments"],
                }
            )
        events.append({"type": "response.output_item.done", "output_index": index, "item": item})
        return events


def sse_event(event: dict[str, Any]) -> bytes:
    """One Responses event as api.openai.com sends it: ``event:`` then ``data:``."""
    try:  # UTF-8 text, as the chat stream's events (chat_wire.sse)
        data = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
        return f"event: {event['type']}\ndata: {data}\n\n".encode()
    except UnicodeEncodeError:
        data = json.dumps(event, separators=(",", ":"))
        return f"event: {event['type']}\ndata: {data}\n\n".encode()
