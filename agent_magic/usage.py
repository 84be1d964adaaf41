"""``%agent usage``: tokens per model call and in total, with the cost where known.

Moved out of the magic unchanged; the llm helper's ``llm.usage_table(replies)`` replaces
it when it lands (the session uses that one when it exists). Not here: prices and cost
(:mod:`agent_magic.llm`), where the replies come from (the session's history).
"""

from __future__ import annotations

from collections.abc import Sequence

from .conversation import ChatReply
from .llm import PRICES, cost


def usage_table(replies: Sequence[ChatReply]) -> tuple[str, str]:
    """(plain text, Markdown) of the calls so far."""
    if not replies:
        return ("(no model calls yet)", "*(no model calls yet)*")
    rows = []
    total_in = total_out = 0
    total_cost: float | None = 0.0
    for i, reply in enumerate(replies, 1):
        usage = reply.usage
        p, c = (usage.prompt_tokens, usage.completion_tokens) if usage else (0, 0)
        total_in, total_out = total_in + p, total_out + c
        price = cost(reply.model, usage)
        total_cost = None if price is None or total_cost is None else total_cost + price
        shown = "" if price is None else f"${price:.5f}"
        rows.append(
            (str(i), reply.model, reply.endpoint, str(p), str(c), str(p + c), shown, reply.source)
        )
    total = "" if total_cost is None else f"${total_cost:.5f}"
    rows.append(
        ("total", "", "", str(total_in), str(total_out), str(total_in + total_out), total, "")
    )
    head = ("call", "model", "endpoint", "prompt", "completion", "total", "cost", "source")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    plain = "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in [head, *rows]
    )
    md = "| " + " | ".join(head) + " |\n|" + "---|" * len(head) + "\n"
    md += "\n".join("| " + " | ".join(r) + " |" for r in rows)
    if total_cost is None:
        note = "Cost is shown for models with a known price: " + ", ".join(sorted(PRICES))
        plain += "\n" + note
        md += "\n\n" + note
    return (plain, md)
