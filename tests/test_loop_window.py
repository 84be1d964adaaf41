"""The loop and the context window: every request fits, a server's context-length error
trims harder and asks once more, and when even that fails one line names the way on.

End to end through a real InteractiveShell and the local server, plus the loop alone with
the scripted client for long runs.
"""

from __future__ import annotations

import pytest
from conftest import code
from IPython.core.error import UsageError

from agent_magic.codeblocks import CodeBlock
from agent_magic.conversation import (
    ChatReply,
    ContextWindowExceeded,
    Conversation,
    RequestSent,
    StepOutcome,
    drive,
)
from agent_magic.testing import FakeOpenAIServer, ScriptedChat
from agent_magic.window import estimate_tokens


def noisy_steps(count: int) -> list[str]:
    """Steps that each print about 2,000 characters: the conversation outgrows 1,500 tokens."""
    return [code(f"v{i} = {i}\nprint(('line {i} ' * 8 + '\\n') * 25)") for i in range(count)]


def test_a_conversation_outgrowing_a_small_window_completes(shell, openai_env, capsys) -> None:
    magics = shell.magics_manager.registry["AgentMagics"]
    magics.context_window = 1500
    try:
        openai_env.enqueue(*noisy_steps(10), "All ten are set. TERMINATE")
        shell.run_cell_magic("agent", "--mode never --max-turns 12", "set v0..v9, printing")
    finally:
        magics.context_window = 0
    assert [shell.user_ns[f"v{i}"] for i in range(10)] == list(range(10))
    requests = openai_env.chat_requests
    assert len(requests) == 11
    sizes = [estimate_tokens(r.messages) for r in requests]
    assert max(sizes) <= 1500, sizes
    # The task and the latest step are always there.
    assert "set v0..v9" in requests[-1].messages[1]["content"]
    assert "line 9" in requests[-1].messages[-1]["content"]
    shown = capsys.readouterr().out
    # said once (the 1,600-character outputs do not fit beside the task: shortened too)
    assert shown.count("1500-token context window") == 1
    # The recording keeps what was sent and the window it was fitted to.
    sent = [r for r in magics.recorder.transcript() if r.event == "request"]
    assert {r.window for r in sent} == {1500}


def test_nothing_is_trimmed_when_it_fits(shell, openai_env) -> None:
    """With a known window that the conversation fits, the messages go out unchanged."""
    openai_env.enqueue(code("small = 1"), "ok TERMINATE")
    shell.run_cell_magic("agent", "--mode never", "small")
    magics = shell.magics_manager.registry["AgentMagics"]
    history = magics.history.messages
    second = openai_env.chat_requests[1].messages
    assert [m["content"] for m in second] == [m["content"] for m in history[: len(second)]]
    sent = [r for r in magics.recorder.transcript() if r.event == "request"]
    assert [r.note for r in sent] == ["", ""]
    assert sent[0].window == 128_000  # gpt-4o-mini's known size; no probe was sent
    assert all(r.path == "/v1/chat/completions" for r in openai_env.requests)


@pytest.fixture
def tight_server(shell):
    """A server that refuses requests over 1,200 tokens (its rough count), naming its window
    as OpenAI does; the cell's base URL points at it."""
    with FakeOpenAIServer(context_window=1200, context_style="openai") as server:
        magics = shell.magics_manager.registry["AgentMagics"]
        magics.base_url = server.base_url
        yield server


def test_a_context_length_error_trims_and_asks_once_more(shell, tight_server) -> None:
    tight_server.enqueue(*noisy_steps(6), "Done. TERMINATE")
    shell.run_cell_magic("agent", "--mode never --max-turns 8", "set v0..v5")
    assert [shell.user_ns[f"v{i}"] for i in range(6)] == list(range(6))
    requests = tight_server.chat_requests
    # One request was refused, asked again trimmed, and from then on the window is known.
    rough = [sum(len(str(m.get("content") or "")) for m in r.messages) / 4 for r in requests]
    refused = [size for size in rough if size > 1200]
    assert len(refused) == 1 and len(requests) == 7 + 1


