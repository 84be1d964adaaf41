"""Which top-level names a step would change, and putting them back afterwards.

Two pure pieces for the loop and the magic; nothing here imports IPython (callers pass
the namespace dict and, for IPython syntax, ``shell.transform_cell``):

* :func:`touches` reads a Python step with :mod:`ast` and lists every top-level name it
  would rebind, delete or change in place, as :class:`Touch` records.
  :func:`protected_touches` keeps those on protected names (:data:`DEFAULT_PROTECTED`
  are the ones IPython and this extension rely on) and :func:`describe` says them in
  one line for the review.
* :class:`Undo` keeps, before a step runs, what it needs to put the namespace back: the
  old bindings by reference, and bounded deep copies of the objects the code changes in
  place. :meth:`Undo.restore` puts them back and returns an :class:`UndoReport`.

Not here: deciding whether to ask the user (the loop), the ``%agent undo`` command (the
magic), and anything outside the namespace: files written, requests sent, processes
started by a step are never undone.

The package's modules, each saying what lives in it and what does not:

* :mod:`.model` - :class:`Touch` and :class:`Touches`;
* :mod:`.scopes` - Python's scoping rules, as the analysis needs them;
* :mod:`.touches` - :func:`touches`, the :mod:`ast` walk, and what it cannot see;
* :mod:`.protected` - :data:`DEFAULT_PROTECTED`, :func:`protected_touches`, :func:`describe`;
* :mod:`.undo` - :class:`Undo`, :class:`UndoReport`, the copy limits.

``from agent_magic.guard import ...`` of every name below keeps working.
"""

from __future__ import annotations

from .model import How, Touch, Touches
from .protected import DEFAULT_PROTECTED, describe, protected_touches
from .touches import touches
from .undo import (
    DEFAULT_COPY_LIMIT_BYTES,
    DEFAULT_COPY_LIMIT_OBJECTS,
    Undo,
    UndoReport,
    ipython_bookkeeping,
)

__all__ = [
    "DEFAULT_COPY_LIMIT_BYTES",
    "DEFAULT_COPY_LIMIT_OBJECTS",
    "DEFAULT_PROTECTED",
    "How",
    "Touch",
    "Touches",
    "Undo",
    "UndoReport",
    "describe",
    "ipython_bookkeeping",
    "protected_touches",
    "touches",
]
