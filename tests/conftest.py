from __future__ import annotations

from collections.abc import Iterator

import pytest
from IPython.core.interactiveshell import InteractiveShell


@pytest.fixture
def shell(openai_env) -> Iterator[InteractiveShell]:
    """A real IPython shell with agent_magic loaded, talking to the local server."""
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "agent_magic")
    magics = ip.magics_manager.registry["AgentMagics"]
    magics.conversation = None
    magics.max_retries = 0
    before = set(ip.user_ns)
    yield ip
    for name in set(ip.user_ns) - before:
        ip.user_ns.pop(name, None)
    magics.conversation = None
    for trait in ("mode", "max_retries", "model", "base_url", "config_list", "stream", "timeout"):
        magics.set_trait(trait, magics.trait_defaults(trait))
