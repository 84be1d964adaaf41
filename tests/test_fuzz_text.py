"""Fuzzing the text that comes from models and steps: code blocks, ANSI, cutting, secrets.

Properties, not examples: no crash, no lost code, bounded output, linear time. Each
hypothesis test runs a few dozen examples by default (``max_examples`` small, no
deadline: the machine is shared); raise them locally with ``--hypothesis-seed`` or a
profile when hunting.
"""

from __future__ import annotations

import gc
import re
import time
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent_magic.codeblocks import (
    CodeBlock,
    extract_code_blocks,
    inert_markdown,
    normalize_language,
    proposed_blocks,
    strip_code_blocks,
)
from agent_magic.secrets import Redactor
from agent_magic.text import escape_surrogates, fence, head_tail, normalize_volatile, strip_ansi

FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# -- strategies ----------------------------------------------------------------------------

# Text with everything that matters to a fence or span finder, in small pieces.
MARKUP = st.sampled_from(
    ["`", "``", "```", "````", "~~~", "$", "$$", "\\", "(", ")", "[", "]", "<", "![", " ", "\t"]
    + ["\n", "\r\n", "\r", "\n\n", "\n \t\n", "   ```", "    ```", "```py", "a", "x = 1", "é"]
)
markup_text = st.lists(MARKUP, max_size=60).map("".join)
# Any code point, lone surrogates included (hypothesis leaves them out by default).
any_char = st.characters(blacklist_categories=())
any_text = st.text(any_char, max_size=300)
INFO = st.sampled_from(
    ["", "python", "py", "Python3", "sh", "bash", "r", "python {.class}", 'py title="x"']
    + ["{python}", "{.python .numberLines}", "python   ", "json"]
)
# Code lines: anything but a line break (CRLF and CR are line breaks to the finder).
code_line = st.text(
    st.characters(blacklist_characters="\r\n", blacklist_categories=()), max_size=40
)
code_body = st.lists(code_line, min_size=1, max_size=8).map("\n".join)


def _closes_a_fence(line: str) -> bool:
    stripped = line.strip(" \t")
    return len(line) - len(line.lstrip(" ")) <= 3 and bool(re.fullmatch(r"`{3,}|~{3,}", stripped))


# -- code blocks -----------------------------------------------------------------------


@pytest.mark.slow  # fuzz: hundreds of generated inputs, 5-20 s
@FUZZ
@given(
    blocks=st.lists(st.tuples(INFO, code_body), min_size=1, max_size=4),
    prose=st.lists(st.text(max_size=30).map(lambda t: t.replace("`", "'")), max_size=5),
    newline=st.sampled_from(["\n", "\r\n"]),
    unclosed=st.booleans(),
)
def test_no_code_is_lost(
    blocks: list[tuple[str, str]], prose: list[str], newline: str, unclosed: bool
) -> None:
    """Blocks written with text.fence come back whole, in order, whatever the code holds."""
    kept = [
        (info, code)
        for info, code in blocks
        if code.strip() and not any(_closes_a_fence(line) for line in code.split("\n"))
    ]
    parts = []
    for i, (info, code) in enumerate(kept):
        parts.append(prose[i] if i < len(prose) else "Next:")
        parts.append(fence(code, info))
    text = "\n".join(parts)
    if unclosed and kept:  # the model was cut off before its last closing fence
        text = text[: text.rindex("\n")]
    text = text.replace("\n", newline)
    found = extract_code_blocks(text)
    expected = [CodeBlock(normalize_language(info), code.strip("\n")) for info, code in kept]
    assert [(b.language, b.code) for b in found] == [(b.language, b.code) for b in expected]


@FUZZ
@given(markup_text)
def test_any_reply_is_read_without_crash_and_bounded(text: str) -> None:
    blocks = extract_code_blocks(text)
    assert sum(len(b.code) for b in blocks) <= len(text)
    assert set(proposed_blocks(text, text)) <= set(blocks)
    assert len(strip_code_blocks(text)) <= len(text)
    shown = inert_markdown(text)
    assert len(shown) <= 4 * len(text)
    if "`" not in text and "~" not in text:  # no code anywhere: nothing may load or render
        assert "<" not in shown and "![" not in shown


@pytest.mark.parametrize(
    ("info", "language"),
    [
        ("python {.class}", "python"),
        ('py title="x"', "python"),
        ("{.python .numberLines}", "python"),
        ("bash  {#id}", "sh"),
        ("python\t", "python"),
    ],
)
def test_info_strings_with_attributes(info: str, language: str) -> None:
    assert extract_code_blocks(f"```{info}\nx = 1\n```") == [CodeBlock(language, "x = 1")]


def test_mixed_and_nested_fences() -> None:
    reply = "~~~python\na = '```'\n```\n~~~\n````sh\necho '```'\n```\n````\n```\nunclosed"
    assert extract_code_blocks(reply) == [
        CodeBlock("python", "a = '```'\n```"),
        CodeBlock("sh", "echo '```'\n```"),
        CodeBlock("python", "unclosed"),
    ]


# -- text helpers ------------------------------------------------------------------------

SGR = st.builds(
    lambda codes, final: "\x1b[" + ";".join(map(str, codes)) + final,
    st.lists(st.integers(0, 255), max_size=4),
    st.sampled_from(list("mKHJABCDG")),
)


