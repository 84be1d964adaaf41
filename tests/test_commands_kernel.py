"""``%agent key`` in a real ipykernel, typed into its password box the way a notebook
frontend sends it (see tests/test_kernel_widget.py for the wire)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from jupyter_client.manager import start_new_kernel
from test_kernel_widget import Frontend

from agent_magic.testing import FakeOpenAIServer

KEY = "sk-typed-in-lab-Zx8Cv7Bn6Mm5Qq4Ww3"


@pytest.fixture
def keyless(monkeypatch, tmp_path) -> Iterator[tuple[Frontend, FakeOpenAIServer]]:
    """A kernel with no key in its environment, beside a server that wants ``KEY``."""
    with FakeOpenAIServer(api_key=KEY) as server:
        monkeypatch.delenv("OPENAI_API_KEY", raising=False)
        monkeypatch.delenv("OAI_CONFIG_LIST", raising=False)
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        manager, client = start_new_kernel(kernel_name="python3", cwd=str(tmp_path))
        try:
            page = Frontend(manager, client)
            page.run("%load_ext agent_magic")
            yield page, server
        finally:
            client.stop_channels()
            manager.shutdown_kernel(now=True)


def test_a_key_typed_in_the_password_box_is_used_and_shown_nowhere(keyless, tmp_path) -> None:
    page, server = keyless
    typed_in = page.execute("%agent key")
    box = page.wait_widget("agent-key")
    # What the password box's view sends as the person types: a state update.
    page.send_comm(box, {"method": "update", "state": {"value": KEY}, "buffer_paths": []})
    page.click("agent-key-save")
    page.pump(lambda: "kept in this kernel" in json.dumps(list(page.models.values())))
    server.enqueue("Hello. TERMINATE")
    cell = page.run("%%agent --mode never --no-context\nsay hello")
    assert "Hello." in page.text(cell)
    assert server.chat_requests[0].headers["authorization"] == f"Bearer {KEY}"
    assert page.models[box]["value"] == ""  # the box's state keeps no copy
    log = page.run("%agent log")
    kernel_said = page.text() + json.dumps(list(page.models.values()))
    assert page.text(typed_in) == "[%agent key: type the key in the password box, then Save]"
    assert "say hello" in page.text(log)
    assert KEY not in kernel_said
    assert KEY not in (tmp_path / "agent-recording.jsonl").read_text()
