"""Fuzzing what a request and a step's output pass through before they are hashed, sent or saved.

Request normalisation (:func:`agent_magic.text.normalize_volatile`), the replay and cache
keys (:class:`agent_magic.transcript.keys.Keyer`), the recorder's redaction pass
(:class:`agent_magic.transcript.recorder.Recorder` with a cell's
:class:`~agent_magic.secrets.Redactor`) and the output digest
(:class:`agent_magic.kernel.tee.HeadTail` inside a :class:`StepCapture`), on random
text with ANSI codes, random bytes decoded with ``surrogateescape`` (lone surrogates) and
huge unbroken lines. Properties: no crash, bounded size, output that encodes as UTF-8,
and time linear in the input (10x the input takes well under 30x the time).

Not here (``tests/test_fuzz_text.py`` has them): code blocks, ``strip_ansi``,
``head_tail``, ``escape_surrogates`` on their own, random bytes through the text helpers,
``normalize_volatile`` against the old masks, credentials hidden anywhere.
"""

from __future__ import annotations

import contextlib
import gc
import io
import json
import re
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from agent_magic.codeblocks import CodeBlock
from agent_magic.conversation import (
    ChatReply,
    CodeRan,
    Finished,
    ReplyReceived,
    RequestSent,
    StepError,
    StepOutcome,
    TaskStarted,
)
from agent_magic.kernel.capture import StepCapture
from agent_magic.kernel.tee import HeadTail
from agent_magic.secrets import Redactor
from agent_magic.text import normalize_volatile
from agent_magic.transcript.keys import Keyer
from agent_magic.transcript.recorder import Recorder
from agent_magic.transcript.records import read_records
from agent_magic.transcript.store import Store

FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SECRET = "tok-" + "0123456789abcdef"  # a configured API key the recorder must hide

# -- strategies ----------------------------------------------------------------------------

SGR = st.builds(
    lambda codes, final: "\x1b[" + ";".join(map(str, codes)) + final,
    st.lists(st.integers(0, 255), max_size=4),
    st.sampled_from(list("mKHJABCDG")),
)
# What a traceback or a request holds that normalisation masks, in pieces.
VOLATILE = st.sampled_from(
    ["Cell In[", "12]", "at 0x", "7f3a9c", "/tmp/ipykernel_", "42/", "1234.py", "/", "\\"]
    + ["site-packages/", "dist-packages\\", "lib/python3.", "11/", " ", '"', "'", "(", "<"]
)
any_char = st.characters(blacklist_categories=())  # lone surrogates included
# Random bytes as a step's output decodes them (os.fsdecode, surrogateescape).
from_bytes = st.binary(max_size=300).map(lambda b: b.decode("utf-8", "surrogateescape"))
piece = st.one_of(
    st.text(any_char, max_size=40), SGR, VOLATILE, from_bytes, st.just(SECRET), st.just("\n")
)
text = st.lists(piece, max_size=30).map("".join)
# Now and then one unbroken line long enough to matter (kept modest: examples repeat).
long_line = st.sampled_from(["x", "a/b", "at 0x", "Cell In[", "/lib/", "\\", "\udcff"]).map(
    lambda unit: unit * (20_000 // len(unit))
)
payload = st.one_of(text, text.flatmap(lambda t: long_line.map(lambda line: t + line + t)))


def encodes(value: Any) -> None:
    """``value`` (text or JSON-shaped data) encodes as UTF-8, as a file or the wire needs."""
    if isinstance(value, str):
        value.encode("utf-8")
    else:
        json.dumps(value, ensure_ascii=False).encode("utf-8")


# -- normalisation ------------------------------------------------------------------------


@FUZZ
@given(payload)
def test_normalisation_never_grows_and_keeps_the_text_encodable(value: str) -> None:
    out = normalize_volatile(value)
    assert len(out) <= len(value)  # every mask is shorter than what it masks
    assert normalize_volatile(out) == out
    # Masks add only ASCII: a lone surrogate out is one that was in.
    assert set(re.findall("[\ud800-\udfff]", out)) <= set(re.findall("[\ud800-\udfff]", value))


# -- the keys -------------------------------------------------------------------------------


def message(role: str, content: str) -> dict[str, Any]:
    return {"role": role, "content": content}


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(["user", "assistant", "tool"]), payload), max_size=6))
def test_keys_are_made_of_anything(turns: list[tuple[str, str]]) -> None:
    messages = [message("system", "You are a helper."), *(message(r, c) for r, c in turns)]
    keyer = Keyer()
    rkey = keyer.replay_key(messages, None)
    assert re.fullmatch("[0-9a-f]{64}", rkey)
    assert Keyer().replay_key([dict(m) for m in messages], None) == rkey  # same request, same key
    key = keyer.cache_key(rkey, "gpt-4o-mini", {"temperature": 0}, 7)
    assert re.fullmatch("[0-9a-f]{64}", key) and key != rkey


