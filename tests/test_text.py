"""agent_magic.text: the shared cutter, fence writer, ANSI stripper and request normaliser."""

from __future__ import annotations

import os
import re
import time

import pytest

from agent_magic.codeblocks import extract_code_blocks
from agent_magic.text import escape_surrogates, fence, head_tail, normalize_volatile, strip_ansi

# -- strip_ansi --------------------------------------------------------------------------


def test_strip_ansi_removes_colours_and_links() -> None:
    coloured = "\x1b[0;31mNameError\x1b[0m: name \x1b[1;32m'x'\x1b[39;49m is not defined"
    assert strip_ansi(coloured) == "NameError: name 'x' is not defined"
    link = "\x1b]8;;https://example.com\x1b\\here\x1b]8;;\x1b\\ and \x1b]0;title\x07done"
    assert strip_ansi(link) == "here and done"
    plain = "no escapes at all"
    assert strip_ansi(plain) is plain
    assert strip_ansi("\x1b[") == "\x1b["  # an unfinished sequence is left, not eaten


# -- head_tail ---------------------------------------------------------------------------


def test_head_tail_keeps_both_ends_and_says_how_much_was_cut() -> None:
    text = "".join(f"line {i}\n" for i in range(1000))
    cut = head_tail(text, 500)
    assert cut.startswith("line 0\nline 1\n") and cut.endswith("line 999\n")
    removed = int(re.search(r"«(\d+) characters cut here»", cut)[1])
    head, _, tail = cut.partition("\n«")
    tail = tail.split("»\n", 1)[1]
    assert len(head) + len(tail) + removed == len(text)
    assert len(cut) <= 500
    assert head_tail("short", 500) == "short"


def test_head_tail_small_limit_keeps_twenty_characters() -> None:
    cut = head_tail("x" * 1000, 10)
    assert cut.count("x") == 20 and "«980 characters cut here»" in cut


# -- fence -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "code",
    [
        "x = 1",
        "s = '''\n```\n'''",
        "print('````')\n```python\nnested\n```",
        "",
        "~~~\nx\n~~~",
        "trailing newline\n",
    ],
)
def test_fence_is_longer_than_any_backtick_run_and_round_trips(code: str) -> None:
    block = fence(code, "python")
    first = block.split("\n", 1)[0]
    ticks = len(first) - len("python")
    assert first == "`" * ticks + "python"
    assert ticks >= 3 and all(len(run) < ticks for run in re.findall(r"`+", code))
    if code.strip():
        found = extract_code_blocks("Here:\n" + block + "\nDone.")
        assert [b.code for b in found] == [code.strip("\n")]


def test_fence_language_is_one_line() -> None:
    assert fence("x", "py`\nthon").split("\n", 1)[0] == "```python"
    assert fence("x") == "```\nx\n```"


# -- escape_surrogates -------------------------------------------------------------------


def test_escape_surrogates_makes_text_encodable() -> None:
    name = os.fsdecode(b"caf\xe9.csv")  # a Latin-1 file name on a UTF-8 system
    assert "\udce9" in name
    escaped = escape_surrogates(f"found {name}")
    assert escaped == "found caf\\udce9.csv"
    escaped.encode("utf-8")
    clean = "déjà vu ✓ 😀"
    assert escape_surrogates(clean) is clean
    assert escape_surrogates("\ud83d\ude00") == "\\ud83d\\ude00"  # a split pair: both shown


# -- normalize_volatile ------------------------------------------------------------------

# Today's masks, as they were written in transcript.py: the reference for equal output.
_REFERENCE = (
    (re.compile(r"Cell In\[\d+\]"), "Cell In[_]"),
    (re.compile(r"\bat 0x[0-9a-fA-F]{4,}"), "at 0x_"),
    (re.compile(r"/tmp/ipykernel_\d+/\d+\.py"), "<ipykernel cell>"),
    (re.compile(r"""[^\s"'(<]*[/\\](?:site|dist)-packages[/\\]"""), "<packages>/"),
    (re.compile(r"""[^\s"'(<]*[/\\]lib[/\\]python3\.\d+[/\\]"""), "<python>/"),
)


def reference(text: str) -> str:
    for pattern, replacement in _REFERENCE:
        text = pattern.sub(replacement, text)
    return text


TRACEBACK = (
    "Cell In[12], line 3\n"
    "<Foo object at 0x7f3a2b1c9d40>\n"
    "File /tmp/ipykernel_4242/1234567.py:3\n"
    'File "/home/u/.venv/lib/python3.11/site-packages/pandas/core/frame.py", line 9\n'
    "  /usr/lib/python3.12/json/__init__.py:12\n"
    "C:\\Python311\\Lib\\site-packages\\numpy\\core.py\n"
    "(/opt/conda/lib/python3.10/dist-packages/x.py) cat 0x1234 at 0xzz\n"
    "/a/site-packages/b/site-packages/c.py '/lib/python3.9/'\n"
)


def test_normalize_masks_the_volatile_parts() -> None:
    out = normalize_volatile(TRACEBACK)
    assert out.splitlines() == [
        "Cell In[_], line 3",
        "<Foo object at 0x_>",
        "File <ipykernel cell>:3",
        'File "<packages>/pandas/core/frame.py", line 9',
        "  <python>/json/__init__.py:12",
        "<packages>/numpy\\core.py",
        "(<packages>/x.py) cat 0x1234 at 0xzz",
        "<packages>/c.py '<python>/'",
    ]
    assert out == reference(TRACEBACK)


def test_normalize_equals_the_old_regexes_on_tricky_words() -> None:
    pieces = ["/", "\\", "site", "dist", "-packages", "lib", "python3.", "11", " ", '"', "(", "<"]
    import random

    rng = random.Random(3)
    for _ in range(3000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 25)))
        assert normalize_volatile(text) == reference(text), text


@pytest.mark.parametrize(
    "unit", ["a/b", "x", "/site-packages", "/lib/python3.11", "at 0x", "Cell In[1", "\\lib\\"]
)
def test_normalize_is_linear_on_one_unbroken_megabyte(unit: str) -> None:
    text = unit * (1_000_000 // len(unit))
    started = time.perf_counter()
    normalize_volatile(text)
    # Generous for a shared machine: ~5-90 ms here; the old regexes took 19 s on 40 KB.
    assert time.perf_counter() - started < 5


@pytest.mark.slow  # runs bench_longlines.py: a benchmark
def test_the_long_line_benchmark_runs() -> None:
    import sys
    from pathlib import Path

    bench = str(Path(__file__).resolve().parent.parent / "bench")
    sys.path.insert(0, bench)
    try:
        import bench_longlines
    finally:
        sys.path.remove(bench)
    rows = bench_longlines.main(size=2000, runs=1)
    assert {row["helper"] for row in rows} == set(bench_longlines.helpers())
    assert all(row["chars"] == 2000 and row["ms"] >= 0 for row in rows)
    assert "| `Redactor.redact` | base64 | 2,000 |" in bench_longlines.markdown(rows)
