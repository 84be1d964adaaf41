"""The line commands and the ends of a cell, tried as a user would: errors said once,
``--model`` as typed, ``%agent key``, ``%agent models``, ``%agent cells``, ``%agent log``
and the replay that leaves the reviews to the person."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from conftest import answers, code
from IPython.core.error import UsageError

from agent_magic import apikey
from agent_magic.testing import Failure, FakeOpenAIServer


def magics_of(shell: Any) -> Any:
    return shell.magics_manager.registry["AgentMagics"]


@pytest.fixture(autouse=True)
def no_held_key():
    """Each test starts, and leaves the kernel, without a key typed by %agent key."""
    apikey.forget()
    yield
    apikey.forget()


# --- every error once ----------------------------------------------------------------


def test_an_error_is_said_once_in_the_terminal(shell, openai_env, capsys) -> None:
    openai_env.enqueue(Failure(401, "Incorrect API key provided"))
    shell.run_cell("%%agent --mode never\nhi")  # as typed at the prompt: IPython shows it
    captured = capsys.readouterr()
    shown = captured.out + captured.err
    assert shown.count("authentication failed") == 1, shown
    [line] = [line for line in shown.splitlines() if "authentication failed" in line]
    assert line.startswith("UsageError: agent: ")
    record = magics_of(shell).recorder.transcript()[-1]
    assert record.event == "finished" and "authentication failed" in record.message


def test_an_error_is_said_once_in_the_notebook(shell, openai_env, monkeypatch) -> None:
    from agent_magic.ui import widget

    outputs = _Collected()
    original = widget.NotebookUI.__init__
    monkeypatch.setattr(
        widget.NotebookUI,
        "__init__",
        lambda self, *a, **k: original(self, *a, **{**k, "display": outputs}),
    )
    magics_of(shell).ui = "widget"
    try:
        openai_env.enqueue(Failure(401, "Incorrect API key provided"))
        with pytest.raises(UsageError, match="authentication failed") as info:
            asyncio.run(magics_of(shell).agent_async("--mode never", "hi"))
    finally:
        magics_of(shell).ui = "auto"
    assert "\n" not in str(info.value)
    shown = "\n".join(str(b) for b in outputs.bundles)
    assert "authentication failed" not in shown and "Conversation" not in shown


def test_an_interrupt_is_said_once_in_the_terminal(shell, openai_env, monkeypatch, capsys):
    import builtins

    def interrupt(prompt: str = "") -> str:
        raise KeyboardInterrupt

    monkeypatch.setattr(builtins, "input", interrupt)
    openai_env.enqueue(code("never = 1"))
    shell.run_cell("%%agent --mode always\nwait")
    captured = capsys.readouterr()
    assert (captured.out + captured.err).count("Interrupted") == 1
    assert "never" not in shell.user_ns


# --- --model as typed ------------------------------------------------------------------


@pytest.mark.parametrize("typed", ["'\"gpt-4o\"'", "\"'gpt-4o'\"", "' gpt-4o '"])
def test_quotes_around_the_model_name_are_not_sent(shell, openai_env, typed) -> None:
    openai_env.enqueue("hi TERMINATE")
    shell.run_cell_magic("agent", f"--mode never --model {typed}", "hi")
    assert openai_env.chat_requests[-1].json["model"] == "gpt-4o"


def test_an_empty_model_name_is_one_line(shell, openai_env) -> None:
    with pytest.raises(UsageError, match="--model is empty") as info:
        shell.run_cell_magic("agent", "--mode never --model ''", "hi")
    assert "\n" not in str(info.value)
    assert openai_env.chat_requests == []


# --- %agent key --------------------------------------------------------------------------

TYPED_KEY = "sk-typed-Q7wErTy9uIoP3aSdFgHjKl"


def test_a_key_typed_in_the_terminal_reaches_the_server_and_nothing_else(
    shell, monkeypatch, capsys, tmp_path
) -> None:
    import getpass

    prompts: list[str] = []
    monkeypatch.setattr(getpass, "getpass", lambda prompt="": prompts.append(prompt) or TYPED_KEY)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with FakeOpenAIServer(api_key=TYPED_KEY) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        shell.run_line_magic("agent", "key")
        said = capsys.readouterr().out
        assert "kept in this kernel's memory only" in said and prompts
        server.enqueue(
            code("import agent_magic.apikey\nprint('key:', agent_magic.apikey.held())"),
            "Done. TERMINATE",
        )
        shell.run_cell_magic("agent", "--mode never", "use the key")
        assert server.chat_requests[0].headers["authorization"] == f"Bearer {TYPED_KEY}"
        # The step printed it (the user's own code, shown as it ran); the model was told
        # it hidden, and the recording and the log hide it too.
        told = server.chat_requests[1].body.decode()
        assert "key:" in told and TYPED_KEY not in told
    capsys.readouterr()
    shell.run_line_magic("agent", "log")
    log = capsys.readouterr().out
    plain, markdown = magics_of(shell)._log()
    recording = (tmp_path / "agent-recording.jsonl").read_text()
    for where in (said, log, plain, markdown, recording):
        assert TYPED_KEY not in where
    assert "[hidden: api key]" in recording


def test_the_environment_key_comes_first_and_nothing_typed_changes_nothing(
    shell, openai_env, monkeypatch, capsys
) -> None:
    import getpass

    monkeypatch.setattr(getpass, "getpass", lambda prompt="": "   ")
    shell.run_line_magic("agent", "key")
    assert "no key typed; nothing changed" in capsys.readouterr().out
    assert apikey.held() is None
    plain = "plain-looking-key-4711-abcdef"  # no credential shape: hidden as the typed key
    monkeypatch.setattr(getpass, "getpass", lambda prompt="": plain)
    shell.run_line_magic("agent", "key")
    assert "OPENAI_API_KEY is set too, and is used first" in capsys.readouterr().out
    openai_env.enqueue(
        code("import agent_magic.apikey\nprint('key:', agent_magic.apikey.held())"), "hi TERMINATE"
    )
    shell.run_cell_magic("agent", "--mode never", "hi")
    assert plain not in openai_env.chat_requests[0].headers["authorization"]
    # Not used, but still a secret: hidden from the model all the same.
    told = openai_env.chat_requests[1].body.decode()
    assert "key:" in told and plain not in told


def test_the_notebook_password_box_keeps_the_key_and_forgets_the_text() -> None:
    from agent_magic.ui.boxes import KeyBox

    box = KeyBox(apikey.keep)
    box.save.click()
    assert apikey.held() is None and "Type the key first" in box.status.value
    box.password.value = TYPED_KEY
    box.save.click()
    assert apikey.held() == TYPED_KEY
    assert box.password.value == ""  # no copy left in the widget's (saveable) state
    assert "kept in this kernel" in box.status.value and TYPED_KEY not in box.status.value
    assert box.box.children == (box.status,)


def test_the_key_box_is_shown_in_a_notebook_and_refused_headless(shell, monkeypatch) -> None:
    import IPython.display

    from agent_magic.ui.boxes import KeyBox

    shown: list[Any] = []
    monkeypatch.setattr(IPython.display, "display", lambda *objs, **kw: shown.extend(objs))
    assert magics_of(shell).session.key("widgets") is None
    assert len(shown) == 1 and isinstance(shown[0], KeyBox)
    with pytest.raises(UsageError, match="set OPENAI_API_KEY in its environment"):
        magics_of(shell).session.key("headless")


def test_help_names_the_new_commands() -> None:
    from agent_magic.magic import AgentMagics

    doc = AgentMagics.agent.__doc__
    for words in ("%agent key", "%agent models", "%agent cells"):
        assert words in doc


# --- %agent models -----------------------------------------------------------------------


def test_models_lists_the_endpoints_models_and_marks_the_one_in_use(
    shell, openai_env, capsys
) -> None:
    with FakeOpenAIServer(models=["gpt-4o-mini", "llama3.1"]) as server:
        shell.run_line_magic("agent", f"models --base-url {server.base_url}")
        out = capsys.readouterr().out.splitlines()
        assert out[0].startswith("agent: 2 models at http://127.0.0.1")
        assert out[1:] == ["* gpt-4o-mini", "  llama3.1"]
        shell.run_line_magic("agent", f"models --base-url {server.base_url} --model llama3.1")
        assert "* llama3.1" in capsys.readouterr().out
    shell.run_line_magic("agent", "models")  # the environment's server lists fake-model
    out = capsys.readouterr().out
    assert "  fake-model" in out and "(gpt-4o-mini, in use, is not in this list)" in out


def test_models_where_the_server_has_no_list(shell, openai_env) -> None:
    routes = {("GET", "/v1/models"): Failure(404, "Not found")}
    with (
        FakeOpenAIServer(routes=routes) as server,
        pytest.raises(UsageError, match="has no model list") as info,
    ):
        shell.run_line_magic("agent", f"models --base-url {server.base_url}")
    assert "\n" not in str(info.value)


# --- %agent cells ------------------------------------------------------------------------


def test_cells_puts_the_code_that_ran_into_the_notebook(shell, openai_env, capsys) -> None:
    shell.rl_next_input = None
    shell.run_line_magic("agent", "cells")
    assert "nothing ran yet" in capsys.readouterr().out and shell.rl_next_input is None
    openai_env.enqueue(code("first = 1"), code("1 / 0"), code("second = first + 1"), "TERMINATE")
    shell.run_cell_magic("agent", "--mode never", "two steps and a failure")
    capsys.readouterr()
    shell.run_line_magic("agent", "cells")
    assert (
        capsys.readouterr().out.strip()
        == "agent: the code of 2 steps that ran is at the next prompt"
    )
    # Numbered as the record numbers them (step 2 failed).
    assert shell.rl_next_input == "# step 1\nfirst = 1\n\n# step 3\nsecond = first + 1"


def test_the_sign_off_marker_reaches_the_faces(shell, openai_env, capsys) -> None:
    magics_of(shell).termination_marker = "ALL_DONE"
    try:
        openai_env.enqueue("The answer is 4. ALL_DONE")
        shell.run_cell_magic("agent", "--mode never", "two plus two")
    finally:
        magics_of(shell).termination_marker = "TERMINATE"
    out = capsys.readouterr().out
    assert "The answer is 4." in out and "ALL_DONE" not in out


# --- %agent log --------------------------------------------------------------------------


def test_the_log_shows_words_as_typed_and_outputs_as_code(shell, openai_env, monkeypatch):
    import re

    import mistune

    task = "Find a*x + b*y\n---\nwhere <b>x</b> = $2$ and my_var\n    1. is not a list"
    answers(monkeypatch, "", "use b*y = 3\n# not a heading", "")
    openai_env.enqueue(code("print('-' * 20)\n1 / 0"), code("b = 3"), "Done, *b* is 3. TERMINATE")
    shell.run_cell_magic("agent", "--mode always --no-context", task)
    plain, markdown = magics_of(shell)._log()
    assert plain.startswith(f"--- user\n{task}\n--- assistant\n")  # the terminal's, as it was
    html = mistune.html(markdown)
    prose = re.sub(r"<pre>.*?</pre>", "", html, flags=re.S)  # what is not a code block
    assert "<h1" not in html and "<h2" not in html and "<ol" not in html
    assert "Find a*x + b*y<br />\n---<br />" in prose  # no italics, no rule, lines kept
    assert "&lt;b&gt;x&lt;/b&gt; = $2$ and my_var" in prose
    assert "use b*y = 3<br />\n# not a heading" in prose
    assert "Done, <em>b</em> is 3." in prose  # the assistant's Markdown is rendered
    blocks = re.findall(r"<pre><code[^>]*>(.*?)</code></pre>", html, flags=re.S)
    assert any("ZeroDivisionError" in b and "-" * 20 in b for b in blocks)  # a block, whole
    assert any(b.startswith("print(") for b in blocks)


def test_the_words_escape_survives_any_punctuation() -> None:
    import html

    import mistune

    from agent_magic.transcript.log import words

    every = "".join(chr(c) for c in range(33, 127))
    assert html.unescape(mistune.html(words(every))).strip() == f"<p>{every}</p>"
    starts = ["# h", "- item", "+ item", "> quote", "1. one", "2) two", "    indented"]
    starts += ["===", "---", "```", "~~~", "| a | b |", "<div>", "[x]: http://x"]
    shown = html.unescape(mistune.html(words("\n".join(starts)))).replace("\u00a0", " ")
    assert shown.strip() == "<p>" + "<br />\n".join(starts) + "</p>"


# --- try it without a key: the recording answers, the person decides ----------------------


def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """No model and no key: any live call would fail loudly."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")


