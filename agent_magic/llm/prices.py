"""What a model's tokens cost: ``AgentMagics.prices`` first, then the maintained table of
the ``genai-prices`` package (pydantic's, updated as providers change their prices).

:func:`price_of` gives a model's (input, output) US$ per million tokens, or None when
nobody knows it; :func:`set_prices` takes the user's additions and overrides. The
package is imported on the first price asked for (a cell's budget or ``%agent usage``),
never on ``%load_ext``: it takes a few tenths of a second to import. Reasoning tokens are
billed as output tokens and are already among the completion tokens. Not here: adding
up a cell's cost (:mod:`agent_magic.budget`), the usage table (:mod:`.usage`).
"""

from __future__ import annotations

import functools
import re
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


@functools.lru_cache(maxsize=256)
def _maintained(model: str) -> Price | None:
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
