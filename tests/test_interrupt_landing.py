"""Wherever the interrupt lands, the conversation hears of it (issue 20).

A kernel's interrupt raises where the main thread happens to be. The loop records it
when it lands in the loop's own work (a request, a step) or in a handler; these tests
press at the places in between, each at an exact point: in the driver just after the
loop handed it an event (before anything showed it), and while the task is shown. Before
the fix the first escaped the driver: the cell ended in a ``KeyboardInterrupt``
traceback and the history ended with the task or a reply, without the note, so the
model was next sent a conversation with no word of the interruption (and, after a reply
with tool calls, calls without answers, which the API rejects). And the driver left its
``blocking()`` stretch between two events, where the kernel's own SIGINT handler only
schedules a cancellation that a cell which never awaits (mode never) never meets: an
interrupt landing there, or while the cell was set up, was lost, and the cell ran on.
"""

from __future__ import annotations

import asyncio
import signal
from contextlib import contextmanager
from typing import Any

import pytest
from conftest import code
from test_conversation import RecordingExecutor, two_tool_calls

from agent_magic.conversation import (
    CodeRan,
    Conversation,
    Decided,
    Decision,
    Finished,
    ReplyDelta,
    ReplyReceived,
    RequestSent,
    ReviewRequested,
    TaskStarted,
    adrive,
    drive,
)
from agent_magic.testing import ScriptedChat

NOTE = {"role": "user", "content": "(The user interrupted the conversation here.)"}
INTERRUPTED = Finished("interrupted", "Interrupted; the conversation so far is kept.")


class LandsAfter:
    """The loop's steps as a driver sees them, with the interrupt landing in the driver
    the moment the loop has handed it the first event of ``kind``: the same point as a
    SIGINT whose handler runs just after ``steps.send`` returned, before the event is
    shown."""

    def __init__(self, steps: Any, kind: type) -> None:
        self.steps, self.kind, self.pressed = steps, kind, False

    def send(self, value: Any) -> Any:
        event = self.steps.send(value)
        if isinstance(event, self.kind) and not self.pressed:
            self.pressed = True
            raise KeyboardInterrupt
        return event

    def throw(self, error: BaseException) -> Any:
        return self.steps.throw(error)

    def close(self) -> None:
        self.steps.close()


def _driven(driver: str, steps: Any, handle: Any) -> Finished:
    try:
        if driver == "drive":
            return drive(steps, handle)
        return asyncio.run(adrive(steps, handle))
    except KeyboardInterrupt:  # a failure, not the end of the test run
        pytest.fail("the interrupt escaped the driver: the loop never recorded it")


@pytest.mark.parametrize("driver", ["drive", "adrive"])
@pytest.mark.parametrize(
    "kind", [TaskStarted, RequestSent, ReplyDelta, ReplyReceived, Decided, CodeRan]
)
def test_an_interrupt_landing_in_the_driver_is_recorded(driver, kind) -> None:
    chat = ScriptedChat(code("a = 1"), "done TERMINATE")
    conv = Conversation(chat, RecordingExecutor(), mode="never")
    shown: list[Any] = []
    steps = LandsAfter(conv.run("t"), kind)
    assert _driven(driver, steps, shown.append) == INTERRUPTED
    assert steps.pressed
    assert conv.messages[-1] == NOTE
    assert [e for e in shown if isinstance(e, Finished)] == [INTERRUPTED]  # shown once
    assert not any(isinstance(e, kind) for e in shown)  # it landed before this was shown
    # The next cell's request tells the model.
    asked = len(chat.calls)
    again = Conversation(ScriptedChat("carry on TERMINATE"), RecordingExecutor(), "never")
    again.history = conv.history
    assert drive(again.run("next"), lambda e: None).reason == "terminated"
    assert again.chat.calls[0].messages[-2] == NOTE and asked == len(chat.calls)


