"""Writing one conversation as it happens: events in, typed records out.

:class:`Recorder` turns each event into one frozen record (:mod:`.records`), hides
secrets in it with the cell's redactor, keeps it in memory for ``%agent log``, ``%agent
export`` and ``%agent cells`` (:meth:`Recorder.ran`) and appends its JSON line to the
store. It reads the events' fields: the task's context, a step's outputs and structured
error come with the event, nothing is parsed back from text.
:func:`record_events` puts a recorder (and a replay) in front of a UI.

Not here: the file (:mod:`.store`), answering from it (:mod:`.replay`).
"""

from __future__ import annotations

import json
import operator
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..conversation import (
    CodeRan,
    Decided,
    Event,
    EventHandler,
    Finished,
    Handler,
    ReplyDelta,
    ReplyReceived,
    RequestSent,
    ReviewRequested,
    SentMessage,
    TaskStarted,
)
from ..secrets import Redactor
from ..text import escape_surrogates
from .keys import Keyer
from .records import (
    FORMAT,
    CodeRecord,
    DecisionRecord,
    FinishedRecord,
    Record,
    ReplyRecord,
    RequestRecord,
    TaskRecord,
    now,
    redacted,
)
from .replay import Replay
from .store import Store, recording_path


class Recorder(EventHandler):
    """Writes one conversation to a store as it happens, and keeps it for log and export.

    Call :meth:`begin` before each ``%%agent`` cell with that cell's settings, then pass it
    every event (:func:`record_events` does). Requests are written as the messages added
    since the previous request (``base`` says how many earlier messages they follow), so
    the file grows with the conversation, not with its square.
    """

    def __init__(self, keyer: Keyer | None = None) -> None:
        self.keyer = keyer or Keyer()
        self.conversation_id = uuid.uuid4().hex[:12]
        self.records: list[Record] = []
        self.store: Store | None = None
        self.write = True
        self.model = ""
        self.params: dict[str, Any] = {}
        self.seed: int | None = None
        self.tools: list[dict[str, Any]] | None = None
        self.redactor = Redactor()
        self.mode: str | None = None  # the cell's, said in its task record
        self._sent: list[Any] = []
        self._keys: dict[int, tuple[str, str]] = {}
        # When the model began and stopped thinking in the step being asked (monotonic).
        self._thought: list[float] = []
        self._answering = False
        self._where: tuple[str | None, Path | None] | None = None
        self._last_block = 0  # the index of the last block of the step decided on

    def where(self, setting: str | None) -> Path | None:
        """This conversation's recording file: the setting, made absolute when the
        conversation starts, so that a step's ``os.chdir`` cannot split it in two."""
        if self._where is None or self._where[0] != setting:
            self._where = (setting, recording_path(setting))
        return self._where[1]

    def begin(
        self,
        *,
        store: Store | None,
        write: bool = True,
        model: str = "",
        params: Mapping[str, Any] | None = None,
        seed: int | None = None,
        tools: list[dict[str, Any]] | None = None,
        redactor: Redactor | None = None,
        mode: str | None = None,
    ) -> None:
        self.flush()  # the last cell's, should it have ended without its end
        self.store = store
        self.write = write
        self.model = model
        self.params = dict(params or {})
        self.seed = seed
        self.tools = tools
        self.redactor = redactor or Redactor()
        self.mode = mode

    def reset(self) -> None:
        """A new conversation: new id, nothing kept."""
        self.conversation_id = uuid.uuid4().hex[:12]
        self.records.clear()
        self._sent.clear()
        self._keys.clear()
        self._where = None
        self.keyer.forget()

    def transcript(self) -> list[Record]:
        """This conversation's records, as written (secrets hidden), kept in memory: the
        file is for other processes and for replay."""
        return list(self.records)

    def ran(self, since: int = 0) -> list[CodeRecord]:
        """The code that ran without error, in order, from the ``since``-th record on: what
        ``%agent cells`` and the final review's "add code as cells" put in the notebook
        (secrets hidden, as written)."""
        return [
            r
            for r in self.records[since:]
            if isinstance(r, CodeRecord) and r.ok and not r.interrupted
        ]

    def keys(self, step: int) -> tuple[str, str]:
        """(replay key, cache key) of the request made at ``step``."""
        return self._keys.get(step, ("", ""))

    def __call__(self, event: Event) -> None:
        record = self.dispatch(event)
        if record is None:
            # Nothing to write: a review, a question about the budget (someone may take
            # minutes), a piece of a reply. What was held back goes to the file now.
            if self.store is not None:
                self.store.flush()
            return
        data = record.to_dict()
        line = _line(data)
        # A request's messages come hidden already (each message keeps its redacted form,
        # the one the model was sent). One pass over the line (the rules know how values
        # look inside JSON text) says whether the rest holds a secret, at a fraction of the
        # cost of one pass per string; only then are the fields hidden one by one.
        if self.redactor.redact(line) != line:
            record = redacted(record, self.redactor)
            data = record.to_dict()
            line = _line(data)
        self.records.append(record)
        if self.write and self.store is not None:
            self.store.add(record, line, later=self._may_wait(event))
        elif self.store is not None:
            self.store.check()  # a replayed step may delete the recording it replays

    def _may_wait(self, event: Event) -> bool:
        """Whether this record may wait to be written with the next one: a reply (its
        decision follows before any code runs; a review, which is handed to the UI through
        this recorder, writes it before anyone is asked) and the result of the step's last
        block (the next request, or the cell's end, follows before any code runs or the
        model is waited for; an earlier block's is written at once, the next block being
        code). Two writes a step instead of four, and every record on disk before code
        runs, a person is asked or the model is waited for."""
        if isinstance(event, ReplyReceived):
            return True
        return isinstance(event, CodeRan) and event.index >= self._last_block

    def flush(self) -> None:
        """Write what was held back (the end of a cell that ended unexpectedly)."""
        if self.store is not None:
            self.store.flush()

    def on_task_started(self, event: TaskStarted) -> Record | None:
        return TaskRecord(
            self.conversation_id,
            event.task,
            event.step,
            event.context,
            now(),
            FORMAT,
            self.model,
            self.params,
            self.seed,
            not self.write,
            self.mode,
        )

    def on_request_sent(self, event: RequestSent) -> Record | None:
        messages = list(event.messages)
        sent = self._sent
        if len(messages) >= len(sent) and all(map(operator.is_, messages, sent)):
            base = len(sent)  # the usual case: the previous request's and some more
        else:
            base = 0
            for old, new in zip(sent, messages, strict=False):
                if old is not new:
                    break
                base += 1
        self._sent = messages
        rkey = self.keyer.replay_key(messages, self.tools)
        key = self.keyer.cache_key(rkey, self.model, self.params, self.seed)
        self._keys[event.step] = (rkey, key)
        self._thought, self._answering = [], False
        return RequestRecord(
            self.conversation_id,
            event.step,
            tuple(self._hidden(m) for m in messages[base:]),
            rkey,
            key,
            self.model,
            self.params,
            self.seed,
            tuple(t["function"]["name"] for t in self.tools or ()),
            base,
            tuple(_kind(m) for m in messages[base:]),
            event.window,
            event.note,
        )

    def on_reply_delta(self, event: ReplyDelta) -> Record | None:
        self._time_thinking(event.thinking)
        return None

    def on_reply_received(self, event: ReplyReceived) -> Record | None:
        rkey, key = self.keys(event.step)
        thought = event.reply.thinking and self._thought
        return ReplyRecord(
            self.conversation_id,
            event.step,
            rkey,
            event.reply,
            key,
            now(),
            event.final,
            round(self._thought[1] - self._thought[0], 1) if thought else None,
        )

    def on_decided(self, event: Decided) -> Record | None:
        decision, proposal = event.decision, event.proposal
        blocks = decision.edited if decision.edited is not None else proposal.blocks
        self._last_block = len(blocks or ()) - 1
        return DecisionRecord(
            self.conversation_id,
            proposal.step,
            decision.action,
            self.keys(proposal.step)[0],
            decision.label(proposal),
            event.automatic,
            proposal.final,
            None if proposal.blocks is None else tuple(proposal.blocks),
            decision.edited if decision.edited_differs(proposal) else None,
            decision.text,
            decision.rest,
            proposal.protected,
            proposal.cut_off,
            proposal.copies,
            proposal.injected,
        )

    def on_code_ran(self, event: CodeRan) -> Record | None:
        outcome = event.outcome
        return CodeRecord(
            self.conversation_id,
            event.step,
            event.block.code,
            event.index,
            event.block.language,
            outcome.ok,
            outcome.interrupted,
            outcome.digest,
            outcome.changes,
            tuple(outcome.outputs),
            outcome.error,
            outcome.timed_out,
            outcome.exited,
        )

    def on_finished(self, event: Finished) -> Record | None:
        return FinishedRecord(self.conversation_id, event.reason, event.message, now())

    def _hidden(self, message: dict[str, Any]) -> Any:
        if isinstance(message, SentMessage):  # the history's: its redacted form is kept
            return message.record.redacted(self.redactor)
        return self.redactor.redact_json(message)

    def _time_thinking(self, thinking: bool) -> None:
        """From the first piece of thinking to the first piece of answer after it (or to
        the last piece of thinking, when no answer follows)."""
        moment = time.monotonic()
        if thinking and not self._thought:
            self._thought = [moment, moment]
        elif self._thought and not self._answering:
            self._thought[1] = moment
            self._answering = not thinking


