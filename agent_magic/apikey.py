"""The API key typed with ``%agent key``: held in this kernel's memory, and nowhere else.

:func:`keep` holds it (a module-level value: it lives as long as the kernel process and is
gone with it), :func:`ask` asks for it without echo in a terminal (``getpass``; the
notebook's password box is :class:`agent_magic.ui.boxes.KeyBox`), and :func:`with_key`
gives it to the endpoints that have no key of their own, where the session builds each
cell's chat client. The key is never printed, recorded or saved: the messages here never
quote it, and since the endpoints carry it, the cell's redactor (built from the
endpoints' keys) hides it in everything sent and recorded.

Not here: where the other keys come from (:mod:`agent_magic.llm.config`), the widget.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .llm.config import Endpoint

PROMPT = "API key (not shown; kept in this kernel's memory only): "

_held: str | None = None


def keep(key: str) -> str:
    """Hold ``key`` for this kernel; the one line that says what happens with it."""
    global _held
    key = key.strip()
    if not key:
        return "agent: no key typed; nothing changed"
    _held = key
    note = ""
    if os.environ.get("OPENAI_API_KEY"):
        note = " (OPENAI_API_KEY is set too, and is used first)"
    return (
        "agent: key kept in this kernel's memory only (never shown, recorded or saved); "
        f"%%agent cells use it for endpoints without a key of their own{note}"
    )


def held() -> str | None:
    """The key typed with ``%agent key`` in this kernel, if any."""
    return _held


def forget() -> None:
    """Drop the held key (as restarting the kernel does)."""
    global _held
    _held = None


def ask(getpass: Callable[[str], str] | None = None) -> str:
    """Ask for the key without echo (``getpass.getpass``) and keep it; the line to show."""
    if getpass is None:
        import getpass as module

        getpass = module.getpass
    try:
        typed = getpass(PROMPT)
    except (EOFError, KeyboardInterrupt):
        typed = ""
    return keep(typed)


def with_key(endpoints: Sequence[Endpoint], env: Mapping[str, str] | None = None) -> list[Endpoint]:
    """``endpoints``, the held key given to each that has none of its own.

    An entry's own ``api_key`` (a config list) and the environment's key for its kind
    (``OPENAI_API_KEY``, ``AZURE_OPENAI_API_KEY``) come first: the held key is for when
    no other key is configured.
    """
    key = _held
    if not key:
        return list(endpoints)
    env = os.environ if env is None else env
    given = []
    for endpoint in endpoints:
        name = "AZURE_OPENAI_API_KEY" if endpoint.api_type == "azure" else "OPENAI_API_KEY"
        if endpoint.api_key or env.get(name):
            given.append(endpoint)
        else:
            given.append(replace(endpoint, api_key=key))
    return given
