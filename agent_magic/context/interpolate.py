"""``{name}`` placeholders in a task: :func:`interpolate`.

Here: ``{df}`` becomes the name and a description of that variable, ``{In[3]}`` cell 3's
code as a fenced block, ``{Out[3]}`` a description of its result; ``{{``/``}}`` are
literal braces; anything else in braces stays as written.

Not here: describing values (:mod:`.describe`), which names are visible
(:mod:`.summary`), the fence writer (:func:`agent_magic.text.fence`).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence

from ..secrets import is_secret_name
from ..text import fence
from ._base import MISSING, Walk
from .describe import describe_top, new_walk
from .summary import visible_names

# -- interpolate ---------------------------------------------------------------------------

_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([^{}\s]+)\}")
_HISTORY = re.compile(r"(In|Out)\[(-?\d+)\]")


def interpolate(
    template: str,
    ns: Mapping[str, object],
    *,
    limit: int = 1500,
    hidden: Collection[str] = (),
    inputs: Sequence[str] | None = None,
) -> str:
    """Replace ``{name}`` in a task with ``name`` and a description of that variable.

    ``{df}`` becomes the name in backticks, then ``(DataFrame shape=...; columns: ...``
    with its first rows on indented lines, then ``)``: the model needs the name to write
    code and the description to write the right code. Each description is at most ``limit``
    characters. ``{{`` and ``}}`` are literal braces. Anything else in braces stays as
    written, without raising: an unknown, hidden, private or secret-looking name
    (``{api_key}`` is not expanded), or code such as ``{'a': 1}`` and ``{x+1}``.
    ``{In[3]}`` is the code of cell 3 and ``{Out[3]}`` a description of its result, as in
    IPython's own ``In``/``Out`` history (negative numbers count back from this cell);
    ``inputs`` is the cells' code as typed (IPython's ``In`` holds it after transforms).
    """
    walk = new_walk()

    def replace(match: re.Match[str]) -> str:
        whole, name = match.group(0), match.group(1)
        if name is None:
            return whole[0]  # {{ or }}
        history = _HISTORY.fullmatch(name)
        if history:
            return _history(history[1], int(history[2]), ns, inputs, limit, walk) or whole
        if not name.isidentifier() or is_secret_name(name):
            return whole
        value = ns.get(name, MISSING)
        if value is MISSING or not visible_names({name: value}, hidden, include_modules=True):
            return whole  # unknown, private or hidden
        text = describe_top(value, limit, walk).replace("\n", "\n    ")
        return f"`{name}` ({text})"

    return _PLACEHOLDER.sub(replace, template)


def _history(
    kind: str,
    number: int,
    ns: Mapping[str, object],
    inputs: Sequence[str] | None,
    limit: int,
    walk: Walk,
) -> str:
    """``In[n]`` as a fenced block of the cell's code, ``Out[n]`` described; "" if none."""
    inputs = ns.get("In") if inputs is None else inputs
    if not isinstance(inputs, Sequence) or not inputs:
        return ""
    if number < 0:
        number += len(inputs)  # In[-1] is this very cell, as in IPython
    if kind == "In":
        if not 0 < number < len(inputs) or not isinstance(inputs[number], str):
            return ""
        code = inputs[number].strip()
        if len(code) > limit:
            code = code[:limit] + "\n# ... (cut)"
        return f"`In[{number}]`:\n{fence(code, 'python')}\n"
    outputs = ns.get("Out")
    if not isinstance(outputs, dict) or number not in outputs:
        return ""
    text = describe_top(outputs[number], limit, walk).replace("\n", "\n    ")
    return f"`Out[{number}]` ({text})"
