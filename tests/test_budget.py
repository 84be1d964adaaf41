"""Budgets, the review's "so far" line, estimates where a server reports no usage, and
the --mode never notice: a real InteractiveShell running %%agent against the local server."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from conftest import answers, code
from IPython.core.error import UsageError
from test_widget import Outputs, run_cell

from agent_magic.budget import Budget, BudgetedChat, BudgetReached, spent_line
from agent_magic.codeblocks import CodeBlock
from agent_magic.conversation import ChatReply, Proposal, Usage
from agent_magic.llm import Endpoint, OpenAIChat, cost
from agent_magic.session import NEVER_NOTICE
from agent_magic.testing import FakeOpenAIServer, Reply, ScriptedChat
from agent_magic.ui.review import ReviewWidget
from agent_magic.ui.widget import NotebookUI
from agent_magic.window import estimate_tokens

BUDGET_TRAITS = ("max_tokens", "max_cost", "session_max_tokens", "session_max_cost")


@pytest.fixture
def magics(shell, monkeypatch) -> Iterator[object]:
    """The shell's magics with a fresh session budget and never-notice, traits restored."""
    magics = shell.magics_manager.registry["AgentMagics"]
    monkeypatch.setattr(magics.session, "budget", Budget("session"))
    monkeypatch.setattr(magics.session, "told_never", False)
    yield magics
    for trait in (*BUDGET_TRAITS, "ui"):
        magics.set_trait(trait, magics.trait_defaults(trait))


@pytest.fixture
def headless(magics, monkeypatch) -> None:
    """Nobody at the other end (nbconvert, papermill): a spent budget stops the cell."""
    monkeypatch.setattr(magics.session, "frontend", lambda: "headless")


def stopped(shell, line: str, task: str) -> str:
    """Run a cell that must end with a one-line error; that line."""
    with pytest.raises(UsageError) as raised:
        shell.run_cell_magic("agent", line, task)
    message = str(raised.value)
    assert "\n" not in message
    return message


def log_text(shell, capsys) -> str:
    capsys.readouterr()
    shell.run_line_magic("agent", "log")
    return capsys.readouterr().out


# --- stopping -------------------------------------------------------------------------------


def test_a_cell_stops_at_its_token_budget_and_keeps_the_record(
    shell, magics, headless, openai_env: FakeOpenAIServer, capsys
) -> None:
    openai_env.enqueue(Reply(code("first = 1\nprint('first ran')"), usage=(3000, 2212)))
    message = stopped(shell, "--mode never --max-tokens 5000", "set first")
    assert message == (
        "agent: the cell's token budget (--max-tokens 5000) is spent: 5,212 tokens so far; "
        "raise it or continue in a new cell"
    )
    assert len(openai_env.requests) == 1  # the second request was never sent
    assert shell.user_ns["first"] == 1  # the step before the stop ran
    log = log_text(shell, capsys)
    assert "set first" in log and "first = 1" in log and "first ran" in log
    assert "[the cell's token budget (--max-tokens 5000) is spent" in log
    # A new cell has a new budget, and continues the same conversation.
    openai_env.enqueue("first is 1. TERMINATE")
    shell.run_cell_magic("agent", "--mode never --max-tokens 5000", "and now?")
    assert any("first ran" in str(m["content"]) for m in openai_env.requests[1].messages)


def test_a_cell_stops_at_its_cost_budget(
    shell, magics, headless, openai_env: FakeOpenAIServer
) -> None:
    usage = (100_000, 10_000)
    spent = cost("gpt-4o-mini", Usage(*usage))
    assert spent is not None and spent > 0.02  # 0.015 + 0.006
    openai_env.enqueue(Reply(code("c = 1"), usage=usage))
    message = stopped(shell, "--mode never --model gpt-4o-mini --max-cost 0.02", "go")
    assert message == (
        f"agent: the cell's cost budget (--max-cost 0.02) is spent: ${spent:.4f} so far; "
        "raise it or continue in a new cell"
    )
    assert len(openai_env.requests) == 1 and shell.user_ns["c"] == 1


def test_a_cost_budget_without_a_known_price_stops_before_spending(
    shell, magics, headless, openai_env: FakeOpenAIServer
) -> None:
    openai_env.enqueue("never asked TERMINATE")
    message = stopped(shell, "--mode never --model my-local-llama --max-cost 0.5", "go")
    assert message == (
        "agent: the cell's cost budget (--max-cost 0.5) cannot be kept: model "
        "'my-local-llama' has no known price; set a token budget (--max-tokens N) "
        "instead, or --max-cost 0 for none"
    )
    assert openai_env.chat_requests == []  # (a window probe may GET /models)


