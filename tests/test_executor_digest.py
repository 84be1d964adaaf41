"""The bounded digest of what a step prints: head and tail kept, in bounded memory."""

from __future__ import annotations

import random

import pytest

from agent_magic.kernel import tee
from agent_magic.kernel.tee import HeadTail


def check(digest: str, text: str, limit: int) -> None:
    """``digest`` is all of ``text``, or its first half-limit characters, the number cut,
    and (at least) its last half-limit characters."""
    if len(text) <= limit:
        assert digest == text
        return
    head, rest = digest.split("\n«", 1)
    cut, tail = rest.split(" characters cut here»\n", 1)
    assert head == text[: limit // 2]
    assert text.endswith(tail) and limit // 2 <= len(tail) <= limit - len(head)
    assert int(cut) == len(text) - len(head) - len(tail)


@pytest.mark.parametrize("limit", [10, 101, 8000])
def test_many_small_writes_keep_the_head_and_the_tail(limit: int) -> None:
    rng = random.Random(limit)
    for _ in range(50):
        sink, written = HeadTail(limit), []
        for _ in range(rng.randint(0, 3000)):
            text = f"{rng.randint(0, 10**6)};" * rng.randint(0, 40)
            sink.write(text)
            written.append(text)
        whole = "".join(written)
        assert sink.total == len(whole)
        check(sink.text(), whole, limit)


def test_memory_stays_bounded_by_a_chunk(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tee, "_CHUNK", 1000)
    sink = HeadTail(100)
    line = "x" * 99 + "\n"
    for _ in range(100_000):
        sink.write(line)
        assert sum(map(len, sink._pending)) < 1000 + len(line)
        assert sink.head_size + sink.tail_size <= 100
    assert sink.total == 10_000_000
    check(sink.text(), line * 100_000, 100)


def test_the_outcome_carries_the_error_as_data_and_the_report_builds_the_text(shell) -> None:
    from agent_magic.codeblocks import CodeBlock
    from agent_magic.conversation.rules import step_report
    from agent_magic.kernel.executor import IPythonExecutor

    outcome = IPythonExecutor(shell).run(CodeBlock("python", "print('before')\n1 / 0"))
    assert not outcome.ok and outcome.digest == "stdout:\nbefore"
    assert outcome.error is not None
    assert (outcome.error.type, outcome.error.message) == ("ZeroDivisionError", "division by zero")
    assert outcome.error.frames and outcome.error.frames[-1][1] == 2
    assert "ZeroDivisionError" in outcome.error.text and "Traceback" not in outcome.digest
    told = step_report(outcome)
    assert told.startswith("It failed.\nstdout:\nbefore\nerror:\n")
    assert "ZeroDivisionError: division by zero" in told
