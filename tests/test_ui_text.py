"""The sign-off marker kept out of what a person reads, the terminal review's end of
input, and turning code that ran into notebook cells."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from agent_magic.codeblocks import CodeBlock, is_termination
from agent_magic.conversation import Decision, Proposal
from agent_magic.testing import FakeOpenAIServer
from agent_magic.ui.cells import insert_cells, joined, sources
from agent_magic.ui.signoff import MarkerFilter, without_marker
from agent_magic.ui.terminal import TerminalUI

# --- the sign-off marker -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "shown"),
    [
        ("x is 42. TERMINATE", "x is 42."),
        ("x is 42.\n\nTERMINATE", "x is 42."),
        ("x is 42. **TERMINATE**", "x is 42."),
        ("x is 42. `TERMINATE`.", "x is 42."),
        ("Use `a` TERMINATE", "Use `a`"),
        ("TERMINATE", ""),
        ("Say TERMINATE to stop, then more.", "Say TERMINATE to stop, then more."),
        ("no marker here", "no marker here"),
    ],
)
def test_without_marker(reply: str, shown: str) -> None:
    assert without_marker(reply, "TERMINATE") == shown


def test_an_empty_marker_changes_nothing() -> None:
    assert without_marker("a TERMINATE", "") == "a TERMINATE"
    assert MarkerFilter("").feed("TERMINATE") == "TERMINATE"


def stream(text: str, cuts: list[int], marker: str = "TERMINATE") -> tuple[list[str], str]:
    marks = sorted({min(max(c, 0), len(text)) for c in cuts})
    pieces = [text[a:b] for a, b in zip([0, *marks], [*marks, len(text)], strict=True)]
    filtered = MarkerFilter(marker)
    shown = [filtered.feed(piece) for piece in pieces]
    return shown, "".join(shown) + filtered.end()


@given(
    st.text(alphabet="abTERMINATE *`.\n", max_size=40),
    st.sampled_from(["", " TERMINATE", ". **TERMINATE**", "\nTERMINATE.", " TERMIN"]),
    st.lists(st.integers(0, 60), max_size=8),
)
@example("\nE", " TERMINATE", [])  # once held with the marker as a possible END
@example("TERMIN\nEND", "", [])
def test_streaming_shows_what_the_whole_reply_shows(body: str, end: str, cuts: list[int]) -> None:
    text = body + end
    shown, total = stream(text, cuts)
    assert total.rstrip() == without_marker(text, "TERMINATE").rstrip()
    if is_termination(text):  # not a letter of the sign-off is ever shown, even in part
        assert "".join(shown).rstrip() == without_marker(text, "TERMINATE").rstrip()


# --- the terminal review -------------------------------------------------------------------


def eof(prompt: str = "") -> str:
    raise EOFError


def test_end_of_input_stops_in_one_line() -> None:
    out = io.StringIO()
    ui = TerminalUI(ask=eof, out=out)
    from agent_magic.conversation import Decided, Finished, ReviewRequested

    proposal = Proposal(1, "x", (CodeBlock("python", "x = 1"),))
    decision = ui(ReviewRequested(proposal))
    assert decision == Decision("stop")
    ui(Decided(proposal, decision, automatic=False))
    ui(Finished("stopped", "Stopped by the user."))
    assert out.getvalue() == (
        "\n[end of input: stopping the conversation]\n[Stopped by the user.]\n"
    )


def test_the_terminal_streams_the_answer_without_the_marker() -> None:
    from agent_magic.conversation import ChatReply, ReplyDelta, ReplyReceived

    out = io.StringIO()
    ui = TerminalUI(ask=lambda prompt: "", out=out)
    for piece in ["x is ", "42. TER", "MINA", "TE"]:
        ui(ReplyDelta(1, piece))
    ui(ReplyReceived(1, ChatReply("x is 42. TERMINATE"), (), True))
    assert "TER" not in out.getvalue() and "x is 42." in out.getvalue()
    unstreamed = io.StringIO()
    TerminalUI(out=unstreamed)(ReplyReceived(2, ChatReply("Done. TERMINATE"), (), True))
    assert unstreamed.getvalue() == "\n[assistant, step 2]\nDone.\n"


SCRIPT = """
import sys
from IPython.core.interactiveshell import InteractiveShell
ip = InteractiveShell.instance()
ip.run_line_magic("load_ext", "agent_magic")
magics = ip.magics_manager.registry["AgentMagics"]
magics.max_retries = 0
magics.ui = "terminal"
magics.recording = sys.argv[1]
ip.run_cell("%%agent --mode always\\nSet x.\\n")
print("x" in ip.user_ns, "after the cell")
"""


def test_closed_stdin_stops_the_conversation_and_records_the_stop(tmp_path: Path) -> None:
    """A terminal IPython whose stdin is closed (a pipe, Ctrl-D): no traceback."""
    recording = tmp_path / "agent-recording.jsonl"
    with FakeOpenAIServer() as model:
        model.enqueue("Next:\n```python\nx = 1\n```")
        env = {**os.environ, "OPENAI_BASE_URL": model.base_url, "OPENAI_API_KEY": "sk-test"}
        env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).parents[1]), *sys.path])
        done = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(SCRIPT), str(recording)],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
        )
    shown = done.stdout + done.stderr
    assert done.returncode == 0, shown
    assert "Traceback" not in shown and "EOFError" not in shown, shown
    assert shown.count("[end of input: stopping the conversation]") == 1, shown
    assert "False after the cell" in shown  # the proposed code never ran
    events = [json.loads(line) for line in recording.read_text().splitlines()]
    ends = [(e["event"], e.get("action") or e.get("reason")) for e in events[-2:]]
    assert ends == [("decision", "stop"), ("finished", "stopped")], events[-2:]


# --- code into cells -----------------------------------------------------------------------


def test_sources_turn_blocks_into_cell_text() -> None:
    blocks = [
        CodeBlock("python", "\nx = 1\n"),
        CodeBlock("sh", "ls -la"),
        CodeBlock("sh", "cd /tmp\nls"),
    ]
    assert sources(blocks) == ["x = 1", "!ls -la", "get_ipython().system('cd /tmp\\nls')"]


def test_insert_cells_sets_the_next_input_once() -> None:
    class Shell:
        def __init__(self) -> None:
            self.calls: list[tuple[str, bool]] = []

        def set_next_input(self, text: str, replace: bool = False) -> None:
            self.calls.append((text, replace))

    shell = Shell()
    assert insert_cells(shell, ["a = 1", "  ", "b = 2\n"]) == 1
    assert shell.calls == [("# step 1\na = 1\n\n# step 2\nb = 2", False)]
    assert insert_cells(shell, []) == 0 and len(shell.calls) == 1
    assert joined(["x"]) == "# step 1\nx"
