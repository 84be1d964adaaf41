"""OpenAIChat against the local server: what the per-step cost depends on."""

from __future__ import annotations

from typing import Any

import pytest

from agent_magic import testing
from agent_magic.conversation import ChatReply
from agent_magic.llm import Endpoint, OpenAIChat
from agent_magic.testing import FakeOpenAIServer


@pytest.fixture
def connections(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every connection the local server accepts."""
    opened: list[Any] = []
    original = testing._Handler.setup

    def setup(handler: Any) -> None:
        opened.append(handler.client_address)
        original(handler)

    monkeypatch.setattr(testing._Handler, "setup", setup)
    return opened


@pytest.mark.parametrize("stream", [True, False])
def test_requests_reuse_one_connection(stream: bool, connections: list[Any]) -> None:
    with FakeOpenAIServer() as server:
        server.enqueue("one", "two", "three")
        chat = OpenAIChat(
            [Endpoint("m", "sk-test-reuse-0000", server.base_url)], stream=stream, max_retries=0
        )
        replies = [list(chat.stream([{"role": "user", "content": "hi"}])) for _ in range(3)]
    assert [r[-1].content for r in replies] == ["one", "two", "three"]
    assert all(isinstance(r[-1], ChatReply) for r in replies)
    assert len(connections) == 1
