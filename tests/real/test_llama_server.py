"""``%%agent`` cells against llama.cpp's server with SmolLM2-135M, as a user runs them.

SmolLM2 cannot code, but it answers the way real models do: at its own length, with its
own formatting, through a real server's streaming and errors. So the assertions are on the
protocol (a reply arrived, streamed or whole; code the reply holds ran; an interrupt
leaves a usable kernel), and on the model's words only where the task tells it exactly
what to write ("run exactly this code"), and then only if it did.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from jupyter_client.manager import start_new_kernel

from tests.real.gate import Gate
from tests.test_kernel_widget import Frontend

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


# The interrupt: a real kernel, interrupted as the notebook's button does
# (``interrupt_kernel``) while the server's reply is in flight, by construction: a
# :class:`~tests.real.gate.Gate` passes the reply's first chunk and holds the rest until
# the cell has ended. Pressing on the cell's working line (the last way) was luck: the
# line shows before the request leaves, and the interrupt landed before it had in 7 runs
# of 8; on a fresh machine SmolLM2-135M had answered in 43 characters, whole before a
# press on the first words (CI, 2026-12-07).
LONG_TASK = (
    "Write out every number from one to two thousand in English words, one per line, "
    "and nothing else. No code."
)
ASSISTANT = "**Assistant** · step 1"


def _reply_shown(page: Frontend, cell: str) -> str:
    """The newest draw of step 1's streamed reply in the cell (the widget's display)."""
    shown = ""
    for output in page.outputs:
        markdown = (output.get("data") or {}).get("text/markdown") or ""
        if output["parent"] == cell and markdown.startswith(ASSISTANT):
            shown = markdown[len(ASSISTANT) :].strip()
    return shown


def _traceback(page: Frontend, cell: str) -> str:
    """The cell's error tracebacks, without their colours (for a failure's message)."""
    lines = []
    for output in page.outputs:
        if output["parent"] == cell and output["type"] == "error":
            lines += output.get("traceback") or []
    return re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(lines))


@pytest.fixture
def gate(llama_server) -> Iterator[Gate]:
    """A :class:`Gate` in front of ``llama_server``: it holds the first streamed reply."""
    url = urlsplit(llama_server.base_url)
    relay = Gate(url.hostname or "127.0.0.1", url.port or 80)
    yield relay
    relay.close()


@pytest.fixture
def real_kernel(llama_server, gate, monkeypatch, tmp_path) -> Iterator[Frontend]:
    """A real ipykernel with agent_magic loaded, talking to ``llama_server`` through
    ``gate``."""
    path = urlsplit(llama_server.base_url).path
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{gate.port}{path}")
    monkeypatch.setenv("OPENAI_API_KEY", "none")
    for name in list(os.environ):
        if name.startswith("AZURE_OPENAI_") or name in ("OAI_CONFIG_LIST", "AGENT_MAGIC_REPLAY"):
            monkeypatch.delenv(name)
    manager, client = start_new_kernel(kernel_name="python3", cwd=str(tmp_path))
    try:
        page = Frontend(manager, client)
        settings = [
            f"AgentMagics.model = {llama_server.model!r}",
            "AgentMagics.max_retries = 0",
            "AgentMagics.temperature = 0.0",
            "AgentMagics.timeout = 240.0",
            "AgentMagics.retry_budget = 600.0",
            f"AgentMagics.recording = {str(tmp_path / 'rec.jsonl')!r}",
        ]
        page.run("%load_ext agent_magic\n" + "\n".join(f"%config {s}" for s in settings), 120)
        yield page
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def test_an_interrupt_during_a_generation_leaves_a_usable_kernel(
    real_kernel: Frontend, gate: Gate
) -> None:
    page = real_kernel
    start = time.monotonic()
    cell = page.execute(f"%%agent --mode never --max-turns 1\n{LONG_TASK}")
    # The server has read the prompt and begun the reply; the gate holds the rest, so the
    # interrupt lands while the reply is in flight, however fast the model or the kernel.
    page.pump(gate.first_chunk.is_set, timeout=300)
    at_press = _reply_shown(page, cell)
    page.manager.interrupt_kernel()
    pressed = time.monotonic()
    page.pump(lambda: cell in page.idle, timeout=120)
    stopped = time.monotonic()
    gate.release()
    # The cell ends with the one line an interrupt ends with (Session.conclude), raised as
    # `Interrupted`: not any "interrupted" in the cell's text, which the model may write.
    ended = [o["ename"] for o in page.outputs if o["parent"] == cell and o["type"] == "error"]
    # Which was it, if the cell was not interrupted: the interrupt swallowed while the
    # reply still streamed (a bug in agent_magic), or a reply already whole when the
    # interrupt came? The characters shown at the press and at the end say which.
    assert ended == ["Interrupted"], (
        f"the cell ended with {ended or 'no error'}, not interrupted: {len(at_press)} "
        f"characters of the reply were shown when interrupt_kernel was called, "
        f"{len(_reply_shown(page, cell))} at the end ({stopped - pressed:.1f} s later)\n"
        f"{page.text(cell)[-1500:]}\n{_traceback(page, cell)}"
    )
    assert stopped - pressed < 30, "the interrupt took more than a moment to land"
    # Read as values, not printed: ipykernel drops a printed line now and then (see
    # Frontend.value), which failed this check at random (1 run in 9).
    history = "get_ipython().magics_manager.registry['AgentMagics'].history"
    last = page.value(f"{history}.messages[-1]['content']")
    assert last == repr("(The user interrupted the conversation here.)"), page.value(
        f"[(r.role, r.kind, r.text[:60]) for r in {history}.records[-4:]]"
    )
    # The next %%agent cell gets a reply, once the interrupted request's connection has
    # ended (the kernel's worker closes it at the reply's next chunk). Asked at once, while
    # the server still wrote the abandoned reply, the next request got an empty stream
    # ("the stream ended before any reply arrived"): a fault of its own, not fixed yet.
    page.pump(gate.first_closed.is_set, timeout=120)
    nxt = page.run(f"%%agent --mode never --new --max-turns 2\n{ECHO_TASK}", timeout=300)
    assert _reply_shown(page, nxt) or "Assistant" in page.text(nxt), page.text(nxt)
    assert page.value(f"len({history}.replies)") != "0", page.text(nxt)
    print(
        f"[real] first chunk after {pressed - start:.1f} s ({len(at_press)} chars shown); "
        f"interrupted {stopped - pressed:.2f} s after the press"
    )
