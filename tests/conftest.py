"""What every test shares: the ``slow`` tier, the ``shell`` fixture, :func:`code`,
:func:`answers` (the person at the terminal's ``input()``).

The quick tier, ``pytest -m "not slow"``, is what to run while working; ``.ci/run`` runs
everything. What is slow is marked here when the tests are collected, so a test added
later lands in the right tier by what it does: everything under ``tests/browser`` and
``tests/real``, the files in :data:`SLOW_FILES`, and every test that (itself, through a
fixture, or through a helper of its module) starts a kernel or a notebook run: it calls
one of :data:`KERNEL_STARTERS`. Anything else slow is marked ``@pytest.mark.slow`` in
its file.
"""

from __future__ import annotations

import builtins
import importlib
import os
import pkgutil
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings
from IPython.core.interactiveshell import InteractiveShell

# Under CI the property tests draw the same examples every run (derandomize), so a run
# cannot pass or fail by luck; while working they explore afresh each time, and what
# they find is added as an @example.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

HERE = Path(__file__).resolve().parent
SLOW_FOLDERS = ("browser", "real")
#: Whole files in the slow tier: a fresh venv with the README's commands, load, benchmarks.
SLOW_FILES = (
    "test_readme_demo.py",
    "test_load.py",
    "test_bench.py",
)
#: Names whose call starts a real kernel (jupyter_client) or runs a notebook in one; a
#: string constant ``"papermill"`` counts too (``python -m papermill`` in a subprocess).
KERNEL_STARTERS = frozenset(
    {"start_new_kernel", "KernelManager", "NotebookClient", "execute_notebook", "papermill"}
)


def code(src: str, language: str = "python", *, words: str = "Next step:") -> str:
    """A model reply proposing ``src``: ``words``, then ``src`` in a fence."""
    lead = f"{words}\n" if words else ""
    return f"{lead}```{language}\n{src}\n```"


def answers(monkeypatch: pytest.MonkeyPatch, *typed: str, rest: str | None = None) -> list[str]:
    """``input()`` answers the terminal's questions with ``typed``, in order, then each
    later one with ``rest`` (None: a question past the script fails the test); returns
    the prompts it was shown, in order."""
    prompts: list[str] = []
    queue = list(typed)

    def fake_input(prompt: str = "") -> str:
        prompts.append(prompt)
        if queue:
            return queue.pop(0)
        assert rest is not None, f"asked once more than scripted: {prompt}"
        return rest

    monkeypatch.setattr(builtins, "input", fake_input)
    return prompts


def pytest_sessionstart(session: pytest.Session) -> None:
    """Import every agent_magic module now, in the main thread, before any test.

    pytest rewrites the assertions of every module of a plugin's distribution (this one,
    hypothesis, anyio) by ``ast.parse`` of its source when it is first imported. On
    CPython 3.11 two threads in ``ast.parse`` at once can fail one of them with
    "SystemError: AST constructor recursion depth mismatch" (the interpreter keeps one
    depth counter for all its threads; see CPython gh-106905). ``%load_ext`` starts a
    thread that imports what the first cell needs (:mod:`agent_magic.warmup`), so a
    test's first cell importing one module in the main thread while that thread imported
    another failed now and then (``tests/test_guard.py`` then ``tests/test_undo_magic.py``:
    3 runs in 6; with the warm-up off, or with this, 0 in 6 and 0 in 8). Outside pytest
    an import makes no Python AST objects, and only the main thread calls ``ast.parse``.
    """
    import agent_magic

    for module in pkgutil.walk_packages(agent_magic.__path__, "agent_magic."):
        if not module.name.endswith("__main__"):  # ``python -m`` entry points run on import
            importlib.import_module(module.name)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    seen: dict[int, bool] = {}
    for item in items:
        if _slow(item, seen):
            item.add_marker(pytest.mark.slow)


def _slow(item: pytest.Item, seen: dict[int, bool]) -> bool:
    path = Path(str(item.path)).resolve()
    inside = path.relative_to(HERE).parts if path.is_relative_to(HERE) else ()
    if (inside[:1] and inside[0] in SLOW_FOLDERS) or path.name in SLOW_FILES:
        return True
    function = getattr(item, "function", None)
    if function is not None and _starts_kernel(function, seen):
        return True
    info = getattr(item, "_fixtureinfo", None)
    for defs in info.name2fixturedefs.values() if info is not None else ():
        if any(_starts_kernel(d.func, seen) for d in defs):
            return True
    return False


def _starts_kernel(obj: Any, seen: dict[int, bool], depth: int = 3) -> bool:
    """Whether calling ``obj`` may call one of :data:`KERNEL_STARTERS`: read from its
    code, and the code of the module-level functions and classes it names."""
    obj = getattr(obj, "__wrapped__", obj)
    if isinstance(obj, type):
        return any(_starts_kernel(f, seen, depth) for f in vars(obj).values() if callable(f))
    code_ = getattr(obj, "__code__", None)
    if code_ is None or depth == 0:
        return False
    if id(code_) in seen:
        return seen[id(code_)]
    seen[id(code_)] = False  # a recursive helper: not slow on its own account
    names = _names(code_)
    found = bool(names & KERNEL_STARTERS)
    if not found:
        scope = getattr(obj, "__globals__", {})
        for name in names:
            value = scope.get(name)
            if isinstance(value, (types.FunctionType, type)) and _starts_kernel(
                value, seen, depth - 1
            ):
                found = True
                break
    seen[id(code_)] = found
    return found


def _names(code_: types.CodeType) -> set[str]:
    names = set(code_.co_names)
    for const in code_.co_consts:
        if isinstance(const, types.CodeType):  # nested functions, lambdas, comprehensions
            names |= _names(const)
        elif isinstance(const, str) and const in KERNEL_STARTERS:
            names.add(const)
    return names


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
