"""Why a replay no longer matches its recording: the step, the message and the first
line that changed, in one line (:meth:`.store.Store.explain_drift` asks)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ..text import canonical, normalized
from .forms import message_text
from .keys import normalize
from .records import RequestRecord


def explain_drift(
    requests: list[RequestRecord],
    step: int,
    messages: list[Mapping[str, Any]],
    *,
    path: Path | None,
    exists: bool,
    empty: bool,
) -> str:
    """One line saying which step of a replay no longer matches the recording at
    ``path`` (whose request records are ``requests``; ``empty``: no requests nor
    replies in it), and how."""
    fix = "re-run without replay (and with a model) to record it again"
    where = f"replay: step {step} does not match the recording"
    if empty:
        if path is not None and not exists:
            return f"replay: no recording at {path}; record it first without replay"
        return f"replay: the recording {path} has no conversations; {fix}"
    seen: dict[int, str] = {}

    def canon(message: Any) -> str:
        if id(message) not in seen:
            seen[id(message)] = canonical(normalized(message))
        return seen[id(message)]

    now = [canonical(normalized(m)) for m in messages]
    index, best_raw, headless = -1, [], False
    for thread, whole in _threads(requests):
        if not whole:
            headless = True  # its start is gone: comparing from the top means nothing
            continue
        shared = _common_prefix(now, [canon(m) for m in thread[: len(now)]])
        if shared > index:
            index, best_raw = shared, thread
    if headless and index <= 1:  # no whole conversation got past the system prompt
        return (
            f"replay: the recording {path} is missing the start of a conversation "
            f"(its first records were deleted or cut off), so step {step} is not in it; "
            f"{fix}"
        )
    if index >= len(messages):
        return f"{where} (the request is shorter than the recorded one); {fix}"
    if index >= len(best_raw):
        return f"{where}: the recording has no reply for this request; {fix}"
    what = _describe_message(messages, index)
    now_text, was_text = _first_difference(
        message_text(messages[index]), message_text(best_raw[index])
    )
    return f"{where}: {what} changed (now {now_text!r}, recorded {was_text!r}); {fix}"


def _threads(requests: list[RequestRecord]) -> Iterator[tuple[list[Any], bool]]:
    """The full message lists of every recorded request (rebuilt from the deltas), and
    whether each is whole (False: the requests it follows are not in the file)."""
    current: dict[str, tuple[list[Any], bool]] = {}
    for record in requests:
        thread, whole = current.get(record.conversation, ([], True))
        base = record.base
        thread, whole = thread[:base] + list(record.messages), whole and base <= len(thread)
        current[record.conversation] = (thread, whole)
        yield thread, whole


def _common_prefix(a: list[str], b: list[str]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def _first_difference(now: str, was: str, width: int = 60) -> tuple[str, str]:
    a, b = normalize(now).splitlines(), normalize(was).splitlines()
    for i in range(max(len(a), len(b))):
        x = a[i] if i < len(a) else "(nothing)"
        y = b[i] if i < len(b) else "(nothing)"
        if x != y:
            return (x[:width], y[:width])
    return (now[:width], was[:width])


def _describe_message(messages: list[Mapping[str, Any]], index: int) -> str:
    role = messages[index].get("role", "?")
    steps_before = sum(1 for m in messages[:index] if m.get("role") == "assistant")
    if role == "system":
        return "the system prompt"
    if role == "assistant":
        return f"the reply at step {steps_before + 1}"
    if role == "tool":
        return f"the output of step {steps_before}"
    previous = messages[index - 1].get("role") if index else None
    if previous in (None, "system") or steps_before == 0:
        return "the task or the session's variables sent with it"
    if previous == "tool":
        return f"the output of step {steps_before}"
    return f"the message after step {steps_before} (the code's output, your answer, or the task)"
