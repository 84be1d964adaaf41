"""The loop's safety rules, end to end: a real InteractiveShell running ``%%agent`` against
the local server. Cut-off replies never run unseen; a step touching a protected name is
always asked, and refused where nobody can be asked; a sign-off with code runs it.
"""

from __future__ import annotations

import json

import nbformat
import pytest
from conftest import answers, code
from nbclient import NotebookClient

from agent_magic.testing import FakeOpenAIServer, Reply
from agent_magic.transcript import Record


def records(shell, event: str) -> list[Record]:
    magics = shell.magics_manager.registry["AgentMagics"]
    return [r for r in magics.recorder.transcript() if r.event == event]


# --- cut-off replies ----------------------------------------------------------------------

CUTS = {
    # the token limit: the server says finish_reason "length"
    "length": (lambda text: Reply(text, finish_reason="length"), "length"),
    # a stream that ends without a finish reason and without [DONE]
    "stream": (lambda text: Reply(text, done=False, send_finish=False), "incomplete stream"),
}


@pytest.mark.parametrize("cut", sorted(CUTS))
@pytest.mark.parametrize("mode", ["never", "terminate"])
def test_a_cut_off_reply_is_not_run_unseen(
    shell, openai_env, monkeypatch, capsys, mode, cut
) -> None:
    make, why = CUTS[cut]
    openai_env.enqueue(make(code("half = 1")), code("whole = 2"), "Done. TERMINATE")
    answers(monkeypatch, "")  # terminate asks at the end
    shell.run_cell_magic("agent", f"--mode {mode}", "set things")
    assert "half" not in shell.user_ns  # the cut-off code never ran
    assert shell.user_ns["whole"] == 2  # the shorter step did
    told = openai_env.chat_requests[1].messages[-1]["content"]
    assert "cut off" in told and "not run" in told and "shorter step" in told
    (first, *_) = records(shell, "reply")
    assert first.reply.cut_off == why
    (refused, *_) = records(shell, "decision")
    assert refused.action == "skip" and refused.automatic and refused.cut_off == why
    assert refused.label == "refused"
    assert "[step 1 not run] Your last reply was cut off" in capsys.readouterr().out


@pytest.mark.parametrize("cut", sorted(CUTS))
def test_always_mode_asks_and_says_the_reply_was_cut_off(
    shell, openai_env, monkeypatch, capsys, cut
) -> None:
    make, why = CUTS[cut]
    openai_env.enqueue(make(code("looked_at = 1")), "Done. TERMINATE")
    prompts = answers(monkeypatch, "", "")
    shell.run_cell_magic("agent", "--mode always", "set it")
    assert len(prompts) == 2
    shown = capsys.readouterr().out
    assert "[! This reply was cut off" in shown and "may be incomplete" in shown
    assert shell.user_ns["looked_at"] == 1  # the person saw it and ran it
    assert records(shell, "reply")[0].reply.cut_off == why


def test_a_stream_broken_mid_code_is_not_run(shell, openai_env) -> None:
    """The connection drops inside the code block: what arrived is never run unseen."""
    text = code("partial = [1, 2, 3]\nprint(partial)")
    openai_env.enqueue(Reply(text, cut_after=6), "Nothing to do. TERMINATE")
    shell.run_cell_magic("agent", "--mode never", "make a list")
    assert "partial" not in shell.user_ns
    assert "cut off" in openai_env.chat_requests[1].messages[-1]["content"]
    assert records(shell, "reply")[0].reply.cut_off == "incomplete stream"


def test_a_cut_off_reply_replays_as_recorded(shell, openai_env) -> None:
    openai_env.enqueue(Reply(code("half = 1"), finish_reason="length"), "Stopped. TERMINATE")
    shell.run_cell_magic("agent", "--mode never", "replayed cut")
    assert len(openai_env.chat_requests) == 2
    magics = shell.magics_manager.registry["AgentMagics"]
    magics.history = None
    shell.run_cell_magic("agent", "--replay --mode never", "replayed cut")
    assert len(openai_env.chat_requests) == 2  # answered from the recording
    assert "half" not in shell.user_ns
    finished = records(shell, "finished")
    assert finished[-1].reason == "terminated"


# --- protected names ----------------------------------------------------------------------

PATTERNS = {
    "rebind": ("keep = 'gone'", "would rebind keep"),
    "del": ("del keep", "would delete keep"),
    "append": ("keep.append(3)", "may change keep in place"),
    "item": ("keep[0] = 9", "would change keep in place (item assignment"),
    "attribute": ("keep.a = 1", "would change keep in place (attribute assignment"),
    "augmented": ("keep += [4]", "would rebind keep (+=, line 1); may change keep in place"),
}


