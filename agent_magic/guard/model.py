"""The records of the analysis: :class:`Touch` (one change to a name) and :class:`Touches`.

Only the types live here, so the walk (:mod:`.touches`), the policy (:mod:`.protected`)
and the undo (:mod:`.undo`) share them. How touches are found is in :mod:`.touches`;
which names are protected, in :mod:`.protected`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

How = Literal["rebind", "delete", "mutate"]


@dataclass(frozen=True)
class Touch:
    """One way a step would change a top-level name.

    ``how`` is ``"rebind"`` (assignment, import, ``def``, ``for`` target...),
    ``"delete"`` (``del x``, an ``except ... as x`` name) or ``"mutate"`` (the object the
    name holds is changed in place). ``detail`` says how (``"assignment"``, ``".append()"``,
    ``"item assignment"``); ``line`` is 1-based in the code given. ``maybe`` is true when
    the change only may happen: a method call (which methods mutate cannot be known
    statically) or an augmented assignment on a name (``x += 1`` changes a list in place
    but rebinds an int).
    """

    name: str
    how: How
    detail: str
    line: int
    maybe: bool = False


class Touches(tuple[Touch, ...]):
    """The touches of one step, in source order, plus what the analysis could not see.

    ``parsed`` is false when the code is not Python (a ``SyntaxError``): the tuple is
    then empty and callers should treat the code as unknown. ``unseen`` lists constructs
    that may change names the analysis cannot name (``"exec() (line 3)"``).
    """

    parsed: bool
    unseen: tuple[str, ...]

    def __new__(
        cls, items: Iterable[Touch] = (), *, parsed: bool = True, unseen: Iterable[str] = ()
    ) -> Touches:
        self = super().__new__(cls, items)
        self.parsed = parsed
        self.unseen = tuple(unseen)
        return self

    def names(self, how: How | None = None) -> tuple[str, ...]:
        """The distinct names touched (optionally only one way), first occurrence first."""
        return tuple(dict.fromkeys(t.name for t in self if how is None or t.how == how))

    def __repr__(self) -> str:
        return f"Touches({list(self)!r}, parsed={self.parsed}, unseen={self.unseen!r})"
