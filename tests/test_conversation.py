"""The loop alone: the shipped scripted chat client at the seam, a recording executor."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import pytest
from conftest import code

from agent_magic.codeblocks import CodeBlock
from agent_magic.conversation import (
    ChatError,
    ChatReply,
    CodeRan,
    Conversation,
    Decided,
    Decision,
    Finished,
    ReplyDelta,
    ReviewRequested,
    StepOutcome,
    ToolCallRequest,
    drive,
)
from agent_magic.testing import ScriptedChat


class RecordingExecutor:
    def __init__(self, fail_first: int = 0) -> None:
        self.ran: list[CodeBlock] = []
        self.fail_first = fail_first

    def run(self, block: CodeBlock, *, step: int | None = None) -> StepOutcome:
        self.ran.append(block)
        ok = len(self.ran) > self.fail_first
        return StepOutcome(ok, "stdout:\nok" if ok else "error:\nZeroDivisionError")


code = partial(code, words="Step:")


def run(
    conv: Conversation, task: str, answers: list[Decision] | None = None
) -> tuple[Finished, list]:
    events: list = []
    answers = list(answers or [])

    def handle(event):
        events.append(event)
        if isinstance(event, ReviewRequested):
            return answers.pop(0)
        return None

    return drive(conv.run(task), handle), events


def interrupt_on(kind: type) -> Callable[[Any], None]:
    """A handler that presses the interrupt button when an event of this kind comes."""

    def handle(event):
        if isinstance(event, kind):
            raise KeyboardInterrupt

    return handle


def two_tool_calls(first: str, second: str) -> ChatReply:
    return ChatReply(
        "",
        (
            ToolCallRequest(first, "run_python", '{"code": "a = 1"}'),
            ToolCallRequest(second, "run_python", '{"code": "b = 2"}'),
        ),
    )


def test_never_mode_feeds_errors_back_until_terminate() -> None:
    chat = ScriptedChat(code("1/0"), code("x = 1"), "x is 1. TERMINATE")
    executor = RecordingExecutor(fail_first=1)
    conv = Conversation(chat, executor, mode="never")
    finished, events = run(conv, "compute")
    assert finished.reason == "terminated"
    assert [b.code for b in executor.ran] == ["1/0", "x = 1"]
    assert "ZeroDivisionError" in chat.seen[1][-1]["content"]
    assert any(isinstance(e, ReplyDelta) for e in events)
    assert not any(isinstance(e, ReviewRequested) for e in events)


# A sign-off with code (issue 14; this replaced "a sign-off never runs code", a rule
# that made real models lose right answers): the code is a step under the mode's
# approval, and the conversation ends after it when it runs cleanly.


@pytest.mark.parametrize("mode", ["never", "terminate"])
def test_a_sign_off_with_code_runs_it_then_finishes(mode) -> None:
    chat = ScriptedChat(code("answer = sum(range(101))") + "\nThe sum is 5050. TERMINATE")
    executor = RecordingExecutor()
    finished, events = run(Conversation(chat, executor, mode=mode), "sum 1..100")
    assert finished == Finished("terminated", "The assistant's last step ran; finished.")
    assert [b.code for b in executor.ran] == ["answer = sum(range(101))"]
    assert not any(isinstance(e, ReviewRequested) for e in events)
    assert len(chat.calls) == 1


def test_a_sign_off_with_code_is_asked_in_always_mode() -> None:
    chat = ScriptedChat(code("print('bye')") + "\nTERMINATE")
    executor = RecordingExecutor()
    finished, events = run(Conversation(chat, executor, mode="always"), "t", [Decision.run()])
    assert finished.reason == "terminated"
    (proposal,) = [e.proposal for e in events if isinstance(e, ReviewRequested)]
    assert proposal.signs_off and not proposal.final and proposal.blocks
    assert [b.code for b in executor.ran] == ["print('bye')"]


def test_a_sign_off_whose_code_fails_goes_on() -> None:
    chat = ScriptedChat(code("1/0") + "\nDone. TERMINATE", "Fixed: no division. TERMINATE")
    executor = RecordingExecutor(fail_first=1)
    finished, _ = run(Conversation(chat, executor, mode="never"), "t")
    assert finished == Finished("terminated", "The assistant finished.")
    assert "ZeroDivisionError" in chat.seen[1][-1]["content"]


@pytest.mark.parametrize("decision", [None, Decision("skip")])
def test_a_sign_off_that_fails_or_is_skipped_at_the_turn_limit_asks_no_more(decision) -> None:
    chat = ScriptedChat(code("1/0") + "\nDone. TERMINATE", "never asked TERMINATE")
    executor = RecordingExecutor(fail_first=1)
    mode = "never" if decision is None else "always"
    conversation = Conversation(chat, executor, mode=mode, max_turns=1)
    finished, _ = run(conversation, "t", [] if decision is None else [decision])
    assert finished.reason == "max_turns"
    assert len(chat.calls) == 1  # --max-turns 1 is one model call, whatever the reply


def test_a_skipped_sign_off_step_goes_on() -> None:
    chat = ScriptedChat(code("x = 1") + "\nTERMINATE", "Fine, not needed. TERMINATE")
    executor = RecordingExecutor()
    finished, _ = run(
        Conversation(chat, executor, mode="always"), "t", [Decision("skip"), Decision.run()]
    )
    assert finished.reason == "terminated" and executor.ran == []
    assert "skipped" in chat.seen[1][-1]["content"]


def test_a_sign_off_without_code_ends_as_before() -> None:
    chat = ScriptedChat("x is 42. TERMINATE")
    executor = RecordingExecutor()
    finished, _ = run(Conversation(chat, executor, mode="never"), "t")
    assert finished == Finished("terminated", "The assistant finished.")
    assert executor.ran == []


def test_the_step_number_reaches_the_executor() -> None:
    class Steps(RecordingExecutor):
        def __init__(self) -> None:
            super().__init__()
            self.steps: list[int | None] = []

        def run(self, block: CodeBlock, *, step: int | None = None) -> StepOutcome:
            self.steps.append(step)
            return super().run(block)

    executor = Steps()
    chat = ScriptedChat(code("a = 1"), "no code", code("b = 2"), "done TERMINATE")
    conv = Conversation(chat, executor, mode="never")
    run(conv, "first")
    run(conv, "second")
    assert executor.steps == [1, 3]


def test_always_mode_skip_feedback_edit_stop() -> None:
    chat = ScriptedChat(code("a = 1"), code("b = 2"), code("c = 3"), code("d = 4"))
    executor = RecordingExecutor()
    conv = Conversation(chat, executor, mode="always")
    edited = (CodeBlock("python", "c = 30"),)
    finished, events = run(
        conv,
        "t",
        [Decision("skip"), Decision.feedback("use b = 20"), Decision.run(edited), Decision("stop")],
    )
    assert finished.reason == "stopped"
    assert [b.code for b in executor.ran] == ["c = 30"]
    assert "skipped" in chat.seen[1][-1]["content"]
    assert chat.seen[2][-1] == {"role": "user", "content": "use b = 20"}
    diff = chat.seen[3][-1]["content"]
    assert "-c = 3" in diff and "+c = 30" in diff
    labels = [e.decision.label(e.proposal) for e in events if isinstance(e, Decided)]
    assert labels == ["skipped", "feedback", "edited and ran", "stopped"]


def test_terminate_mode_asks_only_at_the_end_and_feedback_continues() -> None:
    chat = ScriptedChat(code("a = 1"), "All done. TERMINATE", code("b = 2"), "Done. TERMINATE")
    executor = RecordingExecutor()
    conv = Conversation(chat, executor, mode="terminate")
    finished, events = run(conv, "t", [Decision.feedback("also b"), Decision("run")])
    assert finished.reason == "terminated"
    assert [b.code for b in executor.ran] == ["a = 1", "b = 2"]
    reviews = [e.proposal for e in events if isinstance(e, ReviewRequested)]
    assert [p.final for p in reviews] == [True, True]


def test_turn_limit() -> None:
    chat = ScriptedChat(*(code(f"a = {i}") for i in range(5)))
    conv = Conversation(chat, RecordingExecutor(), mode="never", max_turns=3)
    finished, _ = run(conv, "t")
    assert finished.reason == "max_turns"
    assert len(chat.seen) == 3


def test_several_blocks_stop_at_first_failure_and_unknown_language() -> None:
    reply = code("1/0") + "\n" + code("x = 1") + "\nDone?"
    chat = ScriptedChat(reply, code("say 'hi'", "ruby"), "ok TERMINATE")
    executor = RecordingExecutor(fail_first=1)
    run(Conversation(chat, executor, mode="never"), "t")
    assert [b.code for b in executor.ran] == ["1/0"]
    feedback = chat.seen[1][-1]["content"]
    assert "Block 2 of 2" in feedback and "earlier block failed" in feedback
    assert "`ruby` blocks cannot be run" in chat.seen[2][-1]["content"]


def test_memory_across_runs_and_error_rollback() -> None:
    chat = ScriptedChat("hello TERMINATE", ChatError("model down"), "again TERMINATE")
    conv = Conversation(chat, RecordingExecutor(), mode="never")
    run(conv, "first")
    finished, _ = run(conv, "second")
    assert finished == Finished("error", "model down")
    run(conv, "third")
    contents = [m["content"] for m in chat.seen[-1]]
    assert "first" in contents and "third" in contents and "second" not in contents


def test_tool_calls_answered_with_tool_messages() -> None:
    call = ToolCallRequest("call_1", "run_python", '{"code": "y = 2"}')
    chat = ScriptedChat(ChatReply("", (call,)), "done TERMINATE")
    executor = RecordingExecutor()
    conv = Conversation(chat, executor, mode="never", use_tools=True)
    run(conv, "t")
    assert executor.ran == [CodeBlock("python", "y = 2")]
    assistant, tool = chat.seen[1][-2:]
    assert assistant["tool_calls"][0]["id"] == "call_1"
    assert tool["role"] == "tool" and tool["tool_call_id"] == "call_1"


def test_interrupt_while_waiting_keeps_the_conversation() -> None:
    chat = ScriptedChat(code("a = 1"))
    conv = Conversation(chat, RecordingExecutor(), mode="always")
    finished = drive(conv.run("t"), interrupt_on(ReviewRequested))
    assert finished.reason == "interrupted"
    assert conv.messages[-1]["content"].startswith("(The user interrupted")
    assert [m["role"] for m in conv.messages] == ["system", "user", "assistant", "user"]


def test_interrupt_before_a_tool_call_ran_still_answers_it() -> None:
    """The API rejects a history where a tool call has no tool message after it."""
    chat = ScriptedChat(two_tool_calls("call_1", "call_2"))
    conv = Conversation(chat, RecordingExecutor(), mode="always", use_tools=True)
    assert drive(conv.run("t"), interrupt_on(ReviewRequested)).reason == "interrupted"
    roles = [m["role"] for m in conv.messages]
    assert roles == ["system", "user", "assistant", "tool", "tool", "user"]
    answered = [m["tool_call_id"] for m in conv.messages if m["role"] == "tool"]
    assert answered == ["call_1", "call_2"]
    assert all("interrupted" in m["content"] for m in conv.messages if m["role"] == "tool")


def test_adrive_blocks_around_handlers_but_not_around_their_awaits() -> None:
    """A handler that blocks (input()) runs where an interrupt can raise; an awaited
    review waits outside, where the kernel's own interrupt handling works."""
    import asyncio
    from contextlib import contextmanager

    from agent_magic.conversation import adrive

    depth = 0
    called_at: list[int] = []
    awaited_at: list[int] = []

    @contextmanager
    def blocking():
        nonlocal depth
        depth += 1
        try:
            yield
        finally:
            depth -= 1

    async def click() -> Decision:
        awaited_at.append(depth)
        return Decision.run()

    def handle(event):
        called_at.append(depth)
        return click() if isinstance(event, ReviewRequested) else None

    conv = Conversation(ScriptedChat(code("a = 1"), "TERMINATE"), RecordingExecutor(), "always")
    finished = asyncio.run(adrive(conv.run("t"), handle, blocking=blocking))
    assert finished.reason == "terminated"
    assert called_at and set(called_at) == {1}
    assert awaited_at == [0, 0]


