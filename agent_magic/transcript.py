"""Recording conversations, answering from the recording, and reading it back.

What lives here:

* :class:`Store` - one JSON Lines file (``agent-recording.jsonl`` in the kernel's working
  directory, which is the notebook's folder, by default). It is at once the transcript
  (every task, request, reply, decision and step, appended and flushed as it happens, so
  a crash keeps everything up to the last event) and a content-addressed index of the
  replies and decisions, keyed by a hash of the request. Several notebooks in one folder
  share it; a line that cannot be read is skipped with a one-line warning.
* :class:`Keyer` - the request hashes: ``replay key`` (messages and tools) and ``cache
  key`` (those plus model, parameters and seed). Never a credential.
* :class:`Recorder` - an event handler that writes one conversation to a store and keeps
  it in memory for ``%agent log`` and ``%agent export``.
* :class:`CachedChat` - the seeded response cache around a live chat client.
* :class:`Replay` - a chat client that answers only from the recording, with the human
  decisions recorded alongside; a request it has not seen is an error naming the step.
* :func:`record_events` - puts a recorder (and a replay) in front of a UI.
* :func:`render_log` - the readable ``%agent log``.

Not here: IPython, widgets, openai (this module only sees events and dicts), and
nbformat (see :mod:`.export`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from .codeblocks import CodeBlock, inert_markdown
from .conversation import (
    ChatClient,
    ChatError,
    ChatReply,
    CodeRan,
    Decided,
    Decision,
    Event,
    Finished,
    Proposal,
    ReplyReceived,
    RequestSent,
    ReviewRequested,
    TaskStarted,
    ToolCallRequest,
    Usage,
)

RECORDING_NAME = "agent-recording.jsonl"
REPLAY_ENV = "AGENT_MAGIC_REPLAY"
FORMAT = 1

# --- settings ------------------------------------------------------------------------


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


_SECRET_NAMES = re.compile(r"key|token|secret|password|passwd|credential", re.IGNORECASE)
# OpenAI-style keys, whoever holds them; the word boundary keeps "task-..." text intact.
_KEY_SHAPED = re.compile(r"(?<![A-Za-z0-9])sk-[A-Za-z0-9][A-Za-z0-9_\-]{15,}")


def secrets_from(env: Mapping[str, str] | None = None, chat: Any = None) -> tuple[str, ...]:
    """Values never to write: key-like environment variables and configured api keys."""
    env = os.environ if env is None else env
    found = {value for name, value in env.items() if _SECRET_NAMES.search(name)}
    for endpoint in getattr(chat, "endpoints", ()) or ():
        found.add(getattr(endpoint, "api_key", None) or "")
    # Longest first, so a key that contains another is replaced whole.
    return tuple(sorted((s for s in found if len(s) >= 8), key=len, reverse=True))


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, "***")
    return _KEY_SHAPED.sub("sk-***", text)


# --- request keys --------------------------------------------------------------------

# What legitimately differs between two runs of the same notebook, masked before hashing
# so a replay on another machine, or after running cells out of order, still matches:
# IPython's cell numbers in tracebacks, object addresses, and install paths.
_VOLATILE = (
    (re.compile(r"Cell In\[\d+\]"), "Cell In[_]"),
    (re.compile(r"\bat 0x[0-9a-fA-F]{4,}"), "at 0x_"),
    (re.compile(r"/tmp/ipykernel_\d+/\d+\.py"), "<ipykernel cell>"),
    (re.compile(r"""[^\s"'(<]*[/\\](?:site|dist)-packages[/\\]"""), "<packages>/"),
    (re.compile(r"""[^\s"'(<]*[/\\]lib[/\\]python3\.\d+[/\\]"""), "<python>/"),
)


def normalize(text: str) -> str:
    """A request's text with run-to-run noise masked (see ``_VOLATILE``)."""
    for pattern, replacement in _VOLATILE:
        text = pattern.sub(replacement, text)
    return text


