from __future__ import annotations

from collections.abc import Iterator

import pytest
from IPython.core.interactiveshell import InteractiveShell


@pytest.fixture
def shell(openai_env, tmp_path, monkeypatch) -> Iterator[InteractiveShell]:
    """A real IPython shell with agent_magic loaded, talking to the local server.

    Its recording goes to the test's own folder, never into the checkout.
    """
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "agent_magic")
    magics = ip.magics_manager.registry["AgentMagics"]
    magics.conversation = None
    magics.recorder = None
    magics.max_retries = 0
    magics.recording = str(tmp_path / "agent-recording.jsonl")
    monkeypatch.delenv("AGENT_MAGIC_REPLAY", raising=False)
    before = set(ip.user_ns)
    yield ip
    for name in set(ip.user_ns) - before:
        ip.user_ns.pop(name, None)
    magics.conversation = None
    traits = ("mode", "max_retries", "model", "base_url", "config_list", "stream", "timeout")
    for trait in (*traits, "retry_budget", "recording", "seed", "replay"):
        magics.set_trait(trait, magics.trait_defaults(trait))
