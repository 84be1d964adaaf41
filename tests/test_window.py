"""agent_magic.window: the token estimate and fitting a conversation into a context window.

The conversations here are built in the shapes the loop writes (``conversation.rules.step_report``
and ``user_content`` make the step results), labelled as the loop will label
them, and grown one turn at a time as a session grows.
"""

from __future__ import annotations

import copy
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent_magic.conversation import DEFAULT_SYSTEM_PROMPT, StepOutcome
from agent_magic.conversation.rules import step_report, user_content
from agent_magic.window import (
    IMAGE_TOKENS,
    KINDS,
    MESSAGE_OVERHEAD,
    NAMESPACE_HEADER,
    REQUEST_OVERHEAD,
    Fitted,
    estimate_tokens,
    fit,
    tools_tokens,
)

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40  # 10 KB: its base64 is not text


@dataclass
class Session:
    """A history as the conversation loop keeps it, with the kinds it will keep beside it."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    calls: int = 0

    def add(self, kind: str, message: dict[str, Any]) -> Session:
        self.messages.append(message)
        self.kinds.append(kind)
        return self

    def system(self, text: str = DEFAULT_SYSTEM_PROMPT) -> Session:
        return self.add("system", {"role": "system", "content": text})

    def task(self, text: str, variables: int = 0) -> Session:
        content = text
        if variables:
            lines = "\n".join(
                f"v{i}: list len={i}: [{', '.join(map(str, range(i)))}]" for i in range(variables)
            )
            content += f"\n\n{NAMESPACE_HEADER}\n{lines}"
        return self.add("task", {"role": "user", "content": content})

    def step(
        self,
        code: str,
        printed: str = "",
        *,
        ok: bool = True,
        images: int = 0,
        tools: bool = False,
    ) -> Session:
        outcome = StepOutcome(ok=ok, digest=printed, images=(("image/png", PNG),) * images)
        report = step_report(outcome)
        if not tools:
            self.add("reply", {"role": "assistant", "content": f"Next:\n```python\n{code}\n```"})
            return self.add(
                "output", {"role": "user", "content": user_content(report, list(outcome.images))}
            )
        self.calls += 1
        call_id = f"call_{self.calls}"
        self.add(
            "reply",
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {
                        "id": call_id,
                        "type": "function",
                        "function": {"name": "run_python", "arguments": json.dumps({"code": code})},
                    }
                ],
            },
        )
        self.add("output", {"role": "tool", "tool_call_id": call_id, "content": report})
        if images:
            self.add("output", {"role": "user", "content": user_content("", list(outcome.images))})
        return self

    def feedback(self, text: str) -> Session:
        return self.add("feedback", {"role": "user", "content": text})

    def fit(self, window: int = 8192, reply_room: int = 1024, **kw: Any) -> Fitted:
        return fit(self.messages, self.kinds, window=window, reply_room=reply_room, **kw)


def numbers(count: int, seed: int = 0) -> str:
    return "\n".join(f"{(seed * 7919 + i * 104729) % 100003 / 7:.6f}" for i in range(count))


def assert_tool_pairs(messages: list[dict[str, Any]]) -> None:
    """Every tool message answers a call of the assistant message before it, and every
    call is answered: what the chat-completions API insists on."""
    open_calls: set[str] = set()
    for message in messages:
        if message.get("role") == "assistant":
            assert not open_calls, f"calls left unanswered: {open_calls}"
            open_calls = {call["id"] for call in message.get("tool_calls") or ()}
        elif message.get("role") == "tool":
            assert message["tool_call_id"] in open_calls, "a tool message without its call"
            open_calls.discard(message["tool_call_id"])
        else:
            assert not open_calls, f"calls left unanswered: {open_calls}"
    assert not open_calls


# -- the estimate ---------------------------------------------------------------------


def test_the_estimate_counts_text_messages_and_requests() -> None:
    assert estimate_tokens("") == 0
    text = "print(sum(range(101)))"
    assert estimate_tokens(text) > len(text) / 5
    message = {"role": "user", "content": text}
    assert estimate_tokens(message) == estimate_tokens(text) + MESSAGE_OVERHEAD
    assert estimate_tokens([message, message]) == 2 * estimate_tokens(message) + REQUEST_OVERHEAD


def test_numbers_cost_more_than_prose_of_the_same_length() -> None:
    # Qwen2.5's and SmolLM2's tokenizers make each digit a token.
    prose = "the quick brown fox jumps over the lazy dog " * 20
    digits = "1234567890" * 88
    assert len(prose) == len(digits)
    assert estimate_tokens(digits) >= len(digits)
    assert estimate_tokens(prose) < len(prose) / 2.5


def test_an_image_is_a_fixed_cost_whatever_its_size() -> None:
    small = {"role": "user", "content": user_content("a figure", [("image/png", PNG[:100])])}
    large = {"role": "user", "content": user_content("a figure", [("image/png", PNG * 50)])}
    assert estimate_tokens(small) == estimate_tokens(large)
    assert estimate_tokens(large) == MESSAGE_OVERHEAD + estimate_tokens("a figure") + IMAGE_TOKENS


def test_tool_calls_and_tool_definitions_are_counted() -> None:
    from agent_magic.conversation import RUN_PYTHON_TOOL, RUN_SHELL_TOOL

    bare = {"role": "assistant", "content": ""}
    called = Session().step("x = 1\n" * 50, tools=True).messages[0]
    assert estimate_tokens(called) > estimate_tokens(bare) + 50
    assert tools_tokens([RUN_PYTHON_TOOL, RUN_SHELL_TOOL]) > 50
    assert tools_tokens(None) == 0


def test_odd_text_never_raises_and_a_megabyte_is_counted_quickly() -> None:
    assert estimate_tokens("\udcff lone surrogate") > 0
    assert estimate_tokens({"role": "user", "content": None}) == MESSAGE_OVERHEAD
    assert estimate_tokens({"role": "user", "content": [{"type": "odd", "x": 1}, "x"]}) > 0
    big = "A" * 1_000_000 + "\n" + "é" * 100_000
    started = time.perf_counter()
    estimate_tokens(big)
    assert time.perf_counter() - started < 2.0


@given(st.text(max_size=300), st.text(max_size=300))
def test_the_estimate_of_two_texts_is_about_the_sum_of_theirs(a: str, b: str) -> None:
    joined = estimate_tokens(a + b)
    assert (
        estimate_tokens(a) + estimate_tokens(b) - 1
        <= joined
        <= (estimate_tokens(a) + estimate_tokens(b))
    )


# -- fitting: what is kept --------------------------------------------------------------


def test_a_history_that_fits_is_sent_as_it_is() -> None:
    session = Session().system().task("sum 1..100", variables=3).step("print(5050)", "5050")
    fitted = session.fit()
    assert fitted.messages == session.messages
    assert all(a is b for a, b in zip(fitted.messages, session.messages, strict=True))
    assert fitted.kinds == tuple(session.kinds)
    assert not fitted.trimmed and fitted.folded == 0 and fitted.note == "" and fitted.fits
    assert fitted.estimate == estimate_tokens(session.messages)


def test_older_outputs_are_shortened_before_any_turn_is_folded() -> None:
    session = Session().system("Be brief.").task("explore")
    for i in range(8):
        session.step(f"print(data[{i}])", numbers(40, i))
    fitted = session.fit(window=4096, reply_room=512)
    assert fitted.trimmed and fitted.fits and fitted.folded == 0
    assert fitted.shortened >= 4
    assert fitted.estimate <= 4096 - 512
    outputs = [m for m, k in zip(fitted.messages, fitted.kinds, strict=True) if k == "output"]
    assert "characters cut here to fit the context window" in outputs[0]["content"]
    assert outputs[0]["content"].startswith("It ran successfully.")  # the head is kept
    assert outputs[-1] == session.messages[-1]  # the latest step whole
    assert "Shortened" in fitted.note and "4096-token" in fitted.note


def test_older_turns_fold_into_one_marked_summary_with_their_gist() -> None:
    session = Session().system("Be brief.").task("load and clean the data", variables=5)
    session.step("import pandas as pd", "")
    session.step("df = pd.read_csv('x.csv')", "Traceback: FileNotFoundError", ok=False)
    session.feedback("the file is data.csv")
    session.step("df = pd.read_csv('data.csv')", numbers(30), tools=True)
    for i in range(40):
        session.step(f"df.describe(include={i})", numbers(30, i))
    fitted = session.fit(window=4096, reply_room=512)
    assert fitted.fits and fitted.folded > 0
    summaries = [m for m, k in zip(fitted.messages, fitted.kinds, strict=True) if k == "summary"]
    assert len(summaries) == 1
    text = summaries[0]["content"]
    assert text.startswith(f"[{fitted.folded} earlier messages folded to fit the context window")
    assert text.endswith("]")
    assert "- ran `import pandas as pd`: ok" in text
    assert "- ran `df = pd.read_csv('x.csv')`: failed; the user said: the file is data.csv" in text
    assert "- ran `df = pd.read_csv('data.csv')`: ok" in text  # from the tool call
    # The system prompt and the task come first, untouched; the latest step ends it.
    assert fitted.messages[:2] == session.messages[:2]
    assert fitted.kinds[:3] == ("system", "task", "summary")
    assert fitted.messages[-2:] == session.messages[-2:]
    assert "Folded" in fitted.note


def test_the_latest_task_is_kept_and_older_tasks_lose_their_variables() -> None:
    session = Session().system("Be brief.")
    for cell in range(12):
        session.task(f"cell {cell}: plot column {cell}", variables=30)
        for i in range(3):
            session.step(f"plot({cell}, {i})", numbers(40, cell * 10 + i))
    session.task("cell 12: summarise everything", variables=8)
    fitted = session.fit(window=8192, reply_room=1024)
    assert fitted.fits and fitted.folded > 0
    assert fitted.messages[-1] == session.messages[-1]  # the latest task, as the loop sent it
    older = [
        m["content"] for m, k in zip(fitted.messages, fitted.kinds, strict=True) if k == "task"
    ]
    # Trims shorten every older message at once, so the oldest kept ones have no summary.
    assert NAMESPACE_HEADER not in older[0]
    assert any(
        "context sent with this task (variables, files, cells) is left out" in t for t in older[:-1]
    )
    summary = next(m for m, k in zip(fitted.messages, fitted.kinds, strict=True) if k == "summary")
    assert "- task: cell 0: plot column 0" in summary["content"]


def test_a_long_cell_keeps_its_task_before_the_summary_of_its_own_steps() -> None:
    session = Session().system("Be brief.").task("old work").step("a = 1", "1")
    session.task("the long task", variables=4)
    for i in range(80):
        session.step(f"step_{i}()", numbers(30, i))
    fitted = session.fit(window=4096, reply_room=512)
    task_at = fitted.kinds.index("task")
    kinds = fitted.kinds
    assert fitted.messages[task_at]["content"].startswith("the long task")
    # The old cell folds before the task; this cell's early steps fold after it.
    assert kinds[task_at - 1] == "summary" and kinds[task_at + 1] == "summary"
    after = fitted.messages[task_at + 1]["content"]
    assert "step_0()" in after and "old work" not in after


def test_old_images_are_left_out_and_the_latest_kept() -> None:
    session = Session().system("Be brief.").task("plot")
    for i in range(8):
        session.step(f"plot({i})", numbers(80, i), images=1, tools=i % 2 == 1)
    fitted = session.fit(window=6000, reply_room=1000)
    assert fitted.fits
    with_images = [
        i
        for i, m in enumerate(fitted.messages)
        if isinstance(m.get("content"), list)
        and any(p.get("type") == "image_url" for p in m["content"])
    ]
    assert with_images == [len(fitted.messages) - 1]
    assert any("image left out" in str(m.get("content")) for m in fitted.messages)
    assert_tool_pairs(fitted.messages)


def test_one_huge_message_is_cut_only_as_far_as_the_window_requires() -> None:
    session = Session().system("Be brief.").task("look at everything", variables=400)
    session.step("print(everything)", numbers(3000))
    fitted = session.fit(window=2048, reply_room=512)
    assert fitted.fits and fitted.estimate <= 2048 - 512
    task, output = fitted.messages[1]["content"], fitted.messages[-1]["content"]
    assert task.startswith("look at everything") and "more lines cut here to fit" in task
    assert output.startswith("It ran successfully.") and "characters cut here to fit" in output
    assert output.rstrip().endswith(numbers(3000).splitlines()[-1])  # the last line stays
    # Cut to the window, not to a fixed share of it: the request uses what room there is.
    assert fitted.estimate > (2048 - 512) * 0.9


def test_nothing_is_cut_while_the_request_fits() -> None:
    # A 2,000-token output in a 4,096-token window: per-message caps cut such outputs
    # (and tracebacks' last lines) although the request had room to spare.
    session = Session().system("Be brief.").task("load it", variables=10)
    session.step("print(df)", numbers(120))
    fitted = session.fit(window=4096, reply_room=1024)
    assert estimate_tokens([session.messages[-1]]) > (4096 - 1024) // 4
    assert fitted.messages == session.messages and not fitted.trimmed


def test_a_traceback_keeps_its_last_line_and_failing_line_when_cut() -> None:
    frames = "".join(f"   {i} in frame_{i}(data)\n" for i in range(400))
    printed = (
        "".join(f"row {i}: {i * 3.5}\n" for i in range(200))
        + "---------------------------------------------------------------------------\n"
        + "KeyError                                  Traceback (most recent call last)\n"
        + "Cell In[3], line 2\n      1 df = pd.read_csv('sales.csv')\n"
        + "----> 2 total = df['country'].sum()\n"
        + frames
        + "KeyError: 'country'"
    )
    session = Session().system("Be brief.").task("sum per country")
    session.step("total = df['country'].sum()", printed, ok=False)
    fitted = session.fit(window=1024, reply_room=256)
    output = fitted.messages[-1]["content"]
    assert fitted.fits and "characters cut here to fit" in output
    assert output.rstrip().endswith("KeyError: 'country'")
    assert "----> 2 total = df['country'].sum()" in output


def test_an_older_replys_code_is_left_out_whole_never_cut_inside() -> None:
    long_code = "\n".join(f"col_{i} = frame['c{i}'].astype(float)" for i in range(120))
    session = Session().system("Be brief.").task("convert the columns")
    session.add("reply", {"role": "assistant", "content": f"Convert:\n```python\n{long_code}\n```"})
    session.add("output", {"role": "user", "content": "It ran successfully.\n(no output)"})
    for i in range(40):
        session.step(f"print({i})", numbers(40, i))
    fitted = session.fit(window=4096, reply_room=512)
    replies = [m["content"] for m, k in zip(fitted.messages, fitted.kinds, strict=True)]
    shortened = [r for r in replies if isinstance(r, str) and r.startswith("Convert:")]
    for reply in shortened:
        assert "col_0" not in reply or long_code in reply  # whole, or not at all
        assert "characters cut" not in reply


def test_when_even_the_latest_step_does_not_fit_it_is_shortened_and_said() -> None:
    system = "Follow these rules carefully. " * 100
    session = Session().system(system).task("look at everything", variables=400)
    session.step("print(everything)", numbers(3000))
    fitted = session.fit(window=2048, reply_room=512)
    assert estimate_tokens(system) > 700
    assert fitted.fits and fitted.estimate <= 2048 - 512
    assert "did not fit the 2048-token context window" in fitted.note
    assert fitted.messages[0]["content"] == system
    assert fitted.messages[1]["content"].startswith("look at everything")
    assert fitted.messages[-1]["content"].startswith("It ran successfully.")


def test_a_window_too_small_for_the_system_prompt_says_it_could_not_fit() -> None:
    session = Session().system(DEFAULT_SYSTEM_PROMPT * 10).task("hi").step("x", "1")
    fitted = session.fit(window=300, reply_room=100)
    assert fitted.trimmed
    assert "did not fit the 300-token context window" in fitted.note
    if not fitted.fits:
        assert "still about" in fitted.note


def test_a_fitted_history_can_be_fitted_again() -> None:
    # A loop that keeps the fitted messages as its history passes summaries back in.
    session = Session().system("Be brief.").task("work")
    for i in range(60):
        session.step(f"f({i})", numbers(40, i))
    first = session.fit(window=4096, reply_room=512)
    kept = Session(list(first.messages), list(first.kinds))
    for i in range(60, 120):
        kept.step(f"f({i})", numbers(40, i))
    again = kept.fit(window=4096, reply_room=512)
    assert again.fits and again.estimate <= 4096 - 512
    summary = next(m for m, k in zip(again.messages, again.kinds, strict=True) if k == "summary")
    assert "f(0)" in summary["content"] or "more ..." in summary["content"]


def test_bad_arguments_are_refused_in_one_line() -> None:
    session = Session().system().task("x")
    with pytest.raises(ValueError, match="2 kinds for 1 messages"):
        fit(session.messages[:1], session.kinds, window=100, reply_room=10)
    with pytest.raises(ValueError, match="unknown message kinds"):
        fit(session.messages, ["system", "user"], window=100, reply_room=10)  # type: ignore[list-item]
    with pytest.raises(ValueError, match="window must be positive"):
        fit(session.messages, session.kinds, window=0, reply_room=10)


# -- fitting: random histories --------------------------------------------------------

step_strategy = st.fixed_dictionaries(
    {
        "lines": st.integers(0, 80),
        "ok": st.booleans(),
        "images": st.integers(0, 2),
        "tools": st.booleans(),
        "feedback": st.one_of(st.none(), st.text(min_size=1, max_size=80)),
        "code": st.text(min_size=1, max_size=200),
    }
)
cell_strategy = st.tuples(st.integers(0, 60), st.lists(step_strategy, max_size=10))


def build(cells: list[tuple[int, list[dict[str, Any]]]], system: str) -> Session:
    session = Session().system(system)
    for number, (variables, steps) in enumerate(cells):
        session.task(f"task {number}", variables=variables)
        for index, step in enumerate(steps):
            session.step(
                step["code"],
                numbers(step["lines"], number * 100 + index),
                ok=step["ok"],
                images=step["images"],
                tools=step["tools"],
            )
            if step["feedback"]:
                session.feedback(step["feedback"])
    return session


@pytest.mark.slow  # fuzz: hundreds of generated inputs, 5-20 s
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cells=st.lists(cell_strategy, min_size=1, max_size=5),
    window=st.sampled_from([1024, 2048, 4096, 8192, 32768]),
    system=st.sampled_from(["Be brief.", DEFAULT_SYSTEM_PROMPT]),
    tools=st.booleans(),
)
def test_any_history_fits_keeps_what_must_be_kept_and_is_a_valid_request(
    cells: list[tuple[int, list[dict[str, Any]]]], window: int, system: str, tools: bool
) -> None:
    from agent_magic.conversation import RUN_PYTHON_TOOL, RUN_SHELL_TOOL

    session = build(cells, system)
    before = copy.deepcopy(session.messages)
    reply_room = min(1024, window // 4)
    defs = [RUN_PYTHON_TOOL, RUN_SHELL_TOOL] if tools else None
    fitted = session.fit(window=window, reply_room=reply_room, tools=defs)

    assert session.messages == before  # never mutated
    assert fitted == session.fit(window=window, reply_room=reply_room, tools=defs)
    assert len(fitted.kinds) == len(fitted.messages)
    assert set(fitted.kinds) <= set(KINDS)
    assert fitted.estimate == estimate_tokens(fitted.messages) + tools_tokens(defs)
    assert fitted.fits == (fitted.estimate <= window - reply_room)
    if system == "Be brief." and window >= 2048:
        assert fitted.fits
    if not fitted.fits:
        assert "did not fit" in fitted.note
    assert_tool_pairs(fitted.messages)

    # The system prompt and the latest task are there (shortened only if nothing else
    # would fit, and then the note says so), and the history ends as it did.
    assert fitted.kinds[0] == "system"
    last_task = max(i for i, k in enumerate(session.kinds) if k == "task")
    task_text = session.messages[last_task]["content"].split("\n\n" + NAMESPACE_HEADER)[0]
    kept_tasks = [
        m["content"] for m, k in zip(fitted.messages, fitted.kinds, strict=True) if k == "task"
    ]
    assert kept_tasks and kept_tasks[-1].startswith(task_text[:5])
    assert fitted.kinds[-1] == session.kinds[-1]
    last_reply = max((i for i, k in enumerate(session.kinds) if k == "reply"), default=None)
    if last_reply is not None and last_reply > last_task:
        # The latest turn is all there: its messages at most capped to a share of the
        # window (and then their heads kept), unless nothing else would fit.
        tail = len(session.messages) - last_reply
        assert fitted.kinds[-tail:] == tuple(session.kinds[last_reply:])
        for sent, kept in zip(fitted.messages[-tail:], session.messages[last_reply:], strict=True):
            assert sent.get("tool_calls") == kept.get("tool_calls")
            if "did not fit" not in fitted.note:
                cap = (window - reply_room - tools_tokens(defs)) // 4
                assert sent == kept or estimate_tokens(kept) > cap

    for message, kind in zip(fitted.messages, fitted.kinds, strict=True):
        if kind == "summary":
            assert message["content"].startswith("[") and "folded to fit" in message["content"]
    if fitted.folded:
        assert "summary" in fitted.kinds and fitted.trimmed


# -- fitting: growing sessions ---------------------------------------------------------


def grow(session: Session, steps: int, window: int, reply_room: int, seed: int = 0):
    """Add a step at a time, fitting before each request as the loop will."""
    for i in range(steps):
        printed = numbers((i * 37 + seed) % 90 + 1, i + seed)
        session.step(f"x_{i} = compute({i})", printed, ok=i % 7 != 3, tools=i % 5 == 0)
        yield session.fit(window=window, reply_room=reply_room)


def prefix_kept(before: Fitted, after: Fitted) -> bool:
    return after.messages[: len(before.messages)] == before.messages


@pytest.mark.parametrize("window", [8192, 32768])
def test_a_growing_session_keeps_its_prefix_between_rare_trims(window: int) -> None:
    session = Session().system().task("a long analysis", variables=20)
    reply_room = min(1024, window // 4)
    previous = None
    changes = 0
    for fitted in grow(session, 200, window, reply_room):
        assert fitted.fits and fitted.estimate <= window - reply_room
        if previous is not None:
            # Between trims a request only appends to the one before.
            assert prefix_kept(previous, fitted) == (fitted.trims == previous.trims)
            changes += not prefix_kept(previous, fitted)
        previous = fitted
    # Each trim cuts to 65% of the budget, so several turns pass between trims.
    assert 0 < changes < 200 // 3


def test_a_small_window_still_fits_every_request() -> None:
    # 2048 tokens with the default system prompt: what is always kept is more than the
    # low-water mark, so most turns trim; every request still fits.
    session = Session().system().task("a long analysis", variables=20)
    for fitted in grow(session, 200, 2048, 512):
        assert fitted.fits and fitted.estimate <= 2048 - 512
        assert_tool_pairs(fitted.messages)


def test_fifty_cells_stay_within_the_window_and_keep_their_prefix_mostly() -> None:
    session = Session().system()
    window, reply_room = 8192, 1024
    previous = None
    changes = requests = 0
    largest = 0
    for cell in range(50):
        session.task(f"cell {cell}: next analysis", variables=40)
        for fitted in grow(session, 4, window, reply_room, seed=cell):
            requests += 1
            largest = max(largest, fitted.estimate)
            if previous is not None:
                changes += not prefix_kept(previous, fitted)
            previous = fitted
    assert largest <= window - reply_room
    # Messages are sent whole while they fit (no per-message caps), so the 40-variable
    # summaries fill the window sooner and trims come more often than with the caps.
    assert changes < requests // 2


def test_two_hundred_steps_fit_in_milliseconds() -> None:
    session = Session().system().task("work", variables=20)
    for _ in grow(session, 200, 8192, 1024):
        pass
    started = time.perf_counter()
    for _ in range(10):
        session.fit(window=8192, reply_room=1024)
    assert (time.perf_counter() - started) / 10 < 1.0  # ~3 ms here; loose for busy machines


def test_the_benchmark_runs_at_small_sizes() -> None:
    bench = Path(__file__).resolve().parent.parent / "bench"
    sys.path.insert(0, str(bench))
    try:
        import bench_window
    finally:
        sys.path.remove(str(bench))
    report = bench_window.run(steps=6, cells=2, sizes=(20,), runs=1)
    assert report["fit"][20]["median_ms"] > 0
    for rows in report["sessions"].values():
        for row in rows:
            assert row["requests"] > 0 and row["max_estimate"] <= row["budget"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    steps=st.lists(step_strategy, min_size=5, max_size=40),
    window=st.sampled_from([1024, 4096, 8192]),
    new_cell_every=st.integers(2, 50),
)
def test_between_trims_each_request_only_appends_to_the_one_before(
    steps: list[dict[str, Any]], window: int, new_cell_every: int
) -> None:
    session = Session().system().task("start", variables=10)
    reply_room = min(1024, window // 4)
    previous = session.fit(window=window, reply_room=reply_room)
    for index, step in enumerate(steps):
        if index and index % new_cell_every == 0:
            session.task(f"cell {index}", variables=10)
        session.step(
            step["code"], numbers(step["lines"], index), ok=step["ok"], tools=step["tools"]
        )
        if step["feedback"]:
            session.feedback(step["feedback"])
        fitted = session.fit(window=window, reply_room=reply_room)
        assert fitted.fits or "did not fit" in fitted.note
        assert fitted.trims >= previous.trims
        if "did not fit" not in fitted.note + previous.note:
            # The prefix changes exactly at the replay's trims.
            assert prefix_kept(previous, fitted) == (fitted.trims == previous.trims)
        previous = fitted


# -- fitting: resuming the replay the fit before kept ----------------------------------


def fit_afresh(session: Session, **kw: Any) -> Fitted:
    """The fit from the start: the kept replays set aside for the call, not used."""
    from agent_magic.window import fit as fit_module  # the module (the name is the function)

    module = sys.modules[fit_module.__module__]
    kept = module._REPLAYS
    module._REPLAYS = module._Replays()
    try:
        return session.fit(**kw)
    finally:
        module._REPLAYS = kept


edit_strategy = st.one_of(
    st.tuples(st.just("step"), step_strategy),
    st.tuples(st.just("feedback"), st.text(min_size=1, max_size=200)),
    st.tuples(st.just("task"), st.integers(0, 40)),
    st.tuples(st.just("edit"), st.integers(0, 10**6)),  # an earlier message replaced
    st.tuples(st.just("truncate"), st.integers(0, 10**6)),
    st.tuples(st.just("copy"), st.just(0)),  # a new list holding the same dicts
    st.tuples(st.just("refit"), st.just(0)),  # the same history fitted again
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    edits=st.lists(edit_strategy, min_size=1, max_size=60),
    windows=st.lists(st.sampled_from([512, 1024, 2048, 4096, 8192]), min_size=1, max_size=3),
    tools=st.booleans(),
)
def test_a_fit_that_resumes_the_kept_replay_is_the_fit_from_the_start(
    edits: list[tuple[str, Any]], windows: list[int], tools: bool
) -> None:
    from agent_magic.conversation import RUN_PYTHON_TOOL, RUN_SHELL_TOOL

    defs = [RUN_PYTHON_TOOL, RUN_SHELL_TOOL] if tools else None
    session = Session().system().task("start", variables=10)
    for number, (edit, value) in enumerate(edits):
        if edit == "step":
            session.step(
                value["code"],
                numbers(value["lines"], number),
                ok=value["ok"],
                images=value["images"],
                tools=value["tools"],
            )
        elif edit == "feedback":
            session.feedback(value)
        elif edit == "task":
            session.task(f"cell {number}", variables=value)
        elif edit == "edit":
            at = value % len(session.messages)
            shorter = str(session.messages[at].get("content"))[: value % 50]
            session.messages[at] = {**session.messages[at], "content": shorter}
        elif edit == "truncate" and len(session.messages) > 2:
            at = 2 + value % (len(session.messages) - 2)
            del session.messages[at:], session.kinds[at:]
        elif edit == "copy":
            session.messages = list(session.messages)
        window = windows[number % len(windows)]
        kw = {"window": window, "reply_room": min(1024, window // 4), "tools": defs}
        before = copy.deepcopy(session.messages)
        fitted = session.fit(**kw)
        assert fitted == fit_afresh(session, **kw)
        assert session.messages == before  # never mutated


def test_a_fit_after_a_step_replays_only_the_new_messages(monkeypatch) -> None:
    from agent_magic.window import fit as fit_module

    module = sys.modules[fit_module.__module__]
    session = Session().system().task("work", variables=20)
    for _ in grow(session, 150, 4096, 1024):
        pass
    seen: list[int] = []
    original = module.full_form

    def counted(message: Any, kind: str, caps: Any) -> Any:
        seen.append(id(message))
        return original(message, kind, caps)

    monkeypatch.setattr(module, "full_form", counted)
    session.step("x = 1", "1")
    fitted = session.fit(window=4096, reply_room=1024)
    assert seen == [id(m) for m in session.messages[-2:]]
    assert fitted.folded and fitted == fit_afresh(session, window=4096, reply_room=1024)
    seen.clear()
    session.messages[1] = {**session.messages[1]}  # an equal dict, but another one
    assert session.fit(window=4096, reply_room=1024) == fitted
    assert len(seen) == len(session.messages)  # replayed from the start