def record_a_conversation(shell, openai_env, monkeypatch) -> set[str]:
    """Recorded with a person deciding: run step 1, skip step 2, accept the answer."""
    before = set(shell.user_ns)
    openai_env.enqueue(code("a = 1"), code("b = 2"), "a is 1. TERMINATE")
    answers(monkeypatch, "", "skip", "")
    shell.run_cell_magic("agent", "--mode always --no-context", "make a")
    assert shell.user_ns["a"] == 1 and "b" not in shell.user_ns
    for name in set(shell.user_ns) - before:  # as a fresh kernel would start
        shell.user_ns.pop(name, None)
    return before


def test_replay_replies_lets_the_person_decide_as_recorded(
    shell, openai_env, monkeypatch, tmp_path, capsys
) -> None:
    record_a_conversation(shell, openai_env, monkeypatch)
    recording = (tmp_path / "agent-recording.jsonl").read_text()
    offline(monkeypatch)
    prompts = answers(monkeypatch, "", "skip", "")
    capsys.readouterr()
    shell.run_cell_magic("agent", "--mode always --no-context --new --replay-replies", "make a")
    assert len(prompts) == 3  # the person was asked at every step
    assert shell.user_ns["a"] == 1 and "b" not in shell.user_ns
    assert "a is 1." in capsys.readouterr().out
    assert len(openai_env.chat_requests) == 3  # nothing more was asked of a model
    assert (tmp_path / "agent-recording.jsonl").read_text() == recording  # nor written


