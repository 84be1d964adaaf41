"""%%agent end to end: a real InteractiveShell talking HTTP to the local server."""

from __future__ import annotations

import json
import signal
import threading
import time

import pytest
from conftest import answers, code
from IPython.core.error import UsageError

from agent_magic.session import Interrupted
from agent_magic.testing import Failure, FakeOpenAIServer

TASK = (
    "Find a + b + c, given that x + y != -1 and\n"
    "a*x + b*y + c = x + 7, a + b*x + c*y = 2*x + 6*y, a*y + b + c*x = 4*x + y."
)
SINGULAR = """Pick x = y = 1 and solve the linear system:
```python
import numpy as np
x, y = 1, 1
A = np.array([[x, y, 1], [1, x, y], [y, 1, x]], dtype=float)
rhs = np.array([x + 7, 2*x + 6*y, 4*x + y], dtype=float)
a, b, c = np.linalg.solve(A, rhs)
print(a + b + c)
```"""
FIXED = """x = y = 1 makes the matrix singular; use x = 2, y = 3:
```python
x, y = 2, 3
A = np.array([[x, y, 1], [1, x, y], [y, 1, x]], dtype=float)
rhs = np.array([x + 7, 2*x + 6*y, 4*x + y], dtype=float)
a, b, c = np.linalg.solve(A, rhs)
total = a + b + c
print(round(total, 6))
```"""
DONE = "a + b + c = 7 (for any x + y != -1). TERMINATE"


def test_math_problem_in_mode_never(shell, openai_env: FakeOpenAIServer, capsys) -> None:
    openai_env.enqueue(SINGULAR, FIXED, DONE)
    shell.run_cell_magic("agent", "--mode never", TASK)
    assert round(shell.user_ns["total"], 6) == 7.0
    assert len(openai_env.requests) == 3
    second = openai_env.requests[1].messages[-1]["content"]
    assert "LinAlgError" in second and "Singular matrix" in second
    assert "\x1b[" not in second  # no colour codes for the model
    third = openai_env.requests[2].messages[-1]["content"]
    assert "7.0" in third
    out = capsys.readouterr().out
    assert "[The assistant finished.]" in out


def test_memory_across_cells_and_new(shell, openai_env: FakeOpenAIServer) -> None:
    openai_env.enqueue(code("seen = 41"), "ok TERMINATE", "more TERMINATE", "fresh TERMINATE")
    shell.run_cell_magic("agent", "--mode never", "first task")
    shell.run_cell_magic("agent", "--mode never", "second task")
    second = [m["content"] for m in openai_env.requests[2].messages]
    assert any("first task" in c for c in second) and any("second task" in c for c in second)
    shell.run_cell_magic("agent", "--mode never --new", "third task")
    third = [m["content"] for m in openai_env.requests[3].messages]
    assert not any("first task" in c for c in third)


# The same semantics at the seam, in test_conversation.py::
# test_always_mode_skip_feedback_edit_stop
@pytest.mark.slow
def test_always_mode_run_skip_feedback_stop(shell, openai_env, monkeypatch) -> None:
    openai_env.enqueue(code("r = 1"), code("s = 2"), code("t = 3"), code("u = 4"))
    prompts = answers(monkeypatch, "", "skip", "use t = 30 instead", "stop")
    shell.run_cell_magic("agent", "--mode always", "make variables")
    assert shell.user_ns["r"] == 1
    assert "s" not in shell.user_ns and "t" not in shell.user_ns and "u" not in shell.user_ns
    assert len(prompts) == 4
    msgs = [r.messages[-1]["content"] for r in openai_env.requests]
    assert "I skipped that step" in msgs[2]
    assert msgs[3] == "use t = 30 instead"


# The same semantics at the seam, in test_conversation.py::
# test_terminate_mode_asks_only_at_the_end_and_feedback_continues
@pytest.mark.slow
def test_terminate_mode_asks_only_at_the_end(shell, openai_env, monkeypatch) -> None:
    openai_env.enqueue(code("v = 5"), "done TERMINATE", code("w = 6"), "done TERMINATE")
    prompts = answers(monkeypatch, "also make w", "")
    shell.run_cell_magic("agent", "--mode terminate", "make v")
    assert shell.user_ns["v"] == 5 and shell.user_ns["w"] == 6
    assert len(prompts) == 2 and all("finish" in p for p in prompts)


