"""Code faults in a step, in a real InteractiveShell running %%agent against the local
server: a step that never ends, exit() and sys.exit(), a KeyboardInterrupt it raises
itself, a lone surrogate, a thread that prints after its step, tracebacks named as steps.
"""

from __future__ import annotations

import linecache
import os
import time
from pathlib import Path

import pytest
from conftest import code

from agent_magic.codeblocks import CodeBlock
from agent_magic.executor import IPythonExecutor
from agent_magic.kernel import executor as kernel_executor
from agent_magic.kernel import signals as kernel_signals
from agent_magic.kernel.fold import folded_traceback
from agent_magic.testing import FakeOpenAIServer


def told(server: FakeOpenAIServer, request: int) -> str:
    content = server.requests[request].messages[-1]["content"]
    return content if isinstance(content, str) else str(content)


@pytest.fixture
def one_second(monkeypatch: pytest.MonkeyPatch) -> None:
    """The session's step time limit at 1 s (what AgentMagics.step_timeout will set)."""
    monkeypatch.setattr(kernel_executor, "DEFAULT_STEP_TIMEOUT", 1.0)


@pytest.mark.parametrize("loop", ["while True: pass", "import time\ntime.sleep(60)"])
def test_a_step_that_never_ends_is_stopped_and_the_namespace_kept(
    shell, openai_env: FakeOpenAIServer, one_second, loop: str
) -> None:
    openai_env.enqueue(code(f"kept = 'before'\n{loop}"), "It was stopped. TERMINATE")
    started = time.monotonic()
    shell.run_cell_magic("agent", "--mode never --no-context", "Loop.")
    assert time.monotonic() - started < 20  # 1 s and a kernel's worth of slack
    assert shell.user_ns["kept"] == "before"
    assert shell.run_cell("kept * 2").result == "beforebefore"
    report = told(openai_env, 1)
    assert report.startswith("It failed.\nThe step was stopped after 1 s")
    assert "signals.py" not in report  # the traceback ends in the step, not our handler
    assert len(openai_env.requests) == 2  # the conversation went on: not an interrupt


def test_the_outcome_says_timed_out_not_interrupted(shell) -> None:
    outcome = IPythonExecutor(shell, step_timeout=1).run(CodeBlock("python", "while True: pass"))
    assert outcome.timed_out == 1 and not outcome.interrupted and not outcome.ok
    assert outcome.error is not None and outcome.error.type == "KeyboardInterrupt"
    assert outcome.error.frames[-1][0].startswith("<agent step")
    assert outcome.outputs[-1]["output_type"] == "error"


def test_a_step_that_catches_the_interrupt_is_asked_again(shell, monkeypatch) -> None:
    """As a user presses the button again: the time limit's SIGINT comes back every
    REPEAT seconds until the step ends; the next step has its own full limit."""
    monkeypatch.setattr(kernel_signals, "REPEAT", 0.2)
    loop = (
        "import time\ncaught = 0\nwhile caught < 3:\n    try:\n        time.sleep(30)\n"
        "    except KeyboardInterrupt:\n        caught += 1"
    )
    executor = IPythonExecutor(shell, step_timeout=1)
    started = time.monotonic()
    outcome = executor.run(CodeBlock("python", loop))
    assert time.monotonic() - started < 20
    assert shell.user_ns["caught"] == 3
    assert outcome.timed_out == 1 and not outcome.interrupted and not outcome.ok
    after = executor.run(CodeBlock("python", "time.sleep(0.5)\nnext_one = 1"))
    assert after.ok and after.timed_out is None and shell.user_ns["next_one"] == 1


def test_no_time_limit_with_zero(shell) -> None:
    executor = IPythonExecutor(shell, step_timeout=0)
    outcome = executor.run(CodeBlock("python", "import time\ntime.sleep(1.5)\ndone = 1"))
    assert outcome.ok and outcome.timed_out is None and shell.user_ns["done"] == 1


