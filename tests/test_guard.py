"""agent_magic.guard: which names a step touches, protected names, and undoing a step.

The analysis is checked on code as a model writes it; undo on a plain dict namespace run
with ``exec`` (what a kernel does), and once through a real IPython shell's ``run_cell``.
"""

from __future__ import annotations

import builtins
import sys
import types
from typing import Any

import pytest

from agent_magic.guard import (
    DEFAULT_PROTECTED,
    Touch,
    Touches,
    Undo,
    UndoReport,
    describe,
    ipython_bookkeeping,
    protected_touches,
    touches,
)


def found(code: str, protected: set[str] | None = None, **kwargs: Any) -> list[tuple]:
    hits = touches(code, **kwargs)
    if protected is not None:
        hits = protected_touches(hits, protected)
    return [(t.name, t.how, t.detail, t.line) for t in hits]


# -- each way a step can touch a protected name -------------------------------------------

PATTERNS = [
    ("data = None", [("data", "rebind", "assignment", 1)]),
    ("data: list = []", [("data", "rebind", "annotated assignment", 1)]),
    ("a, *data = [1, 2]", [("data", "rebind", "assignment", 1)]),
    ("del data", [("data", "delete", "del", 1)]),
    ("data.append(1)", [("data", "mutate", ".append()", 1)]),
    ("data.update(a=1)", [("data", "mutate", ".update()", 1)]),
    ("x = 1\ndata.sort()", [("data", "mutate", ".sort()", 2)]),
    ("data[0].append(1)", [("data", "mutate", "[0].append()", 1)]),
    ("data.frame.drop(columns='a')", [("data", "mutate", ".frame.drop()", 1)]),
    ("data[0] = 1", [("data", "mutate", "item assignment", 1)]),
    ("data['k'][1] = 1", [("data", "mutate", "item assignment", 1)]),
    ("del data[0]", [("data", "mutate", "item deletion", 1)]),
    ("data.a = 1", [("data", "mutate", "attribute assignment .a", 1)]),
    ("data.a.b = 1", [("data", "mutate", "attribute assignment .a.b", 1)]),
    ("del data.a", [("data", "mutate", "attribute deletion .a", 1)]),
    ("setattr(data, 'a', 1)", [("data", "mutate", "setattr()", 1)]),
    ("data += [1]", [("data", "rebind", "+=", 1), ("data", "mutate", "+=", 1)]),
    ("data -= 1", [("data", "rebind", "-=", 1), ("data", "mutate", "-=", 1)]),
    ("data[0] += 1", [("data", "mutate", "augmented item assignment +=", 1)]),
    ("data.n *= 2", [("data", "mutate", "augmented attribute assignment .n *=", 1)]),
    ("import data", [("data", "rebind", "import", 1)]),
    ("import data.sub", [("data", "rebind", "import", 1)]),
    ("import os as data", [("data", "rebind", "import", 1)]),
    ("from m import data", [("data", "rebind", "from ... import", 1)]),
    ("from . import x as data", [("data", "rebind", "from ... import", 1)]),
    ("def data():\n    pass", [("data", "rebind", "def", 1)]),
    ("async def data():\n    pass", [("data", "rebind", "def", 1)]),
    ("@wrap\nclass data:\n    pass", [("data", "rebind", "class", 2)]),
    ("for data in range(3):\n    pass", [("data", "rebind", "for loop", 1)]),
    ("for i, (j, data) in x:\n    pass", [("data", "rebind", "for loop", 1)]),
    ("for data[0] in range(3):\n    pass", [("data", "mutate", "item assignment, for loop", 1)]),
    ("with open('f') as data:\n    pass", [("data", "rebind", "with ... as", 1)]),
    ("with a() as (b, data):\n    pass", [("data", "rebind", "with ... as", 1)]),
    ("if (data := 1):\n    pass", [("data", "rebind", "walrus :=", 1)]),
    ("[data := i for i in range(3)]", [("data", "rebind", "walrus :=", 1)]),
    (
        "def f():\n    global data\n    data = 1",
        [("data", "rebind", "assignment in f()", 3)],
    ),
    ("def f():\n    global data\n    del data", [("data", "delete", "del in f()", 3)]),
    ("def f():\n    data.append(1)", [("data", "mutate", ".append() in f()", 2)]),
    ("g = lambda: data.clear()", [("data", "mutate", ".clear() in a lambda", 1)]),
    ("class C:\n    data.append(1)", [("data", "mutate", ".append() in class C", 2)]),
    # a method's free name skips the class body: it is the module's
    (
        "class C:\n    data = []\n    def m(self):\n        data.append(1)",
        [("data", "mutate", ".append() in m()", 4)],
    ),
    (
        "def o():\n    global data\n    def i():\n        data.append(1)",
        [("data", "mutate", ".append() in i()", 4)],
    ),
    (
        "def f(v=data.pop()):\n    pass",  # defaults run where the def stands
        [("data", "mutate", ".pop()", 1)],
    ),
    (
        "try:\n    pass\nexcept E as data:\n    pass",
        [("data", "delete", "except ... as, unbound after the handler", 3)],
    ),
    ("match v:\n    case [data]:\n        pass", [("data", "rebind", "match capture", 2)]),
    ("match v:\n    case {**data}:\n        pass", [("data", "rebind", "match capture", 2)]),
    ("globals()['data'] = 1", [("data", "rebind", "globals()['data'] assignment", 1)]),
    ("del globals()['data']", [("data", "delete", "globals()['data'] deletion", 1)]),
]


