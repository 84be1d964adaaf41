"""Reviews show what runs (issue 20): bidirectional controls and other invisible
characters in proposed code are shown escaped and named in the review (terminal and
widget); in never/terminate such a step is asked, and refused headless with the model
told why. Through a real shell against the scripted server, and the pure functions."""

from __future__ import annotations

import pytest
from conftest import answers, code

from agent_magic.codeblocks import CodeBlock
from agent_magic.conversation import Proposal
from agent_magic.invisible import describe, escape, invisible_chars
from agent_magic.transcript import DecisionRecord

# "Trojan Source": the comment's RLO/LRI make an editor show `is_admin` inside the comment,
# while Python reads it as code after the string.
TROJAN = (
    'role = "user"\nis_admin = role != "user\u202e \u2066# only admins\u2069 \u2066"\ntricked = 1'
)


def decisions(shell) -> list[DecisionRecord]:
    magics = shell.magics_manager.registry["AgentMagics"]
    return [r for r in magics.recorder.transcript() if isinstance(r, DecisionRecord)]


def test_invisible_characters_are_found_named_and_escaped() -> None:
    found = invisible_chars(TROJAN)
    assert [(c.code, c.line) for c in found] == [
        ("U+202E", 2),
        ("U+2066", 2),
        ("U+2069", 2),
        ("U+2066", 2),
    ]
    line = describe([TROJAN])
    assert line.startswith("holds 4 invisible characters: U+202E RIGHT-TO-LEFT OVERRIDE (line 2)")
    assert "U+2066 LEFT-TO-RIGHT ISOLATE" in line and "\n" not in line
    shown = escape(TROJAN)
    assert "\\u202e" in shown and "\\u2069" in shown and "\u202e" not in shown
    assert escape("a\u200bb\x1bc\r\nd") == "a\\u200bb\\x1bc\r\nd"  # a Windows line end stays
    # ordinary code, tabs, line ends and letters of any script are not invisible
    assert describe(["for i in x:\n\tprint('é', '日本', i)\r\n"]) == ""


@pytest.mark.parametrize("mode", ["always", "terminate", "never"])
def test_a_step_with_invisible_characters_is_asked_and_shown_escaped(
    shell, openai_env, monkeypatch, capsys, mode
) -> None:
    openai_env.enqueue(code(TROJAN), "Left it. TERMINATE")
    prompts = answers(monkeypatch, "skip", "")
    shell.run_cell_magic("agent", f"--mode {mode} --no-context", "check the role")
    assert "tricked" not in shell.user_ns  # skipped: never ran
    assert prompts[0].startswith("Enter = run")  # asked before running, in every mode
    shown = capsys.readouterr().out
    review = shown[shown.index("[! Invisible characters") :]
    assert "U+202E RIGHT-TO-LEFT OVERRIDE (line 2)" in review
    assert '"user\\u202e \\u2066# only admins\\u2069 \\u2066"' in review  # what runs
    (decision, *_) = decisions(shell)
    assert not decision.automatic and decision.action == "skip"


def test_an_approved_step_with_invisible_characters_runs_as_written(
    shell, openai_env, monkeypatch
) -> None:
    openai_env.enqueue(code(TROJAN), "Ran. TERMINATE")
    answers(monkeypatch, "", "")
    shell.run_cell_magic("agent", "--mode never --no-context", "check the role")
    assert shell.user_ns["is_admin"] is True and shell.user_ns["tricked"] == 1


def test_headless_a_step_with_invisible_characters_is_refused_and_the_model_told(
    shell, openai_env, monkeypatch
) -> None:
    magics = shell.magics_manager.registry["AgentMagics"]
    monkeypatch.setattr(magics.session, "frontend", lambda: "headless")
    openai_env.enqueue(code(TROJAN), code("plain = 1"), "Done. TERMINATE")
    shell.run_cell_magic("agent", "--mode never --no-context", "check the role")
    assert "tricked" not in shell.user_ns and shell.user_ns["plain"] == 1  # the work went on
    told = openai_env.chat_requests[1].messages[-1]["content"]
    assert "not run" in told and "U+202E RIGHT-TO-LEFT OVERRIDE" in told
    assert "nobody can be asked" in told
    (decision, *_) = decisions(shell)
    assert decision.automatic and decision.label == "refused"


def test_the_review_widget_names_and_escapes_invisible_characters() -> None:
    from agent_magic.ui.review import ReviewWidget

    proposal = Proposal(2, "x", (CodeBlock("python", TROJAN),), invisible=describe([TROJAN]))
    status = ReviewWidget(proposal).status.value
    assert "Invisible characters: this code holds 4 invisible characters" in status
    assert "RIGHT-TO-LEFT OVERRIDE" in status
    assert "\\u202e" in status and "\u202e" not in status
