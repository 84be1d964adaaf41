"""Noticing that code in the kernel changed the extension itself, and putting it back.

Code a step runs is code in the kernel: it can rebind ``sys.modules['agent_magic']``,
set ``Session.start = None`` or replace a function the magic calls. Without this, every
later ``%agent``/``%%agent`` (and ``%agent export``) ended in a traceback, even after
``%reload_ext`` (which reloads the package's ``__init__`` only). :func:`baseline` takes,
once per process (at the first ``%load_ext``), the identities the magic relies on: the
package's modules in ``sys.modules``, the methods of its central classes and the
functions of the modules that wire a cell. :func:`restore` compares them (a few hundred
``is`` tests, tens of microseconds), puts back whatever changed, and returns the one
line that says so. The magic calls it before each command and after each cell
(IPython's ``post_run_cell``), so a ``%reload_ext`` after a tampering cell finds the
extension whole again.

Not here: what a step may do to the user's names (:mod:`agent_magic.guard`).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from types import FunctionType, ModuleType
from typing import Any

MISSING = object()
# The modules whose functions and classes wire a cell: a rebinding there is noticed.
# (Not the package's own: %reload_ext runs its __init__ again, rebinding its functions.)
_WIRING = ("agent_magic.magic", "agent_magic.session", "agent_magic.plan")
_MOST_NAMED = 4


@dataclass
class Baseline:
    """The originals, as the extension was first loaded in this process."""

    modules: dict[str, ModuleType] = field(default_factory=dict)
    # (owner, its live namespace, name, original, how to name it)
    attributes: list[tuple[Any, Any, str, Any, str]] = field(default_factory=list)

    def changed(self) -> list[str]:
        """How to name each thing that is not what it was (empty: nothing changed)."""
        found = [
            f"sys.modules[{name!r}]"
            for name, module in self.modules.items()
            if sys.modules.get(name) is not module
        ]
        found += [
            label
            for _, space, name, original, label in self.attributes
            if space.get(name, MISSING) is not original
        ]
        return found

    def put_back(self) -> bool:
        """Restore every original; False when one could not be restored."""
        whole = True
        for name, module in self.modules.items():
            if sys.modules.get(name) is not module:
                sys.modules[name] = module
        for owner, space, name, original, _ in self.attributes:
            if space.get(name, MISSING) is not original:
                try:
                    setattr(owner, name, original)
                except Exception:  # a read-only owner: only a restart helps
                    whole = False
        return whole and not self.changed()


_baseline: Baseline | None = None


def baseline() -> Baseline:
    """The process's baseline, taken on the first call (the first ``%load_ext``)."""
    global _baseline
    if _baseline is None:
        _baseline = _take()
    return _baseline


def restore() -> tuple[str, bool]:
    """Put back what changed since the baseline: (the one line that says so, or "";
    whether the extension is whole again)."""
    if _baseline is None:
        return "", True
    changed = _baseline.changed()
    if not changed:
        return "", True
    named = ", ".join(changed[:_MOST_NAMED])
    if len(changed) > _MOST_NAMED:
        named += f" and {len(changed) - _MOST_NAMED} more"
    if _baseline.put_back():
        return (
            f"agent: code run in this kernel changed the extension ({named}); it was put "
            "back as it was loaded. If %agent still misbehaves, restart the kernel"
        ), True
    return (
        f"agent: code run in this kernel changed the extension ({named}) and it could not "
        "be put back; restart the kernel to use %agent again"
    ), False


def after_cell(result: Any = None) -> None:
    """IPython's ``post_run_cell``: put the extension back as soon as a cell changed it,
    so that the next command, ``%reload_ext`` included, finds it whole."""
    line, _ = restore()
    if line:
        print(line, file=sys.stderr)


def protect(*classes: type) -> None:
    """Have the baseline keep these classes' methods (and their modules' functions, for
    the wiring): each module names its own, so this module imports none of them. A class
    named after the baseline was taken (its module imported later) joins it then."""
    for cls in classes:
        if cls in _PROTECTED:
            continue
        _PROTECTED.append(cls)
        if _baseline is not None:
            _keep_class(_baseline, cls)
            if cls.__module__ in _WIRING:
                _keep_module(_baseline, cls.__module__)


_PROTECTED: list[type] = []


def _take() -> Baseline:
    taken = Baseline()
    taken.modules = {
        name: module
        for name, module in list(sys.modules.items())
        if (name == "agent_magic" or name.startswith("agent_magic."))
        and isinstance(module, ModuleType)
        and not name.startswith("agent_magic.testing")  # tests may stand in for it
    }
    for cls in _PROTECTED:
        _keep_class(taken, cls)
    for module_name in _WIRING:
        _keep_module(taken, module_name)
    return taken


def _keep_class(taken: Baseline, cls: type) -> None:
    for name, value in vars(cls).items():
        if isinstance(value, (FunctionType, staticmethod, classmethod, property)):
            taken.attributes.append((cls, vars(cls), name, value, f"{cls.__name__}.{name}"))


def _keep_module(taken: Baseline, module_name: str) -> None:
    """The wiring module's functions and classes, when it is imported (else later)."""
    module = sys.modules.get(module_name)
    if module is None or any(entry[0] is module for entry in taken.attributes):
        return
    taken.modules.setdefault(module_name, module)
    for name, value in vars(module).items():
        if isinstance(value, (FunctionType, type)) and not name.startswith("__"):
            label = f"{module_name}.{name}"
            taken.attributes.append((module, vars(module), name, value, label))
