"""The IPython adapter (agent_magic.kernel.ipython) against the installed IPython.

CI runs this file on IPython 9 (the test environment) and on IPython 8
(``scripts/test_ipython8.sh``): each private hook the step capture relies on is checked
here, on a plain InteractiveShell, so an IPython release that moves one fails here first.
"""

from __future__ import annotations

import linecache
import sys

import pytest
from IPython.core.interactiveshell import InteractiveShell

from agent_magic.kernel import ipython
from agent_magic.kernel.capture import StepCapture


@pytest.fixture
def shell() -> InteractiveShell:
    return InteractiveShell.instance()


def test_patches_put_the_class_methods_back(shell) -> None:
    patches = ipython.Patches()
    ipython.hook_display(shell, patches, lambda *a: None, lambda *a: None, lambda on: None)
    ipython.hook_traceback(shell, patches, lambda *a: None)
    ipython.hook_exit(shell, patches, lambda: None)
    ipython.hook_code_name(shell, patches, "<agent step adapter>")
    assert "publish" in vars(shell.display_pub) and "_showtraceback" in vars(shell)
    patches.undo()
    for target, name in [
        (shell.display_pub, "publish"),
        (shell.displayhook, "write_format_data"),
        (shell.displayhook, "start_displayhook"),
        (shell.displayhook, "finish_displayhook"),
        (shell, "_showtraceback"),
        (shell, "ask_exit"),
        (shell.compile, "cache"),
    ]:
        assert name not in vars(target), name


def test_displays_and_the_last_value_reach_the_hooks(shell) -> None:
    displays, results, muted = [], [], []
    patches = ipython.Patches()
    ipython.hook_display(
        shell,
        patches,
        lambda data, metadata, kwargs: displays.append((dict(data), kwargs.get("transient"))),
        lambda data, metadata: results.append(dict(data)),
        muted.append,
    )
    try:
        shell.run_cell(
            "from IPython.display import display\ndisplay('shown', display_id='a')\n6 * 7"
        )
    finally:
        patches.undo()
    assert displays[0][0]["text/plain"] == "'shown'" and displays[0][1] == {"display_id": "a"}
    assert results == [{"text/plain": "42"}]
    assert True in muted and muted[-1] is False


def test_tracebacks_reach_the_hook_with_the_structured_lines(shell) -> None:
    seen = []
    patches = ipython.Patches()
    ipython.hook_traceback(shell, patches, lambda *args: seen.append(args))
    try:
        shell.run_cell("1 / 0")
        shell.run_cell("x = (")
    finally:
        patches.undo()
    (etype, evalue, stb, original), (setype, *_rest) = seen
    assert etype is ZeroDivisionError and isinstance(evalue, ZeroDivisionError)
    assert isinstance(stb, list) and "ZeroDivisionError" in "".join(stb)
    assert callable(original) and setype is SyntaxError


def test_the_step_is_compiled_under_its_name_with_its_lines_in_linecache(shell) -> None:
    patches = ipython.Patches()
    ipython.hook_code_name(shell, patches, "<agent step adapter-1>")
    try:
        result = shell.run_cell("def broken():\n    return missing_name\nbroken()")
    finally:
        patches.undo()
    tb = result.error_in_exec.__traceback__
    names = set()
    while tb is not None:
        names.add(tb.tb_frame.f_code.co_filename)
        tb = tb.tb_next
    assert "<agent step adapter-1>" in names
    assert linecache.getline("<agent step adapter-1>", 2) == "    return missing_name\n"
    assert shell.compile.format_code_name("<agent step adapter-1>") is None  # no Cell In[N]


def test_a_step_without_await_is_not_compiled_to_look_for_one(shell, monkeypatch) -> None:
    """run_cell passes the transformed cell to should_run_async; a cell that holds no
    ``await``/``async`` is answered without the compile, one with a top-level ``await``
    is asked as usual and still runs in the event loop."""
    import IPython.core.interactiveshell as interactiveshell

    compiled: list[str] = []
    check = interactiveshell._should_be_async
    monkeypatch.setattr(
        interactiveshell, "_should_be_async", lambda cell: compiled.append(cell) or check(cell)
    )
    patches = ipython.Patches()
    ipython.hook_async_check(shell, patches)
    try:
        assert shell.run_cell("adapter_plain = 1\nadapter_plain += 1").success
        awaited = "import asyncio\nawait asyncio.sleep(0)\nadapter_awaited = 2"
        assert shell.run_cell(awaited).success
    finally:
        patches.undo()
    assert "should_run_async" not in vars(shell)
    assert shell.user_ns["adapter_plain"] == 2 and shell.user_ns["adapter_awaited"] == 2
    assert compiled == [awaited + "\n"]  # the transformed cell: one call, for the await


