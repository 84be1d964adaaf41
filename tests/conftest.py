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
    fresh_session(magics)
    forget_config(ip, magics)
    magics.max_retries = 0
    magics.recording = str(tmp_path / "agent-recording.jsonl")
    monkeypatch.delenv("AGENT_MAGIC_REPLAY", raising=False)
    before = set(ip.user_ns)
    yield ip
    for name in set(ip.user_ns) - before:
        ip.user_ns.pop(name, None)
    fresh_session(magics)
    forget_config(ip, magics)
    for trait in magics.trait_names(config=True):
        magics.set_trait(trait, magics.trait_defaults(trait))


def forget_config(ip: InteractiveShell, magics) -> None:
    """Forget what earlier ``%config AgentMagics.x = ...`` lines set.

    %config keeps each value in the config of every configurable, and each call first
    replaces that config with a deep copy of itself (traitlets' ``update_config``), which
    loads the whole copy again: after one %config, the magics' config is no longer the
    shell's, so clearing ``ip.config`` alone left an earlier test's ``config_list`` and
    ``retry_budget`` to come back at the next %config (seen in the full suite).
    """
    for configurable in [ip, magics, *ip.configurables]:
        configurable.config.pop("AgentMagics", None)


def fresh_session(magics) -> None:
    """A new kernel's state: no conversation, no budget spent, no notice shown yet."""
    from agent_magic.session import Session

    watch = magics.session.errors  # the post_run_cell hook %load_ext registered
    watch.last = None
    magics.session = Session(magics.shell, make_executor=lambda **o: magics._executor(**o))
    magics.session.errors = watch