def _kind(message: Mapping[str, Any]) -> str:
    return message.record.kind if isinstance(message, SentMessage) else ""


# json.dumps(record, ensure_ascii=False, separators=(",", ":")), without building an
# encoder per record.
_ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _line(record: Mapping[str, Any]) -> str:
    # A lone surrogate becomes a JSON \u escape of itself: the line encodes, and reads
    # back as the same text.
    return escape_surrogates(_ENCODE(record))


def record_events(ui: Handler, recorder: Recorder, replay: Replay | None = None) -> Handler:
    """An event handler that records each event, answers reviews from the replay (if any),
    and hands everything else to ``ui`` (whose answer, or awaitable, it returns)."""
    return _Recording(ui, recorder, replay)


class _Recording(EventHandler):
    """What :func:`record_events` returns."""

    def __init__(self, ui: Handler, recorder: Recorder, replay: Replay | None) -> None:
        self.ui, self.recorder, self.replay = ui, recorder, replay

    def on_event(self, event: Event) -> Any:
        self.recorder(event)
        return self.ui(event)

    def on_review_requested(self, event: ReviewRequested) -> Any:
        if self.replay is not None:
            return self.replay.decide(self.recorder.keys(event.proposal.step)[0])
        return self.on_event(event)

    def on_decided(self, event: Decided) -> Any:
        if self.replay is not None:
            event = self.replay.as_recorded(event, self.recorder.keys(event.proposal.step)[0])
        return self.on_event(event)