def test_an_interrupt_while_showing_the_end_changes_nothing() -> None:
    import asyncio

    from agent_magic.conversation import adrive

    interrupt_at_the_end = interrupt_on(Finished)
    for reply, reason in [("done. TERMINATE", "terminated"), (ChatError("boom"), "error")]:
        conv = Conversation(ScriptedChat(reply), RecordingExecutor(), mode="never")
        assert drive(conv.run("t"), interrupt_at_the_end).reason == reason
        conv = Conversation(ScriptedChat(reply), RecordingExecutor(), mode="never")
        finished = asyncio.run(adrive(conv.run("t"), interrupt_at_the_end))
        assert finished.reason == reason
        assert not any("interrupted" in str(m.get("content")) for m in conv.messages)


def test_an_interrupt_after_a_tool_call_ran_keeps_its_result() -> None:
    """Interrupted while the first of two calls' result is shown: it ran, the model hears so."""
    chat = ScriptedChat(two_tool_calls("c1", "c2"))
    conv = Conversation(chat, RecordingExecutor(), mode="never", use_tools=True)
    assert drive(conv.run("t"), interrupt_on(CodeRan)).reason == "interrupted"
    tools = {m["tool_call_id"]: m["content"] for m in conv.messages if m["role"] == "tool"}
    assert "ran successfully" in tools["c1"] and tools["c2"] == "Not run: interrupted."


