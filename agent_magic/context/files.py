"""The files a task names: which they are, and a bounded preview of each.

Here: :func:`named_files` (the paths and globs in a task that exist: under the working
directory, or anywhere when the task gives an absolute path), :func:`preview_file` (size,
type, encoding when not UTF-8, the first lines, and for delimited text the dialect,
header and column count) and :func:`files_block` (both, within a budget).

A preview reads at most :data:`HEAD_BYTES` from the start of a file, whatever its size,
and a binary file is described by its type and size only. A relative path or glob that
leads outside the working directory (``..``, a symlink) is not read. Lines that assign a
secret-named setting (``API_KEY=...``, ``"password": ...``) and the fields of
secret-named columns have their values hidden here; the cell's redactor then hides known
secrets and credential shapes in the whole request, as in step output.

Not here: choosing how much room the files get (:mod:`.block`), the secret rules
(:mod:`agent_magic.secrets`).
"""

from __future__ import annotations

import codecs
import csv
import glob
import io
import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..secrets import is_secret_name
from ..text import fence

HEAD_BYTES = 16 * 1024  # the most read of any file
_LINES = 6  # first lines shown
_LINE_CHARS = 240  # most characters of one shown line
_MAX_FILES = 5  # previews per task; further matches are only named
_MAX_MATCHES = 200  # glob matches looked at
_MAX_WORDS = 200  # words of a task tried as paths
_GLOB = re.compile(r"[*?\[]")
_QUOTED = re.compile(r"""`([^`\n]+)`|"([^"\n]+)"|'([^'\n]+)'""")
_TRIM = "()[]{}<>,;:!?\"'`"
_DELIMITERS = ",;\t|"
_CHAOS_TIE = 0.05  # charset-normalizer "chaos" this close to the best is a tie
_WESTERN = ("cp1252", "latin_1", "iso8859_15")
_TABULAR = {".csv", ".tsv", ".tab", ".psv", ".txt", ".dat", ".ssv"}
# What a binary file starts with, for its type (the extension says the rest).
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG", "PNG image"),
    (b"\xff\xd8\xff", "JPEG image"),
    (b"GIF8", "GIF image"),
    (b"%PDF", "PDF document"),
    (b"PK\x03\x04", "ZIP archive (also .xlsx, .docx, .parquet bundles)"),
    (b"\x1f\x8b", "gzip-compressed"),
    (b"BZh", "bzip2-compressed"),
    (b"\xfd7zXZ", "xz-compressed"),
    (b"PAR1", "Parquet"),
    (b"SQLite format 3", "SQLite database"),
    (b"\x89HDF", "HDF5"),
    (b"ARROW1", "Arrow/Feather"),
    (b"\x93NUMPY", "NumPy array (.npy)"),
    (b"\xd0\xcf\x11\xe0", "OLE2 document (old .xls/.doc)"),
)
_SETTING = re.compile(
    r"""^(?P<lead>\s*(?:export\s+)?["']?(?P<name>[A-Za-z_][\w.-]*)["']?\s*[:=]\s*)(?P<value>\S.*)$"""
)


@dataclass(frozen=True)
class NamedFile:
    """A file a task names: as the task wrote it, and where it is."""

    shown: str  # the name as the model should use it (relative to the working directory)
    path: Path


def named_files(task: str, cwd: Path, *, absolute: bool = True) -> tuple[list[NamedFile], int]:
    """The existing files ``task`` names, in the order named, and how many more matched.

    A word (or a quoted or backticked phrase) that names a file under ``cwd``, or a glob
    (``data/*.csv``) matching some, counts; an absolute path counts wherever it is. A
    relative name that resolves outside ``cwd`` does not count, nor (``absolute``
    False) an absolute path.
    """
    root = cwd.resolve()
    found: list[NamedFile] = []
    seen: set[Path] = set()
    more = 0
    for word in _words(task)[:_MAX_WORDS]:
        if not absolute and os.path.isabs(word):
            continue
        for shown, path in _resolve(word, cwd, root):
            if path in seen:
                continue
            seen.add(path)
            if len(found) < _MAX_FILES:
                found.append(NamedFile(shown, path))
            else:
                more += 1
    return found, more


