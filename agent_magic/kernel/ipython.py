"""The adapter: every private IPython / ipykernel hook the step capture needs, in one place.

Each function below names the internal it relies on, so an IPython release that moves
one breaks here, in one small module with its own test (``tests/test_ipython_adapter.py``,
run on IPython 8 and 9 by ``scripts/test_ipython8.sh``). Hooks are instance attributes set
on a :class:`Patches` for the length of one step and then removed, so the classes'
methods come back exactly as they were.

Internals used:

* ``shell.display_pub.publish`` (DisplayPublisher): every ``display()`` passes through it;
* ``shell.displayhook.start_displayhook`` / ``write_format_data`` / ``finish_displayhook``
  (DisplayHook): the value of a step's last expression;
* ``shell._showtraceback(etype, evalue, stb)``: where both ``showtraceback`` and
  ``showsyntaxerror`` end; ipykernel's ZMQInteractiveShell overrides it to publish an
  ``error`` message (which papermill counts as a failed run);
* ``shell.compile.cache(code, number, raw_code)`` (CachingCompiler): names the code
  ``run_cell`` compiles and puts its lines in ``linecache``; its ``_filename_map`` is what
  makes a traceback say ``Cell In[N]``;
* ``shell.ask_exit()``: what ``exit()`` / ``quit()`` (ExitAutocall, ipykernel's
  ZMQExitAutocall) call; it sets ``exit_now``, which ends a terminal session and stops a
  kernel's event loop;
* ``shell.transform_cell(raw_cell)``: what ``run_cell`` calls to turn a cell's IPython
  syntax into Python (``%magic``, ``!cmd``); :class:`StepTransform` skips it for code it
  would leave as it is, which it tells from ``shell.input_transformer_manager``'s lists
  (IPython's defaults, ``IPython.core.inputtransformer2``) and
  ``shell.input_transformers_post``;
* ``shell.compile.ast_parse(source, filename)`` (CachingCompiler): where ``run_cell``
  parses the transformed cell, with the shell's ``__future__`` flags;
* ``shell.should_run_async(raw_cell, transformed_cell=...)``: what ``run_cell`` asks
  whether a cell needs an event loop (a top-level ``await``), compiling it to find out;
* IPython 9's ``InteractiveShell._tee``: assigns ``sys.stdout.write`` while a cell runs
  to keep what it prints in ``history_manager.outputs``; see :data:`REFUSED_ATTRIBUTES`.
"""

from __future__ import annotations
import __future__

import ast
import functools
import linecache
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

# IPython 9 records a cell's printed output by assigning ``write`` on ``sys.stdout``; a
# stream that refuses the assignment keeps the step's prints out of that unbounded store
# (what it shows reaches the stream below, which the ``%%agent`` cell's own patch records).
REFUSED_ATTRIBUTES = frozenset({"write"})


class Patches:
    """Instance attributes set for the length of one step, then put back as they were."""

    MISSING = object()

    def __init__(self) -> None:
        self._undo: list[tuple[Any, str, Any]] = []

    def set(self, target: Any, name: str, value: Any) -> None:
        self._undo.append((target, name, vars(target).get(name, self.MISSING)))
        setattr(target, name, value)

    def __enter__(self) -> Patches:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.undo()

    def undo(self) -> None:
        for target, name, old in reversed(self._undo):
            if old is self.MISSING:
                vars(target).pop(name, None)
            else:
                setattr(target, name, old)
        self._undo.clear()


# What makes IPython's static transforms touch a cell (``inputtransformer2``): a line that
# starts with an escape (``%magic``, ``!cmd``, ``?``, autocall's ``/ , ;``) or a prompt
# (``>>>``, ``...``, ``In [1]:``), an assignment from one (``x = !ls``, ``x = %time``),
# help anywhere (``obj?``); a first line that is blank or indented; a line break other
# than LF (``str.splitlines`` splits there, the tokenizer does not). Matched on text,
# strings and comments included: a false alarm only costs IPython's own transform.
_NOT_PLAIN = re.compile(
    r"^[ \t]*(?:[%!?/,;]|>>>|\.\.\.|In \[)|=[\s\\]*[%!]|\?|[\r\x0b\x0c\x1c-\x1e\x85\u2028\u2029\0]",
    re.MULTILINE,
)