@FUZZ
@given(payload, st.integers(1, 999), st.integers(1, 999))
def test_keys_ignore_cell_numbers_and_see_the_rest(value: str, first: int, second: int) -> None:
    def key(content: str) -> str:
        return Keyer().replay_key([message("user", content)], None)

    assert key(f"Cell In[{first}], {value}") == key(f"Cell In[{second}], {value}")
    assert key(value + "!") != key(value + "?")


def test_a_lone_surrogate_and_its_written_escape_are_different_requests() -> None:
    """The surrogate is hashed as an escape, but the JSON around it keeps them apart."""
    keyer = Keyer()
    lone = keyer.replay_key([message("user", "file \udcff.csv")], None)
    written = keyer.replay_key([message("user", "file \\udcff.csv")], None)
    assert lone != written


# -- the recorder ---------------------------------------------------------------------------


def events(task: str, output: str, reply: str) -> list[Any]:
    """One step's events, every text field holding the fuzzed text."""
    messages = (message("system", "You help."), message("user", task))
    error = StepError("ValueError", output[:200], (("<cell>", 1, "<module>"),), output)
    outcome = StepOutcome(
        ok=False,
        digest=output,
        error=error,
        changes=output[:100],
        outputs=({"output_type": "stream", "name": "stdout", "text": output},),
    )
    return [
        TaskStarted(task=task, step=0, context=output),
        RequestSent(step=1, messages=messages),
        ReplyReceived(
            step=1,
            reply=ChatReply(content=reply, model="gpt-4o-mini"),
            blocks=(CodeBlock("python", reply),),
            final=False,
        ),
        CodeRan(step=1, index=0, block=CodeBlock("python", reply), outcome=outcome),
        RequestSent(step=2, messages=(*messages, message("assistant", reply))),
        Finished(reason="terminated", message=output[:50]),
    ]


def recorder(store: Store | None = None) -> Recorder:
    recording = Recorder()
    redactor = Redactor.build(env={}, values=[SECRET])
    recording.begin(store=store, model="gpt-4o-mini", redactor=redactor)
    return recording


@FUZZ
@given(payload, payload, payload)
def test_the_recorder_writes_anything_encodable_and_hidden(task: str, output: str, reply: str):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "rec.jsonl"
        recording = recorder(Store(path))
        for event in events(task, output, reply):
            recording(event)
        raw = path.read_bytes()
        kept = read_records(path, recording.conversation_id)
    assert [r.event for r in recording.records] == [
        "task",
        "request",
        "reply",
        "code",
        "request",
        "finished",
    ]
    text = raw.decode("utf-8")  # strict: every line written is UTF-8
    assert SECRET not in text and text.count("\n") == 6
    # Read back as kept in memory (a lone surrogate was written as its JSON escape).
    assert kept == recording.records
    # The second request carries only what was added since the first.
    assert recording.records[4].base == 2 and len(recording.records[4].messages) == 1


def test_a_recording_of_lone_surrogates_and_ansi_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "rec.jsonl"
    recording = recorder(Store(path))
    odd = bytes(range(256)).decode("utf-8", "surrogateescape") + "\x1b[31mred\x1b[0m" + SECRET
    for event in events(odd, odd * 3, odd):
        recording(event)
    raw = path.read_bytes().decode("utf-8")
    kept = read_records(path, recording.conversation_id)
    assert len(kept) == 6 and kept == recording.records
    assert SECRET not in raw and "\\udcff" in raw  # the lone surrogate as its escape
    assert kept[0].task.startswith(odd[:200])  # and back as itself


# -- the digest -------------------------------------------------------------------------------


@contextlib.contextmanager
def captured(limit: int) -> Iterator[StepCapture]:
    """A StepCapture around Python writes (no IPython hooks), the real stream a buffer."""
    with (
        contextlib.redirect_stdout(io.StringIO()),
        contextlib.redirect_stderr(io.StringIO()),
        StepCapture(None, max_output_chars=limit, python=False) as capture,
    ):
        yield capture


@FUZZ
@given(st.lists(payload, max_size=8), st.integers(0, 3000))
def test_the_digest_of_anything_is_bounded_and_encodable(writes: list[str], limit: int) -> None:
    with captured(limit) as capture:
        for piece_ in writes:
            sys.stdout.write(piece_)
            sys.stderr.write(piece_[::-1])
    whole = "".join(writes)
    for digest in (capture.stdout, capture.stderr):
        encodes(digest)
        # Bounded: the limit, the cut's marker, and escapes of the surrogates kept.
        assert len(digest) <= 6 * limit + 60
    for output in capture.outputs:
        encodes(output)
    if len(whole) <= limit and "\udc1b" not in whole:
        # Uncut, nothing but CSI colour codes was removed (a cut may split one).
        plain = re.sub(r"\x1b\[[0-9;?]*[ -/]*[@-~]", "", whole)
        assert capture.stdout == plain.encode("utf-8", "backslashreplace").decode("utf-8")
    assert capture.printed(0) == len(whole)