def test_config_list_falls_back_to_the_next_entry(shell, openai_env, tmp_path) -> None:
    openai_env.enqueue(Failure(500, "boom"))
    with FakeOpenAIServer() as second:
        second.enqueue("from the second TERMINATE")
        config = tmp_path / "OAI_CONFIG_LIST.json"
        entries = [
            {"model": "m1", "base_url": openai_env.base_url, "api_key": "sk-test-one"},
            {"model": "refused", "base_url": "http://127.0.0.1:9/v1", "api_key": "x"},
            {"model": "m2", "base_url": second.base_url, "api_key": "sk-test-two"},
        ]
        config.write_text(json.dumps(entries))
        shell.run_line_magic("config", f"AgentMagics.config_list = {str(config)!r}")
        shell.run_cell_magic("agent", "--mode never", "hello")
        assert len(second.requests) == 1
        assert second.requests[0].json["model"] == "m2"
    reply = shell.magics_manager.registry["AgentMagics"].history.replies[-1]
    assert reply.endpoint.startswith("m2 @ http://127.0.0.1")


def test_an_endpoint_that_outlasts_the_retry_budget_gives_way(shell, openai_env, tmp_path):
    """Retries are bounded in total time too: a silent endpoint hands over to the next."""
    from agent_magic.testing import Reply

    openai_env.enqueue(Reply("too late TERMINATE", delay=10))
    with FakeOpenAIServer() as second:
        second.enqueue("in time TERMINATE")
        config = tmp_path / "OAI_CONFIG_LIST.json"
        entries = [
            {"model": "slow", "base_url": openai_env.base_url, "api_key": "sk-test-one"},
            {"model": "quick", "base_url": second.base_url, "api_key": "sk-test-two"},
        ]
        config.write_text(json.dumps(entries))
        shell.run_line_magic("config", f"AgentMagics.config_list = {str(config)!r}")
        shell.run_line_magic("config", "AgentMagics.retry_budget = 0.5")
        start = time.monotonic()
        shell.run_cell_magic("agent", "--mode never", "hello")
        assert time.monotonic() - start < 5
        assert len(second.requests) == 1
    reply = shell.magics_manager.registry["AgentMagics"].history.replies[-1]
    assert reply.content == "in time TERMINATE"


def test_the_retry_budget_error_says_what_to_change(shell, openai_env) -> None:
    from agent_magic.testing import Reply

    openai_env.enqueue(Reply("too late", delay=10))
    shell.run_line_magic("config", "AgentMagics.retry_budget = 0.3")
    with pytest.raises(UsageError, match=r"no answer within 0.3 s.*AgentMagics.retry_budget"):
        shell.run_cell_magic("agent", "--mode never", "hello")


def test_retries_429_honouring_retry_after(shell, openai_env) -> None:
    shell.run_line_magic("config", "AgentMagics.max_retries = 2")
    openai_env.enqueue(Failure(429, "slow down", retry_after=1), "fine TERMINATE")
    start = time.monotonic()
    shell.run_cell_magic("agent", "--mode never", "hi")
    assert time.monotonic() - start >= 1.0
    assert len(openai_env.requests) == 2


@pytest.mark.parametrize(
    ("failure", "words"),
    [
        (Failure(401, "Incorrect API key provided: sk-test-***abcd"), "authentication failed"),
        (Failure(404, "The model does not exist", code="model_not_found"), r"not found \(404\)"),
    ],
)
def test_http_errors_are_one_line(shell, openai_env, failure, words) -> None:
    openai_env.enqueue(failure)
    with pytest.raises(UsageError, match=words) as info:
        shell.run_cell_magic("agent", "--mode never", "hi")
    assert "\n" not in str(info.value)
    assert "sk-test" not in str(info.value)


def test_unreachable_endpoint(shell) -> None:
    with pytest.raises(UsageError, match="cannot reach"):
        shell.run_cell_magic("agent", "--mode never --base-url http://127.0.0.1:9/v1", "hi")