def test_the_step_runs_from_the_guard_s_tree_which_stays_as_it_was(shell, monkeypatch) -> None:
    """run_cell takes the tree parsed once (a new module around its statements: with
    last_expr_or_assign IPython appends one); under an AST transformer it parses anew."""
    import ast

    source = shell.transform_cell(
        "adapter_tree = 40\nadapter_tree += 2\nadapter_shown = adapter_tree"
    )
    tree = ast.parse(source)
    body = list(tree.body)
    parses: list[str] = []
    own = shell.compile.ast_parse
    monkeypatch.setattr(
        shell.compile, "ast_parse", lambda text, *a, **k: parses.append(text) or own(text, *a, **k)
    )
    monkeypatch.setattr(shell, "ast_node_interactivity", "last_expr_or_assign")
    for transformers in ([], [], [ast.NodeTransformer()]):
        monkeypatch.setattr(shell, "ast_transformers", transformers)
        patches = ipython.Patches()
        ipython.hook_parsed(shell, patches, source, tree)
        try:
            result = shell.run_cell(source)
        finally:
            patches.undo()
        assert result.success and result.result == 42 and shell.user_ns["adapter_tree"] == 42
        assert tree.body == body
    assert parses == [source]  # only under the transformer


def test_exit_calls_the_hook_instead_of_ending_the_session(shell) -> None:
    calls = []
    patches = ipython.Patches()
    ipython.hook_exit(shell, patches, lambda: calls.append(1))
    try:
        shell.run_cell("exit()\nquit()")
    finally:
        patches.undo()
    assert calls == [1, 1] and not shell.exit_now


def test_the_capture_keeps_streams_displays_results_and_refuses_the_history_patch(shell):
    outputs = getattr(shell.history_manager, "outputs", None)  # IPython 9 only

    def streamed() -> int:
        return sum(
            len(chunk)
            for kept in (outputs or {}).values()
            for output in kept
            for chunk in output.bundle.get("stream", ())
        )

    before = streamed()
    with StepCapture(shell, name="<agent step adapter-2>") as captured:
        shell.run_cell("print('out')\nimport sys\nprint('err', file=sys.stderr)\n'value'")
    kinds = [o["output_type"] for o in captured.outputs]
    assert kinds == ["stream", "stream", "execute_result"]
    assert captured.stdout == "out\n" and captured.stderr == "err\n"
    assert captured.outputs[2]["data"]["text/plain"] == "'value'"
    assert not isinstance(sys.stdout, type(captured._tees[0]))  # put back
    if outputs is not None:  # the step's prints were not kept in the shell's history
        assert streamed() == before


PLAIN_STEPS = [
    "x = 1\nprint(x)",
    "import os\nfor name in sorted(os.listdir('.')):\n    print(name)\n",
    "a = 5 % 3\nb = a != 2\nprint(a, b)",
    "def f():\n    return 1\n\n\nresult = f()\n",
    "rows = {'a': 1}\ntotal = sum(v for v in rows.values())  # a comment\n",
    "class Point:\n    x: int = 0\n\n\np = Point()\n",
]
IPYTHON_STEPS = [
    "%time x = 1\ny = 2",
    "!ls\nx = 1",
    "files = !ls\ny = 1",
    "here = %pwd\ny = 1",
    "len?\nx = 1",
    "x = 1\nlen??",
    ">>> x = 1\n>>> y = 2",
    "In [1]: x = 1\nIn [2]: y = x",
    "  x = 1\n  y = 2",
    "\nx = 1\ny = 2",
    "%%time\nx = 1",
    "x = 1\n   ...: y = 2",
    "/print 1\nx = 1",
    "x = 1",  # one line: the prefilter (automagic) may turn it into a magic call
    "ls",
]


def test_the_step_transform_is_ipython_s_and_skips_it_only_for_plain_python(shell) -> None:
    """Code with no IPython syntax comes back as IPython's transform gives it, without
    IPython's tokenizing; anything with IPython syntax goes through IPython."""
    transform = ipython.step_transform(shell)
    assert transform == ipython.step_transform(shell)  # one memo key for guard and executor
    for code in PLAIN_STEPS + IPYTHON_STEPS:
        assert transform(code) == shell.transform_cell(code), code
    manager = shell.input_transformer_manager
    tokenized: list[str] = []
    patches = ipython.Patches()
    tokenize = manager.do_token_transforms
    patches.set(
        manager,
        "do_token_transforms",
        lambda lines: tokenized.append("".join(lines)) or tokenize(lines),
    )
    try:
        for code in PLAIN_STEPS:
            transform(code)
        assert tokenized == []
        for code in IPYTHON_STEPS:
            transform(code)
        assert len(tokenized) == len(IPYTHON_STEPS)
    finally:
        patches.undo()


def test_the_step_transform_asks_ipython_once_a_transformer_is_added(shell) -> None:
    transform = ipython.step_transform(shell)
    code = PLAIN_STEPS[0]
    shell.input_transformers_post.append(lambda lines: [line.replace("x", "y") for line in lines])
    try:
        assert transform(code) == "y = 1\nprint(y)\n"
    finally:
        shell.input_transformers_post.pop()
    shell.input_transformers_cleanup.insert(0, lambda lines: ["z = 0\n", *lines])
    try:
        assert transform(code) == "z = 0\nx = 1\nprint(x)\n"
    finally:
        shell.input_transformers_cleanup.pop(0)
    assert transform(code) == "x = 1\nprint(x)\n"