@FUZZ
@given(st.lists(st.text(any_char, max_size=5000), max_size=40), st.integers(0, 3000))
@example(["0"], 1)  # found by Hypothesis: a limit of 1 kept nothing, not even the one character
@example(["ab", "c" * 70_000, "de"], 3)  # an odd limit, the tail over two chunks
@example(["a" * 70_000, "bcdef"], 14)  # a last chunk shorter than the tail's half
def test_head_tail_keeps_the_ends_of_anything(writes: list[str], limit: int) -> None:
    sink = HeadTail(limit)
    for piece_ in writes:
        sink.write(piece_)
    whole = "".join(writes)
    out = sink.text()
    assert sink.total == len(whole)
    if len(whole) <= limit:
        assert out == whole
        return
    head, _, rest = out.partition("\n«")
    cut, _, tail = rest.partition(" characters cut here»\n")
    assert head == whole[: limit // 2] and whole.endswith(tail)
    assert len(head) + len(tail) <= limit and int(cut) == len(whole) - len(head) - len(tail)


def test_the_digest_drops_terminal_hyperlinks() -> None:
    link = "\x1b]8;;https://example.org\x1b\\the docs\x1b]8;;\x1b\\ and \x1b]0;title\x07done"
    with captured(8000) as capture:
        print(link)
    assert capture.stdout == "the docs and done\n"


# -- linear time ------------------------------------------------------------------------------


def _seconds(function: Callable[[str], object], value: str, runs: int = 3) -> float:
    """CPU seconds of the best of a few runs, the collector off (see test_fuzz_text)."""
    best = float("inf")
    gc.collect()
    gc.disable()
    try:
        for _ in range(runs):
            started = time.process_time()
            function(value)
            best = min(best, time.process_time() - started)
    finally:
        gc.enable()
    return best


def _key(value: str) -> str:
    return Keyer().replay_key([message("system", "You help."), message("user", value)], None)


def _record(value: str) -> None:
    recording = recorder()
    for event in events(value, value, value):
        recording(event)


def _digest(value: str) -> None:
    with captured(8000) as capture:
        for start in range(0, len(value), 50_000):
            sys.stdout.write(value[start : start + 50_000])
    capture.stdout.encode("utf-8")


def _head_tail(value: str) -> None:
    sink = HeadTail(8000)
    for start in range(0, len(value), 1000):  # many short writes, as a loop prints
        sink.write(value[start : start + 1000])
    sink.text()


UNITS = {
    "unbroken": "x",
    "base64": "QUJDRA+/",
    "path-like": "a/b",
    "separators": "/\\",
    "addresses": "at 0x",
    "cell numbers": "Cell In[",
    "python dirs": "/lib/python3.",
    "packages": "-packages",
    "ANSI": "\x1b[1;31mred\x1b[0m",
    "lone surrogates": "\udcff",
    "secret openers": "sk-",
}


# Characters of the small input (the large one is 10x): the recorder and the keys see the
# text several times over (task, context, outputs, traceback, code, the next request).
SMALL = {_key: 20_000, _record: 20_000}


@pytest.mark.slow  # growing sizes, timed: a benchmark of its kind
@pytest.mark.parametrize("unit", sorted(UNITS))
@pytest.mark.parametrize(
    "function",
    [normalize_volatile, _key, _record, _digest, _head_tail],
    ids=["normalize_volatile", "replay key", "recorder", "digest", "head_tail"],
)
def test_handling_one_long_line_is_linear(unit: str, function: Callable[[str], object]) -> None:
    chars = SMALL.get(function, 100_000)
    small = UNITS[unit] * (chars // len(UNITS[unit]))
    large = UNITS[unit] * (10 * chars // len(UNITS[unit]))
    ratio = _seconds(function, large) / max(_seconds(function, small, runs=5), 1e-3)
    # 10x the input: ~10x the time; a quadratic pass would be ~100x. Generous: shared machine.
    assert ratio < 30, f"x{ratio:.0f} for 10x the input"


def test_escaping_lone_surrogates_runs_at_codec_speed() -> None:
    from agent_magic.text import escape_surrogates

    value = "file \udcff" * 200_000
    assert escape_surrogates(value) == value.encode("utf-8", "backslashreplace").decode("utf-8")
    ours = _seconds(escape_surrogates, value)
    codec = _seconds(lambda v: v.encode("utf-8", "backslashreplace").decode("utf-8"), value)
    assert ours < 10 * max(codec, 1e-3), f"x{ours / max(codec, 1e-3):.0f} the codec's time"
