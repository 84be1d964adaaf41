"""The recording file as several writers see it: each appended line is indexed once."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agent_magic.transcript import RequestRecord, Store, read_records


def request(conversation: str, step: int) -> RequestRecord:
    message = {"role": "user", "content": f"{conversation} {step}"}
    return RequestRecord(conversation, step, (message,))


def steps(store: Store) -> list[tuple[str, int]]:
    return [(r.conversation, r.step) for r in store.requests]


@pytest.fixture
def warnings() -> list[str]:
    return []


def test_two_kernels_appending_in_turn_see_every_line(tmp_path: Path, warnings) -> None:
    path = tmp_path / "deep" / "folder" / "rec.jsonl"  # the folder is made on first write
    a, b = Store(path, warn=warnings.append), Store(path, warn=warnings.append)
    for step in range(3):
        a.add(request("a", step))
        b.add(request("b", step))
    a.refresh()
    b.refresh()
    expected = [(c, s) for s in range(3) for c in "ab"]
    assert steps(a) == steps(b) == expected
    assert [(r.conversation, r.step) for r in read_records(path)] == expected
    assert warnings == []


def test_our_own_line_is_indexed_without_reading_the_file_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store(tmp_path / "rec.jsonl")
    store.add(request("a", 0))  # a new file: read back once
    reads: list[int] = []
    original = Store.refresh
    monkeypatch.setattr(Store, "refresh", lambda self: (reads.append(1), original(self))[1])
    for step in range(1, 5):
        store.add(request("a", step))
    assert reads == []
    assert steps(store) == [("a", s) for s in range(5)]
    assert store._offset == os.path.getsize(store.path)


def test_a_rewritten_or_cut_file_is_read_again(tmp_path: Path, warnings) -> None:
    path = tmp_path / "rec.jsonl"
    store = Store(path, warn=warnings.append)
    store.add(request("a", 0))
    store.add(request("a", 1))
    # Another program rewrites the file in place, with a line cut short by a crash.
    keep = path.read_bytes().splitlines(keepends=True)[0]
    with open(path, "r+b") as file:
        file.truncate(0)
        file.write(keep.replace(b'"a"', b'"z"') + b'{"event": "req')
    store.add(request("a", 2))
    assert steps(store) == [("z", 0), ("a", 2)]
    assert warnings == ["skipped 1 unreadable line in the recording " + str(path)]


def test_a_replaced_file_is_read_again(tmp_path: Path) -> None:
    path = tmp_path / "rec.jsonl"
    store = Store(path)
    store.add(request("a", 0))
    store.add(request("a", 1))
    other = tmp_path / "other.jsonl"
    Store(other).add(request("b", 0))
    Store(other).add(request("b", 1))
    os.replace(other, path)  # same size, another inode
    store.add(request("a", 2))
    assert steps(store) == [("b", 0), ("b", 1), ("a", 2)]


def test_a_held_record_goes_out_with_the_next_in_one_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "rec.jsonl"
    store = Store(path)
    store.add(request("a", 0))
    writes: list[bytes] = []
    write = os.write
    monkeypatch.setattr(
        os, "write", lambda fd, data: (writes.append(bytes(data)), write(fd, data))[1]
    )
    store.add(request("a", 1), later=True)
    assert writes == [] and len(read_records(path)) == 1  # held: not on disk, not indexed
    store.add(request("a", 2))
    assert len(writes) == 1 and writes[0].count(b"\n") == 2
    store.add(request("a", 3), later=True)
    store.flush()
    store.flush()  # nothing left: nothing written
    assert len(writes) == 2
    assert steps(store) == [("a", s) for s in range(4)]
    assert [r.step for r in read_records(path)] == [0, 1, 2, 3]
    assert store._offset == os.path.getsize(path)


def test_a_held_record_is_written_after_another_kernel_s_lines(tmp_path: Path, warnings) -> None:
    path = tmp_path / "rec.jsonl"
    a, b = Store(path, warn=warnings.append), Store(path, warn=warnings.append)
    a.add(request("a", 0))
    a.add(request("a", 1), later=True)
    b.add(request("b", 0))
    a.flush()
    a.refresh()
    assert steps(a) == [("a", 0), ("b", 0), ("a", 1)]
    assert [(r.conversation, r.step) for r in read_records(path)] == steps(a)
    assert warnings == []
