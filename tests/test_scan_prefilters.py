"""The quick checks in front of scans a long line goes through every turn (a proposed
step's invisible characters and copied marks; the failing line the window keeps when it
cuts a message) say "nothing here" exactly when the scan would find nothing."""

from __future__ import annotations

import pytest

from agent_magic.codeblocks import CodeBlock
from agent_magic.conversation import markers
from agent_magic.conversation.markers import copied_markers
from agent_magic.invisible import _SUSPECT, invisible_chars, suspect
from agent_magic.window import cut

ODD = "\u202e\u200b\u00a0\u00e9\u3164\u2028\ud800\U0001f600"


@pytest.mark.parametrize("char", [chr(c) for c in range(0x80)] + list(ODD))
def test_suspect_is_the_regex(char: str) -> None:
    for text in (char, f"plain {char} text", "x" * 5000 + char):
        assert suspect(text) == (_SUSPECT.search(text) is not None)


def test_an_ascii_control_in_a_long_line_is_still_found() -> None:
    line = "data = '" + "QUJD" * 250_000 + "\x1b[2J'"
    assert [found.char for found in invisible_chars(line)] == ["\x1b"]
    assert invisible_chars("data = '" + "QUJD" * 250_000 + "'") == []


def _alternatives(pattern: str) -> list[str]:
    """The top-level alternatives of a regex (split at ``|`` outside groups and sets)."""
    parts, depth, start, i, in_set = [], 0, 0, 0, False
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            i += 2
            continue
        if in_set:
            in_set = char != "]"
        elif char == "[":
            in_set = True
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "|" and depth == 0:
            parts.append(pattern[start:i])
            start = i + 1
        i += 1
    return [*parts, pattern[start:]]


def test_every_form_of_our_marks_holds_a_needle() -> None:
    forms = _alternatives(markers._MARKS.pattern)
    assert len(forms) == 8
    for form in forms:
        literal = form.replace("\\", "")
        assert any(needle in literal for needle in markers._MARK_NEEDLES), form


@pytest.mark.parametrize(
    "mark",
    [
        "«526 characters cut here»",
        "[... 40 characters cut to fit the context window]",
        "... [12 characters cut] ...",
        "[3 earlier messages folded to fit the context window]",
        "[The variables summary is left out to fit the context window]",
        "[hidden: $TOKEN]",
        "<looks like a credential: hidden>",
        "(value hidden)",
    ],
)
def test_each_mark_in_a_long_line_is_found(mark: str) -> None:
    code = "data = '" + "QUJD" * 250_000 + f"'\nx = '{mark}'"
    assert "line 2 holds" in copied_markers([CodeBlock("python", code)])
    assert copied_markers([CodeBlock("python", "data = '" + "QUJD" * 250_000 + "'")]) == ""


def test_every_form_of_a_failing_line_holds_a_needle() -> None:
    forms = _alternatives(cut._LOCATION.pattern.removeprefix("^(?:").removesuffix(")"))
    assert len(forms) == 4
    for form in forms:
        literal = form.replace("\\", "").replace("-+>", "->")
        assert any(needle in literal for needle in cut._LOCATION_NEEDLES), form


@pytest.mark.parametrize(
    "location",
    ["----> 3 x = 1 / 0", '  File "/tmp/a.py", line 3', "Cell In[4], line 2", "       ^^^^"],
)
def test_a_failing_line_after_a_long_line_is_still_kept(location: str) -> None:
    text = "QUJD" * 5000 + f"\nbefore\n{location}\n    x = 1 / 0\n" + "tail line\n" * 2000
    found = cut._failing_line(text, len(text) - 100)
    assert found is not None
    assert location.strip() in text[found[0] : found[1]]
    assert cut._failing_line("QUJD" * 5000 + "\n" + "tail line\n" * 2000, 20_000) is None