def _normalized(value: Any) -> Any:
    if isinstance(value, str):
        return normalize(value)
    if isinstance(value, Mapping):
        return {k: _normalized(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_normalized(v) for v in value]
    return value


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class Keyer:
    """Hashes requests; each message is hashed once, so a long conversation stays cheap."""

    def __init__(self) -> None:
        self._memo: dict[int, tuple[Mapping[str, Any], str]] = {}

    def message_digest(self, message: Mapping[str, Any]) -> str:
        # Messages are appended and never changed, so identity is a safe memo key (the
        # memo holds a reference, so an id cannot be reused while it is cached).
        cached = self._memo.get(id(message))
        if cached is not None and cached[0] is message:
            return cached[1]
        digest = _sha(canonical(_normalized(message)))
        self._memo[id(message)] = (message, digest)
        return digest

    def replay_key(
        self, messages: Iterable[Mapping[str, Any]], tools: list[dict[str, Any]] | None
    ) -> str:
        parts = [self.message_digest(m) for m in messages]
        parts.append(_sha(canonical(tools or [])))
        return _sha("\n".join(parts))

    @staticmethod
    def cache_key(rkey: str, model: str, params: Mapping[str, Any], seed: int | None) -> str:
        return _sha(canonical({"request": rkey, "model": model, "params": params, "seed": seed}))

    def forget(self) -> None:
        self._memo.clear()


# --- the store -----------------------------------------------------------------------


def _warn(message: str) -> None:
    print(f"agent: {message}", file=sys.stderr)


@dataclass
class Recorded:
    """One recorded reply and the decision taken on it (None if the run stopped first)."""

    reply: dict[str, Any]
    decision: dict[str, Any] | None = None


class Store:
    """The recording file and its index. ``path=None`` keeps everything in memory."""

    def __init__(self, path: Path | None = None, *, warn: Callable[[str], None] = _warn) -> None:
        self.path = path
        self.warn = warn
        self.replies: dict[str, Recorded] = {}  # by replay key; the latest wins
        self.cached: dict[str, dict[str, Any]] = {}  # replies by cache key
        self.requests: list[dict[str, Any]] = []  # request records, to explain a drift
        self._open: dict[tuple[str, int], Recorded] = {}  # (conversation, step) -> entry
        self._offset = 0
        self._head = b""
        self._inode: int | None = None
        self._writable = True
        self._warned: set[str] = set()

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
            if self._offset:
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
        self._offset += end
        bad = sum(not self._index_line(raw) for raw in data[:end].splitlines() if raw.strip())
        if bad:
            self.warn(
                f"skipped {bad} unreadable line{'s' if bad > 1 else ''} in the recording "
                f"{self.path}"
            )

    def _index_line(self, raw: bytes) -> bool:
        try:
            self._index(json.loads(raw.decode("utf-8")))
        except (ValueError, UnicodeDecodeError, KeyError, TypeError, AttributeError):
            return False
        return True

    def _clear(self) -> None:
        self.replies.clear()
        self.cached.clear()
        self.requests.clear()
        self._open.clear()
        self._offset = 0
        self._head = b""

    def _index(self, record: dict[str, Any]) -> None:
        kind = record["event"]
        if kind == "request":
            if not isinstance(record["messages"], list):
                raise TypeError("messages")
            self.requests.append(record)
        elif kind == "reply":
            where = (record["conversation"], record["step"])
            reply_from_record(record, "check")  # a reply that cannot be read is not indexed
            if not isinstance(record["rkey"], str) or not record["rkey"]:
                raise TypeError("rkey")
            entry = self.replies[record["rkey"]] = self._open[where] = Recorded(record)
            if record.get("key"):
                self.cached[record["key"]] = entry.reply
        elif kind == "decision":
            where = (record["conversation"], record["step"])
            decision_from_record(record)  # likewise
            entry = self._open.pop(where, None)
            if entry is not None:
                entry.decision = record

    # -- writing -----------------------------------------------------------------------

    def add(self, record: dict[str, Any], line: str | None = None) -> None:
        """Append one record (flushed at once) and index it.

        ``line`` is the record already serialised as JSON, if the caller has it.
        """
        if self.path is None or not self._writable:
            self._index(record)
            return
        if line is None:
            line = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
        data = line.encode("utf-8") + b"\n"
        try:
            with self._append() as file:
                stat = os.fstat(file.fileno())
                start = stat.st_size
                if start > 0:
                    file.seek(-1, os.SEEK_END)
                    if file.read(1) != b"\n":  # a line cut short by a crash: end it
                        file.write(b"\n")
                file.write(data)
                file.flush()
                # Only our line was added since the last read (same file, nothing
                # appended or rewritten by another kernel): index it as it is, rather
                # than opening and reading the file again.
                alone = (
                    0 < start == self._offset
                    and stat.st_ino == self._inode
                    and os.lseek(file.fileno(), 0, os.SEEK_CUR) == start + len(data)
                    and file.seek(0) == 0
                    and file.read(len(self._head)) == self._head
                )
        except OSError as error:
            self._writable = False
            self._warn_once(
                "write",
                f"cannot write the recording {self.path} ({error.strerror or error}); "
                "this conversation is not being recorded",
            )
            self._index(record)
            return
        if not alone:
            self.refresh()
        elif self._index_line(data):
            self._offset += len(data)
        else:
            self._offset += len(data)
            self.warn(f"skipped 1 unreadable line in the recording {self.path}")

    def _append(self) -> Any:
        assert self.path is not None
        try:
            return open(self.path, "a+b")
        except FileNotFoundError:  # its folder is made on the first write
            self.path.parent.mkdir(parents=True, exist_ok=True)
            return open(self.path, "a+b")

    # -- drift -------------------------------------------------------------------------

    def explain_drift(self, step: int, messages: list[Mapping[str, Any]]) -> str:
        """One line saying which step no longer matches the recording, and how."""
        fix = "re-run without replay (and with a model) to record it again"
        where = f"replay: step {step} does not match the recording"
        if not self.requests and not self.replies:
            if self.path is not None and not self.exists:
                return f"replay: no recording at {self.path}; record it first without replay"
            return f"replay: the recording {self.path} has no conversations; {fix}"
        seen: dict[int, str] = {}

        def canon(message: Any) -> str:
            if id(message) not in seen:
                seen[id(message)] = canonical(_normalized(message))
            return seen[id(message)]

        now = [canonical(_normalized(m)) for m in messages]
        index, best_raw = -1, []
        for thread in self._threads():
            shared = _common_prefix(now, [canon(m) for m in thread[: len(now)]])
            if shared > index:
                index, best_raw = shared, thread
        if index >= len(messages):
            return f"{where} (the request is shorter than the recorded one); {fix}"
        if index >= len(best_raw):
            return f"{where}: the recording has no reply for this request; {fix}"
        what = _describe_message(messages, index)
        now_text, was_text = _first_difference(_text(messages[index]), _text(best_raw[index]))
        return f"{where}: {what} changed (now {now_text!r}, recorded {was_text!r}); {fix}"

    def _threads(self) -> Iterator[list[Any]]:
        """The full message lists of every recorded request (rebuilt from the deltas)."""
        current: dict[str, list[Any]] = {}
        for record in self.requests:
            thread = current.get(record["conversation"], [])
            thread = thread[: record.get("base", 0)] + list(record["messages"])
            current[record["conversation"]] = thread
            yield thread


def _common_prefix(a: list[str], b: list[str]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def _text(message: Any) -> str:
    if not isinstance(message, Mapping):
        return str(message)
    content = message.get("content") or ""
    if isinstance(content, list):
        content = "\n".join(str(p.get("text", "[image]")) for p in content if isinstance(p, dict))
    calls = message.get("tool_calls") or ()
    return str(content) + "".join(str(c) for c in calls)


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


_stores: dict[Path | None, Store] = {}


def open_store(path: Path | None) -> Store:
    """The store for ``path`` (None: in memory), shared by this kernel's conversations."""
    store = _stores.get(path)
    if store is None:
        store = _stores[path] = Store(path)
    store.refresh()
    return store


# --- records ---------------------------------------------------------------------------


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _reply_record(reply: ChatReply) -> dict[str, Any]:
    return {
        "content": reply.content,
        "tool_calls": [
            {"id": c.id, "name": c.name, "arguments": c.arguments} for c in reply.tool_calls
        ],
        "usage": None
        if reply.usage is None
        else {
            "prompt_tokens": reply.usage.prompt_tokens,
            "completion_tokens": reply.usage.completion_tokens,
        },
        "model": reply.model,
        "endpoint": reply.endpoint,
        "finish_reason": reply.finish_reason,
        "source": reply.source,
    }


def reply_from_record(record: Mapping[str, Any], source: str) -> ChatReply:
    """The reply a record holds; TypeError/ValueError/KeyError if it holds none."""
    usage = record.get("usage")
    if not isinstance(record.get("content") or "", str):
        raise TypeError("content")
    return ChatReply(
        content=record.get("content") or "",
        tool_calls=tuple(
            ToolCallRequest(str(c["id"]), str(c["name"]), str(c.get("arguments") or ""))
            for c in record.get("tool_calls") or ()
        ),
        usage=None
        if not usage
        else Usage(int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0))),
        model=str(record.get("model") or ""),
        endpoint=str(record.get("endpoint") or ""),
        finish_reason=record.get("finish_reason"),
        source=source,
    )


