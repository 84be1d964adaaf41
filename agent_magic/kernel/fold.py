"""A step's traceback as a display that folds: the last frames and the error line shown,
the rest behind a click (HTML ``<details>``), the whole traceback as text/plain.

Used in a kernel instead of an nbformat ``error`` output; the model reads the bounded
text in ``StepError.text`` instead (see :mod:`.executor`).
"""

from __future__ import annotations

import html

from ..text import escape_surrogates, strip_ansi

# A traceback longer than this many lines folds all but its last frames.
FOLD_LINES = 30


def _plain(text: str) -> str:
    """Colour-free, with lone surrogates escaped."""
    return escape_surrogates(strip_ansi(text))


def folded_traceback(stb: list[str], fold_lines: int = FOLD_LINES) -> dict[str, str]:
    """A traceback as a display bundle: HTML that folds all but its last frames behind a
    click (``<details>``) and the whole traceback as text/plain (colour-free)."""
    entries = [_plain(entry).rstrip("\n") for entry in stb]
    plain = "\n".join(entries)
    # Keep the error line and as many of the last entries as fit in ``fold_lines`` lines
    # (at least the innermost frame); fold the rest.
    shown = 0
    lines = 0
    for entry in reversed(entries):
        count = entry.count("\n") + 1
        if shown >= 2 and lines + count > fold_lines:
            break
        shown += 1
        lines += count
    folded, visible = entries[: len(entries) - shown], entries[len(entries) - shown :]
    style = (
        'style="background: var(--jp-rendermime-error-background, #fdd); '
        'padding: 2px 6px; margin: 0; white-space: pre-wrap"'
    )

    def pre(parts: list[str]) -> str:
        return f"<pre {style}>{html.escape(chr(10).join(parts))}</pre>"

    body = pre(visible)
    if folded and sum(entry.count("\n") + 1 for entry in folded) > 2:
        hidden = sum(entry.count("\n") + 1 for entry in folded)
        body = (
            f"<details><summary>Traceback: {hidden} earlier lines folded "
            f"(click to show)</summary>{pre(folded)}</details>{body}"
        )
    elif folded:
        body = pre(entries)
    return {"text/plain": plain, "text/html": body}