@pytest.mark.parametrize(("code", "expected"), PATTERNS, ids=[p[0] for p in PATTERNS])
def test_each_way_of_touching_a_protected_name_is_found(code: str, expected: list) -> None:
    assert found(code, {"data"}) == expected


READS = [
    "print(data)",
    "data",
    "data[0]",
    "data.a",
    "len(data)",
    "y = data",
    "y = data[0] + data.a",
    "f(data)",  # what f does cannot be seen (module docstring)
    "x = data.method",  # not called
    "if data == 1:\n    pass",
    "'data'",
    "[data for data in range(3)]",  # the comprehension's own data
    "lambda data: data.append(1)",
    "def g(data):\n    data = 1\n    data.append(1)\n    del data",
    "def g():\n    data = []\n    data.append(1)",
    "def g():\n    for data in range(3):\n        pass",
    "def g():\n    import data",
    "class C:\n    data = 1\n    data += 1",
    "def o():\n    data = []\n    def i():\n        nonlocal data\n        data = 2",
    "def o():\n    [data := 1 for _ in 'x']",  # binds in o
    "y = data.attr[0]",
    "x: data = 1",  # an annotation is read
    "x.data = 1",  # an attribute called data, not the name
    "x.data.append(1)",
]


@pytest.mark.parametrize("code", READS)
def test_reading_a_name_is_not_touching_it(code: str) -> None:
    assert found(code, {"data"}) == []


def test_the_names_ipython_relies_on_are_protected_by_default() -> None:
    code = "get_ipython = None\ndel In\nOut.clear()\nexit = 1\nfor _ in range(3):\n    pass"
    hits = protected_touches(code)
    assert [(t.name, t.how) for t in hits] == [
        ("get_ipython", "rebind"),
        ("In", "delete"),
        ("Out", "mutate"),
        ("exit", "rebind"),
    ]
    assert {"get_ipython", "In", "Out", "_oh", "_dh", "__builtins__", "__name__"} <= (
        DEFAULT_PROTECTED
    )
    assert "_" not in DEFAULT_PROTECTED  # `for _ in ...` is idiomatic, and harmless


