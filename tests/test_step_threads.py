"""A thread a step started prints into that step, never into a later one: through a real
InteractiveShell running %%agent against the local server.
"""

from __future__ import annotations

import threading
from pathlib import Path

from agent_magic.testing import FakeOpenAIServer


def code(src: str) -> str:
    return f"Next step:\n```python\n{src}\n```"


def told(server: FakeOpenAIServer, request: int) -> str:
    return server.requests[request].messages[-1]["content"]


def test_a_thread_a_step_started_never_prints_into_the_next_step(
    shell, openai_env: FakeOpenAIServer, capsys
) -> None:
    # The thread prints only while the second step runs (it waits for an event the
    # second step sets, and the second step waits for its printing to end): no timing.
    first = (
        "import threading\n"
        "go, printed = threading.Event(), threading.Event()\n"
        "def late():\n"
        "    go.wait(30)\n"
        "    print('late from the first step')\n"
        "    import sys; print('late on stderr', file=sys.stderr)\n"
        "    printed.set()\n"
        "worker = threading.Thread(target=late, daemon=True)\n"
        "worker.start()\n"
        "print('first')"
    )
    second = "go.set()\nprinted.wait(30)\nprint('second')"
    openai_env.enqueue(code(first), code(second), "Both ran. TERMINATE")
    shell.run_cell_magic("agent", "--mode never --no-context", "Threads.")
    assert shell.user_ns["printed"].is_set()
    assert told(openai_env, 1).startswith("It ran successfully.\nstdout:\nfirst")
    report = told(openai_env, 2)
    assert report.startswith("It ran successfully.\nstdout:\nsecond")
    assert "late" not in report  # not in the second step's report...
    recorded = shell.magics_manager.registry["AgentMagics"].recording
    lines = Path(recorded).read_text(encoding="utf-8").splitlines()
    second_outputs = [line for line in lines if '"second\\n"' in line]
    assert second_outputs and all("late from" not in line for line in second_outputs)
    shown = capsys.readouterr()
    assert "late from the first step" in shown.out  # ...yet shown, as it was printed
    assert "late on stderr" in shown.err


def test_a_thread_from_an_ordinary_cell_is_not_a_steps_output(
    shell, openai_env: FakeOpenAIServer, capsys
) -> None:
    go, printed = threading.Event(), threading.Event()

    def chatty() -> None:
        go.wait(30)
        print("from a thread of an ordinary cell")
        printed.set()

    shell.user_ns.update(go=go, printed=printed)
    threading.Thread(target=chatty, daemon=True).start()
    openai_env.enqueue(code("go.set()\nprinted.wait(30)\nprint('step')"), "Done. TERMINATE")
    shell.run_cell_magic("agent", "--mode never --no-context", "Print.")
    report = told(openai_env, 1)
    assert report.startswith("It ran successfully.\nstdout:\nstep") and "ordinary" not in report
    assert "from a thread of an ordinary cell" in capsys.readouterr().out
