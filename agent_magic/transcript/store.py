"""The recording file and its index, and where it lives.

:class:`Store` is one JSON Lines file (``agent-recording.jsonl`` in the kernel's working
directory, which is the notebook's folder, by default). It is at once the transcript
(every record appended and flushed as it happens, or with the next one when the caller
says nothing can happen in between, so a crash keeps everything up to the last event)
and a content-addressed index of the replies and decisions, keyed by the request's
replay key. Several notebooks in one folder share it; a line that cannot be read is
skipped with a one-line warning. A line that cannot be written (a full disk, no
permission) is said once, its torn half cut off, and kept in memory until a later write
succeeds; a file that was deleted or cut short (by a step, say) gets the lines this
kernel read or wrote put back, with one line saying so. :func:`open_store` keeps one per
path per kernel; :meth:`Store.explain_drift` says which step a replay no longer matches.

Not here: what the records hold (:mod:`.records`), writing them (:mod:`.recorder`).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..defaults import RECORDING_NAME as RECORDING_NAME
from .drift import explain_drift
from .records import DecisionRecord, Record, ReplyRecord, RequestRecord, parse_record

REPLAY_ENV = "AGENT_MAGIC_REPLAY"


def replay_from_env(env: Mapping[str, str] | None = None) -> bool | None:
    """``AGENT_MAGIC_REPLAY``: 1/true/yes/on, 0/false/no/off, or None when unset."""
    value = (os.environ if env is None else env).get(REPLAY_ENV, "").strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    return None


def recording_path(setting: str | None, cwd: str | os.PathLike[str] | None = None) -> Path | None:
    """Where the recording lives: the setting, relative to ``cwd``; None turns it off."""
    if not setting or not setting.strip():
        return None
    path = Path(os.path.expanduser(setting.strip()))
    if not path.is_absolute():
        path = Path(cwd if cwd is not None else os.getcwd()) / path
    return path


def _warn(message: str) -> None:
    print(f"agent: {message}", file=sys.stderr)


@dataclass
class Recorded:
    """One recorded reply and the decision taken on it (None if the run stopped first)."""

    reply: ReplyRecord
    decision: DecisionRecord | None = None


class Store:
    """The recording file and its index. ``path=None`` keeps everything in memory."""

    def __init__(self, path: Path | None = None, *, warn: Callable[[str], None] = _warn) -> None:
        self.path = path
        self.warn = warn
        self.replies: dict[str, Recorded] = {}  # by replay key; the latest wins
        self.cached: dict[str, ReplyRecord] = {}  # replies by cache key
        self.requests: list[RequestRecord] = []  # request records, to explain a drift
        self._open: dict[tuple[str, int], Recorded] = {}  # (conversation, step) -> entry
        self._offset = 0
        self._head = b""
        self._inode: int | None = None
        self._warned: set[str] = set()
        self._pending: list[bytes] = []  # lines not written yet (the disk was full, ...)
        self._held: list[tuple[Record, bytes]] = []  # added with later=True, not yet written
        self._lines: list[tuple[int, bytes]] = []  # (end offset, line) of all we read or wrote
        self._fd: int | None = None  # the file as the last write left it open (see _kept_file)
        self._fd_file: tuple[int, int] = (0, 0)  # its (inode, device)

    def _warn_once(self, kind: str, message: str) -> None:
        if kind not in self._warned:
            self._warned.add(kind)
            self.warn(message)

    @property
    def exists(self) -> bool:
        return self.path is not None and self.path.is_file()

    # -- reading -----------------------------------------------------------------------

    def refresh(self) -> None:
        """Index what was appended since the last read (by us or another kernel)."""
        if self.path is None:
            return
        try:
            with open(self.path, "rb") as file:
                stat = os.fstat(file.fileno())
                if self._cut_short(file.fileno(), stat.st_size):
                    return  # a step deleted or cut it: the next write puts ours back
                if (
                    stat.st_size < self._offset
                    or (self._inode is not None and stat.st_ino != self._inode)
                    or file.read(len(self._head)) != self._head
                ):
                    self._clear()  # rewritten or replaced: read it again from the start
                self._inode = stat.st_ino
                file.seek(self._offset)
                data = file.read()
        except FileNotFoundError:
            if self._offset and not self._lines:
                self._clear()
            return
        except OSError as error:
            self._warn_once(
                "read",
                f"cannot read the recording {self.path} ({error.strerror or error}); ignoring it",
            )
            return
        end = data.rfind(b"\n") + 1  # a line still being written waits for the next read
        if not end:
            return
        if self._offset == 0:
            self._head = data[: min(end, 256)]
        at = self._offset
        for raw in data[:end].splitlines(keepends=True):
            at += len(raw)
            self._lines.append((at, raw))
        self._offset += end
        bad = sum(not self._index_line(raw) for raw in data[:end].splitlines() if raw.strip())
        if bad:
            self.warn(
                f"skipped {bad} unreadable line{'s' if bad > 1 else ''} in the recording "
                f"{self.path}"
            )

    def _index_line(self, raw: bytes) -> bool:
        """Index one line; False when it cannot be read (a record of an unknown type, a
        newer writer's, reads: it is not indexed)."""
        try:
            value = json.loads(raw.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            return False
        if not isinstance(value, dict) or "event" not in value:
            return False
        if value["event"] not in ("request", "reply", "decision"):
            return True  # the other records are read by the log and the export, not indexed
        record = parse_record(value)  # None: without what a replay needs
        return record is not None and self._indexed(record)

    def _indexed(self, record: Record) -> bool:
        try:
            self._index(record)
        except TypeError:
            return False
        return True

    def check(self) -> None:
        """Put back what was deleted or cut from the file since we read or wrote it (one
        ``stat`` when nothing was): for a replay, which reads the file but writes nothing."""
        if self.path is None or not self._lines:
            return
        try:
            size = os.stat(self.path).st_size
        except FileNotFoundError:
            size = 0
        except OSError:
            return
        if size >= self._offset:
            return
        try:
            fd = self._open_file()
            try:
                if self._cut_short(fd, os.fstat(fd).st_size):
                    self._restore(fd, os.fstat(fd).st_size)
            finally:
                os.close(fd)
        except OSError as error:
            self._warn_once(
                "restore",
                f"cannot write back the recording {self.path} ({error.strerror or error})",
            )

    def _clear(self) -> None:
        self._lines.clear()
        self.replies.clear()
        self.cached.clear()
        self.requests.clear()
        self._open.clear()
        self._offset = 0
        self._head = b""

    def _index(self, record: Record) -> None:
        if isinstance(record, RequestRecord):
            self.requests.append(record)
        elif isinstance(record, ReplyRecord):
            if not record.rkey:
                raise TypeError("a reply record without its request's key")
            where = (record.conversation, record.step)
            self.replies[record.rkey] = self._open[where] = Recorded(record)
            if record.key:
                self.cached[record.key] = record
        elif isinstance(record, DecisionRecord):
            entry = self._open.pop((record.conversation, record.step), None)
            if entry is not None:
                entry.decision = record

    # -- writing -----------------------------------------------------------------------

    def add(self, record: Record, line: str | None = None, *, later: bool = False) -> None:
        """Append one record and index it; with ``later``, hold it for the next
        :meth:`add` or :meth:`flush` to write with its own (the caller says when nothing
        can happen in between that a record must be on disk for: no code runs, nobody is
        waited for), so that two records go out in one write.

        ``line`` is the record already serialised as JSON, if the caller has it. A record
        that cannot be written (disk full, no permission) is said once, its torn half
        line cut off, and kept: every later :meth:`add` writes the kept ones first. A
        file that was deleted or cut short since our last write gets back the lines this
        kernel read or wrote, with one line saying so.
        """
        if self.path is None:
            self._index(record)
            return
        if line is None:
            line = json.dumps(record.to_dict(), ensure_ascii=False, separators=(",", ":"))
        self._held.append((record, line.encode("utf-8") + b"\n"))
        if not later:
            self.flush()

    def flush(self) -> None:
        """Write the records :meth:`add` held back, if any."""
        if not self._held:
            return
        held, self._held = self._held, []
        self._pending.extend(written for _, written in held)
        try:
            alone, data = self._write()
        except OSError as error:
            for record, _ in held:
                self._index(record)  # still answers --seed and the log from memory
            self._warn_once(
                "write",
                f"cannot write the recording {self.path} ({error.strerror or error}); "
                "its records are kept in memory and written once it can be written",
            )
            return
        if "write" in self._warned:
            self._warned.discard("write")
            self.warn(f"the recording {self.path} is written again; nothing was lost")
        if not alone:
            self.refresh()
            return
        self._offset += len(data)
        if data == b"".join(written for _, written in held):
            # These records alone: indexed as they are, not read back from JSON.
            bad = sum(not self._indexed(record) for record, _ in held)
        else:
            bad = sum(not self._index_line(raw) for raw in data.splitlines() if raw.strip())
        if bad:
            self.warn(
                f"skipped {bad} unreadable line{'s' if bad > 1 else ''} in the recording "
                f"{self.path}"
            )

    def _write(self) -> tuple[bool, bytes]:
        """Write the kept lines; (whether only they were added since the last read, them)."""
        assert self.path is not None
        fd, stat = self._kept_file()
        try:
            start = stat.st_size
            if self._cut_short(fd, stat.st_size):
                start = self._restore(fd, stat.st_size)
            data = b"".join(self._pending)
            # The file ends where we left it (at a line's end): no need to look.
            ours = start == self._offset and stat.st_ino == self._inode
            if start > 0 and not ours and os.pread(fd, 1, start - 1) != b"\n":
                data = b"\n" + data  # a line cut short by another writer's crash: end it
            _write_all(fd, data, start)
            # Only our lines were added since the last read (same file, nothing appended
            # or rewritten by another kernel): index them as they are, rather than
            # opening and reading the file again.
            alone = (
                0 < start == self._offset
                and stat.st_ino == self._inode
                and os.lseek(fd, 0, os.SEEK_CUR) == start + len(data)
                and os.pread(fd, len(self._head), 0) == self._head
            )
        except OSError:
            self._close_kept()  # the next write opens the file afresh
            raise
        if alone:  # else the read that follows takes them in
            end = start + len(data) - sum(map(len, self._pending))  # after a "\n", if any
            for raw in self._pending:
                end += len(raw)
                self._lines.append((end, raw))
        self._pending.clear()
        return alone, data

    def _cut_short(self, fd: int, size: int) -> bool:
        """The file is shorter than what we read and wrote, and what is left is its start
        (deleted, or truncated by a step), not another file."""
        if not self._lines or size >= self._offset:
            return False
        head = self._head[:size]
        return os.pread(fd, len(head), 0) == head

    def _restore(self, fd: int, size: int) -> int:
        """Cut the file to its last whole line and write back the lines it lost (those this
        kernel read or wrote); its size after."""
        keep = os.pread(fd, size, 0).rfind(b"\n") + 1 if size else 0
        os.ftruncate(fd, keep)
        lost = [raw for end, raw in self._lines if end > keep]
        _write_all(fd, b"".join(lost), keep)
        end, mine = keep, []
        for old, raw in self._lines:
            if old > keep:
                end += len(raw)
                mine.append((end, raw))
            else:
                mine.append((old, raw))
        self._lines = mine
        self._offset = end
        self._inode = os.fstat(fd).st_ino
        self._head = os.pread(fd, min(end, 256), 0)
        self.warn(
            f"the recording {self.path} was deleted or cut short (by a step?); wrote its "
            f"{len(lost)} lost record{'' if len(lost) == 1 else 's'} back from memory"
        )
        return end

    def _kept_file(self) -> tuple[int, os.stat_result]:
        """The file open for appending, and its ``stat``: the descriptor of the last write
        while the path still names that file (one ``stat`` per record instead of an open,
        an ``fstat`` and a close), else the file opened (made) afresh. Each record is
        still written (``os.write``, unbuffered) before :meth:`add` returns, or
        :meth:`flush` for one held back."""
        assert self.path is not None
        if self._fd is not None:
            try:
                stat = os.stat(self.path)
            except OSError:  # deleted (or unreadable): opened, and made, again below
                stat = None
            if stat is not None and (stat.st_ino, stat.st_dev) == self._fd_file:
                return self._fd, stat
            self._close_kept()
        fd = self._open_file()
        try:
            stat = os.fstat(fd)
        except OSError:
            os.close(fd)
            raise
        self._fd, self._fd_file = fd, (stat.st_ino, stat.st_dev)
        return fd, stat

    def _close_kept(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)

    def __del__(self) -> None:
        fd, self._fd = getattr(self, "_fd", None), None
        if fd is not None:
            try:
                os.close(fd)
            except Exception:  # at exit, os itself may be gone (the OS closes it then)
                return

    def _open_file(self) -> int:
        assert self.path is not None
        flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
        try:
            return os.open(self.path, flags, 0o666)
        except FileNotFoundError:  # its folder is made on the first write
            self.path.parent.mkdir(parents=True, exist_ok=True)
            return os.open(self.path, flags, 0o666)

    # -- drift -------------------------------------------------------------------------

    def explain_drift(self, step: int, messages: list[Mapping[str, Any]]) -> str:
        """One line saying which step no longer matches the recording, and how."""
        return explain_drift(
            self.requests,
            step,
            messages,
            path=self.path,
            exists=self.exists,
            empty=not self.requests and not self.replies,
        )


def _write_all(fd: int, data: bytes, start: int) -> None:
    """Write all of ``data`` at the end of the file, which was ``start`` bytes long; on
    failure cut the file back to ``start``, so no torn half line stays behind."""
    view = memoryview(data)
    try:
        while view:
            view = view[os.write(fd, view) :]
    except OSError:
        with contextlib.suppress(OSError):  # else the next read skips the torn line
            os.ftruncate(fd, start)
        raise


stores: dict[Path | None, Store] = {}


def open_store(path: Path | None) -> Store:
    """The store for ``path`` (None: in memory), shared by this kernel's conversations."""
    store = stores.get(path)
    if store is None:
        store = stores[path] = Store(path)
    store.refresh()
    return store