@pytest.fixture
def kept(shell):
    shell.run_cell("class Box(list):\n    pass\nkeep = Box([1])")
    return shell.user_ns["keep"]


@pytest.mark.parametrize("pattern", sorted(PATTERNS))
@pytest.mark.parametrize("mode", ["always", "terminate", "never"])
def test_a_protected_name_is_always_asked(
    shell, openai_env, monkeypatch, capsys, kept, mode, pattern
) -> None:
    step, said = PATTERNS[pattern]
    openai_env.enqueue(code(step), "Left it alone. TERMINATE")
    prompts = answers(monkeypatch, "skip", "")
    shell.run_cell_magic("agent", f"--mode {mode} --protect keep", "change keep")
    assert shell.user_ns["keep"] is kept and list(kept) == [1]  # skipped: untouched
    assert not hasattr(kept, "a")
    assert prompts[0].startswith("Enter = run")  # asked before running, in every mode
    shown = capsys.readouterr().out
    assert "[! Protected names: this code" in shown and said in shown
    (decision, *_) = records(shell, "decision")
    assert said in decision.protected and not decision.automatic


def test_an_approved_protected_step_runs(shell, openai_env, monkeypatch, kept) -> None:
    openai_env.enqueue(code("keep.append(2)"), "Appended. TERMINATE")
    answers(monkeypatch, "")
    shell.run_cell_magic("agent", "--mode never --protect keep", "append")
    assert list(kept) == [1, 2]


def test_the_protected_trait_adds_names(shell, openai_env, monkeypatch, kept) -> None:
    magics = shell.magics_manager.registry["AgentMagics"]
    magics.protected = ["keep"]
    try:
        openai_env.enqueue(code("del keep"), "ok TERMINATE")
        prompts = answers(monkeypatch, "skip", "")
        shell.run_cell_magic("agent", "--mode never", "drop it")
    finally:
        magics.protected = []
    assert prompts and shell.user_ns["keep"] is kept


def test_get_ipython_is_protected_by_default(shell, openai_env, monkeypatch) -> None:
    openai_env.enqueue(code("get_ipython = None"), "ok TERMINATE")
    prompts = answers(monkeypatch, "skip", "")
    shell.run_cell_magic("agent", "--mode never", "break it")
    assert callable(shell.user_ns["get_ipython"])
    assert prompts[0].startswith("Enter = run")


def test_unprotected_steps_and_reimports_run_unasked(shell, openai_env, monkeypatch) -> None:
    """``from IPython.display import display`` binds the object already there: not asked."""
    openai_env.enqueue(
        code("from IPython.display import display\nfrom IPython import get_ipython\nfree = 1"),
        "ok TERMINATE",
    )
    prompts = answers(monkeypatch)
    shell.run_cell_magic("agent", "--mode never", "free")
    assert shell.user_ns["free"] == 1 and prompts == []


def test_ipython_syntax_is_read_through_the_shell(shell, openai_env, monkeypatch, kept) -> None:
    openai_env.enqueue(code("%time keep = 'rebound'"), "ok TERMINATE")
    prompts = answers(monkeypatch, "skip", "")
    shell.run_cell_magic("agent", "--mode never --protect keep", "magic")
    assert prompts and shell.user_ns["keep"] is kept


@pytest.mark.parametrize("pattern", sorted(PATTERNS))
def test_headless_a_protected_step_is_refused_and_the_model_told(
    shell, openai_env, monkeypatch, kept, pattern
) -> None:
    """Nobody can be asked (no terminal, no widget frontend): the step is refused."""
    step, said = PATTERNS[pattern]
    magics = shell.magics_manager.registry["AgentMagics"]
    monkeypatch.setattr(magics.session, "frontend", lambda: "headless")
    openai_env.enqueue(code(step), code("other = 1"), "Done. TERMINATE")
    shell.run_cell_magic("agent", "--mode never --protect keep", "change keep")
    assert shell.user_ns["keep"] is kept and list(kept) == [1]
    assert shell.user_ns["other"] == 1  # the work went on
    told = openai_env.chat_requests[1].messages[-1]["content"]
    assert "not run" in told and said in told and "nobody can be asked" in told
    (decision, *_) = records(shell, "decision")
    assert decision.automatic and decision.action == "skip"


