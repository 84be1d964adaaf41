"""A Responses API answer read into a :class:`ChatReply`: whole (:func:`reply_from_response`)
or as it streams (:class:`ResponsesStream`): the output text, the function calls, the
reasoning summaries (the thinking) and encrypted reasoning items, usage with its reasoning
tokens, and why a reply is not whole (``status: "incomplete"``). Not here: the request
(:mod:`.responses`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..conversation import ChatError, ChatReply, ThinkingDelta, ToolCallRequest, Usage
from .config import Endpoint
from .errors import error_text, stream_error
from .wire import CUT_INCOMPLETE

_CUT_REASONS = {"max_output_tokens": "length", "content_filter": "content_filter"}


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
        return stream_error(error, endpoint)
    text = error_text(error) if error else "no reason given"
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
            raise stream_error(event.get("error") or event, endpoint)
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