# --- one interrupt contract for drive and adrive ---------------------------------------


class InterruptedExecutor(RecordingExecutor):
    """Code that the interrupt button stops while it runs."""

    def run(self, block: CodeBlock, *, step: int | None = None) -> StepOutcome:
        self.ran.append(block)
        return StepOutcome(False, "error:\nKeyboardInterrupt", interrupted=True)


def _request_interrupted() -> tuple[ScriptedChat, RecordingExecutor]:
    return ScriptedChat(KeyboardInterrupt()), RecordingExecutor()


def _review_interrupted() -> tuple[ScriptedChat, RecordingExecutor]:
    return ScriptedChat(code("a = 1")), RecordingExecutor()


def _run_interrupted() -> tuple[ScriptedChat, RecordingExecutor]:
    return ScriptedChat(code("a = 1")), InterruptedExecutor()


@pytest.mark.parametrize("driver", ["drive", "adrive"])
@pytest.mark.parametrize("twice", [False, True], ids=["once", "twice"])
@pytest.mark.parametrize(
    ("where", "make", "press_on", "last_role"),
    [
        ("request", _request_interrupted, None, "user"),
        ("review", _review_interrupted, ReviewRequested, "user"),
        ("run", _run_interrupted, None, "user"),
    ],
)
def test_one_interrupt_contract(driver, twice, where, make, press_on, last_role) -> None:
    """Wherever the interrupt lands, both drivers end the same way: finished as
    interrupted, the conversation kept with a note, a second press changing nothing."""
    import asyncio

    from agent_magic.conversation import adrive

    chat, executor = make()
    conv = Conversation(chat, executor, mode="always")
    shown: list[Any] = []

    def handle(event):
        shown.append(event)
        if press_on is not None and isinstance(event, press_on):
            raise KeyboardInterrupt
        if isinstance(event, Finished) and twice:
            raise KeyboardInterrupt  # pressed again while the end is shown
        if isinstance(event, ReviewRequested):
            return Decision.run()
        return None

    if driver == "drive":
        finished = drive(conv.run("t"), handle)
    else:
        finished = asyncio.run(adrive(conv.run("t"), handle))
    assert finished == Finished("interrupted", "Interrupted; the conversation so far is kept.")
    assert [e for e in shown if isinstance(e, Finished)] == [finished]  # shown once
    assert conv.messages[-1] == {
        "role": last_role,
        "content": "(The user interrupted the conversation here.)",
    }
    assert len(chat.calls) == 1
    assert [b.code for b in executor.ran] == ([] if where != "run" else ["a = 1"])
    # The next cell carries on from the kept conversation.
    chat.enqueue("carry on TERMINATE")
    again = Conversation(chat, RecordingExecutor(), mode="never", history=conv.history)
    assert drive(again.run("next"), lambda e: None).reason == "terminated"
    assert chat.calls[-1].messages[-2]["content"].startswith("(The user interrupted")