def _blocks_record(blocks: Iterable[CodeBlock] | None) -> list[dict[str, Any]] | None:
    if blocks is None:
        return None
    return [
        {"language": b.language, "code": b.code, "tool_call_id": b.tool_call_id} for b in blocks
    ]


def decision_from_record(record: Mapping[str, Any]) -> Decision:
    """The decision a record holds; TypeError/ValueError/KeyError if it holds none."""
    action = record["action"]
    if action not in ("run", "skip", "stop", "feedback"):
        raise ValueError(f"unknown action {action!r}")
    edited = record.get("edited")
    blocks = None
    if edited is not None:
        blocks = tuple(
            CodeBlock(str(b["language"]), str(b["code"]), tool_call_id=b.get("tool_call_id"))
            for b in edited
        )
    return Decision(action, blocks, str(record.get("text") or ""))


class Outputs(Protocol):
    """Whatever keeps a step's displayed outputs (see :class:`.export.OutputCapture`)."""

    def take(self) -> list[dict[str, Any]]: ...


class Recorder:
    """Writes one conversation to a store as it happens, and keeps it for log and export.

    Call :meth:`begin` before each ``%%agent`` cell with that cell's settings, then pass it
    every event (:func:`record_events` does). Requests are written as the messages added
    since the previous request (``base`` says how many earlier messages they follow), so
    the file grows with the conversation, not with its square.
    """

    def __init__(self, keyer: Keyer | None = None) -> None:
        self.keyer = keyer or Keyer()
        self.conversation_id = uuid.uuid4().hex[:12]
        self.records: list[dict[str, Any]] = []
        self.store: Store | None = None
        self.write = True
        self.model = ""
        self.params: dict[str, Any] = {}
        self.seed: int | None = None
        self.tools: list[dict[str, Any]] | None = None
        self.secrets: tuple[str, ...] = ()
        self.settings: dict[str, Any] = {}
        self.outputs: Outputs | None = None
        self._sent: list[Any] = []
        self._keys: dict[int, tuple[str, str]] = {}

    def begin(
        self,
        *,
        store: Store | None,
        write: bool = True,
        model: str = "",
        params: Mapping[str, Any] | None = None,
        seed: int | None = None,
        tools: list[dict[str, Any]] | None = None,
        secrets: Iterable[str] = (),
        outputs: Outputs | None = None,
        **settings: Any,
    ) -> None:
        self.store = store
        self.write = write
        self.model = model
        self.params = dict(params or {})
        self.seed = seed
        self.tools = tools
        self.secrets = tuple(secrets)
        self.outputs = outputs
        self.settings = settings

    def reset(self) -> None:
        """A new conversation: new id, nothing kept."""
        self.conversation_id = uuid.uuid4().hex[:12]
        self.records.clear()
        self._sent.clear()
        self._keys.clear()
        self.keyer.forget()

    def transcript(self) -> list[dict[str, Any]]:
        """This conversation's records, read back from the recording file when they are all
        there (so ``%agent log`` shows what was kept), else as kept in memory."""
        path = self.store.path if self.store is not None else None
        if path is not None and self.records:
            try:
                kept = read_records(path, self.conversation_id)
            except OSError:
                kept = []
            if len(kept) >= len(self.records):
                return kept
        return list(self.records)

    def keys(self, step: int) -> tuple[str, str]:
        """(replay key, cache key) of the request made at ``step``."""
        return self._keys.get(step, ("", ""))

    def __call__(self, event: Event) -> None:
        record = self._record(event)
        if record is None:
            return
        record = {"event": record.pop("event"), "conversation": self.conversation_id, **record}
        line = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
        if self.secrets and any(s in line for s in self.secrets) or _KEY_SHAPED.search(line):
            line = redact_text(line, self.secrets)
            record = json.loads(line)
        self.records.append(record)
        if self.write and self.store is not None:
            self.store.add(record, line)

    def _record(self, event: Event) -> dict[str, Any] | None:
        if isinstance(event, TaskStarted):
            return {
                "event": "task",
                "format": FORMAT,
                "time": _now(),
                "step": event.step,
                "task": event.task,
                "model": self.model,
                "params": self.params,
                "seed": self.seed,
                "replay": not self.write,
                **self.settings,
            }
        if isinstance(event, RequestSent):
            messages = list(event.messages)
            base = 0
            for old, new in zip(self._sent, messages, strict=False):
                if old is not new:
                    break
                base += 1
            self._sent = messages
            rkey = self.keyer.replay_key(messages, self.tools)
            key = self.keyer.cache_key(rkey, self.model, self.params, self.seed)
            self._keys[event.step] = (rkey, key)
            return {
                "event": "request",
                "step": event.step,
                "rkey": rkey,
                "key": key,
                "model": self.model,
                "params": self.params,
                "seed": self.seed,
                "tools": [t["function"]["name"] for t in self.tools or ()],
                "base": base,
                "messages": messages[base:],
            }
        if isinstance(event, ReplyReceived):
            rkey, key = self.keys(event.step)
            return {
                "event": "reply",
                "step": event.step,
                "rkey": rkey,
                "key": key,
                "time": _now(),
                **_reply_record(event.reply),
                "final": event.final,
            }
        if isinstance(event, Decided):
            decision, proposal = event.decision, event.proposal
            return {
                "event": "decision",
                "step": proposal.step,
                "rkey": self.keys(proposal.step)[0],
                "action": decision.action,
                "label": decision.label(proposal),
                "automatic": event.automatic,
                "final": proposal.final,
                "proposed": _blocks_record(proposal.blocks),
                "edited": _blocks_record(decision.edited)
                if decision.edited_differs(proposal)
                else None,
                "text": decision.text,
            }
        if isinstance(event, CodeRan):
            outcome = event.outcome
            return {
                "event": "code",
                "step": event.step,
                "index": event.index,
                "language": event.block.language,
                "code": event.block.code,
                "ok": outcome.ok,
                "interrupted": outcome.interrupted,
                "digest": outcome.digest,
                "changes": outcome.changes,
                "outputs": self.outputs.take() if self.outputs is not None else [],
            }
        if isinstance(event, Finished):
            return {
                "event": "finished",
                "time": _now(),
                "reason": event.reason,
                "message": event.message,
            }
        return None


