"""Real-server behaviour that needs the llm helper (usage) and the context window work.

- Usage: llama.cpp sends no ``usage`` in streams; ``%agent usage`` must then say so (an
  estimate, marked) and never show 0 tokens for a reply that had tokens.
- The context window: a session with a few variables and several cells outgrows
  ``n_ctx 1024``; every cell must either complete or stop with ONE line naming the
  context window (today: "the stream ended before any reply arrived").
"""

from __future__ import annotations

import re

import pytest
from IPython.core.error import UsageError

ECHO_TASK = "Run exactly this code and nothing else:\n```python\nx = 6 * 7\n```"


def test_usage_of_a_streamed_reply_is_never_shown_as_zero(real_shell, capsys) -> None:
    real_shell.run_cell_magic("agent", "--mode never --max-turns 1", ECHO_TASK)
    conversation = real_shell.magics_manager.registry["AgentMagics"].history
    assert conversation.replies and conversation.replies[0].content.strip()
    capsys.readouterr()
    real_shell.run_line_magic("agent", "usage")
    table = capsys.readouterr().out
    rows = [line for line in table.splitlines() if re.match(r"\s*(1|total)\s", line)]
    assert rows, table
    for row in rows:  # a lone "0" in a call's or the total's row is a lie
        assert "0" not in row.split(), table
    assert re.search(r"estimat|unknown|no usage|~", table, re.IGNORECASE), table


def _server_state(server) -> str:
    """Whether the server process lives, and the end of its log: what a failure shows."""
    code = server.process.poll()
    state = "running" if code is None else f"exited with {code}"
    tail = " | ".join(server.log_text().strip().splitlines()[-8:])
    return f"llama_cpp.server (pid {server.process.pid}) {state}; its log ends: {tail[-1500:]}"


def test_a_conversation_that_outgrows_the_window_says_so(small_shell, llama_small) -> None:
    small_shell.run_cell(
        "import numpy as np\n"
        "prices = [round(10 + i * 0.37, 2) for i in range(8)]\n"
        "inventory = {f'item{i}': {'qty': i * 3, 'price': prices[i]} for i in range(4)}\n"
        "notes = 'Quarterly review: ' + ' '.join(f'point {i} is fine.' for i in range(5))\n"
        "grid = np.arange(12).reshape(3, 4)\n"
    )
    tasks = [
        "What is in the variable prices? Answer in words.",
        "Summarise inventory in two sentences.",
        "What does notes say? Answer in words.",
        "Describe grid.",
        "Which of these variables is the largest?",
        "Thank you. Anything else to note?",
    ]
    outcomes = []
    for task in tasks:
        try:
            small_shell.run_cell_magic("agent", "--mode never --max-turns 1", task)
            outcomes.append("completed")
        except UsageError as error:
            message = str(error)
            outcomes.append(message)
            if "cannot reach" in message or "connection broke" in message:
                pytest.fail(f"{message}\n{_server_state(llama_small)}")
            assert "\n" not in message.strip(), message
            assert re.search(r"context (window|length|size)", message, re.IGNORECASE), message
            assert "stream ended before any reply" not in message
    print("[real] n_ctx 1024 outcomes:", outcomes)
    # The window was outgrown: the conversation now holds more than it can send whole.
    sent = sum(
        len(m.get("content") or "")
        for m in small_shell.magics_manager.registry["AgentMagics"].history.messages
    )
    assert sent > 1024 * 3, f"only {sent} characters: the test did not outgrow the window"
    # The kernel stays usable whatever happened.
    assert small_shell.run_cell("1 + 1").result == 2
