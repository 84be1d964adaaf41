"""The loop's seams as declared: what every chat client offers (``ChatClient``, with
``ChatBase``'s defaults and ``ChatWrapper``'s pass-through), and the one event dispatch
(``EventHandler``), which every event of the loop reaches."""

from __future__ import annotations

import typing
from collections.abc import Mapping
from typing import Any

from agent_magic.budget import Budget, BudgetedChat
from agent_magic.codeblocks import CodeBlock
from agent_magic.conversation import (
    BudgetAsked,
    ChatReply,
    CodeRan,
    Conversation,
    Decided,
    Decision,
    Event,
    EventHandler,
    Finished,
    Proposal,
    ReplyDelta,
    ReplyReceived,
    RequestSent,
    ReviewRequested,
    StepOutcome,
    TaskStarted,
    drive,
)
from agent_magic.secrets import Redactor
from agent_magic.testing import ScriptedChat
from agent_magic.transcript import CachedChat, RedactingChat, Replay
from agent_magic.transcript.keys import Keyer
from agent_magic.transcript.store import Store


class Sized(ScriptedChat):
    """A client that knows its window and sends parameters."""

    params = {"temperature": 0.2}
    endpoints = ("an endpoint",)

    def context_window(self, *, ask_server: bool = True) -> int | None:
        return 1200 if ask_server else 900


def wrapped(inner: Any) -> list[Any]:
    store, hide = Store(None), Redactor.build(env={})
    return [
        BudgetedChat(inner, [Budget()]),
        RedactingChat(inner, hide),
        CachedChat(inner, store, Keyer(), seed=1),
        CachedChat(RedactingChat(BudgetedChat(inner, [Budget()]), hide), store, Keyer(), 1),
    ]


def test_every_client_offers_what_the_loop_and_the_session_read() -> None:
    replay = Replay(Store(None), Keyer())
    for chat in [ScriptedChat(), replay, *wrapped(ScriptedChat())]:
        assert isinstance(chat.model, str) and isinstance(chat.params, Mapping)
        assert tuple(chat.endpoints) == ()
        assert chat.context_window(ask_server=False) is None and chat.context_window() is None


def test_a_wrapper_is_its_inner_client_where_it_does_not_say_otherwise() -> None:
    inner = Sized(model="m")
    for chat in wrapped(inner):
        assert (chat.model, chat.params) == ("m", inner.params)
        assert tuple(chat.endpoints) == ("an endpoint",)
        assert chat.params is not inner.params  # a copy: a cache key cannot change it
        assert chat.context_window(ask_server=False) == 900 and chat.context_window() == 1200
        assert chat.pending == 0  # any other attribute: the inner client's
    assert not hasattr(wrapped(inner)[0], "no_such_thing")  # an AttributeError, not a loop


class Seen(EventHandler):
    """Says which method each event reached."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, type]] = []

    def on_event(self, event: Event) -> Any:
        self.seen.append(("on_event", type(event)))
        return "answer"

    def on_reply_delta(self, event: ReplyDelta) -> Any:
        self.seen.append(("on_reply_delta", type(event)))


PROPOSAL = Proposal(1, "x", (CodeBlock("python", "x = 1"),))
EVENTS: list[Any] = [
    TaskStarted("t", 1),
    RequestSent(1, ()),
    ReplyDelta(1, "a"),
    ReplyReceived(1, ChatReply("a"), (), False),
    ReviewRequested(PROPOSAL),
    Decided(PROPOSAL, Decision("run"), False),
    BudgetAsked(1, "spent", "tokens", 10.0),
    CodeRan(1, 0, CodeBlock("python", "x = 1"), StepOutcome(True, "")),
    Finished("terminated"),
]


def test_the_handler_base_has_a_method_for_every_event_of_the_loop() -> None:
    assert {type(e) for e in EVENTS} == set(typing.get_args(Event))
    for event in EVENTS:
        name = "on_" + "".join(
            f"_{c.lower()}" if c.isupper() else c for c in type(event).__name__
        ).lstrip("_")
        assert callable(getattr(EventHandler, name)), name
        assert EventHandler()(event) is None  # the base does nothing and answers nothing


def test_each_event_goes_to_its_method_and_the_rest_to_on_event() -> None:
    handler = Seen()
    answers = [handler(event) for event in EVENTS]
    assert handler.seen[2] == ("on_reply_delta", ReplyDelta)
    assert [name for name, _ in handler.seen].count("on_event") == len(EVENTS) - 1
    assert [kind for _, kind in handler.seen] == [type(e) for e in EVENTS]
    assert answers[4] == "answer" and answers[2] is None  # what the method returns


def test_a_handler_subclass_drives_the_loop() -> None:
    class Runs(EventHandler):
        def __init__(self) -> None:
            self.ran: list[str] = []

        def on_review_requested(self, event: ReviewRequested) -> Decision:
            return Decision("run")

        def on_code_ran(self, event: CodeRan) -> None:
            self.ran.append(event.block.code)

    class Executor:
        def run(self, block: CodeBlock, *, step: int | None = None) -> StepOutcome:
            return StepOutcome(True, "done")

    handler = Runs()
    chat = ScriptedChat("```python\nx = 1\n```", "done TERMINATE")
    finished = drive(Conversation(chat, Executor(), mode="always").run("set x"), handler)
    assert finished.reason == "terminated" and handler.ran == ["x = 1"]