def test_no_key_and_no_base_url(shell, monkeypatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(UsageError, match="no API key: set OPENAI_API_KEY"):
        shell.run_cell_magic("agent", "--mode never", "hi")


def test_empty_task(shell) -> None:
    with pytest.raises(UsageError, match="needs a task"):
        shell.run_cell_magic("agent", "", "   \n")


def test_failed_first_request_keeps_no_half_turn(shell, openai_env) -> None:
    openai_env.enqueue(code("kept = 1"), "ok TERMINATE", Failure(500, "down"), "back TERMINATE")
    shell.run_cell_magic("agent", "--mode never", "first")
    with pytest.raises(UsageError):
        shell.run_cell_magic("agent", "--mode never", "second")
    shell.run_cell_magic("agent", "--mode never", "third")
    contents = [m["content"] for m in openai_env.requests[-1].messages]
    assert any("first" in c for c in contents) and not any(c == "second" for c in contents)
    assert shell.user_ns["kept"] == 1


def test_reply_without_code_is_asked_once_more_then_finishes(shell, openai_env, capsys) -> None:
    openai_env.enqueue("I need more details about the data.", "Which file is it?")
    shell.run_cell_magic("agent", "--mode never", "vague")
    out = capsys.readouterr().out
    assert "[step 1: no code; asked the model again] No code has run for this task yet." in out
    assert "[The assistant replied without code; finished.]" in out
    assert len(openai_env.requests) == 2
    assert openai_env.requests[1].messages[-1]["content"].startswith("No code has run")


def test_a_syntax_error_reaches_the_model_with_its_line_and_caret(shell, openai_env) -> None:
    openai_env.enqueue(code("answer = 20!"), "ok TERMINATE")
    shell.run_cell_magic("agent", "--mode never", "factorial")
    told = openai_env.requests[1].messages[-1]["content"]
    assert "answer = 20!\n" in told and "^" in told and "SyntaxError: invalid syntax" in told


def test_sys_exit_and_huge_output_keep_the_kernel(shell, openai_env) -> None:
    openai_env.enqueue(
        code("import sys; sys.exit(3)"),
        code("print('x' * 5_000_000)"),
        code("after = 'alive'"),
        "TERMINATE",
    )
    shell.run_line_magic("config", "AgentMagics.max_display_chars = 1000")
    shell.run_cell_magic("agent", "--mode never", "misbehave")
    assert shell.user_ns["after"] == "alive"
    exit_report = openai_env.requests[1].messages[-1]["content"]
    assert "SystemExit: 3" in exit_report
    big_report = openai_env.requests[2].messages[-1]["content"]
    assert "characters cut" in big_report and len(big_report) < 10_000
    assert shell.run_cell("1 + 1").result == 2


def test_sh_block_runs_in_a_subprocess_with_timeout(shell, openai_env) -> None:
    openai_env.enqueue("```sh\necho from-shell\n```", "```bash\nsleep 5\n```", "TERMINATE")
    shell.run_line_magic("config", "AgentMagics.shell_timeout = 0.5")
    shell.run_cell_magic("agent", "--mode never", "shell")
    assert "from-shell" in openai_env.requests[1].messages[-1]["content"]
    assert "timed out" in openai_env.requests[2].messages[-1]["content"]


def test_display_and_last_value_reach_the_model(shell, openai_env) -> None:
    openai_env.enqueue(
        code("from IPython.display import display\ndisplay('shown')\n6 * 7"), "TERMINATE"
    )
    shell.run_cell_magic("agent", "--mode never", "show")
    report = openai_env.requests[1].messages[-1]["content"]
    assert "'shown'" in report and "42" in report


def test_magics_in_code_work(shell, openai_env) -> None:
    openai_env.enqueue(code("%time z = 1 + 1"), "TERMINATE")
    shell.run_cell_magic("agent", "--mode never", "magic")
    assert shell.user_ns["z"] == 2


def test_log_and_usage(shell, openai_env, capsys) -> None:
    openai_env.enqueue(code("q = 1"), "done TERMINATE")
    shell.run_cell_magic("agent", "--mode never --model gpt-4o-mini", "a logged task")
    shell.run_line_magic("agent", "log")
    shell.run_line_magic("agent", "usage")
    out = capsys.readouterr().out
    assert "a logged task" in out and "q = 1" in out
    assert "total" in out and "$" in out


def test_streaming_off(shell, openai_env) -> None:
    openai_env.enqueue(code("nostream = 1"), "TERMINATE")
    shell.run_cell_magic("agent", "--mode never --no-stream", "t")
    assert shell.user_ns["nostream"] == 1
    assert not openai_env.requests[0].json.get("stream")


def test_help_text() -> None:
    from agent_magic.magic import AgentMagics

    doc = AgentMagics.agent.__doc__
    assert "--mode" in doc and "%agent log" in doc


def _interrupt_after(seconds: float) -> threading.Timer:
    """Send SIGINT to the main thread, as the kernel's interrupt button does."""
    main = threading.main_thread().ident
    timer = threading.Timer(seconds, signal.pthread_kill, (main, signal.SIGINT))
    timer.start()
    return timer


@pytest.mark.parametrize("stream", [True, False])
def test_interrupt_while_the_model_is_silent(shell, openai_env, stream) -> None:
    from agent_magic.testing import Reply

    openai_env.enqueue(code("made = 1"))
    asked_at: list[float] = []

    def silent_model(request):
        asked_at.append(time.monotonic())
        _interrupt_after(0.3)
        return Reply(content="late", delay=5.0)

    openai_env.responder = silent_model
    flags = "--mode never" + ("" if stream else " --no-stream")
    with pytest.raises(Interrupted, match="Interrupted; the conversation so far is kept"):
        shell.run_cell_magic("agent", flags, "slow model")
    assert time.monotonic() - asked_at[0] < 2.0
    conversation = shell.magics_manager.registry["AgentMagics"].history
    assert conversation.messages[-1]["content"].startswith("(The user interrupted")
    assert shell.user_ns["made"] == 1
    assert shell.run_cell("2 + 2").result == 4


def test_interrupt_while_code_runs(shell, openai_env) -> None:
    openai_env.enqueue(
        code("import time\nstarted = True\n_interrupt_after(0.3)\ntime.sleep(10)\nfinished = True")
    )
    shell.user_ns["_interrupt_after"] = _interrupt_after
    start = time.monotonic()
    with pytest.raises(Interrupted, match="Interrupted"):
        shell.run_cell_magic("agent", "--mode never", "slow code")
    assert time.monotonic() - start < 2.0
    assert shell.user_ns["started"] is True and "finished" not in shell.user_ns
    assert len(openai_env.requests) == 1


def _kept_in_output_history(shell) -> int:
    return sum(
        len(chunk)
        for outputs in shell.history_manager.outputs.values()
        for output in outputs
        for chunk in output.bundle.get("stream", ())
    )


def test_a_huge_print_is_not_kept_whole_in_ipythons_output_history(
    shell, openai_env: FakeOpenAIServer, capsys
) -> None:
    """IPython 9 keeps what a cell prints in history_manager.outputs: only what was shown."""
    magics = shell.magics_manager.registry["AgentMagics"]
    magics.max_display_chars = 10_000
    before = _kept_in_output_history(shell)
    try:
        openai_env.enqueue(code("for i in range(20_000):\n    print('%049d' % i)"), "ok TERMINATE")
        shell.run_cell("%%agent --mode never\nPrint a megabyte.")
    finally:
        magics.max_display_chars = magics.trait_defaults("max_display_chars")
    kept = _kept_in_output_history(shell) - before
    assert kept < 12_000  # of the 1,000,000 characters printed
    told = openai_env.requests[1].messages[-1]["content"]
    assert f"{19999:049d}" in told  # the tail


def test_what_config_set_in_one_test_does_not_come_back_in_the_next(shell) -> None:
    # The leak the full suite showed: %config in a later test re-applied an earlier
    # test's config_list (the fixture's forget_config is what a new test starts with).
    from tests.conftest import forget_config

    magics = shell.magics_manager.registry["AgentMagics"]
    shell.run_line_magic("config", 'AgentMagics.config_list = \'[{"model": "stale"}]\'')
    shell.run_line_magic("config", "AgentMagics.retry_budget = 0.3")
    forget_config(shell, magics)
    getattr(magics.config.AgentMagics, "nbytes", None)  # what made the config reload in full
    for trait in ("config_list", "retry_budget"):
        magics.set_trait(trait, magics.trait_defaults(trait))
    shell.run_line_magic("config", "AgentMagics.seed = 3")
    assert magics.seed == 3
    assert magics.config_list == magics.trait_defaults("config_list")
    assert magics.retry_budget == magics.trait_defaults("retry_budget")
