"""The step's tee under threads printing at once: no line (one write each) lost, doubled
or torn, each thread's lines in the order it printed them, on the screen and in the
digest alike; and an interrupt while held text is being hidden loses none of it.

The step's own thread holds its writes without a lock (see ``Tee.write``); these tests
race it against threads the step started, which print through the same tee.
"""

from __future__ import annotations

import io
import sys
import threading

import pytest

from agent_magic.kernel.capture import StepCapture
from agent_magic.secrets import Redactor

LINES = 3000
THREADS = 3


def _print_lines(tag: str, start: threading.Barrier) -> None:
    start.wait(30)
    for i in range(LINES):
        sys.stdout.write(f"{tag} {i:05d}\n")  # one write a line (print makes two)
    sys.stdout.flush()  # a flush from a thread while others print


def _lines_of(text: str) -> dict[str, list[int]]:
    seen: dict[str, list[int]] = {}
    for line in text.splitlines():
        tag, number = line.split(" ")
        seen.setdefault(tag, []).append(int(number))
    return seen


@pytest.mark.parametrize("shown", [10_000_000, 1000], ids=["shown", "past the display limit"])
def test_threads_printing_at_once_lose_no_line(shown: int) -> None:
    screen = io.StringIO()
    saved = sys.stdout
    sys.stdout = screen
    try:
        capture = StepCapture(
            None,
            python=False,
            max_output_chars=10_000_000,
            max_display_chars=shown,
            redactor=Redactor.build(env={"SERVICE_TOKEN": "tok-0123456789abcdef"}),
        )
        with capture:
            start = threading.Barrier(THREADS + 1)
            workers = [
                threading.Thread(target=_print_lines, args=(f"t{n}", start)) for n in range(THREADS)
            ]
            for worker in workers:
                worker.start()
            _print_lines("own", start)
            for worker in workers:
                worker.join(60)
    finally:
        sys.stdout = saved
    want = {tag: list(range(LINES)) for tag in ["own", *(f"t{n}" for n in range(THREADS))]}
    assert _lines_of(capture.stdout) == want
    if shown > 1000:
        assert _lines_of(screen.getvalue()) == want
    else:  # the first lines, whole, then the note
        head, note = screen.getvalue().rsplit("\n[agent_magic:", 1)
        assert "further output hidden" in note
        assert len(head) <= shown


def test_a_secret_printed_by_racing_threads_is_hidden_everywhere() -> None:
    screen = io.StringIO()
    saved = sys.stdout
    sys.stdout = screen
    secret = "tok-0123456789abcdef"

    def leak(start: threading.Barrier) -> None:
        start.wait(30)
        for i in range(500):
            sys.stdout.write(f"token {secret} {i}\n")

    try:
        capture = StepCapture(
            None,
            python=False,
            max_output_chars=10_000_000,
            redactor=Redactor.build(env={"SERVICE_TOKEN": secret}),
        )
        with capture:
            start = threading.Barrier(2)
            worker = threading.Thread(target=leak, args=(start,))
            worker.start()
            leak(start)
            worker.join(60)
    finally:
        sys.stdout = saved
    assert secret not in screen.getvalue()
    assert secret not in capture.stdout
    assert capture.stdout.count("token [hidden: ") == 1000
    assert capture.hidden == 1000


def test_an_interrupt_while_a_piece_is_hidden_loses_nothing() -> None:
    screen = io.StringIO()
    saved = sys.stdout
    sys.stdout = screen
    capture = StepCapture(
        None,
        python=False,
        max_output_chars=10_000_000,
        redactor=Redactor.build(env={"SERVICE_TOKEN": "tok-0123456789abcdef"}),
    )
    redact = capture.redact
    calls = 0

    def interrupted_once(text: str, *, count: bool = True) -> str:
        nonlocal calls
        calls += 1
        if calls == 3:  # as a Ctrl-C or the time limit lands inside the scan
            raise KeyboardInterrupt
        return redact(text, count=count)

    capture.redact = interrupted_once  # type: ignore[method-assign]
    try:
        with capture, pytest.raises(KeyboardInterrupt):
            for i in range(10):
                print(f"line {i}")
    finally:
        sys.stdout = saved
    want = "".join(f"line {i}\n" for i in range(3))
    assert capture.stdout == want
    assert screen.getvalue() == want
