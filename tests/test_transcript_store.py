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