# --- chat clients: the cache and the replay --------------------------------------------


class CachedChat:
    """The seeded cache: the same request (model, messages, parameters, seed) gets the
    reply recorded for it, without calling the model; other requests go through."""

    def __init__(self, inner: ChatClient, store: Store, keyer: Keyer, seed: int) -> None:
        self.inner = inner
        self.store = store
        self.keyer = keyer
        self.seed = seed

    @property
    def model(self) -> str:
        return self.inner.model

    @property
    def params(self) -> dict[str, Any]:
        return dict(getattr(self.inner, "params", None) or {})

    def stream(
        self, messages: list[dict[str, Any]], *, tools: list[dict[str, Any]] | None = None
    ) -> Iterator[str | ChatReply]:
        rkey = self.keyer.replay_key(messages, tools)
        hit = self.store.cached.get(self.keyer.cache_key(rkey, self.model, self.params, self.seed))
        if hit is None:
            yield from self.inner.stream(messages, tools=tools)
            return
        reply = reply_from_record(hit, "cache")
        if reply.content:
            yield reply.content
        yield reply


class Replay:
    """Answers every request from the recording, and every review with the recorded
    decision. It never calls a model: a request that is not in the recording (the task,
    the namespace or a step's output changed) is a one-line error naming the step."""

    model = "replay"

    def __init__(self, store: Store, keyer: Keyer) -> None:
        self.store = store
        self.keyer = keyer
        self.step = 0
        self._current: Recorded | None = None

    def stream(
        self, messages: list[dict[str, Any]], *, tools: list[dict[str, Any]] | None = None
    ) -> Iterator[str | ChatReply]:
        self._current = None
        entry = self.store.replies.get(self.keyer.replay_key(messages, tools))
        if entry is None:
            raise ChatError(self.store.explain_drift(self.step, messages))
        if entry.decision is None:
            raise ChatError(
                f"replay: the recording stops at step {self.step} before a decision was "
                "made (it was interrupted there); re-run without replay to record the rest"
            )
        self._current = entry
        reply = reply_from_record(entry.reply, "replay")
        if reply.content:
            yield reply.content
        yield reply

    def decide(self, proposal: Proposal) -> Decision:
        assert self._current is not None and self._current.decision is not None
        return decision_from_record(self._current.decision)

    def as_recorded(self, event: Decided) -> Decided:
        """The decision as it was taken when recorded (by the mode, or by a person)."""
        if self._current is None or self._current.decision is None:
            return event
        return replace(event, automatic=bool(self._current.decision.get("automatic")))


