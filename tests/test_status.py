"""The cell always shows that it is working: the working line moves at least once a
second from the request until the reply, with no delta arriving (a model silent or
thinking), in a notebook cell and on one terminal line; one summary line stays."""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from typing import Any

from agent_magic.codeblocks import CodeBlock
from agent_magic.conversation import ChatReply, Finished, ReplyDelta, ReplyReceived, RequestSent
from agent_magic.ui.status import Progress
from agent_magic.ui.terminal import TerminalUI
from agent_magic.ui.widget import Display, NotebookUI


def wait_for(condition: Callable[[], bool], within: float = 15.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "the working line did not move"
        time.sleep(0.02)


class Outputs(Display):
    def __init__(self) -> None:
        self.bundles: list[dict[str, Any]] = []

    def show(self, bundle: dict[str, Any]) -> int:
        self.bundles.append(bundle)
        return len(self.bundles) - 1

    def update(self, handle: int, bundle: dict[str, Any]) -> None:
        self.bundles[handle] = bundle


REQUEST = RequestSent(1, (), "", None)
REPLY = ChatReply("Counting.\n```python\nrows = 3\n```", thinking="Hmm, rm -rf? No.")
RECEIVED = ReplyReceived(1, REPLY, (CodeBlock("python", "rows = 3"),), False)


def test_the_words():
    progress = Progress(started=100.0)
    assert progress.line(103.4) == "waiting for the model 3 s"
    progress.thinking("hm")
    assert progress.line(112.0) == "thinking 12 s" and progress.thought == "hm"
    progress.writing()
    assert progress.line(120.9) == "writing 20 s"
    assert progress.thought_seconds is not None and progress.thought_seconds >= 0


def test_the_notebook_line_moves_without_deltas_and_leaves_one_line():
    outputs = Outputs()
    ui = NotebookUI(interactive=False, display=outputs)
    ui(REQUEST)
    line, text, fold, _ = ui.status._widgets
    # No delta at all: the line still counts the seconds.
    wait_for(lambda: "waiting for the model 1 s" in line.value)
    ui(ReplyDelta(1, "Hmm, rm -rf? ", thinking=True))
    wait_for(lambda: "thinking" in line.value and "rm -rf" in text.value)
    assert fold.layout.display is None and fold.selected_index is None  # there, folded
    assert not any("rm -rf" in b.get("text/markdown", "") for b in outputs.bundles)
    ui(ReplyDelta(1, "No.", thinking=True))
    ui(ReplyDelta(1, "Counting.\n```python\nrows", thinking=False))
    # The output turns into the reply as it is written, the line above it still moving.
    assert len(outputs.bundles) == 1
    wait_for(lambda: "writing 2 s*" in outputs.bundles[0]["text/markdown"])
    reply = outputs.bundles[0]["text/markdown"]
    assert "```\nrows\n```" in reply and "rm -rf" not in reply  # code streams; thinking not
    ui(RECEIVED)
    (final,) = outputs.bundles
    summary = final["text/markdown"]
    assert summary.startswith("<details><summary>thought for ") and "rm -rf? No." in summary
    assert "</details>\n\n**Assistant** · step 1\n\nCounting." in summary
    assert "writing" not in summary and line.comm is None  # the animation is gone
    time.sleep(0.6)  # a tick's worth: nothing is drawn once the reply is complete
    assert outputs.bundles == [final]
    ui(Finished("terminated", "done"))


def test_a_reply_without_thinking_leaves_the_reply_alone():
    outputs = Outputs()
    ui = NotebookUI(interactive=False, display=outputs)
    ui(REQUEST)
    ui(ReplyDelta(1, "Hello"))
    ui(ReplyReceived(1, ChatReply("Hello"), (), True))
    reply = "**Assistant** · step 1\n\nHello"
    assert outputs.bundles == [{"text/markdown": reply, "text/plain": reply}]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_terminal_line_moves_in_place_then_makes_way():
    out = Terminal()
    ui = TerminalUI(out=out)
    ui(REQUEST)
    wait_for(lambda: "\r\x1b[K[waiting for the model 1 s]" in out.getvalue())
    ui(ReplyDelta(1, "Hmm, rm -rf? No.", thinking=True))
    wait_for(lambda: "[thinking " in out.getvalue())
    ui(ReplyDelta(1, "Counting.\n```python\nrows = 3\n```"))
    before = out.getvalue()
    assert before.endswith("Counting.\n```python\nrows = 3\n")  # (the rest held back)
    assert "\r\x1b[K\n[assistant, step 1]" in before  # the line was cleared first
    ui(RECEIVED)
    shown = out.getvalue()
    assert "[step 1: thought for " in shown and "rm -rf" not in shown
    time.sleep(0.6)  # a tick's worth: nothing is drawn once the reply is complete
    assert out.getvalue() == shown


def test_no_animation_off_a_terminal():
    out = io.StringIO()
    ui = TerminalUI(out=out)
    ui(REQUEST)
    ui(ReplyDelta(1, "Hmm.", thinking=True))
    ui(ReplyDelta(1, "Counting.\n```python\nrows = 3\n```"))
    ui(RECEIVED)
    shown = out.getvalue()
    assert "\r" not in shown and "waiting" not in shown
    assert "[step 1: thought for 0 s; the thinking is in %agent log]" in shown