def test_using_ipython_is_not_touching_it() -> None:
    code = "get_ipython().run_line_magic('who', '')\nprint(In[-1], Out.keys())\nexit"
    # Out.keys() is a method call: it may change Out as far as static analysis knows
    assert found(code, set(DEFAULT_PROTECTED)) == [("Out", "mutate", ".keys()", 2)]
    assert protected_touches(code)[0].maybe


def test_every_touch_of_a_step_in_source_order() -> None:
    code = (
        "import numpy as np\n"
        "df = load()\n"
        "df.drop(columns='a', inplace=True)\n"
        "total += 1\n"
        "del tmp\n"
        "print(df, total)\n"
    )
    assert touches(code) == (
        Touch("np", "rebind", "import", 1),
        Touch("df", "rebind", "assignment", 2),
        Touch("df", "mutate", ".drop()", 3, maybe=True),
        Touch("total", "rebind", "+=", 4),
        Touch("total", "mutate", "+=", 4, maybe=True),
        Touch("tmp", "delete", "del", 5),
    )
    assert touches(code).names() == ("np", "df", "total", "tmp")
    assert touches(code).names("mutate") == ("df", "total")
    assert touches(code).parsed and touches(code).unseen == ()


# -- what it cannot see, and IPython syntax --------------------------------------------------


def test_what_the_analysis_cannot_see_is_listed_as_unseen() -> None:
    code = (
        "exec('a = 1')\n"
        "eval('b')\n"
        "globals().update(c=1)\n"
        "globals()[key] = 1\n"
        "from m import *\n"
        "get_ipython().user_ns['d'] = 1\n"
        "import __main__\n"
    )
    result = touches(code)
    assert result.unseen == (
        "exec() (line 1)",
        "eval() (line 2)",
        "globals().update() (line 3)",
        "globals() (line 4)",
        "from m import * (line 5)",
        "get_ipython() (line 6)",
        "import __main__ (line 7)",
    )
    assert found(code) == [("__main__", "rebind", "import", 7)]


def test_ipython_syntax_without_a_transform_is_unparsed_not_a_crash() -> None:
    for code in ("%matplotlib inline\nx = 1", "!ls", "x = !ls", "%%bash\necho hi", "x?"):
        result = touches(code)
        assert result == () and result.parsed is False
        assert protected_touches(code).parsed is False
    assert touches("def f(:\n    pass").parsed is False
    assert touches("x = 1\x00").parsed is False
    assert touches("(" * 1000 + ")" * 1000).parsed is False  # too deep for the parser


def test_a_parse_another_thread_failed_is_read_again(monkeypatch: pytest.MonkeyPatch) -> None:
    # CPython 3.11: ast.parse fails with SystemError while another thread is in one.
    import ast

    real, calls = ast.parse, []

    def raced(source: str, *args: Any, **kwargs: Any) -> ast.AST:
        calls.append(source)
        if len(calls) == 1:
            raise SystemError("AST constructor recursion depth mismatch (before=168, after=78)")
        return real(source, *args, **kwargs)

    monkeypatch.setattr(ast, "parse", raced)
    code = "data.append('read again')"
    assert found(code, {"data"}) == [("data", "mutate", ".append()", 1)]
    assert len(calls) == 2


@pytest.fixture(scope="module")
def transform():
    from IPython.core.interactiveshell import InteractiveShell

    return InteractiveShell.instance().transform_cell


def test_ipython_syntax_is_read_through_the_shells_transform(transform) -> None:
    assert found("%matplotlib inline\nx = 1", transform=transform) == [
        ("x", "rebind", "assignment", 2)
    ]
    result = touches("%matplotlib inline\n!pip list\nfiles = !ls", transform=transform)
    assert list(result) == [Touch("files", "rebind", "assignment", 3)]
    assert result.unseen == ()  # neither the magic nor the shell can bind names
    reset = touches("x = 1\n%reset -f", transform=transform)
    assert reset.unseen == ("%reset magic (line 2)",)
    script = touches("%%bash --out data\necho hi", transform=transform)
    assert script.unseen == ("%%bash magic (line 1)",)  # --out binds a name
    assert touches("%%bash\necho hi", transform=transform).unseen == ()