@FUZZ
@given(st.lists(st.tuples(st.text(st.characters(blacklist_characters="\x1b")), SGR), max_size=10))
def test_strip_ansi_removes_exactly_the_sequences(pieces: list[tuple[str, str]]) -> None:
    coloured = "".join(text + code for text, code in pieces)
    assert strip_ansi(coloured) == "".join(text for text, _ in pieces)


@FUZZ
@given(any_text)
def test_strip_ansi_never_grows_or_crashes(text: str) -> None:
    assert len(strip_ansi(text)) <= len(text)


@FUZZ
@given(st.text(any_char, max_size=3000), st.integers(0, 2000))
def test_head_tail_is_bounded_and_keeps_both_ends(text: str, limit: int) -> None:
    cut = head_tail(text, limit)
    if len(text) <= limit:
        assert cut == text
        return
    keep = max(limit - 60, 20)
    assert len(cut) <= keep + 60 + len(str(len(text)))
    head, tail = keep * 2 // 3, keep - keep * 2 // 3
    assert cut.startswith(text[:head]) and cut.endswith(text[-tail:])


@FUZZ
@given(any_text)
def test_escape_surrogates_always_encodes(text: str) -> None:
    escaped = escape_surrogates(text)
    escaped.encode("utf-8")
    assert not re.search("[\ud800-\udfff]", escaped)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        assert len(escaped) > len(text)
    else:
        assert escaped is text


@FUZZ
@given(st.binary(max_size=400))
def test_random_bytes_from_a_step(data: bytes) -> None:
    """A step's output decoded as the executor may (surrogateescape): every helper copes."""
    text = data.decode("utf-8", "surrogateescape")
    for out in (strip_ansi(text), head_tail(text, 100), normalize_volatile(text)):
        escape_surrogates(out).encode("utf-8")
    Redactor.build(env={"SOME_TOKEN": "abcdefgh12"}).redact(text)


_OLD_VOLATILE = (
    (re.compile(r"Cell In\[\d+\]"), "Cell In[_]"),
    (re.compile(r"\bat 0x[0-9a-fA-F]{4,}"), "at 0x_"),
    (re.compile(r"/tmp/ipykernel_\d+/\d+\.py"), "<ipykernel cell>"),
    (re.compile(r"""[^\s"'(<]*[/\\](?:site|dist)-packages[/\\]"""), "<packages>/"),
    (re.compile(r"""[^\s"'(<]*[/\\]lib[/\\]python3\.\d+[/\\]"""), "<python>/"),
)
PATHISH = st.lists(
    st.sampled_from(
        ["/", "\\", "site", "dist", "-packages", "lib", "python3.", "11", "٣", " ", '"', "'"]
        + ["(", "<", "\n", "x", "Cell In[", "7]", "at 0x", "beef", "/tmp/ipykernel_", "1", ".py"]
    ),
    max_size=40,
).map("".join)


@FUZZ
@given(PATHISH)
def test_normalize_volatile_equals_the_old_masks(text: str) -> None:
    expected = text
    for pattern, replacement in _OLD_VOLATILE:
        expected = pattern.sub(replacement, expected)
    assert normalize_volatile(text) == expected
    assert normalize_volatile(expected) == expected  # masking twice changes nothing


CREDENTIAL = st.sampled_from(
    [
        "sk-" + "proj-" + "Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4zAB",
        "AKIA" + "IOSFODNN7EXAMPLE",
        "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8",
        "xoxb-" + "123456789012-abcdefABCDEF",
        "AIza" + "SyD-1234567890abcdefghijklmnopqrstu",
    ]
)
SEPARATOR = st.sampled_from([" ", "\n", '"', "'", "=", ": ", "(", "\t"])


@FUZZ
@given(any_text, SEPARATOR, CREDENTIAL, SEPARATOR, any_text)
def test_a_credential_anywhere_is_hidden(
    before: str, left: str, secret: str, right: str, after: str
) -> None:
    redactor = Redactor.build(env={})
    out = redactor.redact(before + left + secret + right + after)
    assert secret not in out
    assert redactor.hidden >= 1


# -- linear time ---------------------------------------------------------------------------


def _seconds(function: Callable[[str], object], text: str, runs: int = 3) -> float:
    """CPU seconds of the best of a few runs: CPU time, as other processes share the
    machine and wall time counts their turns too; the collector off, as a full collection
    costs in proportion to the whole test process's heap, not to the input."""
    best = float("inf")
    gc.collect()
    gc.disable()
    try:
        for _ in range(runs):
            started = time.process_time()
            function(text)
            best = min(best, time.process_time() - started)
    finally:
        gc.enable()
    return best


SHAPES = {
    "unbroken": "x",
    "backticks": "`a",
    "dollars": "$a",
    "fences": "```\n",
    "openers": "```python\n",
    "maths": "\\(",
    "blank info": "```a" + " " * 50,
    "prose": "Some `code`, $x$ and <b> ![i](u).\n",
}


@pytest.mark.slow  # growing sizes, timed: a benchmark of its kind
@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize(
    "function", [extract_code_blocks, proposed_blocks, strip_code_blocks, inert_markdown]
)
def test_reply_handling_is_linear(shape: str, function: Callable[[str], object]) -> None:
    unit = SHAPES[shape]
    small = unit * (20_000 // len(unit))
    large = unit * (200_000 // len(unit))
    ratio = _seconds(function, large) / max(_seconds(function, small, runs=5), 1e-4)
    # 10x the input: ~10x the time; a quadratic scan would be ~100x and more. Generous,
    # as the machine is shared.
    assert ratio < 50, f"{function.__name__} on {shape}: x{ratio:.0f} for 10x the input"
