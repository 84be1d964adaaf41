"""Protected names: the ones a step should not touch unasked, and saying so in one line.

:data:`DEFAULT_PROTECTED` lists the names IPython and this extension rely on;
:func:`protected_touches` keeps the touches on protected names and :func:`describe` says
them in one line for the review. Not here: finding the touches (:mod:`.touches`) and
deciding whether to ask the user (the loop).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable

from .model import Touch, Touches
from .touches import touches

#: Names whose rebinding or deletion breaks later cells or this extension's magics:
#: ``%%agent`` cells are rewritten to ``await get_ipython()...``; ``{In[N]}`` / ``{Out[N]}``
#: read ``In`` and ``Out``; IPython's display hook writes into ``_oh`` and ``%cd`` into
#: ``_dh``; ``display``, ``exit`` and ``quit`` are what users type; ``__name__`` decides
#: where classes defined in the notebook pickle to. ``_``, ``__``, ``___`` and ``_i*`` are
#: left out: IPython rebinds them every cell, and ``for _ in range(3)`` is idiomatic (a
#: user-assigned ``_`` only stops IPython updating it).
DEFAULT_PROTECTED: frozenset[str] = frozenset(
    {
        "get_ipython",
        "In",
        "Out",
        "_ih",
        "_oh",
        "_dh",
        "exit",
        "quit",
        "display",
        "__builtins__",
        "__builtin__",
        "__name__",
        "__spec__",
    }
)


def protected_touches(
    code: str | Touches,
    protected: Collection[str] = DEFAULT_PROTECTED,
    *,
    transform: Callable[[str], str] | None = None,
) -> Touches:
    """The touches of ``code`` (or of an earlier :func:`touches` result) on protected names."""
    found = code if isinstance(code, Touches) else touches(code, transform=transform)
    return Touches(
        (t for t in found if t.name in protected), parsed=found.parsed, unseen=found.unseen
    )


def describe(found: Iterable[Touch], *, limit: int = 6) -> str:
    """One line for the review: ``would rebind get_ipython (assignment, line 1); ...``.

    Each name and way is said once, at its first line; ``""`` when there is nothing.
    """
    first: dict[tuple[str, str], Touch] = {}
    for t in found:
        first.setdefault((t.how, t.name), t)
    phrases = [_phrase(t) for t in first.values()]
    if len(phrases) > limit:
        phrases[limit:] = [f"and {len(phrases) - limit} more"]
    return "; ".join(phrases)


def _phrase(t: Touch) -> str:
    where = f"({t.detail}, line {t.line})"
    if t.how == "rebind":
        return f"would rebind {t.name} {where}"
    if t.how == "delete":
        return f"would delete {t.name} {where}"
    return f"{'may' if t.maybe else 'would'} change {t.name} in place {where}"
