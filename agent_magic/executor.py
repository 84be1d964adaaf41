"""Where the executor used to live: its names, kept importable.

The code is in :mod:`agent_magic.kernel` (:mod:`~agent_magic.kernel.executor`,
:mod:`~agent_magic.kernel.capture`, :mod:`~agent_magic.kernel.signals`,
:mod:`~agent_magic.kernel.ipython`).
"""

from __future__ import annotations

from .kernel.capture import IMAGE_TYPES, HeadTail, StepCapture, cap, downscale, strip_ansi
from .kernel.executor import DEFAULT_STEP_TIMEOUT, IPythonExecutor, kill_group, step_name

__all__ = [
    "DEFAULT_STEP_TIMEOUT",
    "IMAGE_TYPES",
    "HeadTail",
    "IPythonExecutor",
    "StepCapture",
    "cap",
    "downscale",
    "kill_group",
    "step_name",
    "strip_ansi",
]
