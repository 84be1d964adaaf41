"""Each thing once in the review: the answer shown once (rendered, in the reply), a place
line where code was lifted out of the prose, no sign-off word or closing END as prose,
and a heading whose grammar fits one block or several. A real InteractiveShell runs the
cells against the local server; the widget's buttons are clicked with ``.click()``.
"""

from __future__ import annotations

from typing import Any

import pytest
from test_run_all import notebook, run_cell  # noqa: F401 (notebook: a fixture)
from test_widget import Outputs

from agent_magic.codeblocks import CodeBlock, prose_with_places
from agent_magic.conversation import Proposal
from agent_magic.testing import FakeOpenAIServer
from agent_magic.ui.review import ReviewWidget
from agent_magic.ui.signoff import MarkerFilter, without_marker
from agent_magic.ui.terminal import TerminalUI


@pytest.fixture
def magics(shell) -> Any:
    magics = shell.magics_manager.registry["AgentMagics"]
    yield magics
    magics.ui = "auto"


HOW = (
    "Here's how you can do it:\n```python\nmean = sum([1, 2, 3]) / 3\nprint(mean)\n```\n"
    "This prints the mean."
)
ANSWER = "The mean is **2.0**, kept in `mean`.\n\nEND\n\nTERMINATE"


def test_the_notebook_shows_each_thing_once(
    shell,
    magics,
    notebook: Outputs,  # noqa: F811
    openai_env: FakeOpenAIServer,
) -> None:
    openai_env.enqueue(HOW, ANSWER)
    said = run_cell(
        magics,
        "--mode always --no-context",
        "mean of 1, 2, 3",
        lambda review: review.run.click(),
        lambda review: review.run.click(),
    )
    shown = notebook.markdown()
    # Where the code went, in place of the block the prose introduced.
    assert "Here's how you can do it:\n\n*(code: step 1 below)*\n\nThis prints the mean." in shown
    assert shown.count("mean = sum([1, 2, 3]) / 3") == 1  # the record's copy only
    # The answer: once, as Markdown (rendered by the notebook), in the reply.
    assert shown.count("The mean is **2.0**") == 1
    assert "The mean is" not in said[1]  # the finish review points at it
    assert "the assistant&#x27;s answer is above" in said[1]
    assert "TERMINATE" not in shown and "\nEND" not in shown
    assert "review the proposed code; edit it before Run" in said[0]


def test_the_heading_fits_one_block_or_several() -> None:
    one = Proposal(2, "x", (CodeBlock("python", "a = 1"),))
    two = Proposal(2, "x", (CodeBlock("python", "a = 1"), CodeBlock("sh", "ls")))
    assert "Step 2: review the proposed code; edit it before Run" in ReviewWidget(one).status.value
    assert (
        "Step 2: review the 2 proposed blocks; edit them before Run"
        in ReviewWidget(two).status.value
    )


def test_places_for_several_blocks_and_quotes_left_out() -> None:
    reply = (
        "First:\n```python\na = 1\n```\nThe output will be:\n```\n1\n```\n"
        "Then:\n```sh\nls\n```\nDone."
    )
    blocks = (CodeBlock("python", "a = 1"), CodeBlock("sh", "ls"))
    prose = prose_with_places(reply, blocks, lambda i: f"[block {i + 1}]")
    assert prose == "First:\n\n[block 1]\n\nThe output will be:\nThen:\n\n[block 2]\n\nDone."


@pytest.mark.parametrize(
    ("reply", "shown"),
    [
        ("Done.\n\nTERMINATE", "Done."),
        ("Done. **TERMINATE**", "Done."),
        ("Done.\nTERMINATE\nEND", "Done."),
        ("Done.\n\nEND\n\nTERMINATE", "Done."),
        ("Done.\n\nEND", "Done."),
        ("SEND it\nAPPEND", "SEND it\nAPPEND"),  # only a line of its own is the word
        ("We reached the END of the file.", "We reached the END of the file."),
    ],
)
def test_the_sign_off_and_a_closing_end_are_not_prose(reply: str, shown: str) -> None:
    assert without_marker(reply, "TERMINATE") == shown
    streamed = MarkerFilter("TERMINATE")
    text = "".join(streamed.feed(reply[i : i + 3]) for i in range(0, len(reply), 3))
    assert (text + streamed.end()).rstrip() == shown


def test_the_terminal_shows_no_closing_end(capsys) -> None:
    from agent_magic.conversation import ChatReply, ReplyReceived

    ui = TerminalUI()
    ui(ReplyReceived(3, ChatReply("All done.\nEND\nTERMINATE"), (), True))
    out = capsys.readouterr().out
    assert "All done." in out and "END" not in out and "TERMINATE" not in out