Handler = Callable[[Event], Any]


def record_events(ui: Handler, recorder: Recorder, replay: Replay | None = None) -> Handler:
    """An event handler that records each event, answers reviews from the replay (if any),
    and hands everything else to ``ui`` (whose answer, or awaitable, it returns)."""

    def handle(event: Event) -> Any:
        if replay is not None:
            if isinstance(event, RequestSent):
                replay.step = event.step
            elif isinstance(event, ReviewRequested):
                return replay.decide(event.proposal)
            elif isinstance(event, Decided):
                event = replay.as_recorded(event)
        recorder(event)
        return ui(event)

    return handle


# --- reading it back -------------------------------------------------------------------


def log_entry(role: str, content: str) -> tuple[str, str]:
    """One message as ``%agent log`` shows it: (plain text, Markdown made inert)."""
    return f"--- {role}\n{content}", f"**{role}**\n\n{inert_markdown(content)}"


def render_log(records: Iterable[Mapping[str, Any]]) -> tuple[str, str]:
    """The conversation as ``%agent log`` shows it: (plain text, Markdown).

    Each message in order, as the model saw it, with the decisions people took (the
    mode's own decisions are left out: they only say "ran").
    """
    plain: list[str] = []
    markdown: list[str] = []

    def add(role: str, content: str) -> None:
        text, shown = log_entry(role, content)
        plain.append(text)
        markdown.append(shown)

    for record in records:
        kind = record.get("event")
        if kind == "request":
            for message in record.get("messages") or ():
                role = message.get("role")
                if role in ("system", "assistant"):
                    continue  # the system prompt is not shown; replies come from their records
                add(str(role), _text(message))
        elif kind == "reply":
            content = record.get("content") or ""
            for call in record.get("tool_calls") or ():
                content += f"\n[tool call {call.get('name')}] {call.get('arguments')}"
            add("assistant", content)
        elif kind == "decision" and not record.get("automatic"):
            label = record.get("label") or record.get("action")
            plain.append(f"[step {record.get('step')}: {label}]")
            markdown.append(f"*step {record.get('step')}: {label}*")
        elif kind == "finished" and record.get("reason") not in ("terminated",):
            plain.append(f"[{record.get('reason')}] {record.get('message')}")
            markdown.append(f"*{record.get('reason')}: {record.get('message')}*")
    if not plain:
        return ("(no conversation yet)", "*(no conversation yet)*")
    return ("\n".join(plain), "\n\n---\n\n".join(markdown))


def read_records(path: Path, conversation: str | None = None) -> list[dict[str, Any]]:
    """The readable records of a recording file, optionally of one conversation."""
    records = []
    with open(path, "rb") as file:
        for raw in file:
            try:
                record = json.loads(raw.decode("utf-8"))
            except (ValueError, UnicodeDecodeError):
                continue
            if isinstance(record, dict) and (
                conversation is None or record.get("conversation") == conversation
            ):
                records.append(record)
    return records