def test_the_session_budget_spans_cells_and_survives_reset(
    shell, magics, headless, openai_env: FakeOpenAIServer
) -> None:
    magics.session_max_tokens = 1000
    openai_env.enqueue(
        Reply("Nothing to run. TERMINATE", usage=(400, 300)),
        Reply(code("second = 2"), usage=(200, 200)),
    )
    shell.run_cell_magic("agent", "--mode never", "first cell")  # 700: under the budget
    message = stopped(shell, "--mode never", "second cell")  # 1,100 after its first call
    assert message == (
        "agent: the session's token budget (AgentMagics.session_max_tokens = 1000) is spent: "
        "1,100 tokens so far; raise it with %config AgentMagics.session_max_tokens = N "
        "(0: none)"
    )
    assert len(openai_env.requests) == 2 and shell.user_ns["second"] == 2
    shell.run_line_magic("agent", "reset")  # forgets the conversation, not its cost
    assert stopped(shell, "--mode never", "third cell") == message
    assert len(openai_env.requests) == 2
    magics.session_max_tokens = 5000  # raised: the next cell goes on
    openai_env.enqueue("Fine. TERMINATE")
    shell.run_cell_magic("agent", "--mode never", "fourth cell")
    assert len(openai_env.requests) == 3


def test_a_reply_from_the_cache_costs_nothing(shell, magics, headless, openai_env) -> None:
    magics.session_max_tokens = 5000
    openai_env.enqueue(Reply("Cached answer. TERMINATE", usage=(4000, 1000)))
    shell.run_cell_magic("agent", "--mode never --no-context --new --seed 7", "cache me")
    assert magics.session.budget.tokens == 5000  # the session budget is spent
    shell.run_cell_magic("agent", "--mode never --no-context --new --seed 7", "cache me")
    assert magics.history.replies[-1].source == "cache"  # answered, for free
    assert len(openai_env.requests) == 1 and magics.session.budget.tokens == 5000
    assert "session's token budget" in stopped(shell, "--mode never --new", "not cached")
    assert len(openai_env.requests) == 1


@pytest.mark.parametrize(
    ("line", "trait", "error"),
    [
        ("--max-tokens -1", None, "agent: --max-tokens must be 0 (no budget) or more"),
        ("--max-cost -0.5", None, "agent: --max-cost must be 0 (no budget) or more"),
        (
            "",
            "session_max_cost",
            "agent: AgentMagics.session_max_cost must be 0 (no budget) or more",
        ),
    ],
)
def test_a_negative_budget_is_one_line(shell, magics, openai_env, line, trait, error) -> None:
    if trait:
        magics.set_trait(trait, -1)
    assert stopped(shell, f"--mode never {line}", "go") == error
    assert openai_env.requests == []


# --- estimates where the server reports no usage ----------------------------------------------


def test_without_usage_an_estimate_counts_and_is_marked(
    shell, magics, headless, openai_env: FakeOpenAIServer, capsys
) -> None:
    reply = code("est = 3")
    openai_env.enqueue(Reply(reply, send_usage=False))  # llama.cpp's server in streams
    message = stopped(shell, "--mode never --max-tokens 50", "estimate me")
    sent = openai_env.requests[0]
    assert sent.json.get("stream") is True and sent.include_usage  # usage was asked for
    prompt, completion = estimate_tokens(sent.messages), estimate_tokens(reply)
    total = prompt + completion
    assert message == (
        f"agent: the cell's token budget (--max-tokens 50) is spent: {total:,} tokens so far "
        "(~ estimated); raise it or continue in a new cell"
    )
    capsys.readouterr()
    shell.run_line_magic("agent", "usage")
    table = capsys.readouterr().out
    row = next(line for line in table.splitlines() if line.startswith("1 "))
    assert re.search(rf"\s~{prompt}\s+~{completion}\s+~{total}\s", row)
    assert "unknown" not in row and " 0 " not in row
    assert "~ marks an estimate" in table


def test_usage_reported_by_the_server_is_not_estimated(
    shell, magics, openai_env: FakeOpenAIServer, capsys
) -> None:
    openai_env.enqueue(Reply("Done. TERMINATE", usage=(11, 7)))
    shell.run_cell_magic("agent", "--mode never", "count me")
    assert magics.session.budget.tokens == 18 and not magics.session.budget.estimated
    capsys.readouterr()
    shell.run_line_magic("agent", "usage")
    table = capsys.readouterr().out
    assert "~" not in table and re.search(r"\b11\s+7\s+18\b", table)


def test_an_interrupted_generation_still_counts_its_estimate() -> None:
    budget = Budget()
    chat = BudgetedChat(ScriptedChat("a reply that is cut short by the user", chunks=4), [budget])
    messages = [{"role": "user", "content": "go on"}]
    stream = chat.stream(messages)
    first = next(stream)
    stream.close()  # as the loop's generator is closed by an interrupt
    assert budget.calls == 1 and budget.estimated
    assert budget.tokens == estimate_tokens(messages) + estimate_tokens(first)


