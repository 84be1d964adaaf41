"""Text helpers used wherever text is cut, fenced, cleaned or compared: written once here.

Here: :func:`strip_ansi` (terminal colour and control sequences out), :func:`head_tail`
(the one cutter: keeps the head and tail of a long text and says how much was cut),
:func:`fence` (a Markdown code block whose fence no backtick run in the code can close),
:func:`escape_surrogates` (text that always encodes as UTF-8) and
:func:`normalize_volatile` (run-to-run noise masked before a request is hashed),
:func:`canonical` and :func:`fingerprint` (a value's one JSON text, and its SHA-256 with
that noise masked: what makes two messages "the same" for the cache and the replay).

Not here: finding code blocks in a reply (:mod:`agent_magic.codeblocks`), hiding secrets
(:mod:`agent_magic.secrets`), anything that knows about IPython or the model.

Every function is linear in the length of its input, including on one unbroken line of a
megabyte (a base64 literal, a hex dump): each regex here either starts only at a fixed
literal or is followed by a scan that visits each character a bounded number of times.
None of them raises on odd text (lone surrogates, control characters, NUL).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

__all__ = [
    "canonical",
    "escape_surrogates",
    "fence",
    "fingerprint",
    "head_tail",
    "normalize_volatile",
    "normalized",
    "sha",
    "strip_ansi",
    "without_notebook",
]

# CSI sequences (colours, cursor moves) and OSC sequences ended by BEL or ST (terminal
# titles, hyperlinks). The classes of a CSI are disjoint, so a failed match costs only the
# characters up to the next ESC; an unterminated OSC is left alone.
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)")


def strip_ansi(text: str) -> str:
    """``text`` without ANSI escape sequences (what a colourful traceback prints)."""
    if "\x1b" not in text:
        return text
    return _ANSI.sub("", text)


DISPLAY_LIMIT = 2_000_000  # AgentMagics.max_display_chars' default


def shown_head(text: str, limit: int = DISPLAY_LIMIT) -> str:
    """``text`` as a reply is shown (the cell, ``%agent log``): its first ``limit``
    characters, the bound of a step's shown output, then one line saying the rest is not
    shown; the recording keeps it whole."""
    if len(text) <= limit:
        return text
    return text[:limit] + reply_cut_note(len(text) - limit)


def reply_cut_note(rest: int | None = None) -> str:
    """The line after a reply's shown part (``rest``: the characters not shown, if known)."""
    size = f" ({rest:,} characters)" if rest is not None else ""
    return (
        f"\n[agent_magic: the rest of this reply{size} is not shown; the recording keeps "
        "it whole]\n"
    )


def head_tail(text: str, limit: int) -> str:
    """Keep the head and tail of ``text`` within about ``limit`` characters, marking the cut.

    Two thirds of the room go to the head and one third to the tail, less 60 characters
    for the marker line; below ``limit=80`` at least 20 characters are kept, so the result
    can exceed a tiny ``limit`` by the marker. Text within the limit is returned unchanged.
    """
    if len(text) <= limit:
        return text
    keep = max(limit - 60, 20)
    head, tail = keep * 2 // 3, keep - keep * 2 // 3
    return f"{text[:head]}\n{cut_mark(len(text) - head - tail)}\n{text[-tail:]}"


def cut_mark(count: int | str, what: str = "characters", why: str = "") -> str:
    """The note put where text was cut: ``«526 characters cut here»``.

    In guillemets, not ``[... ]``: a model that copies it gets no valid Python (``[...]``
    is a list holding ``Ellipsis``), and it reads as a note, not as data. What a copied
    mark looks like is found by :mod:`agent_magic.conversation.markers`.
    """
    return f"«{count} {what} cut here{' ' + why if why else ''}»"


_BACKTICKS = re.compile(r"`+")


def fence(code: str, language: str = "") -> str:
    """``code`` as a fenced Markdown block that nothing inside it can close.

    The fence is one backtick longer than the longest run of backticks in ``code`` (and at
    least three), so a reply quoting ```` ``` ```` keeps its block whole. ``language`` is
    the info string (``"python"``); backticks and line breaks in it are dropped.
    """
    longest = max((len(run) for run in _BACKTICKS.findall(code)), default=0)
    ticks = "`" * max(3, longest + 1)
    tag = "".join(language.replace("`", "").split("\n")).replace("\r", "").strip()
    return f"{ticks}{tag}\n{code}\n{ticks}"