def test_code_a_magic_runs_in_the_namespace_counts(transform) -> None:
    code = "%%capture out\ny = 2\nget_ipython = 3"
    assert found(code, transform=transform) == [
        ("out", "rebind", "%%capture", 1),
        ("y", "rebind", "assignment, in %%capture", 2),
        ("get_ipython", "rebind", "assignment, in %%capture", 3),
    ]
    assert found("%%capture --no-stderr\nx = 1", transform=transform) == [
        ("x", "rebind", "assignment, in %%capture", 2)
    ]
    assert found("x = 1\n%time z = f()", transform=transform) == [
        ("x", "rebind", "assignment", 1),
        ("z", "rebind", "assignment, in %time", 2),
    ]


def test_a_failing_transform_gives_unparsed() -> None:
    def broken(code: str) -> str:
        raise ValueError("odd input")

    assert touches("x = 1", transform=broken).parsed is False


# -- describe ------------------------------------------------------------------------------


def test_describe_says_each_name_once_in_one_line() -> None:
    code = "get_ipython = None\nget_ipython = 2\ndf.drop(columns='a')\nx[0] = 1\ndel In"
    assert describe(touches(code)) == (
        "would rebind get_ipython (assignment, line 1); "
        "may change df in place (.drop(), line 3); "
        "would change x in place (item assignment, line 4); "
        "would delete In (del, line 5)"
    )
    assert describe(()) == ""
    many = "\n".join(f"v{i} = {i}" for i in range(10))
    assert describe(touches(many), limit=2) == (
        "would rebind v0 (assignment, line 1); would rebind v1 (assignment, line 2); and 8 more"
    )


def test_protected_touches_reuses_an_analysis() -> None:
    result = touches("%x")
    assert protected_touches(result).parsed is False
    all_of_them = touches("a = 1\nIn = 2\nexec('b')")
    kept = protected_touches(all_of_them, {"In"})
    assert isinstance(kept, Touches) and list(kept) == [Touch("In", "rebind", "assignment", 2)]
    assert kept.unseen == ("exec() (line 3)",)


# -- undo --------------------------------------------------------------------------------


def run(ns: dict[str, Any], code: str, **kwargs: Any) -> Undo:
    """One step as the loop would run it: undo taken before, recorded after."""
    undo = Undo.before(ns, code, **kwargs)
    exec(compile(code, "<step>", "exec"), ns)
    return undo.after(ns)


def namespace(**values: Any) -> dict[str, Any]:
    return {"__builtins__": builtins, "__name__": "__main__", **values}


SIDE_EFFECTS = (
    "Changes made through other names or by functions the code called, and side effects "
    "outside the namespace (files, network, processes), are not undone."
)


def test_undo_after_create_rebind_and_delete() -> None:
    old_a, old_c = [1], {"k": 1}
    ns = namespace(a=old_a, c=old_c, keep="same")
    undo = run(ns, "b = 2\na = 5\ndel c")
    assert (ns["a"], ns["b"], "c" in ns) == (5, 2, False)
    report = undo.restore(ns)
    assert ns == namespace(a=[1], c={"k": 1}, keep="same")
    assert ns["a"] is old_a and ns["c"] is old_c  # the very objects, not copies
    assert report == UndoReport(removed=("b",), rebound=("a",), put_back=("c",))
    assert report.text() == (
        "Undid the last step: removed b, which it created; gave a back the object it held "
        "before; put back c, which it deleted. " + SIDE_EFFECTS
    )


