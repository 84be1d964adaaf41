"""The recording's records, defined once: frozen dataclasses, and their JSON form.

Each event of a conversation becomes one record (:class:`TaskRecord`,
:class:`RequestRecord`, :class:`ReplyRecord`, :class:`DecisionRecord`,
:class:`CodeRecord`, :class:`FinishedRecord`): the recorder keeps them in memory, where
``%agent log`` and ``%agent export`` read them, and writes each as one line of
``agent-recording.jsonl`` (:meth:`to_dict`: a JSON object whose ``event`` names its type),
the form for other processes and for replay. Reading a file (:func:`read_records`,
:func:`parse_record`) gives the same records back. :data:`FORMAT` is the version the task
record carries.

Reading is lenient in one direction: a reader checks the fields it relies on and ignores
any others (a newer writer's), and every format so far reads.

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

Also here: :func:`redacted` (a record with secrets hidden). Not here: the JSON forms of
a record's parts (:mod:`.forms`), writing (:mod:`.recorder`), the index (:mod:`.store`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, is_dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, ClassVar

from ..codeblocks import CodeBlock
from ..conversation import ChatReply, Decision, StepError
from .forms import (
    blocks_from_record,
    blocks_record,
    decision_from_record,
    error_from_record,
    error_record,
    reply_from_record,
    reply_record,
)

FORMAT = 2

JSON = dict[str, Any]


@dataclass(frozen=True)
class TaskRecord:
    """A cell's task: what the person asked, what the model was told with it, the settings."""

    event: ClassVar[str] = "task"
    conversation: str
    task: str
    step: int = 1
    context: str = ""  # format 2
    time: str = ""
    format: int = FORMAT
    model: str = ""
    params: Mapping[str, Any] = field(default_factory=dict)
    seed: int | None = None
    replay: bool = False
    mode: str | None = None  # the cell's mode (absent in records written without one)

    def to_dict(self) -> JSON:
        data: JSON = {"event": "task", "conversation": self.conversation}
        data |= {"format": self.format, "time": self.time, "step": self.step}
        data |= {"task": self.task, "context": self.context, "model": self.model}
        data |= {"params": self.params, "seed": self.seed, "replay": self.replay}
        if self.mode is not None:
            data["mode"] = self.mode
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TaskRecord:
        return cls(
            _str(data, "conversation"),
            data["task"],
            _int(data, "step", 1),
            _str(data, "context"),
            _str(data, "time"),
            _int(data, "format", 1),
            _str(data, "model"),
            _mapping(data, "params"),
            _int(data, "seed", None),
            data.get("replay") is True,
            data["mode"] if isinstance(data.get("mode"), str) else None,
        )


@dataclass(frozen=True)
class RequestRecord:
    """A request as sent: the messages added since the previous request's first ``base``
    (each as the API took it, secrets hidden), fitted to ``window`` when one applied."""

    event: ClassVar[str] = "request"
    conversation: str
    step: int
    messages: tuple[Mapping[str, Any], ...]
    rkey: str = ""
    key: str = ""
    model: str = ""
    params: Mapping[str, Any] = field(default_factory=dict)
    seed: int | None = None
    tools: tuple[str, ...] = ()
    base: int = 0  # the messages follow this many of the previous request's
    kinds: tuple[str, ...] = ()  # each message's kind (task, feedback, output, ...)
    window: int | None = None  # the context window (tokens) the request was fitted to
    note: str = ""  # the one line said when the conversation was first trimmed

    def to_dict(self) -> JSON:
        data: JSON = {"event": "request", "conversation": self.conversation, "step": self.step}
        data |= {"rkey": self.rkey, "key": self.key, "model": self.model}
        data |= {"params": self.params, "seed": self.seed, "tools": list(self.tools)}
        data |= {"base": self.base, "messages": list(self.messages), "kinds": list(self.kinds)}
        data |= {"window": self.window, "note": self.note}
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RequestRecord:
        return cls(
            data["conversation"],
            data["step"],
            tuple(dict(m) if isinstance(m, Mapping) else m for m in data["messages"]),
            _str(data, "rkey"),
            _str(data, "key"),
            _str(data, "model"),
            _mapping(data, "params"),
            _int(data, "seed", None),
            tuple(str(t) for t in data.get("tools") or ()),
            _int(data, "base", 0),
            tuple(str(k) for k in data.get("kinds") or ()),
            _int(data, "window", None),
            _str(data, "note"),
        )


