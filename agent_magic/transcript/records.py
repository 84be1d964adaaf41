"""The recording's record types, defined once, and their conversions.

Each line of ``agent-recording.jsonl`` is one JSON object whose ``event`` names its type:
``task``, ``request``, ``reply``, ``decision``, ``code``, ``finished``. The TypedDicts
below are those types; :data:`FORMAT` is the version the task record carries.

Reading is lenient in one direction: :func:`parse_record` checks the fields a reader
relies on and ignores any others (a newer writer's), and every format so far reads.

* format 1: the task record's context was only inside the first request's user message;
  a code record's ``digest`` held the traceback after ``"error:\\n"``.
* format 2: the task record has ``context``; a code record has ``error`` (type,
  message, frames, text), ``timed_out`` and ``exited``; the digest holds no traceback.
  Added since, optional (absent in older files): a reply's ``cut_off``; a request's
  ``window`` and ``note`` (its messages are what was sent, fitted to that window); a
  decision's ``protected`` and ``cut_off`` (what the review said), and, only when
  set, its ``copies`` and ``injected``; a reply's ``reasoning_items`` and its usage's
  ``reasoning_tokens``; a reply's ``thinking`` (the model's thinking, kept apart from
  its ``content``; absent when it had none) and ``thinking_seconds``; a request's
  ``kinds`` (each of its messages' :data:`~agent_magic.window.Kind`: which was the task,
  which a person's answer), read by ``%agent log`` instead of guessing from the text.

Also here: the record <-> event conversions (reply, decision, blocks, error) and
:func:`read_records`. Not here: writing (:mod:`.recorder`), the index (:mod:`.store`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal, TypedDict

from ..codeblocks import CodeBlock
from ..conversation import ChatReply, Decision, StepError, ToolCallRequest, Usage

FORMAT = 2


class BlockRecord(TypedDict):
    language: str
    code: str
    tool_call_id: str | None


class ToolCallRecord(TypedDict):
    id: str
    name: str
    arguments: str


class UsageRecord(TypedDict, total=False):
    prompt_tokens: int
    completion_tokens: int
    reasoning_tokens: int  # of completion_tokens; absent in older files


class ErrorRecord(TypedDict):
    type: str
    message: str
    frames: list[list[Any]]  # [filename, lineno, function], innermost last
    text: str


class TaskRecord(TypedDict, total=False):
    event: Literal["task"]
    conversation: str
    format: int
    time: str
    step: int
    task: str
    context: str  # format 2
    model: str
    params: dict[str, Any]
    seed: int | None
    replay: bool
    mode: str


class RequestRecord(TypedDict, total=False):
    event: Literal["request"]
    conversation: str
    step: int
    rkey: str
    key: str
    model: str
    params: dict[str, Any]
    seed: int | None
    tools: list[str]
    base: int  # the messages follow this many of the previous request's
    messages: list[dict[str, Any]]  # as sent: fitted to the context window, if one applied
    window: int | None  # the context window (tokens) the request was fitted to, if any
    note: str  # the one line said when the conversation was first trimmed
    kinds: list[str]  # each message's kind (task, feedback, output, ...), as fitted


class ReplyRecord(TypedDict, total=False):
    event: Literal["reply"]
    conversation: str
    step: int
    rkey: str
    key: str
    time: str
    content: str
    tool_calls: list[ToolCallRecord]
    usage: UsageRecord | None
    model: str
    endpoint: str
    finish_reason: str | None
    source: str
    final: bool
    cut_off: str | None  # why the reply is not whole ("length", ...), or None
    thinking: str  # the model's thinking, never code (absent when it had none)
    thinking_seconds: float  # how long the model thought, as the cell saw it
    # The API's opaque reasoning (Responses, encrypted), sent back untouched next time.
    reasoning_items: list[dict[str, Any]]


class DecisionRecord(TypedDict, total=False):
    event: Literal["decision"]
    conversation: str
    step: int
    rkey: str
    action: str  # run | skip | stop | feedback
    label: str
    automatic: bool
    final: bool
    proposed: list[BlockRecord] | None
    edited: list[BlockRecord] | None
    text: str
    rest: bool  # Run all: this step and the rest of the cell's steps without asking
    protected: str  # the guard's line when the step would change a protected name
    cut_off: str | None  # the reply was cut off (why), so its code may be incomplete
    copies: str  # the code held the session's shorthand (markers.copied_markers), if it did
    injected: str  # the last output addressed the assistant (the line), if it did


class CodeRecord(TypedDict, total=False):
    event: Literal["code"]
    conversation: str
    step: int
    index: int
    language: str
    code: str
    ok: bool
    interrupted: bool
    digest: str
    changes: str
    outputs: list[dict[str, Any]]
    error: ErrorRecord | None  # format 2
    timed_out: float | None  # format 2
    exited: bool  # format 2


class FinishedRecord(TypedDict, total=False):
    event: Literal["finished"]
    conversation: str
    time: str
    reason: str
    message: str


Record = TaskRecord | RequestRecord | ReplyRecord | DecisionRecord | CodeRecord | FinishedRecord

# What a reader relies on, per event type: field -> accepted types.
_REQUIRED: dict[str, dict[str, type | tuple[type, ...]]] = {
    "task": {"task": str},
    "request": {"conversation": str, "step": int, "messages": list},
    "reply": {"conversation": str, "step": int, "rkey": str},
    "decision": {"conversation": str, "step": int, "action": str},
    "code": {"step": int, "code": str},
    "finished": {"reason": str},
}


def parse_record(value: Any) -> Record | None:
    """``value`` as a record when it is one a reader can use, else None.

    Unknown fields are kept and ignored; an unknown event type (a newer writer's) or a
    missing or mistyped field a reader needs gives None.
    """
    if not isinstance(value, dict):
        return None
    required = _REQUIRED.get(value.get("event"))  # type: ignore[arg-type]
    if required is None:
        return None
    for name, kind in required.items():
        field = value.get(name)
        if not isinstance(field, kind) or isinstance(field, bool) and kind is int:
            return None
    return value  # type: ignore[return-value]


def read_records(path: Path, conversation: str | None = None) -> list[dict[str, Any]]:
    """The readable records of a recording file, optionally of one conversation."""
    records = []
    with open(path, "rb") as file:
        for raw in file:
            try:
                record = json.loads(raw.decode("utf-8"))
            except (ValueError, UnicodeDecodeError):
                continue
            if isinstance(record, dict) and (
                conversation is None or record.get("conversation") == conversation
            ):
                records.append(record)
    return records


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# --- conversions ------------------------------------------------------------------------


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


def blocks_record(blocks: Iterable[CodeBlock] | None) -> list[BlockRecord] | None:
    if blocks is None:
        return None
    return [
        {"language": b.language, "code": b.code, "tool_call_id": b.tool_call_id} for b in blocks
    ]


def decision_from_record(record: Mapping[str, Any]) -> Decision:
    """The decision a record holds; TypeError/ValueError/KeyError if it holds none."""
    action = record["action"]
    if action not in ("run", "skip", "stop", "feedback"):
        raise ValueError(f"unknown action {action!r}")
    edited = record.get("edited")
    blocks = None
    if edited is not None:
        blocks = tuple(
            CodeBlock(str(b["language"]), str(b["code"]), tool_call_id=b.get("tool_call_id"))
            for b in edited
        )
    return Decision(action, blocks, str(record.get("text") or ""), rest=bool(record.get("rest")))


def error_record(error: StepError | None) -> ErrorRecord | None:
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