def test_headless_nbclient_refuses_a_protected_step(openai_env: FakeOpenAIServer, tmp_path) -> None:
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell(s)
            for s in (
                "%load_ext agent_magic",
                "%%agent --mode never\nBreak the shell.",
                "print(callable(get_ipython))",
            )
        ]
    )
    openai_env.enqueue(code("get_ipython = None"), "I will not. TERMINATE")
    NotebookClient(
        nb, timeout=60, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    assert nb.cells[2].outputs[0]["text"] == "True\n"
    told = openai_env.chat_requests[1].messages[-1]["content"]
    assert "would rebind get_ipython" in told and "nobody can be asked" in told
    shown = json.dumps(nb.cells[1].outputs)
    assert "Step 1: refused" in shown


# --- sign-off with code -------------------------------------------------------------------


# The same semantics at the seam, in test_conversation.py::
# test_a_sign_off_with_code_runs_it_then_finishes
@pytest.mark.slow
def test_a_sign_off_with_code_runs_its_code(shell, openai_env) -> None:
    """Qwen2.5-Coder's habit: the code and TERMINATE in one message."""
    openai_env.enqueue(code("answer = sum(range(1, 101))") + "\nThe sum is 5050. TERMINATE")
    shell.run_cell_magic("agent", "--mode never", "sum of 1..100 into answer")
    assert shell.user_ns["answer"] == 5050
    assert len(openai_env.chat_requests) == 1
    assert records(shell, "finished")[-1].reason == "terminated"


def test_a_cut_off_sign_off_is_not_run(shell, openai_env) -> None:
    openai_env.enqueue(
        Reply(code("signed = 1") + "\nTERMINATE", finish_reason="length"), "Sorry. TERMINATE"
    )
    shell.run_cell_magic("agent", "--mode never", "sign")
    assert "signed" not in shell.user_ns


# --- what the faces show ------------------------------------------------------------------


def test_the_review_widget_says_cut_off_protected_and_sign_off() -> None:
    from agent_magic.codeblocks import CodeBlock
    from agent_magic.conversation import Proposal
    from agent_magic.ui.review import ReviewWidget

    proposal = Proposal(
        4,
        "x",
        (CodeBlock("python", "get_ipython = None"),),
        cut_off="length",
        protected="would rebind get_ipython (assignment, line 1)",
        signs_off=True,
    )
    status = ReviewWidget(proposal).status.value
    assert "Step 4: review the proposed code" in status
    assert "cut off (it reached the token limit)" in status
    assert "Protected names: this code would rebind get_ipython" in status
    assert "signs off with this step" in status


def test_step_numbers_in_tracebacks_do_not_change_request_keys() -> None:
    """A step's traceback names it ``<agent step N>``; a replay after other cells (another N)
    must still match, so the number is masked before hashing."""
    from agent_magic.text import normalize_volatile
    from agent_magic.transcript.keys import Keyer

    one = 'File <agent step 3>:2\n  File "<agent step 12.2>", line 1'
    assert normalize_volatile(one) == 'File <agent step _>:2\n  File "<agent step _>", line 1'
    other = {"role": "user", "content": one.replace("3", "7")}
    keyer = Keyer()
    assert keyer.replay_key([{"role": "user", "content": one}], None) == keyer.replay_key(
        [other], None
    )
    assert normalize_volatile("<agent step x>") == "<agent step x>"  # only numbers


# --- the plan -----------------------------------------------------------------------------


def test_the_plan_carries_protected_names_who_is_there_and_the_window() -> None:
    from types import SimpleNamespace

    from IPython.core.magic_arguments import parse_argstring

    from agent_magic.magic import AgentMagics
    from agent_magic.plan import plan_cell

    traits = AgentMagics.class_traits(config=True)
    defaults = {name: trait.default() for name, trait in traits.items()}

    def plan(line: str, frontend: str = "terminal", **changed):
        args = parse_argstring(AgentMagics.agent, line)
        settings = SimpleNamespace(**{**defaults, **changed})
        return plan_cell(args, settings, cell="a task", frontend=frontend, env={})

    made = plan("--protect df --protect model", protected=["raw"], context_window=1500)
    assert made.protected == {"df", "model", "raw"} and made.context_window == 1500
    assert made.attended
    assert plan("").protected == frozenset() and plan("").context_window is None
    assert not plan("--mode never", "headless").attended  # nobody to ask
    assert plan("--mode never --replay", "headless").attended  # the recording answers


def test_a_cut_off_tool_call_is_answered_with_its_reason() -> None:
    from agent_magic.conversation import ChatReply, Conversation, ToolCallRequest, drive
    from agent_magic.testing import ScriptedChat

    call = ToolCallRequest("c1", "run_python", '{"code": "half = ')
    chat = ScriptedChat(ChatReply("", (call,), cut_off="incomplete stream"), "ok TERMINATE")

    class Never:
        def run(self, block, *, step=None):
            raise AssertionError("a cut-off tool call ran")

    conv = Conversation(chat, Never(), mode="never", use_tools=True)
    assert drive(conv.run("t"), lambda e: None).reason == "terminated"
    tool = chat.seen[1][-1]
    assert tool["role"] == "tool" and tool["tool_call_id"] == "c1"
    assert tool["content"].startswith("Not run: Your last reply was cut off")
