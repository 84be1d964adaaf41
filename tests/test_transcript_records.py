"""The recording's typed records: written from events, read back the same, old files read."""

from __future__ import annotations

import json
from pathlib import Path

from agent_magic.codeblocks import CodeBlock
from agent_magic.conversation import (
    ChatReply,
    CodeRan,
    Decided,
    Decision,
    Finished,
    Proposal,
    ReplyReceived,
    RequestSent,
    StepError,
    StepOutcome,
    TaskStarted,
    ToolCallRequest,
    Usage,
)
from agent_magic.export import to_notebook
from agent_magic.transcript import (
    FORMAT,
    Recorder,
    Redactor,
    Store,
    decision_from_record,
    error_from_record,
    parse_record,
    parse_records,
    read_records,
    render_log,
    reply_from_record,
)

ROOT = Path(__file__).resolve().parent.parent
SENTINEL = "sk-test-SENTINEL-records-0123456789"


def conversation_events() -> tuple[list, ChatReply, Decision, StepError]:
    block = CodeBlock("python", "print(1/0)", tool_call_id="call_1")
    reply = ChatReply(
        "Dividing:",
        (ToolCallRequest("call_1", "run_python", '{"code": "print(1/0)"}'),),
        Usage(12, 5),
        model="m",
        endpoint="m @ http://127.0.0.1",
        finish_reason="tool_calls",
    )
    proposal = Proposal(1, reply.content, (block,))
    edited = Decision.run([CodeBlock("python", "print(1/1)", tool_call_id="call_1")])
    error = StepError("ZeroDivisionError", "division by zero", (("<cell>", 1, "<module>"),), "tb")
    outcome = StepOutcome(
        False,
        f"stdout:\npartial {SENTINEL}",
        error=error,
        outputs=({"output_type": "stream", "name": "stdout", "text": "partial\n"},),
        timed_out=1.5,
    )
    messages = (
        {"role": "system", "content": "sys"},
        {"role": "user", "content": "divide\n\nVariables in the session now:\nx: int = 1"},
    )
    events = [
        TaskStarted("divide", 1, "Variables in the session now:\nx: int = 1"),
        RequestSent(1, messages),
        ReplyReceived(1, reply, (block,), False),
        Decided(proposal, edited, automatic=False),
        CodeRan(1, 0, edited.edited[0], outcome),
        Finished("stopped", "Stopped by the user."),
    ]
    return events, reply, edited, error


def test_records_round_trip_through_the_file(tmp_path: Path) -> None:
    events, reply, decision, error = conversation_events()
    recorder = Recorder()
    store = Store(tmp_path / "rec.jsonl")
    recorder.begin(
        store=store, model="m", redactor=Redactor.build(env={}, values=[SENTINEL]), mode="always"
    )
    for event in events:
        recorder(event)
    kept = read_records(tmp_path / "rec.jsonl")
    assert kept == recorder.records  # the file reads back as the records kept in memory
    assert [r.event for r in kept] == ["task", "request", "reply", "decision", "code"] + [
        "finished"
    ]
    lines = [json.loads(line) for line in (tmp_path / "rec.jsonl").read_text().splitlines()]
    assert lines == [json.loads(json.dumps(r.to_dict())) for r in kept]
    assert all(parse_record(r.to_dict()) == r for r in kept)
    task, _, replied, decided, ran, _ = kept
    assert task.format == FORMAT and task.context.startswith("Variables in the session")
    assert task.task == "divide" and task.mode == "always"
    assert replied.reply == reply and reply_from_record(lines[2], "live") == reply
    assert decided.decision == decision and decision_from_record(lines[3]) == decision
    assert ran.error == error and error_from_record(lines[4]["error"]) == error
    assert ran.outputs == ({"output_type": "stream", "name": "stdout", "text": "partial\n"},)
    assert ran.timed_out == 1.5 and ran.exited is False
    assert SENTINEL not in (tmp_path / "rec.jsonl").read_text()  # the cell's redactor ran
    assert SENTINEL not in repr(recorder.records)  # and in memory
    assert store.replies[replied.rkey].decision == decided


def test_readers_skip_unknown_fields_and_event_types(tmp_path: Path) -> None:
    events, *_ = conversation_events()
    recorder = Recorder()
    recorder.begin(store=None, model="m")
    for event in events:
        recorder(event)
    plain = recorder.records
    extended = [{**r.to_dict(), "from_the_future": {"x": [1, 2]}} for r in plain]
    extended.insert(2, {"event": "telemetry", "conversation": "c", "what": "a newer writer's"})
    assert parse_record(extended[2]) is None
    assert parse_records(extended) == plain
    assert render_log(parse_records(extended)) == render_log(plain)
    assert len(to_notebook(parse_records(extended)).cells) == len(to_notebook(plain).cells)
    path = tmp_path / "rec.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in extended))
    warnings: list[str] = []
    store = Store(path, warn=warnings.append)
    store.refresh()
    assert warnings == [] and len(store.replies) == 1 and len(store.requests) == 1


def test_a_format_1_recording_reads() -> None:
    """tests/data/recording-format1.jsonl is the demo's recording as committed before the
    records were typed (format 1): readers of every later format read it."""
    path = ROOT / "tests" / "data" / "recording-format1.jsonl"
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    records = read_records(path)
    assert records and len(records) == len(lines)  # every record reads
    assert {r.format for r in records if r.event == "task"} == {1}
    warnings: list[str] = []
    store = Store(path, warn=warnings.append)
    store.refresh()
    assert warnings == [] and store.replies
    assert all(entry.decision is not None for entry in store.replies.values())
    first = records[0].conversation
    one = [r for r in records if r.conversation == first]
    plain, _ = render_log(one)
    assert "Find a + b + c" in plain
    notebook = to_notebook(one)
    assert any(c.cell_type == "code" for c in notebook.cells)


def test_a_lone_surrogate_is_recorded_escaped_and_reads_back(tmp_path: Path) -> None:
    """A step printing os.fsdecode() of a non-UTF-8 file name must not lose the record."""
    name = b"caf\xe9.txt".decode("utf-8", "surrogateescape")
    recorder = Recorder()
    recorder.begin(store=Store(tmp_path / "rec.jsonl"), model="m")
    outcome = StepOutcome(True, f"stdout:\n{name}")
    recorder(CodeRan(1, 0, CodeBlock("python", "print(name)"), outcome))
    recorder(RequestSent(2, ({"role": "user", "content": name},)))  # hashed too
    (code, request) = read_records(tmp_path / "rec.jsonl")
    assert code.digest == f"stdout:\n{name}"  # the same text, back from its escape
    assert request.rkey


def test_the_export_shows_a_recorded_error_without_outputs() -> None:
    records = [
        {"event": "task", "conversation": "c", "step": 1, "task": "t"},
        {"event": "reply", "conversation": "c", "step": 1, "rkey": "k", "content": "Go."},
        {"event": "decision", "conversation": "c", "step": 1, "action": "run", "label": "ran"},
        {"event": "code", "conversation": "c", "step": 1, "language": "python", "code": "x"}
        | {"ok": False, "digest": "", "outputs": []}
        | {"error": {"type": "NameError", "message": "name 'x' is not defined", "text": ""}},
    ]
    (cell,) = [c for c in to_notebook(parse_records(records)).cells if c.cell_type == "code"]
    assert cell.outputs[-1]["ename"] == "NameError"
    assert cell.outputs[-1]["traceback"] == ["NameError: name 'x' is not defined"]