def test_undo_of_an_in_place_change_restores_from_a_copy() -> None:
    data = [1, 2]
    ns = namespace(data=data, alias=data, conf={"a": 1}, seen={1})
    undo = run(ns, "data.append(3)\nconf['b'] = 2\nseen.add(2)")
    report = undo.restore(ns)
    assert ns["data"] == [1, 2] and ns["data"] is data and ns["alias"] == [1, 2]
    assert ns["conf"] == {"a": 1} and ns["seen"] == {1}
    assert report.from_copy == ("data", "conf", "seen") and report.not_restored == ()
    assert "restored the contents of data, conf, seen from a copy taken before it" in (
        report.text()
    )


def test_undo_of_an_object_other_than_a_builtin_container_rebinds_the_copy() -> None:
    obj = types.SimpleNamespace(x=1, items=[1])
    ns = namespace(obj=obj)
    report = run(ns, "obj.x = 2\nobj.items.append(2)").restore(ns)
    assert ns["obj"] is not obj and (ns["obj"].x, ns["obj"].items) == (1, [1])
    assert report.from_copy == ("obj",)


def test_an_in_place_change_too_large_to_copy_is_named_not_restored() -> None:
    big = list(range(100))
    ns = namespace(big=big)
    report = run(ns, "big.append(-1)", copy_limit_bytes=100).restore(ns)
    assert ns["big"][-1] == -1
    assert report.not_restored == (
        ("big", "may have changed in place (.append()); not copied: over the 100 B left of "
         "the copy limit"),
    )  # fmt: skip
    assert report.text() == (
        "Nothing of the last step could be undone. Not restored: big (may "
        "have changed in place (.append()); not copied: over the 100 B left of the copy "
        "limit). " + SIDE_EFFECTS
    )


def test_the_copy_limit_is_shared_by_all_names_of_a_step() -> None:
    ns = namespace(a=[0.5] * 500, b=[0.25] * 500)
    size = sys.getsizeof(ns["a"]) + sys.getsizeof(0.5)
    report = run(ns, "a.clear()\nb.clear()", copy_limit_bytes=size + 100).restore(ns)
    assert report.from_copy == ("a",) and [n for n, _ in report.not_restored] == ["b"]
    assert len(ns["a"]) == 500 and ns["b"] == []


def test_objects_with_too_many_parts_are_not_copied() -> None:
    ns = namespace(rows=[[i] for i in range(50)])
    report = run(ns, "rows[0][0] = -1", copy_limit_objects=20).restore(ns)
    assert report.not_restored == (
        ("rows", "changed in place (item assignment); not copied: more than 20 objects"),
    )


def test_a_copy_that_fails_is_named() -> None:
    class Stubborn:
        def __deepcopy__(self, memo: dict) -> Stubborn:
            raise RuntimeError("no copies")

    ns = namespace(s=Stubborn())
    report = run(ns, "s.flag = True").restore(ns)
    assert report.not_restored == (
        ("s", "changed in place (attribute assignment .flag); could not be copied (RuntimeError)"),
    )
    assert ns["s"].flag is True


def test_modules_and_classes_are_not_copied_and_calling_them_is_no_change() -> None:
    mod = types.ModuleType("mod")
    ns = namespace(mod=mod, C=type("C", (), {}))
    report = run(ns, "mod.attr = 1\nC.count = 0\nmod.__dict__.get('x')\nC.mro()").restore(ns)
    assert report.not_restored == (
        ("mod", "changed in place (attribute assignment .attr); a module is not copied"),
        ("C", "changed in place (attribute assignment .count); a type is not copied"),
    )
    quiet = run(namespace(mod=mod), "mod.__dict__.get('x')").restore(namespace(mod=mod))
    assert quiet.not_restored == ()


def test_names_bound_where_the_analysis_cannot_see_are_restored() -> None:
    ns = namespace(x=1)
    undo = run(ns, "exec('hidden = 1')\nglobals()['x'] = 2\nglobals().update(other=3)")
    report = undo.restore(ns)
    assert ns == namespace(x=1)
    assert report.removed == ("hidden", "other") and report.rebound == ("x",)
    assert "removed hidden, other, which it created; gave x back the object it held" in (
        report.text()
    )