def test_replay_replies_says_once_where_the_recording_cannot_follow(
    shell, openai_env, monkeypatch, capsys
) -> None:
    record_a_conversation(shell, openai_env, monkeypatch)
    offline(monkeypatch)
    monkeypatch.setenv("AGENT_MAGIC_REPLAY", "replies")
    answers(monkeypatch, "", "")  # runs step 2, which the recording skipped
    capsys.readouterr()
    shell.run_cell("%%agent --mode always --no-context --new\nmake a")
    assert shell.user_ns["b"] == 2  # the person's decision was taken
    captured = capsys.readouterr()
    shown = captured.out + captured.err
    [line] = [line for line in shown.splitlines() if "cannot follow" in line]
    assert shown.count("cannot follow") == 1
    assert "at step 2 it has 'skipped'" in line
    assert "set OPENAI_API_KEY or run %agent key" in line
    assert "unset AGENT_MAGIC_REPLAY" in line  # what turned the replay on here
    assert line.startswith("[replay: ") and "UsageError" not in shown  # not an error


def test_replay_replies_in_the_plan() -> None:
    from types import SimpleNamespace

    from IPython.core.magic_arguments import parse_argstring

    from agent_magic.magic import AgentMagics
    from agent_magic.plan import PlanError, plan_cell

    traits = AgentMagics.class_traits(config=True)
    settings = SimpleNamespace(**{name: trait.default() for name, trait in traits.items()})

    def plan(line: str, env: dict[str, str], frontend: str = "terminal") -> Any:
        args = parse_argstring(AgentMagics.agent, line)
        return plan_cell(args, settings, cell="t", frontend=frontend, env=env)

    made = plan("--replay-replies", {})
    assert made.replay_replies and not made.replay and made.interactive
    assert made.loop_mode == "always"
    assert plan("", {"AGENT_MAGIC_REPLAY": "replies"}).replay_replies
    assert not plan("--replay-replies", {"AGENT_MAGIC_REPLAY": "0"}).replay_replies
    full = plan("--replay-replies", {"AGENT_MAGIC_REPLAY": "1"})
    assert full.replay and not full.replay_replies
    headless = plan("--replay-replies", {}, frontend="headless")  # nobody to decide
    assert headless.replay and not headless.replay_replies
    with pytest.raises(PlanError, match="not both"):
        plan("--replay --replay-replies", {})


