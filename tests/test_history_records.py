"""One typed record per message: the history's records, their rendered views, and the
recording and log that read them (the loop at its seam, with the scripted chat client)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent_magic.codeblocks import CodeBlock
from agent_magic.conversation import (
    Conversation,
    Decision,
    Message,
    ReviewRequested,
    StepOutcome,
    ToolCallRequest,
    drive,
)
from agent_magic.testing import ScriptedChat
from agent_magic.text import canonical, sha
from agent_magic.transcript import Keyer, Recorder, record_events, render_log
from agent_magic.transcript.redact import RedactingChat, cell_redactor
from agent_magic.transcript.store import Store

SECRET = "sk-" + "a1B2c3D4" * 4


class Echo:
    """Runs nothing; says what it was given."""

    def run(self, block: CodeBlock, *, step: int | None = None) -> StepOutcome:
        return StepOutcome(True, f"stdout:\n{block.code}")


def code(src: str) -> str:
    return f"Step:\n```python\n{src}\n```"


def test_each_message_is_one_record_whose_dict_is_rendered_once() -> None:
    chat = ScriptedChat(code("x = 1"), "Done. TERMINATE")
    conv = Conversation(chat, Echo(), mode="never")
    drive(conv.run("set x"), lambda event: None)
    records = conv.history.records
    assert [(r.role, r.kind) for r in records] == [
        ("system", "system"),
        ("user", "task"),
        ("assistant", "reply"),
        ("user", "output"),
        ("assistant", "reply"),
    ]
    assert all(isinstance(r, Message) for r in records)
    # The dicts sent are the records' own, the same objects every request.
    assert all(a is r.sent for a, r in zip(conv.messages, records, strict=True))
    assert all(m in chat.calls[1].messages for m in conv.messages[:4])
    assert conv.messages[1] == {"role": "user", "content": "set x"}
    # Its fingerprint is the request key's hash of the same message as a plain dict.
    assert records[1].fingerprint == Keyer.message_digest(dict(records[1].sent))


def test_the_dict_sent_is_read_only_and_its_copies_plain() -> None:
    """What the fingerprint and the redacted form were worked out from cannot change."""
    import copy
    import json

    record = Message("user", "task", "set x")
    sent = record.sent
    for change in (
        lambda: sent.__setitem__("content", "other"),
        lambda: sent.update(content="other"),
        lambda: sent.pop("content"),
        lambda: sent.setdefault("name", "me"),
        sent.clear,
        sent.popitem,
    ):
        with pytest.raises(TypeError, match="read-only"):
            change()
    assert sent == {"role": "user", "content": "set x"} and record.sent is sent
    assert json.dumps(sent) == '{"role": "user", "content": "set x"}'  # JSON as a dict
    changed = dict(sent) | {"content": "other"}  # a changed copy is a plain dict
    assert type(changed) is dict and type(copy.deepcopy(sent)) is dict
    assert Keyer.message_digest(changed) != record.fingerprint


def test_a_reply_with_tool_calls_renders_as_the_api_takes_it() -> None:
    call = ToolCallRequest("c1", "run_python", '{"code": "1"}')
    reply = Message("assistant", "reply", "", (call,), reasoning_items=({"id": "r1"},))
    assert reply.sent == {
        "role": "assistant",
        "content": "",
        "reasoning_items": [{"id": "r1"}],
        "tool_calls": [
            {
                "id": "c1",
                "type": "function",
                "function": {"name": "run_python", "arguments": '{"code": "1"}'},
            }
        ],
    }
    again = Message.of(reply.sent, "reply")
    assert again.tool_calls == (call,) and again.sent == reply.sent
    answer = Message("tool", "output", "ok", tool_call_id="c1")
    assert answer.sent == {"role": "tool", "tool_call_id": "c1", "content": "ok"}


def test_a_message_is_redacted_once_per_redactor() -> None:
    redactor = cell_redactor(values=[SECRET])
    plain = Message("user", "task", "nothing to hide")
    assert plain.redacted(redactor) is plain.sent  # nothing hidden: the very dict
    secret = Message("user", "task", f"use {SECRET}")
    hidden = secret.redacted(redactor)
    assert SECRET not in str(hidden) and secret.redacted(redactor) is hidden
    assert SECRET in secret.sent["content"]  # the history keeps the original
    other = cell_redactor()
    assert secret.redacted(other) is not hidden  # another redactor works it out again


def test_the_recording_says_each_messages_kind_and_the_log_reads_it(tmp_path: Path) -> None:
    """An answer typed by the person shows as their words; a message that says the same
    but was not typed by them (here the loop's word for a refused step) stays what it is:
    the log reads each message's kind, it does not guess from the text."""
    redactor = cell_redactor(values=[SECRET])
    replies = [code("print('x')"), code("print('y')"), code("print('z')"), "ok TERMINATE"]
    chat = RedactingChat(ScriptedChat(*replies), redactor)
    recorder = Recorder()
    recorder.begin(store=Store(tmp_path / "r.jsonl"), model="m", redactor=redactor)
    answers = [
        Decision("feedback", text="x"),
        Decision("skip", text="x"),
        Decision("run"),
        Decision("run"),
    ]

    def ui(event):
        return answers.pop(0) if isinstance(event, ReviewRequested) else None

    conv = Conversation(chat, Echo(), mode="always")
    drive(conv.run(f"x with {SECRET}"), record_events(ui, recorder))
    requests = [r for r in recorder.transcript() if r.event == "request"]
    assert [k for r in requests for k in r.kinds] == [
        "system",
        "task",
        "reply",
        "feedback",
        "reply",
        "output",
        "reply",
        "output",
    ]
    plain, markdown = render_log(recorder.transcript())
    assert markdown.count("**you** · task") == 1 and markdown.count("**you**\n\nx") == 1
    assert "**sent to the assistant**\n\n```\nx\n```" in markdown
    assert SECRET not in plain + markdown and SECRET not in (tmp_path / "r.jsonl").read_text()
    # %agent cells reads the same records: the code that ran, once, its step with it.
    assert [(r.step, r.code) for r in recorder.ran()] == [(3, "print('z')")]


def test_a_secret_found_later_is_hidden_in_messages_redacted_before() -> None:
    """The redacted form is worked out again when the redactor's values change (a step
    set a secret-named variable): earlier messages sent again hide it too."""
    namespace: dict[str, object] = {}
    redactor = cell_redactor(namespace=namespace)
    value = "Tr0ub4dor-and-3-more-words"
    message = Message("user", "output", f"stdout:\n{value}")
    assert message.redacted(redactor) is message.sent  # not a secret yet
    namespace["db_password"] = value
    assert redactor.refresh()
    assert value not in str(message.redacted(redactor))


def test_a_request_key_taken_up_from_the_previous_one_is_the_key_hashed_whole() -> None:
    """The Keyer hashes only what a request adds to the previous one; the keys are those
    of each request hashed whole, whether it grows, is trimmed, swaps a message for an
    equal copy, or holds a plain dict (changed in place between two requests)."""

    def whole(messages: list, tools: list | None) -> str:
        parts = [Keyer.message_digest(m) for m in messages]
        return sha("\n".join([*parts, sha(canonical(tools or []))]))

    forms = [Message("user" if i % 2 else "assistant", "reply", f"m{i}").sent for i in range(6)]
    plain = {"role": "user", "content": "plain"}
    tools = [{"type": "function", "function": {"name": "run", "parameters": {}}}]
    requests = [
        forms[:1],
        forms[:3],
        forms[:5],
        forms[:5],  # the same again (the seeded cache asks before the recorder)
        [forms[0], forms[4], forms[5]],  # trimmed
        [forms[0], forms[4], forms[5], plain],
        [forms[0], forms[4], forms[5], plain],  # the plain dict, changed in place below
        [forms[0], dict(forms[4]), forms[5]],  # an equal copy instead of the same object
        forms,
        [],
        forms[:2],
    ]
    keyer = Keyer()
    for i, messages in enumerate(requests):
        if i == 6:
            plain["content"] = "changed"
        for tool_list in (None, tools):
            assert keyer.replay_key(iter(messages), tool_list) == whole(messages, tool_list), i
    keyer.forget()
    assert keyer.replay_key(forms, None) == whole(forms, None)


def test_the_chat_sends_each_request_redacted_with_the_values_it_has_now() -> None:
    """The redacting chat takes up the forms of the messages a request shares with the
    previous one; a secret found between two requests is hidden in the shared ones too,
    and a plain dict (changed in place) is redacted again each time."""
    namespace: dict[str, object] = {}
    redactor = cell_redactor(namespace=namespace)
    inner = ScriptedChat("one", "two", "three", "four")
    chat = RedactingChat(inner, redactor)
    value = "Tr0ub4dor-and-3-more-words"
    first = Message("user", "task", f"task {value}").sent
    second = Message("assistant", "reply", "ok").sent
    plain = {"role": "user", "content": "nothing yet"}
    list(chat.stream([first]))
    list(chat.stream([first, second]))
    assert value in inner.calls[1].messages[0]["content"]  # not a secret yet
    namespace["db_password"] = value
    assert redactor.refresh()
    list(chat.stream([first, second, plain]))
    assert value not in str(inner.calls[2].messages) and len(inner.calls[2].messages) == 3
    plain["content"] = f"now {value}"
    list(chat.stream([first, second, plain]))
    assert value not in str(inner.calls[3].messages) and "now" in str(inner.calls[3].messages)
