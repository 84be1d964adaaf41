"""The first cell's slow work, done in a background thread from ``%load_ext`` on.

``%load_ext`` imports the magic (its traits and argument parsing) and nothing heavy; this
thread then imports what the first cell needs (the session, the loop, the recording, the
executor, the namespace summary, export) and the openai SDK with the client the settings
point at (:func:`agent_magic.llm.client.warm_client`), while the user reads. A first cell run
at once waits for the parts it needs (Python's import lock, the client's lock); anything
that fails here is left for the cell to report. ``AGENT_MAGIC_WARMUP=0`` in the
environment turns the thread off (everything is then imported by the first cell).
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import os
import threading
from typing import Any

WARMUP_ENV = "AGENT_MAGIC_WARMUP"
# What every first cell imports, before the SDK (which only a request to a model needs).
_FIRST_CELL = (
    "session",
    "plan",
    "ui.sight",
    "conversation",
    "kernel.executor",
    "context",
    "export",
)


def start(**settings: Any) -> threading.Thread | None:
    """Start the warm-up (None when ``AGENT_MAGIC_WARMUP=0`` turned it off); ``settings``
    are :func:`~agent_magic.llm.client.warm_client`'s (the endpoint the client is built for)."""
    if os.environ.get(WARMUP_ENV, "").strip() == "0":
        return None

    def work() -> None:
        for name in _FIRST_CELL:
            with contextlib.suppress(Exception):
                importlib.import_module(f".{name}", __package__)
        with contextlib.suppress(Exception):
            from .llm.client import warm_client

            warm_client(**settings)

    thread = threading.Thread(target=work, name="agent_magic-import", daemon=True)
    thread.start()
    # A daemon thread still importing when the interpreter shuts down can abort it
    # ("FATAL: exception not rethrown"): a process that ends right after %load_ext waits
    # for the warm-up a little instead.
    atexit.register(thread.join, 10.0)
    return thread