def _gone(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "State:\tZ" in status  # killed; only its exit status is left for init to reap


def test_a_shell_step_that_forks_is_ended_with_its_children(shell, tmp_path) -> None:
    pidfile = tmp_path / "child.pid"
    block = CodeBlock("sh", f"sleep 300 & echo $! > {pidfile}; echo started; sleep 300")
    started = time.monotonic()
    outcome = IPythonExecutor(shell, step_timeout=1).run(block)
    assert time.monotonic() - started < 20
    assert outcome.timed_out == 1 and not outcome.ok and not outcome.interrupted
    assert "started" in outcome.digest
    child = int(pidfile.read_text())
    deadline = time.monotonic() + 5
    while not _gone(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _gone(child)


@pytest.mark.parametrize("call", ["exit()", "quit()", "import sys\nsys.exit()", "raise SystemExit"])
def test_exit_in_a_step_keeps_the_session(shell, openai_env: FakeOpenAIServer, call) -> None:
    openai_env.enqueue(code(f"{call}\nafter = 1"), "Done. TERMINATE")
    shell.run_cell_magic("agent", "--mode never --no-context", "Exit.")
    assert not shell.exit_now
    assert shell.run_cell("2 + 2").result == 4
    report = told(openai_env, 1)
    assert "called exit()/quit()/sys.exit(); the user's session was kept running" in report
    assert report.startswith("It ran successfully.")
    # exit() and quit() return; sys.exit raises, so the rest of the step does not run.
    returns = call in ("exit()", "quit()")
    assert ("after" in shell.user_ns) == returns


def test_a_failing_exit_code_is_a_failed_step(shell) -> None:
    outcome = IPythonExecutor(shell).run(CodeBlock("python", "import sys\nsys.exit(3)"))
    assert outcome.exited and not outcome.ok and outcome.error is not None
    assert (outcome.error.type, outcome.error.message) == ("SystemExit", "3")
    assert not shell.exit_now


def test_a_step_raising_keyboardinterrupt_is_a_failed_step(
    shell, openai_env: FakeOpenAIServer
) -> None:
    openai_env.enqueue(code("raise KeyboardInterrupt"), "It raised. TERMINATE")
    shell.run_cell_magic("agent", "--mode never --no-context", "Raise.")
    assert len(openai_env.requests) == 2  # not the user's interrupt: the model is told
    report = told(openai_env, 1)
    assert report.startswith("It failed.") and "KeyboardInterrupt" in report


def test_a_lone_surrogate_in_the_output_never_crashes(shell, openai_env, capsys) -> None:
    openai_env.enqueue(
        code("import os\nname = os.fsdecode(b'caf\\xe9.csv')\nprint(name)\nname"),
        "Printed. TERMINATE",
    )
    shell.run_cell_magic("agent", "--mode never --no-context", "Print a file name.")
    report = told(openai_env, 1)
    assert report.startswith("It ran successfully.")
    assert "caf\\udce9.csv" in report
    recording = Path(shell.magics_manager.registry["AgentMagics"].recording)
    assert "udce9" in recording.read_text(encoding="utf-8")


def test_a_thread_printing_after_its_step_breaks_nothing(shell, openai_env) -> None:
    first = (
        "import sys, threading, time\n"
        "kept_stream = sys.stdout\n"
        "def late():\n"
        "    time.sleep(0.3)\n"
        "    print('late via print')\n"
        "    kept_stream.write('late via a kept stream\\n')\n"
        "worker = threading.Thread(target=late)\n"
        "worker.start()\n"
        "print('first')"
    )
    openai_env.enqueue(
        code(first),
        code("time.sleep(0.2)\nworker.join()\nprint('second')"),
        "Both ran. TERMINATE",
    )
    shell.run_cell_magic("agent", "--mode never --no-context", "Threads.")
    assert told(openai_env, 1).startswith("It ran successfully.\nstdout:\nfirst")
    second = told(openai_env, 2)
    assert second.startswith("It ran successfully.") and "second" in second
    assert "late via a kept stream" not in second  # it belonged to the first step's capture


def test_tracebacks_name_the_step_and_show_its_source(shell, openai_env) -> None:
    openai_env.enqueue(code("values = [1, 2]\nvalues[5]"), "Out of range. TERMINATE")
    shell.run_cell_magic("agent", "--mode never --no-context", "Index.")
    report = told(openai_env, 1)
    assert "<agent step" in report and "Cell In[" not in report
    assert "values[5]" in report  # linecache still has the step's lines
    assert "IndexError: list index out of range" in report


def test_a_long_traceback_of_the_step_s_own_frames_folds_the_earlier_ones() -> None:
    frames = [f"File <agent step 1>:{n}, in f{n}\n  line a\n  line b" for n in range(40)]
    stb = ["-" * 20, "ValueError      Traceback (most recent call last)", *frames, "ValueError: x"]
    bundle = folded_traceback(stb, fold_lines=30)
    html, plain = bundle["text/html"], bundle["text/plain"]
    assert plain.startswith("ValueError: x\nFile <agent step 1>:0")  # the error line first
    assert all(frame in plain for frame in frames)  # the text face keeps every frame
    visible, folded = html.split("<details>")
    assert "ValueError: x" in visible and "f0" in visible and "f39" in visible
    assert "f20" not in visible and "f20" in folded and "The earlier frames folded" in folded
    short = folded_traceback(stb[:3] + stb[-1:])
    assert "<details>" not in short["text/html"] and "f0" in short["text/html"]


def test_a_pandas_error_shows_the_error_then_the_step_s_line_and_folds_pandas(shell) -> None:
    """A real traceback from IPython for a step calling pandas with a missing file."""
    pd = pytest.importorskip("pandas")
    src = "import pandas as pd\nx = 1\ndf = pd.read_csv('missing.csv')\n"
    linecache.cache["<agent step 3>"] = (len(src), None, src.splitlines(True), "<agent step 3>")
    try:
        exec(compile(src, "<agent step 3>", "exec"), {"pd": pd})
    except FileNotFoundError as error:
        stb = shell.InteractiveTB.structured_traceback(
            type(error), error, error.__traceback__, tb_offset=1
        )
    html = folded_traceback(stb)["text/html"]
    visible, folded = html.split("<details>")
    first = visible.split("</pre>")[0]
    assert first.endswith(
        "FileNotFoundError: [Errno 2] No such file or directory: &#x27;missing.csv&#x27;"
    )
    assert "&lt;agent step 3&gt;:3" in visible and "----&gt; 3 df = pd.read_csv" in visible
    assert "site-packages" not in visible and "read_csv(filepath_or_buffer" in folded
    assert "The library frames folded" in folded


def test_the_default_time_limit_is_finite(shell) -> None:
    assert 0 < IPythonExecutor(shell).step_timeout < float("inf")
    assert os.environ.get("AGENT_MAGIC_REPLAY") is None


def test_a_step_s_warning_filters_outlive_it_and_sys_exit_warns_nothing(shell) -> None:
    import warnings

    executor = IPythonExecutor(shell)
    before = list(warnings.filters)
    try:
        executor.run(
            CodeBlock("python", "import warnings\nwarnings.simplefilter('error', FutureWarning)")
        )
        assert warnings.filters[0][:1] == ("error",) and warnings.filters[0][2] is FutureWarning
        outcome = executor.run(CodeBlock("python", "import sys\nsys.exit()"))
        assert outcome.ok and outcome.exited and "To exit" not in outcome.digest
    finally:
        warnings.filters[:] = before