@dataclass(frozen=True)
class StepTransform:
    """``shell.transform_cell``, without its tokenizing for code it would leave as it is.

    IPython turns a cell's own syntax into Python by tokenizing every line (~60 µs for
    two lines, a quarter of the guard's reading of a step). A step of two lines or more
    with none of that syntax, in a shell whose transformers are IPython's defaults, comes
    back unchanged but for a final newline: that is returned without asking IPython.
    Anything else (one line: the prefilter's automagic depends on the names bound; any
    other transformer registered; any sign of IPython syntax) is IPython's transform.
    Equal for the same shell, so the guard's and the executor's readings of a step share
    :mod:`agent_magic.guard.touches`' memo.
    """

    shell: Any

    def __call__(self, code: str) -> str:
        if _plain(code) and _default_transforms(self.shell):
            return code if code.endswith("\n") else code + "\n"
        return self.shell.transform_cell(code)


def step_transform(shell: Any) -> StepTransform | None:
    """The shell's transform for a step's code, or None for a shell without one."""
    return StepTransform(shell) if hasattr(shell, "transform_cell") else None


def _plain(code: str) -> bool:
    body = code.rstrip("\n")
    return "\n" in body and body[:1] not in ("", "\n", " ", "\t") and not _NOT_PLAIN.search(body)


def _default_transforms(shell: Any) -> bool:
    """The shell transforms as IPython does by default: its own static transforms (and
    cleanup transforms that say they leave Python alone), nothing after them."""
    manager = getattr(shell, "input_transformer_manager", None)
    defaults = _defaults()
    return (
        type(manager) is defaults.manager
        and not shell.input_transformers_post
        and "transform_cell" not in vars(shell)
        and type(shell).transform_cell is defaults.transform_cell
        and manager.line_transforms == defaults.lines
        and manager.token_transformers == defaults.tokens
        and all(
            t in defaults.cleanup or getattr(t, "leaves_python_alone", False)
            for t in manager.cleanup_transforms
        )
    )


class _Defaults(NamedTuple):
    manager: type
    transform_cell: Any
    lines: list[Any]
    tokens: list[Any]
    cleanup: tuple[Any, ...]


@functools.cache
def _defaults() -> _Defaults:
    from IPython.core import inputtransformer2 as it
    from IPython.core.interactiveshell import InteractiveShell

    return _Defaults(
        it.TransformerManager,
        InteractiveShell.transform_cell,
        [it.cell_magic],
        [it.MagicAssign, it.SystemAssign, it.EscapedCommand, it.HelpEnd],
        (it.leading_empty_lines, it.leading_indent, it.classic_prompt, it.ipython_prompt),
    )


def in_kernel(shell: Any) -> bool:
    """True in an ipykernel (ZMQInteractiveShell has the kernel), False in a terminal."""
    return getattr(shell, "kernel", None) is not None


def hook_display(
    shell: Any,
    patches: Patches,
    on_display: Callable[[Mapping[str, Any], Any, Mapping[str, Any]], Mapping[str, Any] | None],
    on_result: Callable[[Mapping[str, Any], Any], Mapping[str, Any] | None],
    mute: Callable[[bool], None],
) -> Callable[..., Any]:
    """Call ``on_display(data, metadata, kwargs)`` for each display, ``on_result`` for the
    last expression's value, and show the data they return instead (secrets hidden; None
    shows the data as it was); ``mute(True)`` while IPython prints either as text (a
    terminal does), so the stream capture does not keep them twice. Returns the unpatched
    publish."""
    publisher = shell.display_pub
    publish = publisher.publish

    def capture_publish(data: Any, metadata: Any = None, *args: Any, **kwargs: Any) -> Any:
        if isinstance(data, Mapping):
            shown = on_display(data, metadata, kwargs)
            data = data if shown is None else shown
        mute(True)
        try:
            return publish(data, metadata, *args, **kwargs)
        finally:
            mute(False)

    patches.set(publisher, "publish", capture_publish)

    hook = shell.displayhook
    start, finish, write_data = (
        hook.start_displayhook,
        hook.finish_displayhook,
        hook.write_format_data,
    )

    def start_displayhook() -> Any:
        mute(True)
        return start()

    def finish_displayhook() -> Any:
        try:
            return finish()
        finally:
            mute(False)

    def write_format_data(format_dict: Any, md_dict: Any = None) -> Any:
        if isinstance(format_dict, Mapping):
            shown = on_result(format_dict, md_dict)
            format_dict = format_dict if shown is None else shown
        return write_data(format_dict, md_dict)

    patches.set(hook, "start_displayhook", start_displayhook)
    patches.set(hook, "finish_displayhook", finish_displayhook)
    patches.set(hook, "write_format_data", write_format_data)
    return publish


