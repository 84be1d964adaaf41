"""agent_magic: a coding assistant in a Jupyter cell.

``%load_ext agent_magic``, then a ``%%agent`` cell with the task. See
``%%agent?`` for the options and ``agent_magic.magic`` for the wiring.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

__version__ = "0.1.0"


def load_ipython_extension(shell: InteractiveShell) -> None:
    from .magic import load

    load(shell)


def unload_ipython_extension(shell: InteractiveShell) -> None:
    from .magic import unload

    unload(shell)