def test_when_the_trimmed_request_still_fails_one_line_names_the_way_on(shell) -> None:
    # A window the system prompt alone does not fit: no trimming can help.
    with FakeOpenAIServer(context_window=40, context_style="openai") as server:
        magics = shell.magics_manager.registry["AgentMagics"]
        magics.base_url = server.base_url
        with pytest.raises(UsageError) as raised:
            shell.run_cell_magic("agent", "--mode never", "anything")
        assert len(server.chat_requests) == 2  # asked, trimmed and asked again, then stopped
    message = str(raised.value)
    assert "\n" not in message
    assert "--new" in message and "%agent reset" in message


def test_an_error_without_a_size_trims_from_what_was_sent(shell) -> None:
    """Ollama's wording names no window: the retry fits 0.8 of what was sent."""
    with FakeOpenAIServer(context_window=1000, context_style="ollama") as server:
        magics = shell.magics_manager.registry["AgentMagics"]
        magics.base_url = server.base_url
        server.enqueue(*noisy_steps(4), "Done. TERMINATE")
        shell.run_cell_magic("agent", "--mode never --max-turns 6", "set v0..v3")
    assert [shell.user_ns[f"v{i}"] for i in range(4)] == list(range(4))


# --- the loop alone --------------------------------------------------------------------


class Printer:
    """Each step prints a page of text, as a chatty step would."""

    def __init__(self) -> None:
        self.ran = 0

    def run(self, block: CodeBlock, *, step: int | None = None) -> StepOutcome:
        self.ran += 1
        return StepOutcome(True, "stdout:\n" + f"step {step} output line\n" * 60)


def test_a_scripted_context_error_trims_and_retries_once() -> None:
    chat = ScriptedChat(
        code("a = 1"),
        ContextWindowExceeded("too long", window=900),
        code("b = 2"),
        "done TERMINATE",
    )
    sent: list[RequestSent] = []
    conv = Conversation(chat, Printer(), mode="never")
    finished = drive(
        conv.run("t"), lambda e: sent.append(e) if isinstance(e, RequestSent) else None
    )
    assert finished.reason == "terminated"
    retried = [e for e in sent if e.step == 2]
    assert len(retried) == 2 and retried[1].window == 720  # 0.8 of the window it named
    assert estimate_tokens(list(retried[1].messages)) <= 720


def test_two_context_errors_end_in_one_line() -> None:
    chat = ScriptedChat(
        code("a = 1"), ContextWindowExceeded("too long", 900), ContextWindowExceeded("again")
    )
    conv = Conversation(chat, Printer(), mode="never")
    finished = drive(conv.run("t"), lambda e: None)
    assert finished.reason == "error"
    assert "--new" in finished.message and "%agent reset" in finished.message
    assert "\n" not in finished.message


def test_200_steps_in_one_cell_keep_every_request_under_the_window() -> None:
    window = 2000
    steps = [code(f"x{i} = {i}") for i in range(200)]
    chat = ScriptedChat(*steps, "done TERMINATE", chunks=1)
    conv = Conversation(chat, Printer(), mode="never", max_turns=250, context_window=window)
    finished = drive(conv.run("a long task"), lambda e: None)
    assert finished.reason == "terminated"
    assert len(chat.calls) == 201
    sizes = [estimate_tokens(call.messages) for call in chat.calls]
    assert max(sizes) <= window
    assert len(conv.messages) > 400  # the history keeps everything; only requests are fitted
    # Flat once full: the last requests are no bigger than the window allows.
    assert min(sizes[-50:]) > window // 4


def test_the_window_comes_from_the_client_when_it_knows_one() -> None:
    class Sized(ScriptedChat):
        def context_window(self, *, ask_server: bool = True) -> int | None:
            return 1200

    chat = Sized(*(code(f"x{i} = {i}") for i in range(12)), "done TERMINATE")
    conv = Conversation(chat, Printer(), mode="never", max_turns=20)
    drive(conv.run("t"), lambda e: None)
    assert max(estimate_tokens(call.messages) for call in chat.calls) <= 1200


def test_a_reply_record_keeps_cut_off() -> None:
    from agent_magic.transcript.records import reply_from_record, reply_record

    reply = ChatReply("half", cut_off="length", finish_reason="length")
    assert reply_from_record(reply_record(reply), "replay").cut_off == "length"
    assert reply_from_record({"content": "old"}, "replay").cut_off is None  # older files