@dataclass(frozen=True)
class ReplyRecord:
    """The model's reply to the request made at ``step`` (``rkey``: its replay key)."""

    event: ClassVar[str] = "reply"
    conversation: str
    step: int
    rkey: str
    reply: ChatReply
    key: str = ""
    time: str = ""
    final: bool = False
    thinking_seconds: float | None = None  # how long the model thought, as the cell saw it

    def to_dict(self) -> JSON:
        data: JSON = {"event": "reply", "conversation": self.conversation, "step": self.step}
        data |= {"rkey": self.rkey, "key": self.key, "time": self.time}
        data |= reply_record(self.reply)
        data["final"] = self.final
        if self.thinking_seconds is not None:
            data["thinking_seconds"] = self.thinking_seconds
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReplyRecord:
        return cls(
            data["conversation"],
            data["step"],
            data["rkey"],
            reply_from_record(data, _str(data, "source")),
            _str(data, "key"),
            _str(data, "time"),
            data.get("final") is True,
            _number(data, "thinking_seconds"),
        )


@dataclass(frozen=True)
class DecisionRecord:
    """What was decided on the reply at ``step``: by a person, or by the mode
    (``automatic``), with what the review said about the code."""

    event: ClassVar[str] = "decision"
    conversation: str
    step: int
    action: str  # run | skip | stop | feedback
    rkey: str = ""
    label: str = ""
    automatic: bool = False
    final: bool = False
    proposed: tuple[CodeBlock, ...] | None = None
    edited: tuple[CodeBlock, ...] | None = None  # the code that ran instead, if edited
    text: str = ""
    rest: bool = False  # Run all: this step and the rest of the cell's steps without asking
    protected: str = ""  # the guard's line when the step would change a protected name
    cut_off: str | None = None  # the reply was cut off (why): its code may be incomplete
    copies: str = ""  # the code held the session's shorthand (markers.copied_markers)
    injected: str = ""  # the last output addressed the assistant (the line)

    @property
    def decision(self) -> Decision:
        """The decision as the loop takes it (what a replay answers the review with)."""
        return Decision(self.action, self.edited, self.text, rest=self.rest)  # type: ignore[arg-type]

    def to_dict(self) -> JSON:
        data: JSON = {"event": "decision", "conversation": self.conversation, "step": self.step}
        data |= {"rkey": self.rkey, "action": self.action, "label": self.label}
        data |= {"automatic": self.automatic, "final": self.final}
        data |= {"proposed": blocks_record(self.proposed), "edited": blocks_record(self.edited)}
        data |= {"text": self.text, "rest": self.rest}
        data |= {"protected": self.protected, "cut_off": self.cut_off}
        # What else the review said, only when it said it (older files lack them).
        data |= {"copies": self.copies} if self.copies else {}
        data |= {"injected": self.injected} if self.injected else {}
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DecisionRecord:
        decision = decision_from_record(data)
        cut_off = data.get("cut_off")
        return cls(
            data["conversation"],
            data["step"],
            decision.action,
            _str(data, "rkey"),
            _str(data, "label"),
            data.get("automatic") is True,
            data.get("final") is True,
            blocks_from_record(data.get("proposed")),
            decision.edited,
            decision.text,
            decision.rest,
            _str(data, "protected"),
            cut_off if isinstance(cut_off, str) else None,
            _str(data, "copies"),
            _str(data, "injected"),
        )


@dataclass(frozen=True)
class CodeRecord:
    """One block that ran at ``step`` (the ``index``-th of its step) and what it did."""

    event: ClassVar[str] = "code"
    conversation: str
    step: int
    code: str
    index: int = 0
    language: str = "python"
    ok: bool = True
    interrupted: bool = False
    digest: str = ""
    changes: str = ""
    outputs: tuple[Mapping[str, Any], ...] = ()  # as nbformat writes them
    error: StepError | None = None  # format 2
    timed_out: float | None = None  # format 2
    exited: bool = False  # format 2

    def to_dict(self) -> JSON:
        data: JSON = {"event": "code", "conversation": self.conversation, "step": self.step}
        data |= {"index": self.index, "language": self.language, "code": self.code}
        data |= {"ok": self.ok, "interrupted": self.interrupted, "digest": self.digest}
        data |= {"changes": self.changes, "outputs": list(self.outputs)}
        data |= {"error": error_record(self.error), "timed_out": self.timed_out}
        data["exited"] = self.exited
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CodeRecord:
        return cls(
            _str(data, "conversation"),
            data["step"],
            data["code"],
            _int(data, "index", 0),
            _str(data, "language") or "python",
            data.get("ok", True) is not False,
            data.get("interrupted") is True,
            _str(data, "digest"),
            _str(data, "changes"),
            tuple(o for o in data.get("outputs") or () if isinstance(o, Mapping)),
            error_from_record(data.get("error")),
            _number(data, "timed_out"),
            data.get("exited") is True,
        )


