"""What the model is told with a task: the user's namespace, the notebook, the files named.

Here (re-exported from the modules of this package): :func:`describe` (a bounded
description of one value), :func:`summarize_namespace` (the variables block sent with each
task), :func:`step_start` and :func:`step_changes` (what a step created, rebound,
changed in place or deleted) and :func:`interpolate` (``{name}`` in a task becomes a
description of that variable).

The modules: :mod:`._base` (tuning, per-call state, safe introspection),
:mod:`.values` (builtin values and containers), :mod:`.objects` (functions, classes,
other objects), :mod:`.libraries` (numpy, pandas, polars, array libraries),
:mod:`.describe` (one value: picks the handler), :mod:`.summary` (which names, fitted in a
budget), :mod:`.changes` (snapshots and what a step changed), :mod:`.interpolate`
(``{name}`` placeholders), :mod:`.files` (previews of the files a task names),
:mod:`.notebook` (the code of earlier cells, the saved notebook's Markdown) and
:mod:`.block` (every source in one budget: what the request carries after the task, and
what ``%agent context`` shows).

Not here: IPython (callers pass ``user_ns`` and ``user_ns_hidden``), and no numpy, pandas
or polars import. Those libraries are recognised through ``sys.modules`` only when the
user has already imported them, so describing a namespace never imports one. Which names
and values are secret is decided by :mod:`agent_magic.secrets`.

Everything here runs in the user's kernel on objects we did not write, so the rules are
about not running their code:

* Types are recognised by ``type(value)`` and ``issubclass`` against known classes, never
  by ``hasattr``/``isinstance`` on the value: a ``__getattr__`` that claims every
  attribute (a Mock "with" ``.shape``) or a ``__class__`` property would fool or stall
  those.
* ``repr()`` is called only on builtin scalars and an allowlist of stdlib and library
  value types (datetime, Decimal, UUID, paths, regex patterns, files, numpy scalars and
  dtypes, pandas Timestamp, ...), matched by exact type, so a subclass that overrides
  ``__repr__`` is not trusted. Their reprs are short and do not recurse into arbitrary
  objects; one that raises becomes ``<repr failed: ExcType>``.
* Everything else is described structurally. Builtin containers (and their subclasses)
  are read through the base type's C methods, so an overridden ``__len__`` or
  ``__iter__`` is not called. Other objects become ``<ClassName object: attr=..., ...>``
  from the instance ``__dict__`` or slots, read without running properties or
  ``__getattr__``. A user-defined ``__repr__`` is never called, so a slow or failing one
  cannot stall a summary.
* Only bounded slices are ever rendered: the first items of a container, ``head`` rows
  of a frame, an array's values only when it has at most 20 elements.
"""

from __future__ import annotations

from .changes import StepStart, step_changes, step_start
from .describe import describe
from .interpolate import interpolate
from .summary import summarize_namespace

__all__ = [
    "StepStart",
    "describe",
    "interpolate",
    "step_changes",
    "step_start",
    "summarize_namespace",
]
