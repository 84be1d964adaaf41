"""The loop's two outward seams and the records that cross them.

The chat seam: :class:`ChatClient` (a Protocol) turns a message list into a
:class:`ChatReply` (text, :class:`ToolCallRequest` calls, :class:`Usage`, whether it was
cut off), or raises :class:`ChatError` / :class:`ContextWindowExceeded`. The execution
seam: :class:`Executor` (a Protocol) runs one code block and returns a
:class:`StepOutcome` (with a :class:`StepError` when it raised). Not here: any
implementation of either (:mod:`agent_magic.llm`, :mod:`agent_magic.kernel.executor`,
:class:`agent_magic.testing.ScriptedChat`), and the loop that calls them (:mod:`.loop`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Protocol

from ..codeblocks import CodeBlock

# --- the chat seam -----------------------------------------------------------------


@dataclass(frozen=True)
class ToolCallRequest:
    """A native tool call made by the model (``run_python`` / ``run_shell``)."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class Usage:
    """Tokens the server counted for one call. A reply whose server reported none has
    ``usage=None``, never a zero Usage: llama.cpp, for one, sends none in streams."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    # Of completion_tokens, those the model spent thinking (completion_tokens_details /
    # output_tokens_details .reasoning_tokens); 0 when the server did not say.
    reasoning_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class ChatReply:
    """One assistant reply, with where it came from."""

    content: str
    tool_calls: tuple[ToolCallRequest, ...] = ()
    usage: Usage | None = None
    model: str = ""
    endpoint: str = ""  # which configured endpoint answered (a label, never a key)
    finish_reason: str | None = None
    source: str = "live"  # "live", "cache" or "replay"
    # Why the reply is not whole, when it is not: "length" (the token limit),
    # "content_filter", or "incomplete stream" (the stream ended without a finish
    # reason or without [DONE]). Code in such a reply may be half-written.
    cut_off: str | None = None
    # The model's thinking, never its answer: from reasoning_content / reasoning fields,
    # inline <think>...</think>, or the Responses API's reasoning summaries. Nothing looks
    # for code, tool calls or the sign-off in it, and it is never sent back as text.
    thinking: str = ""
    # Opaque items an API wants back untouched in later requests (the Responses API's
    # encrypted reasoning with store=false), in the order the reply gave them.
    reasoning_items: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class ThinkingDelta:
    """A piece of the model's thinking as it streams: ``ChatClient.stream`` yields these
    beside ``str`` answer deltas. Shown folded, never parsed for code."""

    text: str


class ChatError(Exception):
    """The model could not be reached or refused the request; the message is one line.

    ``ends_as`` is the conversation's end it makes (:class:`Finished` ``reason``): an
    error, unless a subclass ends it as a stop (nothing went wrong: a person said so, or
    a replay cannot follow the way they went).
    """

    ends_as = "error"


class BudgetSpent(ChatError):
    """A budget is spent: the request was not sent. ``unit`` ("tokens" or "dollars"),
    ``size`` (the budget's limit) and ``extend`` (raise it by an amount) let the loop ask
    a person whether to go on with more; ``extend`` None: it cannot be raised."""

    def __init__(
        self,
        message: str,
        unit: str = "tokens",
        size: float = 0.0,
        extend: Callable[[float], None] | None = None,
    ) -> None:
        super().__init__(message)
        self.unit, self.size, self.extend = unit, size, extend


class ChatStopped(ChatError):
    """Ends the conversation as stopped, not failed; the message says why, in one line."""

    ends_as = "stopped"


class ContextWindowExceeded(ChatError):
    """The request did not fit the model's context window; ``window`` is its size in
    tokens when the server said it. Trimming the conversation and asking again can help;
    the next endpoint of a config list would see the same conversation, so it is not tried.
    """

    def __init__(self, message: str, window: int | None = None) -> None:
        super().__init__(message)
        self.window = window


class ChatClient(Protocol):
    """Turns messages into a reply.

    ``stream`` yields ``str`` answer deltas and :class:`ThinkingDelta` thinking deltas as
    the reply arrives, and finally one :class:`ChatReply`; clients that cannot stream
    yield just the reply. Beside it, what the loop and the session read: ``model`` (the
    name requests are keyed and priced by), ``params`` (the request parameters, part of
    the cache key), ``endpoints`` (each with its ``api_key``, hidden everywhere) and
    ``context_window()`` (the window to fit requests to, None when unknown; with
    ``ask_server=False`` it must not ask over the network). :class:`ChatBase` gives the
    defaults, :class:`ChatWrapper` the pass-through for clients around another.
    """

    model: str

    @property
    def params(self) -> Mapping[str, Any]: ...

    @property
    def endpoints(self) -> Sequence[Any]: ...

    def context_window(self, *, ask_server: bool = True) -> int | None: ...

    def stream(
        self, messages: list[dict[str, Any]], *, tools: list[dict[str, Any]] | None = None
    ) -> Iterator[str | ThinkingDelta | ChatReply]: ...


class ChatBase:
    """The defaults of a :class:`ChatClient`: no parameters, no endpoints (nothing
    configured to hide), no known context window. A client sets ``model`` and writes
    ``stream``."""

    model: str = ""
    params: Mapping[str, Any] = MappingProxyType({})
    endpoints: Sequence[Any] = ()

    def context_window(self, *, ask_server: bool = True) -> int | None:
        return None

    def stream(
        self, messages: list[dict[str, Any]], *, tools: list[dict[str, Any]] | None = None
    ) -> Iterator[str | ThinkingDelta | ChatReply]:
        raise NotImplementedError


class ChatWrapper(ChatBase):
    """A client around ``inner``: everything it does not override is the inner client's
    (``model``, ``params``, ``endpoints``, ``context_window()``, ``stream``, and any other
    attribute read through it)."""

    def __init__(self, inner: ChatClient) -> None:
        self.inner = inner

    @property
    def model(self) -> str:  # type: ignore[override]
        return self.inner.model

    @property
    def params(self) -> dict[str, Any]:  # type: ignore[override]
        return dict(self.inner.params)

    @property
    def endpoints(self) -> Sequence[Any]:  # type: ignore[override]
        return self.inner.endpoints

    def context_window(self, *, ask_server: bool = True) -> int | None:
        return self.inner.context_window(ask_server=ask_server)

    def stream(
        self, messages: list[dict[str, Any]], *, tools: list[dict[str, Any]] | None = None
    ) -> Iterator[str | ThinkingDelta | ChatReply]:
        return iter(self.inner.stream(messages, tools=tools))

    def __getattr__(self, name: str) -> Any:
        if name == "inner":  # not set yet (a copy being built): no recursion
            raise AttributeError(name)
        return getattr(self.inner, name)


# --- the execution seam ------------------------------------------------------------


@dataclass(frozen=True)
class StepError:
    """A step's error as data: what the exporter, the log and the model each need."""

    type: str  # "NameError"
    message: str  # "name 'x' is not defined"
    frames: tuple[tuple[str, int, str], ...] = ()  # (filename, lineno, function), innermost last
    text: str = ""  # the colour-free formatted traceback, bounded: what the model reads


@dataclass(frozen=True)
class StepOutcome:
    """What running one block produced, as fields; :func:`step_report` tells the model."""

    ok: bool
    digest: str  # printed output (stdout/stderr) and result, bounded; not the traceback
    error: StepError | None = None
    changes: str = ""  # names the step created, rebound or deleted
    images: tuple[tuple[str, bytes], ...] = ()  # (mime type, data) displayed by the step
    outputs: tuple[dict[str, Any], ...] = ()  # nbformat-shaped outputs as shown in the cell
    interrupted: bool = False  # the user's real interrupt only
    timed_out: float | None = None  # seconds after which the step was stopped, if it was
    exited: bool = False  # the step called exit()/quit()/sys.exit(); the session was kept
    hidden: int = 0  # secret values hidden in what the step showed and reported


class Executor(Protocol):
    """Runs one block; ``step`` is the conversation's step number, so a traceback's
    ``<agent step N>`` names the step the review showed."""

    def run(self, block: CodeBlock, *, step: int | None = None) -> StepOutcome: ...