@dataclass(frozen=True)
class FinishedRecord:
    """How the cell's conversation ended: ``reason`` for tools, ``message`` for people."""

    event: ClassVar[str] = "finished"
    conversation: str
    reason: str
    message: str = ""
    time: str = ""

    def to_dict(self) -> JSON:
        data: JSON = {"event": "finished", "conversation": self.conversation}
        data |= {"time": self.time, "reason": self.reason, "message": self.message}
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FinishedRecord:
        return cls(
            _str(data, "conversation"),
            data["reason"],
            _str(data, "message"),
            _str(data, "time"),
        )


Record = TaskRecord | RequestRecord | ReplyRecord | DecisionRecord | CodeRecord | FinishedRecord

_TYPES: dict[str, type[Record]] = {
    t.event: t
    for t in (TaskRecord, RequestRecord, ReplyRecord, DecisionRecord, CodeRecord, FinishedRecord)
}

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
    """The record a JSON object (a line of the file) holds, or None when it holds none a
    reader can use: an unknown event type (a newer writer's), a missing or mistyped
    field a reader needs, or a reply or decision that cannot be read. Unknown fields
    are ignored."""
    if not isinstance(value, dict):
        return None
    kind = value.get("event")
    required = _REQUIRED.get(kind)  # type: ignore[arg-type]
    if required is None:
        return None
    for name, expected in required.items():
        got = value.get(name)
        if not isinstance(got, expected) or isinstance(got, bool) and expected is int:
            return None
    try:
        return _TYPES[kind].from_dict(value)
    except (TypeError, ValueError, KeyError, AttributeError, IndexError):
        return None


def parse_records(values: Iterable[Any]) -> list[Record]:
    """The records among ``values`` (JSON objects), in order; the rest left out."""
    return [r for r in map(parse_record, values) if r is not None]


def read_records(path: Path, conversation: str | None = None) -> list[Record]:
    """The readable records of a recording file, optionally of one conversation."""
    records = []
    with open(path, "rb") as file:
        for raw in file:
            try:
                record = parse_record(json.loads(raw.decode("utf-8")))
            except (ValueError, UnicodeDecodeError):
                continue
            if record is not None and conversation in (None, record.conversation):
                records.append(record)
    return records


def redacted(record: Record, redactor: Any) -> Record:
    """``record`` with ``redactor``'s secrets hidden in every text in it (a request's
    messages come hidden already: each keeps its redacted form)."""
    return replace(
        record,  # type: ignore[arg-type]
        **{
            f.name: _hidden(getattr(record, f.name), redactor)
            for f in fields(record)
            if f.name != "messages"
        },
    )


def _hidden(value: Any, redactor: Any) -> Any:
    if isinstance(value, str):
        return redactor.redact(value)
    if is_dataclass(value) and not isinstance(value, type):
        return replace(
            value,  # type: ignore[arg-type]
            **{f.name: _hidden(getattr(value, f.name), redactor) for f in fields(value)},
        )
    if isinstance(value, tuple):
        return tuple(_hidden(item, redactor) for item in value)
    return redactor.redact_json(value)


def now() -> str:
    """The time in UTC to the second, ISO 8601 (``2026-12-07T15:04:05+00:00``)."""
    global _said
    second = int(time.time())
    if _said[0] != second:  # formatting it costs ~8 us; a step's records share the second
        _said = (second, datetime.fromtimestamp(second, timezone.utc).isoformat())
    return _said[1]


_said: tuple[int, str] = (-1, "")


def _str(data: Mapping[str, Any], name: str) -> str:
    value = data.get(name)
    return value if isinstance(value, str) else ""


def _int(data: Mapping[str, Any], name: str, default: Any) -> Any:
    value = data.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _number(data: Mapping[str, Any], name: str) -> float | None:
    value = data.get(name)
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _mapping(data: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = data.get(name)
    return value if isinstance(value, Mapping) else {}