def _words(task: str) -> list[str]:
    """The words of ``task`` that may name a file: with a dot or a slash (``sales.csv``,
    ``data/*``), so ``3 * 4`` or a quoted column name is not taken for a glob or a path."""
    words = [next(g for g in m.groups() if g) for m in _QUOTED.finditer(task)]
    words += [word.strip(_TRIM).rstrip(".") for word in task.split()]
    return list(dict.fromkeys(w for w in words if ("." in w or "/" in w) and len(w) < 1024))


def _resolve(word: str, cwd: Path, root: Path) -> list[tuple[str, Path]]:
    absolute = os.path.isabs(word)
    if _GLOB.search(word):
        matches = glob.iglob(word) if absolute else glob.iglob(word, root_dir=cwd)
        names = sorted(name for _, name in zip(range(_MAX_MATCHES), matches, strict=False))
    else:
        names = [word]
    out = []
    for name in names:
        path = Path(name) if absolute else cwd / name
        try:
            if not path.is_file():
                continue
            real = path.resolve()
        except (OSError, ValueError):
            continue
        if not absolute and not real.is_relative_to(root):
            continue  # ../ or a symlink out of the working directory
        out.append((name, real))
    return out


def preview_file(shown: str, path: Path, limit: int) -> str:
    """What a model needs to read ``path`` right, in at most ``limit`` characters."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as file:  # read-only
            head = file.read(HEAD_BYTES)
    except OSError as error:
        return _cut(f"{shown}: cannot be read ({error.strerror or type(error).__name__})", limit)
    whole = len(head) >= size
    size_text = f"{size:,} bytes"
    kind = _binary_kind(head, path)
    if kind:
        return _cut(f"{shown}: {size_text}, binary ({kind}); not shown", limit)
    text, encoding = _decode(head, whole)
    if text is None:
        return _cut(f"{shown}: {size_text}, binary (undetected encoding); not shown", limit)
    lines = text.splitlines()
    if not whole and lines and not text.endswith(("\n", "\r")):
        lines = lines[:-1]  # the last line read may be cut in the middle
    facts = [size_text]
    if encoding:
        facts.append(f"encoding {encoding} (not UTF-8: pass encoding={encoding!r})")
    shape = _tabular(lines, path)
    if shape:
        facts.append(shape.describe())
    hidden_columns = shape.secret_columns if shape else ()
    shown_lines = [_hide(line, shape, hidden_columns) for line in lines[:_LINES]]
    shown_lines = [
        line if len(line) <= _LINE_CHARS else line[: _LINE_CHARS - 3] + "..."
        for line in shown_lines
    ]
    heading = f"{shown}: {'; '.join(facts)}"
    if not shown_lines:
        return _cut(f"{heading}; empty", limit)
    which = "all" if whole and len(lines) <= _LINES else f"the first {len(shown_lines)}"
    body = f"{heading}\n{which} lines:\n{fence(chr(10).join(shown_lines))}"
    while len(body) > limit and len(shown_lines) > 1:
        shown_lines.pop()
        body = f"{heading}\nthe first {len(shown_lines)} lines:\n{fence(chr(10).join(shown_lines))}"
    return body if len(body) <= limit else _cut(heading, limit)


def files_block(task: str, cwd: Path, limit: int, *, absolute: bool = True) -> str:
    """The previews of the files ``task`` names, in at most ``limit`` characters
    (``absolute``: also those it names by an absolute path)."""
    found, more = named_files(task, cwd, absolute=absolute)
    if not found or limit <= 0:
        return ""
    head = "Files the task names (the start of each; never read whole):"
    parts = [head]
    used = len(head)
    for position, named in enumerate(found):
        share = (limit - used - 1) // (len(found) - position)
        if share < 40:
            more += len(found) - position
            break
        part = preview_file(named.shown, named.path, share)
        parts.append(part)
        used += len(part) + 1
    if more:
        note = f"({more} more matching file{'s' if more != 1 else ''} not previewed)"
        if used + len(note) + 1 <= limit:
            parts.append(note)
    return "\n".join(parts) if len(parts) > 1 else ""


def _binary_kind(head: bytes, path: Path) -> str:
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return ""
    if b"\x00" in head:
        suffix = path.suffix.lower()
        return f"{suffix[1:]} data" if suffix else "data"
    return ""


def _decode(head: bytes, whole: bool) -> tuple[str | None, str]:
    """The text of ``head`` and its encoding ("" for UTF-8); None when it is not text."""
    if head.startswith(codecs.BOM_UTF8):
        decoder = codecs.getincrementaldecoder("utf-8-sig")()
        try:
            return decoder.decode(head, final=whole), "utf-8-sig"
        except UnicodeDecodeError:
            pass
    else:
        decoder = codecs.getincrementaldecoder("utf-8")()
        try:
            return decoder.decode(head, final=whole), ""
        except UnicodeDecodeError:
            pass
    from charset_normalizer import from_bytes

    results = list(from_bytes(head))
    if not results or not results[0].encoding:
        return None, ""
    # On a few hundred bytes of Western text several code pages are nearly as likely
    # (charset-normalizer may put cp1257 first for French); among those within a hair of
    # the best, the Western ones most files are written in win.
    best = results[0]
    near = [r for r in results if r.chaos <= best.chaos + _CHAOS_TIE]
    best = next((r for r in near if r.encoding in _WESTERN), best)
    encoding = codecs.lookup(best.encoding).name
    text = head.decode(encoding, errors="replace")
    # On a short sample several code pages read the same; say the one people write
    # (latin-1, then cp1252) when it gives the very same text.
    for common in ("latin-1", "cp1252"):
        try:
            if head.decode(common) == text:
                return text, common
        except UnicodeDecodeError:
            continue
    return text, encoding


@dataclass(frozen=True)
class _Table:
    delimiter: str
    quotechar: str
    columns: int
    header: bool
    start: int  # lines before the first line of the usual width (a title, notes)
    counts: tuple[int, ...]  # fields on each of the first lines
    secret_columns: tuple[int, ...]

    def describe(self) -> str:
        names = {",": "','", ";": "';'", "\t": "tab", "|": "'|'"}
        text = f"delimited text: delimiter {names.get(self.delimiter, repr(self.delimiter))}"
        if self.quotechar != '"':
            text += f", quote {self.quotechar!r}"
        text += f", {self.columns} columns"
        where = "first line" if not self.start else f"line {self.start + 1}"
        text += f", {where} looks like a header" if self.header else ", no header line"
        if self.start:
            text += f" ({self.start} line{'s' if self.start > 1 else ''} of other text above)"
        if len(set(self.counts)) > 1:
            text += f" (fields per line: {', '.join(map(str, self.counts))})"
        return text


def _tabular(lines: list[str], path: Path) -> _Table | None:
    sample_lines = [line for line in lines[:20] if line.strip()]
    if len(sample_lines) < 2 and path.suffix.lower() not in _TABULAR:
        return None
    # A title or notes line before the header confuses the sniffer: try without it.
    for skip in range(min(4, len(sample_lines) - 1)):
        sample = "\n".join(sample_lines[skip:])
        try:
            dialect = csv.Sniffer().sniff(sample, delimiters=_DELIMITERS)
            break
        except csv.Error:
            continue
    else:
        return None
    sample = "\n".join(sample_lines)
    rows = list(csv.reader(io.StringIO(sample), dialect))
    counts = tuple(len(row) for row in rows[: _LINES + 2])
    if not counts or max(counts) < 2:
        return None
    # The header is the first line with the usual field count (a title may precede it).
    usual = max(set(counts), key=counts.count)
    start = next(i for i, row in enumerate(rows) if len(row) == usual)
    try:
        header = csv.Sniffer().has_header("\n".join(sample_lines[start:]))
    except csv.Error:
        header = False
    first = rows[start]
    secret = tuple(i for i, name in enumerate(first) if header and is_secret_name(name.strip()))
    return _Table(dialect.delimiter, dialect.quotechar or '"', usual, header, start, counts, secret)


def _hide(line: str, table: _Table | None, columns: tuple[int, ...]) -> str:
    """``line`` with secret-named settings and secret-named columns' fields hidden."""
    if table and columns:
        fields = line.split(table.delimiter)
        if len(fields) == table.columns and not all(
            is_secret_name(fields[i].strip().strip('"')) for i in columns
        ):
            for i in columns:
                fields[i] = "[hidden]"
            return table.delimiter.join(fields)
    match = _SETTING.match(line)
    if match and is_secret_name(match["name"]):
        value = match["value"].rstrip(",")
        if len(value.strip("\"' ")) >= 4:
            return f"{match['lead']}[hidden: {match['name']}]"
    return line


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(0, limit - 3)] + "..."