def test_the_wrapper_is_the_inner_client_for_everyone_who_reads_it() -> None:
    endpoint = Endpoint(
        "gpt-4o", "sk-test-budget-0000", "http://127.0.0.1:9/v1", context_window=4321
    )
    inner = OpenAIChat([endpoint], params={"temperature": 0.1})
    chat = BudgetedChat(inner, [Budget()])
    assert (chat.model, chat.params, chat.endpoints) == ("gpt-4o", {"temperature": 0.1}, [endpoint])
    assert chat.context_window(ask_server=False) == 4321
    assert chat.stream_replies is True  # anything else: the inner client's


def test_a_spent_budget_refuses_before_calling_the_inner_client() -> None:
    budget = Budget(max_tokens=10)
    budget.add(ChatReply("x", usage=Usage(8, 4), model="scripted"))
    inner = ScriptedChat("never sent")
    with pytest.raises(BudgetReached, match="12 tokens so far"):
        list(BudgetedChat(inner, [budget]).stream([{"role": "user", "content": "hi"}]))
    assert inner.calls == []


# --- the review's "so far" line -------------------------------------------------------------------


def test_the_terminal_review_shows_what_was_spent(
    shell, magics, openai_env: FakeOpenAIServer, monkeypatch, capsys
) -> None:
    openai_env.enqueue(
        Reply(code("seen = 1"), usage=(3000, 120)),
        Reply(code("seen = 2"), send_usage=False),
    )
    answers(monkeypatch, "", "stop")
    shell.run_cell_magic("agent", "--mode always --max-tokens 100000", "show spending")
    out = capsys.readouterr().out
    first = cost("gpt-4o-mini", Usage(3000, 120))
    assert f"[so far: 3,120 of 100,000 tokens, ${first:.2g}]" in out
    second = re.search(r"\[so far: ([\d,]+) of 100,000 tokens \(~ estimated\), \$", out)
    assert second is not None and int(second.group(1).replace(",", "")) > 3120


def test_the_widget_review_shows_what_was_spent(
    shell, magics, openai_env: FakeOpenAIServer, monkeypatch
) -> None:
    outputs = Outputs()
    original = NotebookUI.__init__
    monkeypatch.setattr(
        NotebookUI, "__init__", lambda self, *a, **k: original(self, *a, display=outputs, **k)
    )
    magics.ui = "widget"
    magics.session_max_tokens = 9000
    openai_env.enqueue(Reply(code("w = 1"), usage=(3000, 120)), "w is 1. TERMINATE")
    shown: list[str] = []

    def read_and_run(review: ReviewWidget) -> None:
        shown.append(review.status.value)
        review.run.click()

    run_cell(shell, "--mode always", "show it", read_and_run, read_and_run)
    first = cost("gpt-4o-mini", Usage(3000, 120))
    line = f"so far: 3,120 tokens, ${first:.2g} · session: 3,120 of 9,000 tokens, ${first:.2g}"
    assert f"<div class='agent-spent'>{line}</div>" in shown[0]
    assert "so far:" in shown[1] and "3,120" not in shown[1]  # the second call counted too
    assert shell.user_ns["w"] == 1


def test_no_line_before_anything_was_spent() -> None:
    assert spent_line(Budget(), Budget("session")) == ""
    review = ReviewWidget(Proposal(1, "Set x.", (CodeBlock("python", "x = 1"),)))
    assert "agent-spent" not in review.status.value


# --- the --mode never notice ----------------------------------------------------------------


def test_mode_never_says_once_per_session_that_code_runs_unseen(
    shell, magics, openai_env: FakeOpenAIServer, capsys
) -> None:
    openai_env.enqueue(code("n1 = 1"), "ok TERMINATE", code("n2 = 2"), "ok TERMINATE")
    shell.run_cell_magic("agent", "--mode never", "first")
    shell.run_cell_magic("agent", "--mode never", "second")
    out = capsys.readouterr().out
    assert out.count(NEVER_NOTICE) == 1
    assert out.index(NEVER_NOTICE) < out.index("[running step")  # before anything ran
    assert "interrupt button" in NEVER_NOTICE and "--mode always" in NEVER_NOTICE
    assert "\n" not in NEVER_NOTICE


def test_mode_never_under_replay_says_nothing(
    shell, magics, openai_env: FakeOpenAIServer, capsys
) -> None:
    openai_env.enqueue(code("r1 = 1"), "ok TERMINATE")
    shell.run_cell_magic("agent", "--mode never --no-context", "recorded")
    assert NEVER_NOTICE in capsys.readouterr().out
    magics.session.told_never = False
    shell.run_line_magic("agent", "reset")
    del shell.user_ns["r1"]  # the replay runs the recorded step again, as recorded
    shell.run_cell_magic("agent", "--mode never --no-context --replay", "recorded")
    assert shell.user_ns["r1"] == 1
    assert NEVER_NOTICE not in capsys.readouterr().out
    assert len(openai_env.requests) == 2  # the replay asked nobody
