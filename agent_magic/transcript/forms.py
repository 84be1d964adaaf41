"""The JSON forms of the records' parts, and back: a reply, code blocks, a decision, an
error, and a request message's words. Reading raises TypeError/ValueError/KeyError on a
form that holds nothing readable; :mod:`.records` turns that into "not a record".

Not here: the records themselves (:mod:`.records`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..codeblocks import CodeBlock
from ..conversation import ChatReply, Decision, StepError, ToolCallRequest, Usage


def reply_record(reply: ChatReply) -> dict[str, Any]:
    """The reply fields of a :class:`ReplyRecord` (``thinking`` only when there is some)."""
    record: dict[str, Any] = {
        "content": reply.content,
        "tool_calls": [
            {"id": c.id, "name": c.name, "arguments": c.arguments} for c in reply.tool_calls
        ],
        "usage": None
        if reply.usage is None
        else {
            "prompt_tokens": reply.usage.prompt_tokens,
            "completion_tokens": reply.usage.completion_tokens,
            "reasoning_tokens": reply.usage.reasoning_tokens,
        },
        "model": reply.model,
        "endpoint": reply.endpoint,
        "finish_reason": reply.finish_reason,
        "source": reply.source,
        "cut_off": reply.cut_off,
        "reasoning_items": list(reply.reasoning_items),
    }
    if reply.thinking:
        record["thinking"] = reply.thinking
    return record


def reply_from_record(record: Mapping[str, Any], source: str) -> ChatReply:
    """The reply a record holds; TypeError/ValueError/KeyError if it holds none."""
    usage = record.get("usage")
    if not isinstance(record.get("content") or "", str):
        raise TypeError("content")
    return ChatReply(
        content=record.get("content") or "",
        tool_calls=tuple(
            ToolCallRequest(str(c["id"]), str(c["name"]), str(c.get("arguments") or ""))
            for c in record.get("tool_calls") or ()
        ),
        usage=None
        if not usage
        else Usage(
            int(usage.get("prompt_tokens", 0)),
            int(usage.get("completion_tokens", 0)),
            int(usage.get("reasoning_tokens", 0)),
        ),
        model=str(record.get("model") or ""),
        endpoint=str(record.get("endpoint") or ""),
        finish_reason=record.get("finish_reason"),
        source=source,
        cut_off=record.get("cut_off") if isinstance(record.get("cut_off"), str) else None,
        thinking=record.get("thinking") if isinstance(record.get("thinking"), str) else "",
        reasoning_items=tuple(
            dict(i) for i in record.get("reasoning_items") or () if isinstance(i, Mapping)
        ),
    )


def blocks_record(blocks: Iterable[CodeBlock] | None) -> list[dict[str, Any]] | None:
    if blocks is None:
        return None
    return [
        {"language": b.language, "code": b.code, "tool_call_id": b.tool_call_id} for b in blocks
    ]


def blocks_from_record(value: Any) -> tuple[CodeBlock, ...] | None:
    if value is None:
        return None
    return tuple(
        CodeBlock(str(b["language"]), str(b["code"]), tool_call_id=b.get("tool_call_id"))
        for b in value
    )


def decision_from_record(record: Mapping[str, Any]) -> Decision:
    """The decision a record holds; TypeError/ValueError/KeyError if it holds none."""
    action = record["action"]
    if action not in ("run", "skip", "stop", "feedback"):
        raise ValueError(f"unknown action {action!r}")
    blocks = blocks_from_record(record.get("edited"))
    return Decision(action, blocks, str(record.get("text") or ""), rest=bool(record.get("rest")))


def error_record(error: StepError | None) -> dict[str, Any] | None:
    if error is None:
        return None
    return {
        "type": error.type,
        "message": error.message,
        "frames": [list(frame) for frame in error.frames],
        "text": error.text,
    }


def error_from_record(record: Mapping[str, Any] | None) -> StepError | None:
    """A code record's error (format 2), or None (no error, or format 1)."""
    if not isinstance(record, Mapping):
        return None
    frames = tuple(
        (str(f[0]), int(f[1]), str(f[2]))
        for f in record.get("frames") or ()
        if isinstance(f, (list, tuple)) and len(f) == 3
    )
    return StepError(
        str(record.get("type") or "Error"),
        str(record.get("message") or ""),
        frames,
        str(record.get("text") or ""),
    )


def message_text(message: Any) -> str:
    """A request message's words (images as ``[image]``, tool calls appended)."""
    if not isinstance(message, Mapping):
        return str(message)
    content = message.get("content") or ""
    if isinstance(content, list):
        content = "\n".join(str(p.get("text", "[image]")) for p in content if isinstance(p, dict))
    calls = message.get("tool_calls") or ()
    return str(content) + "".join(str(c) for c in calls)


def message_role(message: Any) -> str:
    """A request message's role ("user", "tool", ...; "None" when it has none)."""
    return str(message.get("role")) if isinstance(message, Mapping) else "None"