def test_replay_replies_asks_in_the_widget(shell, openai_env, monkeypatch) -> None:
    from agent_magic.ui import widget

    record_a_conversation(shell, openai_env, monkeypatch)
    offline(monkeypatch)
    original = widget.NotebookUI.__init__
    monkeypatch.setattr(
        widget.NotebookUI,
        "__init__",
        lambda self, *a, **k: original(self, *a, **{**k, "display": _Collected()}),
    )
    magics = magics_of(shell)
    magics.ui = "widget"
    clicks = ["run", "skip", "run"]  # as recorded
    asked: list[str] = []

    async def person() -> None:
        while clicks:
            await asyncio.sleep(0.01)
            review = getattr(magics.last_ui, "widget", None)
            if review is not None and review.decision is None:
                asked.append(review.run.description)
                getattr(review, clicks.pop(0)).click()

    async def cell() -> None:
        clicking = asyncio.ensure_future(person())
        try:
            await magics.agent_async("--mode always --no-context --new --replay-replies", "make a")
        finally:
            clicking.cancel()

    try:
        asyncio.run(cell())
    finally:
        magics.ui = "auto"
    assert asked == ["Run", "Run", "Finish"]  # a review at every step, the answer last
    assert shell.user_ns["a"] == 1 and "b" not in shell.user_ns


class _Collected:
    """Stands in for the notebook's outputs (the widget edge's Display)."""

    def __init__(self) -> None:
        self.bundles: list[dict[str, Any]] = []

    def show(self, bundle: dict[str, Any]) -> int:
        self.bundles.append(bundle)
        return len(self.bundles) - 1

    def update(self, handle: int, bundle: dict[str, Any]) -> None:
        self.bundles[handle] = bundle