def escape_surrogates(text: str) -> str:
    r"""``text`` with each lone surrogate written as a visible ``\udcXX`` escape.

    ``os.fsdecode`` of a file name that is not UTF-8 gives such characters, and
    ``text.encode("utf-8")`` (JSON files, hashing, the wire) then raises. The result always
    encodes; clean text comes back as the same object.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


# -- normalize_volatile ------------------------------------------------------------------

# What legitimately differs between two runs of the same notebook, masked before hashing
# so a replay on another machine, or after running cells out of order, still matches:
# IPython's cell numbers in tracebacks, object addresses, and install paths.
_CELL = re.compile(r"Cell In\[\d+\]")
_STEP = re.compile(r"<agent step \d+(?:\.\d+)?>")  # a step's name in its tracebacks
_KERNEL_FILE = re.compile(r"/tmp/ipykernel_\d+/\d+\.py")
# ``\bat 0x...``: searched from its literal (a leading ``\b`` would make the regex engine
# try every position) with the word boundary checked on the character before.
_ADDRESS = re.compile(r"at 0x[0-9a-fA-F]{4,}")
_WORD_CHAR = re.compile(r"\w")
# An install path: everything of its "word" (up to a space, quote, '(' or '<') before the
# last site-/dist-packages (or lib/python3.x) directory in that word. Written as the regex
# ``[^\s"'(<]*<dir>`` this is quadratic on a long word without the directory (every start
# scans to the word's end), so the same matches are found by the linear scan below.
_PATHS = (
    (re.compile(r"(?=(?P<dir>[/\\](?:site|dist)-packages[/\\]))"), "-packages", "<packages>/"),
    (re.compile(r"(?=(?P<dir>[/\\]lib[/\\]python3\.\d+[/\\]))"), "python3.", "<python>/"),
)
_WORD_BREAK = re.compile(r"""[\s"'(<]""")


def normalize_volatile(text: str) -> str:
    """``text`` with run-to-run noise masked: cell numbers, addresses, kernel and install paths.

    ``Cell In[12]`` -> ``Cell In[_]``, ``<agent step 3.2>`` -> ``<agent step _>`` (a step's
    number in its tracebacks), ``at 0x7f3a...`` -> ``at 0x_``,
    ``/tmp/ipykernel_42/1234.py`` -> ``<ipykernel cell>``, and a path up to its last
    ``site-packages/`` or ``dist-packages/`` -> ``<packages>/``, up to ``lib/python3.x/``
    -> ``<python>/``. Linear in ``len(text)``.
    """
    text = _CELL.sub("Cell In[_]", text)
    if "<agent step " in text:
        text = _STEP.sub("<agent step _>", text)
    if "at 0x" in text:
        text = _ADDRESS.sub(lambda m: _address(m, text), text)
    text = _KERNEL_FILE.sub("<ipykernel cell>", text)
    for pattern, needle, replacement in _PATHS:
        if needle in text:
            text = _mask_paths(text, pattern, replacement)
    return text


def normalized(value: Any) -> Any:
    """``value`` (JSON-like) with :func:`normalize_volatile` applied to every string."""
    if isinstance(value, str):
        return normalize_volatile(value)
    if isinstance(value, Mapping):
        return {k: normalized(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [normalized(v) for v in value]
    return value


def canonical(value: Any) -> str:
    """``value``'s one JSON text (sorted keys, no spaces)."""
    return _CANONICAL(value)


# json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False), with one
# encoder for every call.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode


def sha(text: str) -> str:
    # A lone surrogate (a non-UTF-8 file name printed by a step) hashes as its escape.
    return hashlib.sha256(escape_surrogates(text).encode("utf-8")).hexdigest()


# The blocks a task carries about the notebook itself (agent_magic.context.block writes
# them last): the code of earlier cells and the saved notebook's Markdown. They depend on
# the frontend (JupyterLab names the notebook, nbconvert does not) and on execution
# counts, not on the conversation, so a replay matches without them.
_NOTEBOOK_BLOCKS = ("\n\nCode run before this cell", "\n\nThe Markdown cells of the notebook")


def without_notebook(message: Mapping[str, Any]) -> Mapping[str, Any]:
    """A user message without the blocks its task carries about the notebook itself."""
    content = message.get("content")
    if message.get("role") != "user" or not isinstance(content, str):
        return message
    found = [at for at in (content.find(block) for block in _NOTEBOOK_BLOCKS) if at >= 0]
    return {**message, "content": content[: min(found)]} if found else message


def fingerprint(message: Mapping[str, Any]) -> str:
    """The SHA-256 of a message's canonical JSON, run-to-run noise masked: equal for two
    runs of one notebook, whatever cell numbers, addresses or paths their tracebacks had,
    and whatever the task said about the notebook's other cells (:func:`without_notebook`)."""
    return sha(canonical(normalized(without_notebook(message))))


def _address(match: re.Match[str], text: str) -> str:
    start = match.start()
    if start and _WORD_CHAR.match(text, start - 1):
        return match.group()
    return "at 0x_"


def _mask_paths(text: str, directory: re.Pattern[str], replacement: str) -> str:
    """Replace each word's prefix up to its last ``directory`` with ``replacement``.

    Same result as ``re.sub(r"[^\\s\"'(<]*" + directory, replacement, text)``: the leftmost
    match starts where the word starts, and the greedy prefix reaches the occurrence that
    starts last in the word. Occurrences are visited right to left; each word's start is
    found by one backward search over characters no other word's search visits.
    """
    found = [(m.start(), m.end("dir")) for m in directory.finditer(text)]
    if not found:
        return text
    backwards = text[::-1]
    n = len(text)
    pieces: list[str] = []
    end = n  # text[end:] is already in pieces (reversed order)
    i = len(found) - 1
    while i >= 0:
        start, stop = found[i]
        before = _WORD_BREAK.search(backwards, n - start)
        word_start = n - before.start() if before else 0
        pieces.append(text[stop:end])
        pieces.append(replacement)
        end = word_start
        while i >= 0 and found[i][0] >= word_start:
            i -= 1
    pieces.append(text[:end])
    return "".join(reversed(pieces))
