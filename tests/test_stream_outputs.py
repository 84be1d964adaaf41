"""A step's printed text as the recording keeps it (``StepCapture.outputs``): bounded
however it was printed, the start and the end kept, in order, with the cut marked."""

from __future__ import annotations

import io
import sys

from agent_magic.kernel.capture import StepCapture
from agent_magic.kernel.streams import HEAD_CHARS, TAIL_CHARS


def captured(write) -> StepCapture:
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = io.StringIO(), io.StringIO()
    try:
        with StepCapture(None, python=False, max_display_chars=1000) as capture:
            write()
    finally:
        sys.stdout, sys.stderr = saved
    return capture


def kept(capture: StepCapture) -> int:
    return sum(len(o["text"]) for o in capture.outputs if o["output_type"] == "stream")


def test_stdout_and_stderr_alternating_keep_bounded_outputs() -> None:
    def write() -> None:
        for i in range(200_000):  # a progress bar on stderr beside prints: 400,000 switches
            sys.stdout.write(f"row {i}\n")
            sys.stderr.write(f"\r{i}")

    capture = captured(write)
    assert kept(capture) <= HEAD_CHARS + TAIL_CHARS + 200
    assert len(capture.outputs) < (HEAD_CHARS + TAIL_CHARS) // 5
    texts = [o["text"] for o in capture.outputs]
    assert texts[0] == "row 0\n" and texts[1] == "\r0"  # the start, in order
    assert texts[-2:] == ["row 199999\n", "\r199999"]  # and the end
    (mark,) = [t for t in texts if "characters of output cut here" in t]
    assert texts.index(mark) < len(texts) - 2


def test_one_long_print_keeps_its_end() -> None:
    capture = captured(lambda: [print(f"line {i}") for i in range(100_000)])
    texts = [o["text"] for o in capture.outputs]
    assert texts[0].startswith("line 0\nline 1\n")
    assert texts[-1].endswith("line 99999\n")
    assert any("characters of output cut here" in t for t in texts)
    assert kept(capture) <= HEAD_CHARS + TAIL_CHARS + 200


def test_a_short_step_keeps_everything_as_it_came() -> None:
    def write() -> None:
        print("a")
        print("b", file=sys.stderr)
        print("c")

    texts = [(o["name"], o["text"]) for o in captured(write).outputs]
    assert texts == [("stdout", "a\n"), ("stderr", "b\n"), ("stdout", "c\n")]
