"""A step's traceback as a display that points at the step: the error line first, the
step's own frames next, the library frames behind a click (HTML ``<details>``).

Used in a kernel instead of an nbformat ``error`` output; the model reads the bounded
text in ``StepError.text`` instead (see :mod:`.executor`).
"""

from __future__ import annotations

import html

from ..text import escape_surrogates, strip_ansi

# The step's own frames shown, innermost first, up to about this many lines.
FOLD_LINES = 30


def _plain(text: str) -> str:
    """Colour-free, with lone surrogates escaped."""
    return escape_surrogates(strip_ansi(text))


def folded_traceback(stb: list[str], fold_lines: int = FOLD_LINES) -> dict[str, str]:
    """A traceback as a display bundle that points at the step: the error line first,
    then the step's own frames (``<agent step N>``, ``Cell In[N]``) with the failing
    line, and the library frames folded behind a click (``<details>``). The text/plain
    face is in the same order, colour-free, nothing left out.

    Own frames are shown innermost first up to ``fold_lines`` lines (a deep recursion
    folds too), and the outermost one, the step's own line, always; with no own frame
    (a traceback from elsewhere) the innermost frame is shown.
    """
    entries = [_plain(entry).rstrip("\n") for entry in stb]
    frames = [i for i, entry in enumerate(entries) if _is_frame(entry)]
    if not frames or frames[-1] == len(entries) - 1:  # no error line: shown as it came
        return _as_is(entries)
    error = "\n".join(entries[frames[-1] + 1 :])
    own = [i for i in frames if _is_own(entries[i])] or frames[-1:]
    shown: list[int] = []
    lines = 0
    for index in reversed(own):
        count = entries[index].count("\n") + 1
        if shown and lines + count > fold_lines:
            break
        shown.append(index)
        lines += count
    if own[0] not in shown:
        shown.append(own[0])
    shown.sort()
    # Library frames, and a chained exception's own lines, stay in their order.
    folded = [entries[i] for i in range(frames[0], frames[-1] + 1) if i not in shown]
    visible = [entries[i] for i in shown]
    hidden = sum(entry.count("\n") + 1 for entry in folded)
    plain = "\n".join([error, *visible])
    body = _pre([error]) + _pre(visible)
    if folded:
        what = "library frames" if len(own) < len(frames) else "earlier frames"
        plain += f"\n[{what}, {hidden} lines]\n" + "\n".join(folded)
        body += (
            f"<details><summary>The {what} folded ({hidden} lines; click to show)"
            f"</summary>{_pre(folded)}</details>"
        )
    return {"text/plain": plain, "text/html": body}


_STYLE = (
    'style="background: var(--jp-rendermime-error-background, #fdd); '
    'padding: 2px 6px; margin: 0; white-space: pre-wrap"'
)


def _pre(parts: list[str]) -> str:
    return f"<pre {_STYLE}>{html.escape(chr(10).join(parts))}</pre>"


def _is_frame(entry: str) -> bool:
    return entry.startswith(("File ", "Cell In[", "Input In ["))


def _is_own(entry: str) -> bool:
    """A frame of the step's code or of the user's cells (not a library's)."""
    return entry.startswith(("File <agent step ", "Cell In[", "Input In ["))


def _as_is(entries: list[str]) -> dict[str, str]:
    plain = "\n".join(entries)
    return {"text/plain": plain, "text/html": _pre(entries)}
