"""The review without fatigue: **Run all** (and ``all`` at the terminal prompt), and the
question a spent budget asks in an attended cell. A real InteractiveShell runs each
``%%agent`` cell against the local server; the widget's buttons are clicked with
``.click()``, the terminal's prompt answered by a scripted ``input``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import answers, code
from test_conversation import RecordingExecutor
from test_widget import Outputs

from agent_magic.budget import Budget
from agent_magic.conversation import BudgetAsked, Conversation, Decision, drive
from agent_magic.testing import FakeOpenAIServer, Reply, ScriptedChat
from agent_magic.ui.review import BudgetQuestion, ReviewWidget
from agent_magic.ui.terminal import parse_answer, parse_more
from agent_magic.ui.widget import NotebookUI

THREE_STEPS = (code("s1 = 1"), code("s2 = s1 + 1"), code("s3 = s2 + 1"), "s3 is 3. TERMINATE")


@pytest.fixture
def magics(shell) -> Any:
    magics = shell.magics_manager.registry["AgentMagics"]
    magics.session.budget = Budget("session")
    yield magics
    for trait in ("ui", "max_tokens", "max_cost"):
        magics.set_trait(trait, magics.trait_defaults(trait))


@pytest.fixture
def notebook(magics, monkeypatch) -> Outputs:
    """The shell answering with the widget; its outputs collected."""
    outputs = Outputs()
    original = NotebookUI.__init__
    monkeypatch.setattr(
        NotebookUI, "__init__", lambda self, *a, **k: original(self, *a, display=outputs, **k)
    )
    magics.ui = "widget"
    return outputs


Click = Callable[[Any], None]


def run_cell(magics: Any, line: str, task: str, *clicks: Click) -> list[str]:
    """Await the cell as a kernel would, answering each waiting widget (a review or a
    budget question) with the next click; what each one said when it was answered."""
    pending = list(clicks)
    said: list[str] = []

    async def person() -> None:
        while True:
            await asyncio.sleep(0.01)
            ui = magics.last_ui
            waiting = getattr(ui, "question", None) or getattr(ui, "widget", None)
            if waiting is not None and waiting.decision is None:
                said.append(f"{type(waiting).__name__}: {waiting.status.value}")
                assert pending, f"asked once more than scripted: {said[-1]}"
                pending.pop(0)(waiting)

    async def cell() -> None:
        clicking = asyncio.ensure_future(person())
        try:
            await magics.agent_async(line, task)
        finally:
            clicking.cancel()

    asyncio.run(cell())
    assert not pending, "the conversation ended before every click was used"
    return said


def decisions(recording: Path) -> list[tuple[int, str, bool]]:
    """(step, label, automatic) of each recorded decision."""
    records = [json.loads(line) for line in recording.read_text().splitlines()]
    return [(r["step"], r["label"], r["automatic"]) for r in records if r["event"] == "decision"]


# --- Run all ---------------------------------------------------------------------------------


def test_run_all_in_the_widget_runs_the_rest_without_asking(
    shell, magics, notebook: Outputs, openai_env: FakeOpenAIServer, tmp_path
) -> None:
    openai_env.enqueue(*THREE_STEPS)
    said = run_cell(
        magics,
        "--mode always",
        "count to three",
        lambda review: review.run_all.click(),
        lambda review: review.run.click(),  # the answer is still asked, as terminate asks
    )
    assert [s.split(":")[0] for s in said] == ["ReviewWidget", "ReviewWidget"]
    assert "Finish" not in said[0] and "the assistant&#x27;s answer is above" in said[1]
    assert (shell.user_ns["s1"], shell.user_ns["s2"], shell.user_ns["s3"]) == (1, 2, 3)
    record = notebook.markdown()
    assert "» Step 1: ran all" in record
    assert "Step 2: ran (automatic)" in record and "Step 3: ran (automatic)" in record
    assert decisions(tmp_path / "agent-recording.jsonl") == [
        (1, "ran all", False),
        (2, "ran", True),
        (3, "ran", True),
        (4, "finished", False),
    ]


def test_run_all_still_asks_where_terminate_asks(
    shell, magics, notebook: Outputs, openai_env: FakeOpenAIServer
) -> None:
    shell.user_ns["keep"] = "precious"
    openai_env.enqueue(code("a1 = 1"), code("keep = 'gone'"), "I left keep alone. TERMINATE")
    said = run_cell(
        magics,
        "--mode always --protect keep",
        "touch keep",
        lambda review: review.run_all.click(),
        lambda review: review.skip.click(),  # the protected name is asked about
        lambda review: review.run.click(),
    )
    assert "Protected names" in said[1] and "keep" in said[1]
    assert shell.user_ns["keep"] == "precious" and shell.user_ns["a1"] == 1


def test_all_at_the_terminal_prompt_and_its_replay(
    shell, magics, openai_env: FakeOpenAIServer, monkeypatch, tmp_path, capsys
) -> None:
    openai_env.enqueue(*THREE_STEPS)
    prompts = answers(monkeypatch, "all", "")
    shell.run_cell_magic("agent", "--mode always --no-context", "count to three")
    assert len(prompts) == 2 and "'all' = this and the rest" in prompts[0]
    assert "Finish with this answer?" in prompts[1]
    assert shell.user_ns["s3"] == 3
    assert "[ran all]" in capsys.readouterr().out
    recorded = decisions(tmp_path / "agent-recording.jsonl")
    assert recorded[0] == (1, "ran all", False)

    # The replay takes the recorded Run all as the person's decision: nobody is asked,
    # no model is called, and the steps run again as they did.
    for name in ("s1", "s2", "s3"):
        del shell.user_ns[name]
    monkeypatch.delenv("OPENAI_API_KEY")
    answers(monkeypatch)  # any prompt fails the test
    shell.run_cell_magic("agent", "--mode always --no-context --new --replay", "count to three")
    assert shell.user_ns["s3"] == 3
    assert len(openai_env.chat_requests) == 4
    shell.run_line_magic("agent", "log")
    assert "step 1: ran all" in capsys.readouterr().out


def test_run_all_is_a_decision_the_loop_honours_for_this_cell_only() -> None:
    chat = ScriptedChat(code("a = 1"), code("b = 2"), "done TERMINATE", code("c = 3"))
    conversation = Conversation(chat, RecordingExecutor(), mode="always")
    asked: list[int] = []

    def person(event: Any) -> Decision | None:
        if type(event).__name__ == "ReviewRequested":
            asked.append(event.proposal.step)
            return Decision.run_all() if event.proposal.step == 1 else Decision.run()
        return None

    assert drive(conversation.run("t"), person).reason == "terminated"
    assert asked == [1, 3]  # step 2 ran unasked; the answer was asked
    assert parse_answer("ALL", Proposal_final()) == Decision.feedback("ALL")  # not at Finish
    # The next cell is a new Conversation: it asks again.
    nxt = Conversation(chat, RecordingExecutor(), mode="always", history=conversation.history)
    asked.clear()
    drive(nxt.run("more"), lambda e: Decision("stop") if _asks(e, asked) else None)
    assert asked == [4]


def _asks(event: Any, asked: list[int]) -> bool:
    if type(event).__name__ == "ReviewRequested":
        asked.append(event.proposal.step)
        return True
    return False


def Proposal_final() -> Any:  # noqa: N802
    from agent_magic.conversation import Proposal

    return Proposal(2, "done", (), final=True, reason="terminated")


# --- the budget question -----------------------------------------------------------------------


def test_a_spent_budget_asks_at_the_terminal_and_goes_on_with_more(
    shell, magics, openai_env: FakeOpenAIServer, monkeypatch, capsys
) -> None:
    openai_env.enqueue(
        Reply(code("b1 = 1"), usage=(3000, 2212)), Reply("b1 is 1. TERMINATE", usage=(10, 5))
    )
    prompts = answers(monkeypatch, "")  # Enter: as much again
    shell.run_cell_magic("agent", "--mode never --max-tokens 5000", "set b1")
    assert prompts == ["Go on? Enter = 5,000 tokens more, a number of tokens more, or 'stop': "]
    out = capsys.readouterr().out
    assert "[budget spent] the cell's token budget (--max-tokens 5000) is spent" in out
    assert "[going on with 5,000 tokens more]" in out and "[The assistant finished.]" in out
    assert len(openai_env.chat_requests) == 2 and shell.user_ns["b1"] == 1


def test_a_spent_budget_answered_stop_ends_the_cell_as_stopped(
    shell, magics, openai_env: FakeOpenAIServer, monkeypatch, capsys
) -> None:
    openai_env.enqueue(Reply(code("b2 = 1"), usage=(3000, 2212)), "never sent")
    answers(monkeypatch, "lots", "stop")  # not an amount: asked again
    shell.run_cell_magic("agent", "--mode never --max-tokens 5000", "set b2")  # no error
    out = capsys.readouterr().out
    assert "['lots' is not an amount; type a number, or 'stop']" in out
    assert "[Stopped: the cell's token budget (--max-tokens 5000) is spent" in out
    assert len(openai_env.chat_requests) == 1 and shell.user_ns["b2"] == 1


def test_a_spent_budget_is_not_asked_headless(
    shell, magics, openai_env: FakeOpenAIServer, monkeypatch
) -> None:
    from IPython.core.error import UsageError

    monkeypatch.setattr(magics.session, "frontend", lambda: "headless")
    answers(monkeypatch)  # any prompt fails the test
    openai_env.enqueue(Reply(code("b3 = 1"), usage=(3000, 2212)), "never sent")
    with pytest.raises(UsageError, match=r"token budget \(--max-tokens 5000\) is spent"):
        shell.run_cell_magic("agent", "--mode never --max-tokens 5000", "set b3")
    assert len(openai_env.chat_requests) == 1


def test_the_budget_question_in_the_widget(
    shell, magics, notebook: Outputs, openai_env: FakeOpenAIServer
) -> None:
    openai_env.enqueue(
        Reply(code("w1 = 1"), usage=(3000, 2212)),
        Reply(code("w2 = 2"), usage=(300, 100)),
        Reply("never sent", usage=(1, 1)),
    )

    def more(question: BudgetQuestion) -> None:
        assert question.amount.value == 5000  # the same again, to start with
        question.amount.value = 300
        question.more.click()

    said = run_cell(
        magics,
        "--mode never --max-tokens 5000",
        "set w",
        more,
        lambda question: question.stop.click(),
    )
    assert said[0].startswith("BudgetQuestion: ") and "Before step 2" in said[0]
    assert "is spent: 5,212 tokens so far" in said[0]
    assert shell.user_ns["w2"] == 2 and len(openai_env.chat_requests) == 2
    record = notebook.markdown()
    assert "the budget is spent; went on with 300 tokens more" in record
    assert "Before step 3: the budget is spent; stopped" in record
    assert "**Conversation stopped.** Stopped: the cell's token budget" in record
    assert not any("application/vnd.jupyter.widget-view+json" in b for b in notebook.bundles)


def test_the_budget_question_for_dollars_and_its_typed_answers() -> None:
    asked = BudgetAsked(2, "the cell's cost budget (--max-cost 0.05) is spent", "dollars", 0.05)
    question = BudgetQuestion(asked)
    assert question.amount.value == pytest.approx(0.05)
    question.amount.value = 0.1
    question.more.click()
    assert question.decision == Decision.raise_budget(0.1)
    assert all(control.disabled for control in question.controls)
    assert "went on with $0.1 more" in question.record()
    assert parse_more("", asked) == Decision.raise_budget(0.05)
    assert parse_more("$0.25", asked) == Decision.raise_budget(0.25)
    assert parse_more("quit", asked) == Decision("stop")
    assert parse_more("-1", asked) is None and parse_more("0", asked) is None


def test_the_loop_grows_the_budget_it_was_told_and_asks_nobody_unattended() -> None:
    budget = Budget("cell", max_tokens=100)
    budget.tokens = 150
    reached = budget.reached("gpt-4o-mini")
    assert reached is not None and reached.unit == "tokens" and reached.size == 100
    reached.extend(100)
    assert budget.max_tokens == 250 and budget.reached("gpt-4o-mini") is None
    unpriced = Budget("cell", max_cost=0.5)
    assert unpriced.reached("my-local-llama").extend is None  # no price: cannot be kept

    chat = ScriptedChat("hi TERMINATE")
    from agent_magic.budget import BudgetedChat

    spent = Budget("cell", max_tokens=10)
    spent.tokens = 10
    lonely = Conversation(BudgetedChat(chat, [spent]), RecordingExecutor(), attended=False)
    events: list[Any] = []
    finished = drive(lonely.run("t"), lambda e: events.append(e))
    assert finished.reason == "error" and not any(isinstance(e, BudgetAsked) for e in events)


def test_review_widget_offers_run_all_only_before_running() -> None:
    from agent_magic.codeblocks import CodeBlock
    from agent_magic.conversation import Proposal

    step = Proposal(1, "x", (CodeBlock("python", "x = 1"),))
    review = ReviewWidget(step)
    assert review.run_all in review.box.children[2].children
    assert "agent-run-all" in review.run_all._dom_classes
    review.codes[0].value = "x = 2"
    review.run_all.click()
    assert review.decision == Decision.run_all([CodeBlock("python", "x = 2")])
    assert review.decision.label(step) == "edited and ran all"
    final = ReviewWidget(Proposal_final())
    assert final.run_all not in final.box.children[2].children