# Rules from the effectiveness suite's transcripts (issue 14): a small model quotes its
# output as code, describes code instead of writing it, repeats failing code, and prints
# the sign-off inside the code.


def test_a_quoted_output_is_not_run_and_ends_the_task() -> None:
    chat = ScriptedChat(code("answer = 15\nprint(answer)"), "The result is:\n```\n15\n```")
    executor = RecordingExecutor()
    finished, _ = run(Conversation(chat, executor, mode="never"), "t")
    assert [b.code for b in executor.ran] == ["answer = 15\nprint(answer)"]
    assert finished.reason == "no_code" and len(chat.calls) == 2


def test_an_output_fence_beside_code_is_not_a_failed_step() -> None:
    chat = ScriptedChat(
        code("answer = 2") + "\n```output\n2\n```\nTERMINATE", "never asked TERMINATE"
    )
    executor = RecordingExecutor()
    finished, _ = run(Conversation(chat, executor, mode="never"), "t")
    assert finished == Finished("terminated", "The assistant's last step ran; finished.")
    assert len(chat.calls) == 1


def test_code_that_prints_terminate_signs_off() -> None:
    chat = ScriptedChat(code('answer = 5050\nprint("TERMINATE")'), "never asked TERMINATE")
    executor = RecordingExecutor()
    finished, _ = run(Conversation(chat, executor, mode="never"), "t")
    assert finished.reason == "terminated" and len(chat.calls) == 1