def test_the_report_names_many_names_briefly() -> None:
    ns = namespace(**{f"v{i}": i for i in range(12)})
    code = "\n".join(f"v{i} = -1" for i in range(12))
    text = run(ns, code).restore(ns).text()
    assert text.startswith(
        "Undid the last step: gave v0, v1, v2, v3, v4, v5, v6, v7 and 4 more back the objects "
        "they held before."
    )


def test_names_changed_again_after_the_step_are_left_alone() -> None:
    ns = namespace(a=1, b=2, c=3)
    undo = run(ns, "new = 0\na = 10\ndel b")
    ns.update(new=-1, a=11, b=22)  # the user's next cell
    report = undo.restore(ns)
    assert ns == namespace(new=-1, a=11, b=22, c=3)
    assert report.not_restored == (
        ("new", "changed again after the step"),
        ("a", "changed again after the step"),
        ("b", "bound again after the step"),
    )


def test_without_after_the_namespace_given_is_taken_as_the_step_left_it() -> None:
    ns = namespace(a=[1])
    undo = Undo.before(ns, "a.append(2); b = 1")
    exec("a.append(2); b = 1", ns)
    report = undo.restore(ns)
    assert ns == namespace(a=[1]) and report.removed == ("b",)


def test_undo_is_once_only() -> None:
    ns = namespace(a=[1])
    undo = run(ns, "a.append(2)\nb = 1")
    undo.restore(ns)
    ns["a"].append(5)
    again = undo.restore(ns)
    assert again.already_undone and ns["a"] == [1, 5]
    assert again.text() == "The last step was already undone; nothing changed."


def test_after_keeps_only_what_the_step_changed() -> None:
    ns = namespace(**{f"v{i}": object() for i in range(50)})
    undo = run(ns, "v0 = 1\ndel v1")
    assert set(undo._before) == {"v0", "v1"} and set(undo._after or {}) == {"v0"}


def test_ipython_bookkeeping_names_are_left_alone() -> None:
    assert all(map(ipython_bookkeeping, ["_", "__", "___", "_i", "_ii", "_iii", "_i7", "_7"]))
    assert not any(map(ipython_bookkeeping, ["_x", "____", "_ih", "_oh", "In", "i7"]))
    ns = namespace(_=1)
    report = run(ns, "_ = 2\n_i5 = 'x = 1'\n_5 = 3\ny = 1").restore(ns)
    assert report.removed == ("y",) and ns["_"] == 2 and "_i5" in ns


def test_a_step_that_could_not_be_analysed_says_so() -> None:
    ns = namespace(a=[1])
    undo = Undo.before(ns, "%who\na.append(2)")
    exec("a.append(2)", ns)
    report = undo.restore(ns)
    assert not report.analysed and ns["a"] == [1, 2]
    assert "Its code could not be analysed, so nothing it changed in place was copied." in (
        report.text()
    )


def test_a_shell_step_changes_no_names() -> None:
    ns = namespace(a=1)
    report = run(ns, "").restore(ns)
    assert report == UndoReport()
    assert report.text() == (
        "The last step changed no names; there was nothing to restore. " + SIDE_EFFECTS
    )


def test_undo_of_pandas_and_numpy_objects() -> None:
    pd = pytest.importorskip("pandas")
    np = pytest.importorskip("numpy")
    df = pd.DataFrame({"a": [1, 2], "b": [3, 4]})
    ns = namespace(df=df, big=np.zeros(2_000_000), small=np.arange(3))
    undo = run(ns, "df.drop(columns='a', inplace=True)\nbig[0] = 1\nsmall[0] = 9")
    report = undo.restore(ns)
    assert list(ns["df"].columns) == ["a", "b"] and ns["small"].tolist() == [0, 1, 2]
    assert report.from_copy == ("df", "small")
    assert [name for name, _ in report.not_restored] == ["big"]  # 16 MB: over 10 MB
    assert ns["big"][0] == 1


