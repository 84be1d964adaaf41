"""``%%agent`` cells against llama.cpp's server with SmolLM2-135M, as a user runs them.

SmolLM2 cannot code, but it answers the way real models do: at its own length, with its
own formatting, through a real server's streaming and errors. So the assertions are on the
protocol (a reply arrived, streamed or whole; code the reply holds ran; an interrupt
leaves a usable kernel), and on the model's words only where the task tells it exactly
what to write ("run exactly this code"), and then only if it did.
"""

from __future__ import annotations

import io
import signal
import sys
import threading
import time

import pytest
from IPython.core.error import UsageError

ECHO_TASK = "Run exactly this code and nothing else:\n```python\nx = 6 * 7\n```"


def magics(shell):
    return shell.magics_manager.registry["AgentMagics"]


def _ran_the_echo_if_it_proposed_it(shell) -> None:
    """The first reply's code ran when it was the task's code (its output went back)."""
    conversation = magics(shell).history
    first = conversation.replies[0].content
    if "x = 6 * 7" in first and "```" in first:
        assert shell.user_ns.get("x") == 42, first


def test_a_streamed_reply_arrives_and_its_code_runs(real_shell, capsys) -> None:
    start = time.monotonic()
    real_shell.run_cell_magic("agent", "--mode never --max-turns 2", ECHO_TASK)
    took = time.monotonic() - start
    conversation = magics(real_shell).history
    assert conversation.replies, "no reply from the real server"
    first = conversation.replies[0]
    assert first.content.strip() and first.endpoint.startswith("smollm2 @ http://127.0.0.1")
    assert first.finish_reason in ("stop", "length")
    # The reply was shown as it streamed: its text is in what the cell printed.
    shown = capsys.readouterr().out
    assert first.content.strip().splitlines()[0][:40] in shown
    _ran_the_echo_if_it_proposed_it(real_shell)
    print(f"[real] streamed cell: {len(conversation.replies)} calls in {took:.1f} s")


def test_a_whole_reply_arrives_with_the_servers_usage(real_shell, capsys) -> None:
    real_shell.run_cell_magic("agent", "--mode never --no-stream --max-turns 2", ECHO_TASK)
    replies = magics(real_shell).history.replies
    assert replies and replies[0].content.strip()
    # llama.cpp counts tokens for whole replies: the prompt holds at least the task.
    usage = replies[0].usage
    assert usage is not None and usage.prompt_tokens > 20 and usage.completion_tokens > 0
    _ran_the_echo_if_it_proposed_it(real_shell)
    capsys.readouterr()
    real_shell.run_line_magic("agent", "usage")
    table = capsys.readouterr().out
    assert f" {usage.prompt_tokens} " in table


def test_tools_with_a_chat_format_without_tools(real_shell) -> None:
    """SmolLM2's chat template has no tools: llama.cpp takes the definitions and ignores
    them, so the model answers in text and its fenced blocks run as without --tools."""
    real_shell.run_cell_magic("agent", "--mode never --tools --max-turns 2", ECHO_TASK)
    replies = magics(real_shell).history.replies
    assert replies and replies[0].content.strip()
    assert replies[0].tool_calls == ()
    _ran_the_echo_if_it_proposed_it(real_shell)


class _Tee(io.TextIOBase):
    """sys.stdout that also counts what the cell showed, so a test sees the stream."""

    def __init__(self, out) -> None:
        self.out, self.shown = out, 0

    def write(self, text: str) -> int:
        self.shown += len(text)
        return self.out.write(text)

    def flush(self) -> None:
        self.out.flush()


def _interrupt_once_streaming(tee: _Tee, *, chars: int, give_up: float) -> threading.Thread:
    """SIGINT the main thread (as the kernel's interrupt button does) once the cell has
    shown ``chars`` characters of the streamed reply: the model is mid-generation."""
    main = threading.main_thread().ident
    before = tee.shown

    def watch() -> None:
        deadline = time.monotonic() + give_up
        while tee.shown - before < chars and time.monotonic() < deadline:
            time.sleep(0.05)
        signal.pthread_kill(main, signal.SIGINT)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_an_interrupt_during_a_generation_leaves_a_usable_kernel(real_shell, monkeypatch) -> None:
    long_task = "Write a story of at least 600 words about a lighthouse keeper. No code."
    tee = _Tee(sys.stdout)
    monkeypatch.setattr(sys, "stdout", tee)
    watcher = _interrupt_once_streaming(tee, chars=120, give_up=180)
    start = time.monotonic()
    with pytest.raises(UsageError, match="Interrupted"):
        real_shell.run_cell_magic("agent", "--mode never --max-turns 1", long_task)
    stopped = time.monotonic()
    watcher.join(5)
    assert tee.shown >= 120, "the interrupt came before the reply streamed"
    conversation = magics(real_shell).history
    assert conversation.messages[-1]["content"].startswith("(The user interrupted")
    # The kernel runs the next cell, and the next %%agent cell gets a reply.
    assert real_shell.run_cell("2 + 2").result == 4
    real_shell.run_cell_magic("agent", "--mode never --new --max-turns 2", ECHO_TASK)
    replies = magics(real_shell).history.replies
    assert replies and replies[0].content.strip()
    print(
        f"[real] interrupted {stopped - start:.1f} s into the cell; "
        f"the next cell took {time.monotonic() - stopped:.1f} s"
    )