def hook_traceback(
    shell: Any, patches: Patches, show: Callable[[type, BaseException, list[str], Any], None]
) -> None:
    """Route the step's tracebacks to ``show(etype, evalue, stb, original)``, where
    ``original`` is the shell's own ``_showtraceback`` (a terminal prints with it)."""
    original = shell._showtraceback

    def showtraceback(etype: type, evalue: BaseException, stb: list[str]) -> None:
        show(etype, evalue, stb, original)

    patches.set(shell, "_showtraceback", showtraceback)


def hook_code_name(shell: Any, patches: Patches, name: str) -> None:
    """Compile the step as ``name`` (e.g. ``<agent step 2>``), its lines in ``linecache``
    so tracebacks show them, and not in ``_filename_map``, so no ``Cell In[N]``."""
    compiler = shell.compile

    def cache(transformed_code: str, number: int = 0, raw_code: str | None = None) -> str:
        lines = [line + "\n" for line in transformed_code.splitlines()]
        # mtime None: linecache.checkcache never drops it (as CachingCompiler.cache does).
        linecache.cache[name] = (len(transformed_code), None, lines, name)
        return name

    patches.set(compiler, "cache", cache)


def hook_transform(shell: Any, patches: Patches, raw: str, transformed: str) -> None:
    """``run_cell`` of ``raw`` runs ``transformed``, the shell's own transform of it made
    earlier (the guard read the step through it), rather than transforming it again.

    Only for a cell of several lines: IPython transforms those statically, the same each
    time; a one-line cell also goes through the prefilter, which depends on the names
    bound at the time (``ls`` is a magic until a step binds ``ls``), so it is transformed
    as it runs. Any other cell (one the step runs itself) is transformed as usual."""
    if len(transformed.splitlines()) <= 1:
        return
    own = shell.transform_cell

    def transform_cell(raw_cell: str) -> str:
        return transformed if raw_cell == raw else own(raw_cell)

    patches.set(shell, "transform_cell", transform_cell)


def hook_parsed(shell: Any, patches: Patches, source: str, tree: ast.Module) -> None:
    """``run_cell``'s parse of ``source`` (the transformed step) is ``tree``, the guard's
    parse of the same text, rather than a second parse: a new module around the same
    statements (IPython may append one to the list; compiling reads the nodes, never
    changes them). Only while no AST transformer is registered (those may change the
    nodes) and no ``__future__`` flag that changes parsing is on; any other source is
    parsed as usual."""
    compiler = shell.compile
    if shell.ast_transformers or compiler.flags & _PARSING_FUTURES:
        return
    own = compiler.ast_parse

    def ast_parse(text: str, *args: Any, **kwargs: Any) -> Any:
        if text == source:
            return ast.Module(body=list(tree.body), type_ignores=list(tree.type_ignores))
        return own(text, *args, **kwargs)

    patches.set(compiler, "ast_parse", ast_parse)


# __future__ flags under which a source parses otherwise (``<>`` for ``!=``).
_PARSING_FUTURES = __future__.barry_as_FLUFL.compiler_flag


def hook_async_check(shell: Any, patches: Patches) -> None:
    """``run_cell`` asks ``should_run_async`` whether the cell has a top-level ``await``,
    which compiles the whole cell once more; a cell whose text holds neither ``await``
    nor ``async`` has none, so it is answered False (IPython's own answer) without the
    compile. Any other cell, or a call without the transformed cell, is asked as usual."""
    own = shell.should_run_async

    def should_run_async(raw_cell: str, *args: Any, **kwargs: Any) -> bool:
        cell = kwargs.get("transformed_cell")
        if not args and type(cell) is str and "await" not in cell and "async" not in cell:
            return False
        return bool(own(raw_cell, *args, **kwargs))

    patches.set(shell, "should_run_async", should_run_async)


def hook_exit(shell: Any, patches: Patches, on_exit: Callable[[], None]) -> None:
    """``exit()`` / ``quit()`` during the step call ``on_exit`` instead of ending the session."""
    keep = vars(shell).get("keepkernel_on_exit")

    def ask_exit() -> None:
        on_exit()

    patches.set(shell, "ask_exit", ask_exit)
    if "keepkernel_on_exit" in vars(shell) or hasattr(shell, "keepkernel_on_exit"):
        # ZMQExitAutocall sets it before calling ask_exit; put it back afterwards.
        patches.set(shell, "keepkernel_on_exit", keep)
