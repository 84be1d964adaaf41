"""pytest fixtures for testing agents against a local OpenAI-compatible server.

Registered as agent_magic's ``pytest11`` entry point, so installing agent_magic makes
``openai_server`` and ``openai_env`` available in any test session. The server lives in
``agent_magic.testing`` (stdlib only); this module is the one place that imports pytest.

    def test_my_agent(openai_env):
        openai_env.enqueue("Hello!")
        ...                      # code that builds openai.OpenAI() from the environment
        assert openai_env.requests[-1].messages[-1]["role"] == "user"
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from agent_magic.testing import FakeOpenAIServer

TEST_API_KEY = "sk-test-not-a-real-key"


@pytest.fixture
def openai_server() -> Iterator[FakeOpenAIServer]:
    """A started ``FakeOpenAIServer`` for this test; stopped when the test ends."""
    with FakeOpenAIServer() as server:
        yield server


@pytest.fixture
def openai_env(
    openai_server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[FakeOpenAIServer]:
    """``openai_server``, with the environment pointing the openai SDK at it.

    Sets ``OPENAI_BASE_URL`` and a fake ``OPENAI_API_KEY``, and removes ``AZURE_OPENAI_*``
    and ``OAI_CONFIG_LIST`` so a developer's real settings can neither leak into the test
    nor send its requests to a paid endpoint.
    """
    monkeypatch.setenv("OPENAI_BASE_URL", openai_server.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", TEST_API_KEY)
    for name in list(os.environ):
        if name.startswith("AZURE_OPENAI_") or name == "OAI_CONFIG_LIST":
            monkeypatch.delenv(name)
    yield openai_server
