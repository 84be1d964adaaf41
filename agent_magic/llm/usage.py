"""What model calls cost and how many tokens they took: the price table, :func:`cost`,
and the ``%agent usage`` table (:func:`usage_table`).

A reply whose server reported no usage has ``usage=None``; it is shown as unknown,
never as 0. Estimating tokens for budgets is not here (``agent_magic.window``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ..conversation import ChatReply, Usage

# US$ per million tokens (input, output), for `%agent usage`. Public list prices;
# unknown models simply show no cost.
PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o": (2.5, 10.0),
    "gpt-4o-mini": (0.15, 0.6),
    "gpt-4.1": (2.0, 8.0),
    "gpt-4.1-mini": (0.4, 1.6),
    "gpt-4.1-nano": (0.1, 0.4),
    "gpt-4-turbo": (10.0, 30.0),
    "gpt-4": (30.0, 60.0),
    "gpt-3.5-turbo": (0.5, 1.5),
    "o3-mini": (1.1, 4.4),
    "o4-mini": (1.1, 4.4),
}


def _price(model: str) -> tuple[float, float] | None:
    return PRICES.get(model) or PRICES.get(re.sub(r"-\d{4}-\d{2}-\d{2}$", "", model))


def cost(model: str, usage: Usage | None) -> float | None:
    """Dollar cost of one call, or None when the usage or the model's price is unknown."""
    if usage is None:
        return None
    price = _price(model)
    if price is None:
        return None
    return (usage.prompt_tokens * price[0] + usage.completion_tokens * price[1]) / 1e6


UNKNOWN = "unknown"


def usage_table(
    replies: Sequence[ChatReply], estimates: Sequence[Usage | None] = ()
) -> tuple[str, str]:
    """``%agent usage``: one row per model call and a total, as (plain text, Markdown).

    A call whose server reported no usage shows "unknown", never 0 (llama.cpp's server
    sends none in streams), unless ``estimates`` (by position, e.g. from
    ``agent_magic.window.estimate_tokens``) holds one for it: then it shows "~N",
    counts in the totals, and the totals are marked "~" too. Cost is shown where the
    model's price is known. Notes under the table say what is missing or estimated.
    """
    if not replies:
        return ("(no model calls yet)", "*(no model calls yet)*")
    rows: list[tuple[str, ...]] = []
    total_in = total_out = 0
    total_cost = 0.0
    unknown_usage: list[int] = []
    estimated: list[int] = []
    unknown_cost = 0
    for i, reply in enumerate(replies, 1):
        usage, mark = reply.usage, ""
        if usage is None and i <= len(estimates) and estimates[i - 1] is not None:
            usage, mark = estimates[i - 1], "~"
            estimated.append(i)
        price = cost(reply.model, usage)
        if usage is None:
            unknown_usage.append(i)
            tokens = (UNKNOWN, UNKNOWN, UNKNOWN)
        else:
            total_in += usage.prompt_tokens
            total_out += usage.completion_tokens
            tokens = tuple(
                f"{mark}{n}"
                for n in (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens)
            )
        if price is None:
            unknown_cost += 1
        else:
            total_cost += price
        shown_cost = "" if price is None else f"{mark}${price:.5f}"
        rows.append((str(i), reply.model, reply.endpoint, *tokens, shown_cost, reply.source))
    everything_unknown = len(unknown_usage) == len(replies)
    mark = "~" if estimated else ""
    totals = (
        (UNKNOWN,) * 3
        if everything_unknown
        else tuple(f"{mark}{n}" for n in (total_in, total_out, total_in + total_out))
    )
    some_cost = unknown_cost < len(replies)
    rows.append(("total", "", "", *totals, f"{mark}${total_cost:.5f}" if some_cost else "", ""))
    head = ("call", "model", "endpoint", "prompt", "completion", "total", "cost", "source")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    plain = "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
        for r in [head, *rows]
    )
    md = "| " + " | ".join(head) + " |\n|" + "---|" * len(head) + "\n"
    md += "\n".join("| " + " | ".join(r) + " |" for r in rows)
    notes = []
    if unknown_usage:
        notes.append(
            f"The server reported no token usage for {_calls(unknown_usage)} "
            "(llama.cpp sends none in streams): unknown, not 0"
            + ("" if everything_unknown else ", and not in the totals")
            + "."
        )
    if estimated:
        notes.append(f"~ marks an estimate: the server reported no usage for {_calls(estimated)}.")
    if unknown_cost:
        notes.append(
            ("The total leaves out calls without a known price. " if some_cost else "")
            + "Cost is shown for models with a known price: "
            + ", ".join(sorted(PRICES))
        )
    for note in notes:
        plain += "\n" + note
        md += "\n\n" + note
    return (plain, md)


def _calls(numbers: Sequence[int]) -> str:
    shown = ", ".join(map(str, numbers[:20])) + (", ..." if len(numbers) > 20 else "")
    return f"call{'s' if len(numbers) > 1 else ''} {shown}"