@pytest.mark.parametrize("driver", ["drive", "adrive"])
def test_an_interrupt_landing_after_a_tool_call_reply_answers_its_calls(driver) -> None:
    chat = ScriptedChat(two_tool_calls("c1", "c2"))
    conv = Conversation(chat, RecordingExecutor(), mode="never", use_tools=True)
    steps = LandsAfter(conv.run("t"), ReplyReceived)
    assert _driven(driver, steps, lambda e: None) == INTERRUPTED
    roles = [m["role"] for m in conv.messages]
    assert roles == ["system", "user", "assistant", "tool", "tool", "user"]
    assert conv.messages[-1] == NOTE


@pytest.mark.parametrize("driver", ["drive", "adrive"])
def test_an_interrupt_while_the_task_is_shown_is_recorded(driver) -> None:
    def handle(event: Any) -> None:
        if isinstance(event, TaskStarted):
            raise KeyboardInterrupt

    chat = ScriptedChat("never asked")
    conv = Conversation(chat, RecordingExecutor(), mode="never")
    assert _driven(driver, conv.run("t"), handle) == INTERRUPTED
    assert [m["role"] for m in conv.messages] == ["system", "user", "user"]
    assert conv.messages[-1] == NOTE and chat.calls == []


@pytest.mark.parametrize("driver", ["drive", "adrive"])
def test_an_interrupt_landing_as_the_end_is_handed_on_changes_nothing(driver) -> None:
    chat = ScriptedChat("All done. TERMINATE")
    conv = Conversation(chat, RecordingExecutor(), mode="never")
    shown: list[Any] = []
    steps = LandsAfter(conv.run("t"), Finished)
    finished = _driven(driver, steps, shown.append)
    assert steps.pressed and finished.reason == "terminated"
    assert [e for e in shown if isinstance(e, Finished)] == [finished]  # shown, once
    assert conv.messages[-1]["role"] == "assistant"


def test_adrive_stays_blocking_between_events_and_steps_out_only_to_await() -> None:
    """Each stretch ends only at an await: nowhere between two events does an interrupt
    meet the event loop's handling (in a kernel, a cancellation scheduled for the next
    await, which a cell in mode never does not have)."""
    log: list[str] = []

    @contextmanager
    def blocking():
        log.append("in")
        try:
            yield
        finally:
            log.append("out")

    async def click() -> Decision:
        log.append("await")
        return Decision.run()

    def handle(event: Any) -> Any:
        return click() if isinstance(event, ReviewRequested) else None

    never = Conversation(ScriptedChat(code("a = 1"), "TERMINATE"), RecordingExecutor(), "never")
    assert asyncio.run(adrive(never.run("t"), handle, blocking)).reason == "terminated"
    assert log == ["in", "out"]  # one stretch: a request, a step, another request, the end
    log.clear()
    always = Conversation(ScriptedChat(code("a = 1"), "TERMINATE"), RecordingExecutor())
    assert asyncio.run(adrive(always.run("t"), handle, blocking)).reason == "terminated"
    assert log == ["in", "out", "await", "in", "out", "await", "in", "out"]


def test_an_interrupt_while_a_notebook_cell_is_set_up_is_not_lost(
    shell, openai_env, monkeypatch
) -> None:
    """A notebook cell is set up (plan, context) before the drive begins. There the kernel's
    own SIGINT handler was in place, which only schedules a cancellation for the cell's next
    await: a cell in mode never has none, so the press was lost and the cell ran. Here a
    stand-in for that handler only notes the signal, and the press comes while the cell's
    context is built: it must raise there instead, and the cell end in the one line."""
    from agent_magic.context import block
    from agent_magic.session import Interrupted

    def pressed_while_built(*args: Any, **kwargs: Any) -> str:
        signal.raise_signal(signal.SIGINT)
        return ""

    monkeypatch.setattr(block, "build_context", pressed_while_built)
    magics = shell.magics_manager.registry["AgentMagics"]
    openai_env.enqueue(code("ran = True"), "done TERMINATE")
    noted: list[Any] = []
    previous = signal.signal(signal.SIGINT, lambda *args: noted.append(args))
    try:
        with pytest.raises(Interrupted, match="^agent: interrupted before anything was sent$"):
            asyncio.run(magics.agent_async("--mode never", "Set ran."))
    finally:
        signal.signal(signal.SIGINT, previous)
    assert noted == [] and openai_env.requests == [] and "ran" not in shell.user_ns
    assert magics.history.records == []
