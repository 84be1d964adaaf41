"""What model calls cost and how many tokens they took: :func:`cost` (prices from
:mod:`.prices`) and the ``%agent usage`` table (:func:`usage_table`).

A reply whose server reported no usage has ``usage=None``; it is shown as unknown,
never as 0. Estimating tokens for budgets is not here (``agent_magic.window``).
"""

from __future__ import annotations

from collections.abc import Sequence

from ..conversation import ChatReply, Usage
from .prices import price_of


def cost(model: str, usage: Usage | None) -> float | None:
    """Dollar cost of one call, or None when the usage or the model's price is unknown.

    Reasoning tokens are billed as output and are among ``completion_tokens``.
    """
    if usage is None:
        return None
    price = price_of(model)
    if price is None:
        return None
    return (usage.prompt_tokens * price.input + usage.completion_tokens * price.output) / 1e6


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
    thinking = any(r.usage is not None and r.usage.reasoning_tokens for r in replies)
    rows: list[tuple[str, ...]] = []
    total_in = total_out = total_reasoning = 0
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
            tokens = (UNKNOWN,) * (4 if thinking else 3)
        else:
            total_in += usage.prompt_tokens
            total_out += usage.completion_tokens
            total_reasoning += usage.reasoning_tokens
            counts = [usage.prompt_tokens, usage.completion_tokens, usage.total_tokens]
            if thinking:
                counts.insert(2, usage.reasoning_tokens)
            tokens = tuple(f"{mark}{n}" for n in counts)
        if price is None:
            unknown_cost += 1
        else:
            total_cost += price
        shown_cost = "" if price is None else f"{mark}${price:.5f}"
        rows.append((str(i), reply.model, reply.endpoint, *tokens, shown_cost, reply.source))
    everything_unknown = len(unknown_usage) == len(replies)
    mark = "~" if estimated else ""
    sums = [total_in, total_out, total_in + total_out]
    if thinking:
        sums.insert(2, total_reasoning)
    totals = (UNKNOWN,) * len(sums) if everything_unknown else tuple(f"{mark}{n}" for n in sums)
    some_cost = unknown_cost < len(replies)
    rows.append(("total", "", "", *totals, f"{mark}${total_cost:.5f}" if some_cost else "", ""))
    head: tuple[str, ...] = ("call", "model", "endpoint", "prompt", "completion", "total")
    if thinking:  # of the completion tokens, those spent thinking
        head = (*head[:5], "reasoning", "total")
    head = (*head, "cost", "source")
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
    if thinking:
        notes.append(
            "reasoning: the completion tokens the model spent thinking (billed as output)."
        )
    priced = sorted({r.model for r in replies if price_of(r.model) is not None})
    if priced:
        notes.append(
            "Prices in US$ per million tokens (input / output): "
            + "; ".join(_shown_price(m) for m in priced)
            + "."
        )
    if unknown_cost:
        unpriced = sorted({r.model or "?" for r in replies if price_of(r.model) is None})
        notes.append(
            ("The total leaves out calls without a known price. " if some_cost else "")
            + f"No known price for {', '.join(unpriced)}: add one with "
            "%config AgentMagics.prices = {'<model>': {'input': ..., 'output': ...}}."
        )
    for note in notes:
        plain += "\n" + note
        md += "\n\n" + note
    return (plain, md)


def _calls(numbers: Sequence[int]) -> str:
    shown = ", ".join(map(str, numbers[:20])) + (", ..." if len(numbers) > 20 else "")
    return f"call{'s' if len(numbers) > 1 else ''} {shown}"


def _shown_price(model: str) -> str:
    price = price_of(model)
    assert price is not None
    return f"{model} {price.input:g} / {price.output:g} ({price.source})"
