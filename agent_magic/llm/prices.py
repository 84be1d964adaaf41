"""What a model's tokens cost: ``AgentMagics.prices`` first, then the maintained table of
the ``genai-prices`` package (pydantic's, updated as providers change their prices).

:func:`price_of` gives a model's (input, output) US$ per million tokens, or None when
nobody knows it; :func:`set_prices` takes the user's additions and overrides. The
package is imported on the first price asked for (a cell's budget or ``%agent usage``),
never on ``%load_ext``: it takes a few tenths of a second to import. It is imported, and
each model looked up in it, in a worker thread the cell waits on (at most
``LOOKUP_WITHIN`` seconds): an interrupt landing in the cell's thread mid-import could
leave the kernel's import locks half-taken (as the SDK's once did). Reasoning tokens are
billed as output tokens and are already among the completion tokens. Not here: adding
up a cell's cost (:mod:`agent_magic.budget`), the usage table (:mod:`.usage`).
"""

from __future__ import annotations

import atexit
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Price:
    """US$ per million tokens, and where the figure came from."""

    input: float
    output: float
    source: str  # "AgentMagics.prices" or "genai-prices"


_OVERRIDES: dict[str, Price] = {}
_DATED = re.compile(r"-\d{4}-\d{2}-\d{2}$")


def set_prices(prices: Mapping[str, Any]) -> None:
    """Use ``prices`` (AgentMagics.prices) before the maintained table (see
    :func:`parse_prices`)."""
    parsed = parse_prices(prices)
    _OVERRIDES.clear()
    _OVERRIDES.update(parsed)


def parse_prices(prices: Mapping[str, Any]) -> dict[str, Price]:
    """AgentMagics.prices (model -> {"input": $, "output": $} per million tokens, or
    [input, output]) as Prices; ValueError names a bad entry and the fix."""
    parsed: dict[str, Price] = {}
    for model, given in prices.items():
        if isinstance(given, Mapping):
            pair = [given.get("input"), given.get("output")]
        else:
            pair = list(given) if isinstance(given, (list, tuple)) else []
        rates = [float(v) for v in pair if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if len(pair) != 2 or len(rates) != 2 or min(rates) < 0:
            raise ValueError(
                f"AgentMagics.prices[{model!r}] must be US$ per million tokens, like "
                '{"input": 1.25, "output": 10.0}'
            )
        parsed[str(model)] = Price(rates[0], rates[1], "AgentMagics.prices")
    return parsed


def price_of(model: str) -> Price | None:
    """The model's price per million tokens, or None when it is unknown."""
    if not model:
        return None
    given = _OVERRIDES.get(model) or _OVERRIDES.get(_DATED.sub("", model))
    if given is not None:
        return given
    return _maintained(model)


#: Seconds a cell waits for a model's maintained price (its first lookup imports the
#: table, a few tenths of a second); past them the price is unknown for now.
LOOKUP_WITHIN = 30.0
_MAINTAINED: dict[str, Price | None] = {}
_stuck: threading.Event | None = None  # a lookup that outlasted its wait; set once it ends


def _maintained(model: str) -> Price | None:
    global _stuck
    if model in _MAINTAINED:
        return _MAINTAINED[model]
    if _stuck is not None and not _stuck.is_set():
        return None  # another wait would run out the same way: unknown, at once
    done = threading.Event()
    found: list[Price | None] = []

    def look_up() -> None:
        try:
            found.append(_look_up(model))
            if len(_MAINTAINED) < 256:  # kept for the next lookup, even one interrupted
                _MAINTAINED[model] = found[0]
        finally:
            done.set()

    worker = threading.Thread(target=look_up, name="agent_magic-prices", daemon=True)
    worker.start()
    try:
        finished = done.wait(LOOKUP_WITHIN)  # an interrupt lands here, never mid-import
    finally:
        if not done.is_set():  # given up on: the wait ran out, or an interrupt came
            # A daemon thread still importing at shutdown can abort the interpreter.
            atexit.register(worker.join, 10.0)
    if not finished:
        _stuck = done
        return None
    return found[0] if found else None


def _look_up(model: str) -> Price | None:
    """The maintained table's price (in the worker thread: it imports the package)."""
    try:
        from genai_prices import Usage, calc_price
    except ImportError:  # installed without its dependencies: no maintained prices
        return None
    try:
        # The price of a million of each: the per-million rates at the first tier.
        calc = calc_price(Usage(input_tokens=1_000_000, output_tokens=1_000_000), model)
    except Exception:  # LookupError for an unknown model; anything else is no price either
        return None
    return Price(float(calc.input_price), float(calc.output_price), "genai-prices")