def test_a_first_reply_without_code_is_nudged_once_where_nobody_reviews() -> None:
    chat = ScriptedChat("The answer is 5050.", code("answer = 5050"), "Done. TERMINATE")
    executor = RecordingExecutor()
    finished, events = run(Conversation(chat, executor, mode="never"), "t")
    assert finished.reason == "terminated" and [b.code for b in executor.ran] == ["answer = 5050"]
    nudge = chat.seen[1][-1]["content"]
    assert nudge.startswith("No code has run for this task yet.") and "TERMINATE" in nudge
    (decided,) = [e for e in events if isinstance(e, Decided) and e.decision.action == "feedback"]
    assert decided.automatic


def test_the_nudge_comes_once_and_never_past_the_turn_limit() -> None:
    chat = ScriptedChat("In words only.", "Still in words.")
    finished, _ = run(Conversation(chat, RecordingExecutor(), mode="never"), "t")
    assert finished.reason == "no_code" and len(chat.calls) == 2
    chat = ScriptedChat("In words only.")
    conversation = Conversation(chat, RecordingExecutor(), mode="never", max_turns=1)
    assert run(conversation, "t")[0].reason == "no_code" and len(chat.calls) == 1


def test_a_reply_without_code_after_a_failed_step_is_nudged() -> None:
    chat = ScriptedChat(code("1/0"), "It divides by zero.", code("x = 1"), "x. TERMINATE")
    executor = RecordingExecutor(fail_first=1)
    finished, _ = run(Conversation(chat, executor, mode="never"), "t")
    assert finished.reason == "terminated" and len(executor.ran) == 2
    assert chat.seen[2][-1]["content"].startswith("The last step failed.")