def test_undo_around_a_real_ipython_cell() -> None:
    from IPython.core.interactiveshell import InteractiveShell

    ip = InteractiveShell.instance()
    ns = ip.user_ns
    ns.update(guard_x=[1], guard_gone="old")
    try:
        code = "guard_x.append(2)\nguard_new = 1\ndel guard_gone\n%who_ls\n7"
        undo = Undo.before(ns, code, transform=ip.transform_cell)
        result = ip.run_cell(code, store_history=True)
        assert result.success and ns["_"] == 7
        undo.after(ns)
        report = undo.restore(ns)
        assert ns["guard_x"] == [1] and ns["guard_gone"] == "old" and "guard_new" not in ns
        assert report.removed == ("guard_new",) and report.put_back == ("guard_gone",)
        assert report.from_copy == ("guard_x",) and report.not_restored == ()
        assert ns["_"] == 7  # IPython's own names are left as the cell left them
    finally:
        for name in ("guard_x", "guard_gone", "guard_new"):
            ns.pop(name, None)


# -- properties ----------------------------------------------------------------------------

hypothesis = pytest.importorskip("hypothesis")
st = hypothesis.strategies


@hypothesis.given(st.text(max_size=200))
@hypothesis.settings(max_examples=300, deadline=None, database=None)
def test_touches_never_raises(text: str) -> None:
    result = touches(text)
    assert isinstance(result, Touches)
    assert result.parsed or result == ()


NAMES = ("a", "b", "c", "d")


@st.composite
def steps(draw: Any) -> str:
    """A step of rebinding, deleting, creating and in-place changes, valid when it runs."""
    bound = set(NAMES[:3])
    lines = []
    for _ in range(draw(st.integers(1, 8))):
        name = draw(st.sampled_from(NAMES))
        value = draw(st.integers(0, 9))
        choices = ["rebind"] + (["del", "append", "item", "augment"] if name in bound else [])
        op = draw(st.sampled_from(choices))
        lines.append(
            {
                "rebind": f"{name} = [{value}]",
                "del": f"del {name}",
                "append": f"{name}.append({value})",
                "item": f"{name}[0] = {value}",
                "augment": f"{name} += [{value}]",
            }[op]
        )
        if op == "del":
            bound.discard(name)
        else:
            bound.add(name)
    return "\n".join(lines)


@hypothesis.given(steps())
@hypothesis.settings(max_examples=200, deadline=None, database=None)
def test_undo_puts_back_exactly_what_was_there(code: str) -> None:
    ns = namespace(a=[0], b=[1, 2], c=[5])
    originals = {name: ns[name] for name in NAMES[:3]}
    run(ns, code).restore(ns)
    assert ns == namespace(a=[0], b=[1, 2], c=[5])
    assert all(ns[name] is obj for name, obj in originals.items())


def test_sizing_a_value_for_undo_calls_no_instance_getattr() -> None:
    # The walker once asked every object for ``nbytes``: a traitlets Config answers an
    # unknown name by adding it, so sizing the shell's config for undo changed it (and
    # made the next %config reload all of it). Only a class's own ``nbytes`` is read.
    from traitlets.config import Config

    from agent_magic.guard.undo import _estimate_size

    config = Config()
    config.AgentMagics.seed = 1
    assert isinstance(_estimate_size(config, 1 << 20, 10_000), int)
    assert dict(config.AgentMagics) == {"seed": 1}

    class Remote:  # a proxy whose __getattr__ would go over the network
        def __getattr__(self, name: str) -> Any:
            raise AssertionError(f"looked up {name}")

    assert isinstance(_estimate_size(Remote(), 1 << 20, 10_000), int)
