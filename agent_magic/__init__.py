"""agent_magic: a coding assistant in a Jupyter cell.

``%load_ext agent_magic``, then a ``%%agent`` cell with the task. See ``%%agent?`` for
the options. What lives here: the extension's entry points and nothing heavy (the magic
is imported when the extension loads, the rest by :mod:`agent_magic.warmup` and the first
cell). The wiring: :mod:`agent_magic.magic` (traits, arguments), :mod:`agent_magic.plan`
(each cell's plan), :mod:`agent_magic.session` (the per-kernel composition root),
:mod:`agent_magic.conversation` (the loop).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .defaults import VERSION as __version__

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

__all__ = ["__version__", "load_ipython_extension", "unload_ipython_extension"]


def load_ipython_extension(shell: InteractiveShell) -> None:
    from .integrity import after_cell
    from .magic import AgentMagics
    from .ui.frontend import install_cell_rewriter
    from .warmup import start

    # What a step may not change is taken when the wiring is first imported (session.py).
    after_cell()  # %reload_ext after a step changed the extension: put it back first
    magics = AgentMagics(shell=shell)
    shell.register_magics(magics)
    shell.events.register("post_run_cell", magics.error_watch)  # for %agent fix
    if after_cell not in shell.events.callbacks["post_run_cell"]:
        shell.events.register("post_run_cell", after_cell)
    # The first cell's imports, the SDK's ~0.8 s one and the client the traits point at,
    # in a background thread while the user reads.
    start(
        base_url=magics.base_url or None,
        config_list=magics.config_list or None,
        timeout=magics.timeout,
        max_retries=magics.max_retries,
    )
    install_cell_rewriter(
        shell, "agent", "get_ipython().magics_manager.registry['AgentMagics'].agent_async"
    )


def unload_ipython_extension(shell: InteractiveShell) -> None:
    from .ui.frontend import uninstall_cell_rewriter

    magics = shell.magics_manager.registry.get("AgentMagics")
    if magics is not None and magics.error_watch in shell.events.callbacks["post_run_cell"]:
        shell.events.unregister("post_run_cell", magics.error_watch)
    from .integrity import after_cell

    if after_cell in shell.events.callbacks["post_run_cell"]:
        shell.events.unregister("post_run_cell", after_cell)
    uninstall_cell_rewriter(shell)