@pytest.mark.parametrize("mode", ["always", "terminate"])
def test_no_nudge_where_a_human_reads_the_final_reply(mode) -> None:
    chat = ScriptedChat("The function sorts the list.")
    finished, _ = run(Conversation(chat, RecordingExecutor(), mode=mode), "t", [Decision.run()])
    assert finished.reason == "no_code" and len(chat.calls) == 1


def test_the_same_failing_code_is_not_run_again_unattended() -> None:
    chat = ScriptedChat(code("1/0"), code("1/0\n"), code("x = 1"), "x. TERMINATE")
    executor = RecordingExecutor(fail_first=1)
    finished, events = run(Conversation(chat, executor, mode="never"), "t")
    assert [b.code for b in executor.ran] == ["1/0", "x = 1"]
    told = chat.seen[2][-1]["content"]
    assert told.startswith("That step was not run: it is the same code that failed in step 1")
    refused = [e for e in events if isinstance(e, Decided) and e.decision.action == "skip"]
    assert refused and refused[0].proposal.repeats == "failed in step 1 (it failed)"
    assert finished.reason == "terminated"


def test_the_same_failing_code_is_asked_with_a_warning_in_always_mode() -> None:
    from agent_magic.conversation import review_warnings

    chat = ScriptedChat(code("1/0"), code("1/0"), "ok TERMINATE")
    executor = RecordingExecutor(fail_first=2)
    answers = [Decision.run(), Decision.run(), Decision.run()]
    finished, events = run(Conversation(chat, executor, mode="always"), "t", answers)
    proposals = [e.proposal for e in events if isinstance(e, ReviewRequested)]
    assert any("same code that failed in step 1" in w for w in review_warnings(proposals[1]))
    assert len(executor.ran) == 2  # the human chose to run it again


def test_code_that_ran_cleanly_is_not_run_again_unattended() -> None:
    # Qwen at temperature 0 set answer = 5050, then sent "answer = 5050; answer += ..."
    # four times: each run added 5050 again. The second identical step is not run.
    step = "answer = 5050\nfor i in range(1, 101):\n    answer += i"
    chat = ScriptedChat(code(step), code(step), "It is 10100. TERMINATE")
    executor = RecordingExecutor()
    finished, _ = run(Conversation(chat, executor, mode="never"), "t")
    assert len(executor.ran) == 1 and finished.reason == "terminated"
    told = chat.seen[2][-1]["content"]
    assert told.startswith("That step was not run: it is the same code that ran cleanly in step 1")
    assert "end with TERMINATE" in told


def test_a_clean_step_reminds_the_model_how_to_finish() -> None:
    chat = ScriptedChat(code("x = 1"), code("1/0"), "TERMINATE")
    executor = RecordingExecutor(fail_first=0)
    run(Conversation(chat, executor, mode="never"), "t")
    assert chat.seen[1][-1]["content"].endswith(
        "If this completes the task, answer in words and end with TERMINATE; if not, "
        "propose the next step."
    )


def test_a_fence_holding_only_the_marker_is_the_sign_off_not_code() -> None:
    # Qwen: "To end the message with TERMINATE, you can simply write:" and the marker in a
    # fence; run as Python it was a NameError, and the solved task went on.
    chat = ScriptedChat(code("answer = 7"), "Done. You can simply write:\n```\nTERMINATE\n```")
    executor = RecordingExecutor()
    finished, _ = run(Conversation(chat, executor, mode="never"), "t")
    assert [b.code for b in executor.ran] == ["answer = 7"]
    assert finished == Finished("terminated", "The assistant finished.")
