"""Thinking is never code, at the loop's seam: whatever the client hands in (inline
<think> with or without its opening tag, a reply's own ``thinking``), no step, review
proposal, tool call, sign-off, protected-name finding or repeat comes from it, and it is
never sent back to the model."""

from __future__ import annotations

import pytest

from agent_magic.codeblocks import CodeBlock
from agent_magic.conversation import (
    ChatReply,
    Conversation,
    Decision,
    Finished,
    ReplyDelta,
    ReplyReceived,
    ReviewRequested,
    StepOutcome,
    drive,
)
from agent_magic.testing import ScriptedChat

DRAFT = "Maybe clear it first:\n```python\nimport shutil; shutil.rmtree('data')\n```\nNo, don't."
STEP = "Counting.\n```python\nrows = 3\n```"

# The same reply as each source hands it in.
SOURCES = {
    "inline": f"<think>\n{DRAFT}\n</think>\n\n{STEP}",
    "inline, no opening tag": f"{DRAFT}\n</think>\n\n{STEP}",
    "field": ChatReply(STEP, thinking=DRAFT),
}


class Ran:
    def __init__(self) -> None:
        self.blocks: list[CodeBlock] = []

    def run(self, block: CodeBlock, *, step: int | None = None) -> StepOutcome:
        self.blocks.append(block)
        return StepOutcome(True, "stdout:\nok")


def run(conversation: Conversation, answers: list[Decision] | None = None):
    events: list = []
    answers = list(answers or [])

    def handle(event):
        events.append(event)
        if isinstance(event, ReviewRequested):
            return answers.pop(0)
        return None

    return drive(conversation.run("count the rows"), handle), events


@pytest.mark.parametrize("source", sorted(SOURCES))
@pytest.mark.parametrize("mode", ["never", "terminate", "always"])
def test_only_the_answer_is_proposed_and_run(source, mode):
    chat = ScriptedChat(SOURCES[source], "Done. TERMINATE")
    ran = Ran()
    conversation = Conversation(chat, ran, mode=mode)
    finished, events = run(conversation, [Decision("run"), Decision("run")])
    assert isinstance(finished, Finished)
    assert [b.code for b in ran.blocks] == ["rows = 3"]
    for review in (e for e in events if isinstance(e, ReviewRequested)):
        assert "rmtree" not in review.proposal.reply
        assert all("rmtree" not in b.code for b in review.proposal.blocks)
    (first, *_) = [e for e in events if isinstance(e, ReplyReceived)]
    assert "rmtree" in first.reply.thinking and "rmtree" not in first.reply.content
    # The thinking is kept on the reply, and never sent back to the model.
    assert "rmtree" in conversation.replies[0].thinking
    assert all("rmtree" not in str(m.get("content")) for m in chat.calls[1].messages)
    assert all("</think>" not in str(m.get("content")) for m in chat.calls[1].messages)


def test_thinking_streams_as_thinking_deltas():
    chat = ScriptedChat(SOURCES["inline"], "Done. TERMINATE", chunks=7)
    _, events = run(Conversation(chat, Ran(), mode="never"))
    deltas = [e for e in events if isinstance(e, ReplyDelta) and e.step == 1]
    thought = "".join(e.text for e in deltas if e.thinking)
    said = "".join(e.text for e in deltas if not e.thinking)
    assert "rmtree" in thought and "rmtree" not in said and "rows = 3" in said


def test_a_sign_off_or_a_protected_name_inside_the_thinking_counts_for_nothing():
    # The thinking says TERMINATE and touches a protected name; the answer does neither.
    thinking = "```python\nexit = None\nprint('TERMINATE')\n```\nTERMINATE"
    chat = ScriptedChat(f"<think>{thinking}</think>\n{STEP}", "Done. TERMINATE")
    ran = Ran()
    finished, events = run(Conversation(chat, ran, mode="never", protected=frozenset({"exit"})))
    (first, *_) = [e for e in events if isinstance(e, ReplyReceived)]
    assert not first.final  # no sign-off from the thinking
    assert [b.code for b in ran.blocks] == ["rows = 3"]
    assert not any(isinstance(e, ReviewRequested) for e in events)  # nothing protected
    assert finished.reason == "terminated"


def test_a_reply_that_ends_inside_its_thinking_is_cut_off_and_runs_nothing_unasked():
    chat = ScriptedChat(f"{STEP}\n<think>\n{DRAFT}", "Done. TERMINATE")
    ran = Ran()
    finished, events = run(Conversation(chat, ran, mode="never"))
    (first, *_) = [e for e in events if isinstance(e, ReplyReceived)]
    assert first.reply.cut_off == "unfinished thinking"
    assert ran.blocks == []  # not even the answer's step: the reply is not whole
    told = chat.calls[1].messages[-1]["content"]
    assert "cut off" in told and "ended inside its thinking" in told
    assert finished.reason == "terminated"


def test_a_reply_of_thinking_only_proposes_nothing():
    chat = ScriptedChat(f"<think>{DRAFT}</think>", "Nothing to do. TERMINATE")
    ran = Ran()
    finished, events = run(Conversation(chat, ran, mode="never"))
    (first, *_) = [e for e in events if isinstance(e, ReplyReceived)]
    assert first.blocks == () and first.reply.content == ""
    assert ran.blocks == [] and finished.reason == "terminated"


def test_a_tool_call_reply_keeps_its_call_and_drops_its_inline_thinking():
    from agent_magic.conversation import ToolCallRequest

    call = ToolCallRequest("c1", "run_python", '{"code": "rows = 3"}')
    reply = ChatReply(f"<think>{DRAFT}</think>", tool_calls=(call,))
    chat = ScriptedChat(reply, "Done. TERMINATE")
    ran = Ran()
    run(Conversation(chat, ran, mode="never", use_tools=True))
    assert [b.code for b in ran.blocks] == ["rows = 3"]
    sent = chat.calls[1].messages
    assert all("rmtree" not in str(m.get("content")) for m in sent)
