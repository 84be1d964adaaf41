"""What the model is told about the namespace: agent_magic.context.

Plain pytest, no kernel: the functions take a mapping. Timing asserts here only catch
hangs (a generous bound); the speed targets live in bench/bench_context.py.
"""

from __future__ import annotations

import collections
import datetime
import enum
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from agent_magic.context import (
    describe,
    interpolate,
    step_changes,
    step_start,
    summarize_namespace,
)

SENTINEL = "sk-test-SENTINEL"


@contextmanager
def within(seconds: float) -> Iterator[None]:
    start = time.perf_counter()
    yield
    elapsed = time.perf_counter() - start
    assert elapsed < seconds, f"took {elapsed:.3f} s"


# -- hostile objects ---------------------------------------------------------------------


class Calls:
    """Counts calls of the dunder methods a careless describer would run."""

    count = 0


class SlowRepr:
    def __repr__(self) -> str:
        Calls.count += 1
        time.sleep(10)
        return "slow"

    __str__ = __repr__


class Explodes:
    """Everything raises: repr, len, iteration, attribute access."""

    def __repr__(self) -> str:
        raise RuntimeError("repr")

    def __len__(self) -> int:
        raise RuntimeError("len")

    def __iter__(self) -> Iterator[int]:
        raise RuntimeError("iter")

    def __getattribute__(self, name: str) -> object:
        raise RuntimeError(f"getattr {name}")


class ClaimsEverything:
    """A Mock-like object: any attribute exists, .shape and .dtype included."""

    def __getattr__(self, name: str) -> object:
        Calls.count += 1
        return (3, 4)


class RaisingLen(list):  # type: ignore[type-arg]
    def __len__(self) -> int:
        raise RuntimeError("len")

    def __iter__(self) -> Iterator[object]:
        raise RuntimeError("iter")


def hostile_namespace() -> dict[str, object]:
    recursive: list[object] = [1, 2]
    recursive.append(recursive)
    nested: dict[str, object] = {}
    nested["self"] = nested
    n = 10_000_000
    return {
        "slow": SlowRepr(),
        "explodes": Explodes(),
        "claims": ClaimsEverything(),
        "raising_len": RaisingLen([1, 2, 3]),
        "big_frame": pd.DataFrame({"a": np.arange(n), "b": np.zeros(n)}),
        "big_array": np.zeros((1 << 27,), "float64"),  # 1 GiB, allocated lazily
        "big_dict": dict.fromkeys(range(1_000_000), 0),
        "recursive": recursive,
        "nested": nested,
        "slow_in_list": [SlowRepr(), SlowRepr()],
        "slow_in_frame": pd.DataFrame({"x": [SlowRepr(), 1, "a"]}),
        "slow_in_array": np.array([SlowRepr(), None], dtype=object),
        "huge_int": 10**20000,
        "huge_str": "x" * 10_000_000,
    }


@pytest.fixture(scope="module")
def hostile() -> dict[str, object]:
    return hostile_namespace()


def test_hostile_objects_are_described_fast_without_running_their_code(
    hostile: dict[str, object],
) -> None:
    Calls.count = 0
    with within(1.0):
        summary = summarize_namespace(hostile)
    for name in hostile:
        assert f"{name}: " in summary
    with within(1.0):
        for value in hostile.values():
            describe(value)
    assert Calls.count == 0, "a user __repr__/__getattr__ ran"


def test_hostile_objects_read_sensibly(hostile: dict[str, object]) -> None:
    assert describe(hostile["slow"]) == "<SlowRepr object>"
    assert describe(hostile["explodes"]) == "<Explodes object>"
    # not mistaken for an array because __getattr__ claims a .shape
    assert describe(hostile["claims"]) == "<ClaimsEverything object>"
    assert describe(hostile["raising_len"]) == "RaisingLen len=3: [1, 2, 3]"
    assert describe(hostile["recursive"]) == "list len=3: [1, 2, [...]]"
    assert describe(hostile["nested"]) == "dict len=1: {'self': {...}}"
    assert describe(hostile["big_dict"]).startswith("dict len=1000000: {0: 0, 1: 0,")
    assert describe(hostile["huge_int"]) == "int with ~20001 digits"
    assert describe(hostile["huge_str"]).startswith("str len=10000000: 'xxxx")
    assert describe(hostile["slow_in_list"]) == "list len=2: [<SlowRepr object>, <SlowRepr object>]"
    assert "<SlowRepr object>" in describe(hostile["slow_in_frame"])
    assert describe(hostile["slow_in_array"]).endswith(": [<SlowRepr object>, None]")


def test_a_failing_description_is_reported_not_raised() -> None:
    class BrokenFrame(pd.DataFrame):
        @property
        def shape(self) -> tuple[int, int]:
            raise RuntimeError("nope")

    assert describe(BrokenFrame({"a": [1]})) == "<BrokenFrame: not described (RuntimeError)>"


def test_a_trusted_repr_that_fails_is_reported() -> None:
    assert describe(datetime.date(2024, 5, 1)) == "datetime.date(2024, 5, 1)"

    class Sub(datetime.date):  # a subclass is not trusted: no repr call at all
        def __repr__(self) -> str:
            raise RuntimeError

    assert describe(Sub(2024, 5, 1)) == "<Sub object>"


# -- describe --------------------------------------------------------------------------


def test_dataframe_shape_columns_dtypes_and_rows() -> None:
    df = pd.DataFrame(
        {
            "city": ["Oslo", "Lima", "Pune", "Kyiv"],
            "temp": [3.5, 19.0, 31.2, 8.1],
            "n": [1, 2, 3, 4],
        }
    )
    text = describe(df)
    assert text.startswith("DataFrame shape=(4, 3); columns: city str, temp float64, n int64")
    assert "first 3 rows:" in text
    assert "Oslo" in text and "Pune" in text and "Kyiv" not in text  # head(3) only
    assert len(text) <= 300


def test_dataframe_wide_lists_bounded_columns_and_some_rows() -> None:
    df = pd.DataFrame({f"column_{i}": range(5) for i in range(100)})
    text = describe(df)
    assert "shape=(5, 100)" in text
    assert "(+" in text and "more)" in text
    assert len(text) <= 300


def test_dataframe_secret_columns_are_hidden() -> None:
    df = pd.DataFrame({"user": ["ann"], "password": ["hunter2"]})
    text = describe(df)
    assert "password str" in text
    assert "hunter2" not in text and "(hidden)" in text


def test_series_and_index() -> None:
    s = pd.Series([1.5, 2.5, 3.5], name="price")
    assert describe(s) == "Series len=3 dtype=float64 name='price': [1.5, 2.5, 3.5]"
    long = pd.Series(range(1000))
    assert describe(long) == "Series len=1000 dtype=int64: [0, 1, 2, 3, 4, 5, 6, 7, ...]"
    dated = pd.Series([1], index=pd.DatetimeIndex(["2024-01-01"]))
    assert "index=DatetimeIndex" in describe(dated)
    assert describe(pd.Index(["a", "b"])) == "Index len=2 dtype=str: ['a', 'b']"


def test_arrays_show_values_only_when_small() -> None:
    assert describe(np.arange(4)) == "ndarray shape=(4,) dtype=int64: [0, 1, 2, 3]"
    assert (
        describe(np.zeros((2, 2))) == "ndarray shape=(2, 2) dtype=float64: [[0.0, 0.0], [0.0, 0.0]]"
    )
    assert describe(np.zeros((1 << 27,))) == "ndarray shape=(134217728,) dtype=float64 (1.0 GiB)"
    assert describe(np.ones((21,))) == "ndarray shape=(21,) dtype=float64"
    assert describe(np.float64(1.5)) == "np.float64(1.5)"


SLOW_DEFAULT = SlowRepr()


def test_functions_classes_and_methods() -> None:
    def load(path: str, *, sep: str = ",", cache=SLOW_DEFAULT) -> pd.DataFrame:
        """Load a table.

        Longer text that is not shown.
        """

    text = describe(load)
    assert text.startswith("function ")
    assert "load(path: str, *, sep: str = ',', cache=<SlowRepr object>)" in text
    assert text.endswith("  # Load a table.")
    assert "Longer" not in text

    class Point:
        """A point."""

        def __init__(self, x: float, y: float) -> None:
            self.x, self.y = x, y

        def norm(self) -> float:
            return (self.x**2 + self.y**2) ** 0.5

    assert describe(Point) == "class Point(x: float, y: float); methods: norm  # A point."
    assert describe(Point(3, 4).norm).endswith("Point.norm() -> float")
    assert describe(Point(3, 4)) == "<Point object: x=3, y=4>"
    assert describe(len) == "builtin len(obj, /)  # Return the number of items in a container."
    assert describe(np.add).startswith("ufunc add(x1, x2, /")


def test_containers() -> None:
    assert describe([1, "a", [2, 3]]) == "list len=3: [1, 'a', [2, 3]]"
    assert describe(list(range(100))) == "list len=100: [0, 1, 2, 3, 4, 5, 6, 7, ...]"
    assert describe((1,)) == "tuple len=1: (1,)"
    assert describe({3}) == "set len=1: {3}"
    assert describe({"a": 1, "b": {"c": [1, 2, 3, 4, 5, 6]}}) == (
        "dict len=2: {'a': 1, 'b': {'c': [1, 2, 3, 4, ...] (len 6)}}"
    )
    counts = collections.Counter("aab")
    assert describe(counts) == "Counter len=2: {'a': 2, 'b': 1}"
    Pair = collections.namedtuple("Pair", "left right")
    assert describe(Pair(1, "x")) == "Pair(left=1, right='x')"
    assert describe([[[[1]]]]) == "list len=1: [[[[...] (len 1)]]]"


def test_scalars_strings_and_others() -> None:
    assert describe(None) == "None"
    assert describe(3.25) == "3.25"
    assert describe(True) == "True"
    assert describe("hi") == "str len=2: 'hi'"
    assert describe(b"\x00ab") == "bytes len=3: b'\\x00ab'"
    assert describe(datetime.datetime(2024, 1, 2)) == "datetime.datetime(2024, 1, 2, 0, 0)"
    assert describe(sys) == "module sys"
    assert describe(ValueError("bad", 3)) == "ValueError('bad', 3)"

    class Color(enum.Enum):
        RED = 1

    assert describe(Color.RED) == "Color.RED"

    @dataclass(frozen=True)
    class Config:
        name: str
        api_token: str

    assert describe(Config("x", SENTINEL)) == "<Config object: name='x', api_token=(value hidden)>"


@pytest.mark.parametrize("limit", [1, 5, 20, 60, 300])
def test_describe_respects_the_limit(limit: int, hostile: dict[str, object]) -> None:
    values = [*hostile.values(), pd.DataFrame({"a": range(50)}), "x" * 500, list(range(50))]
    for value in values:
        assert len(describe(value, limit=limit)) <= limit


def test_credential_looking_values_are_hidden_whatever_their_name() -> None:
    assert SENTINEL not in describe(SENTINEL)
    assert SENTINEL not in describe({"config": {"openai": SENTINEL}})
    assert describe(SENTINEL) == "<str len=16, looks like a credential: hidden>"


# -- summarize_namespace ---------------------------------------------------------------


def test_summary_lists_variables_and_skips_the_rest() -> None:
    import json

    hidden = {"In": [], "secret_In": object()}
    ns = {
        "df": pd.DataFrame({"a": [1, 2]}),
        "x": 42,
        "_private": 1,
        "In": hidden["In"],
        "Out": {},
        "exit": object(),
        "get_ipython": lambda: None,
        "json": json,
        "api_key": SENTINEL,
        "DB_PASSWORD": "hunter2",
        "GithubToken": "t",
    }
    summary = summarize_namespace(ns, hidden=hidden)
    lines = summary.splitlines()
    assert lines[0].startswith("df: DataFrame shape=(2, 1); columns: a int64")
    assert "x: 42" in lines
    assert "api_key: str (value hidden)" in lines
    assert "DB_PASSWORD: str (value hidden)" in lines
    assert "GithubToken: str (value hidden)" in lines
    for absent in ("_private", "In:", "Out:", "exit:", "get_ipython", "json", SENTINEL, "hunter2"):
        assert absent not in summary
    assert "json: module json" in summarize_namespace(ns, include_modules=True)


def test_hidden_names_show_again_once_the_user_rebinds_them() -> None:
    ipython_object = object()
    hidden = {"history": ipython_object}
    assert "history" not in summarize_namespace({"history": ipython_object}, hidden=hidden)
    assert "history: 3" in summarize_namespace({"history": 3}, hidden=hidden)
    assert "history" not in summarize_namespace({"history": 3}, hidden=["history"])


def test_empty_namespace() -> None:
    assert summarize_namespace({}) == "(no user variables)"
    assert summarize_namespace({"_x": 1, "In": []}) == "(no user variables)"


@pytest.mark.parametrize("budget", [30, 200, 1000, 4000])
def test_summary_fits_the_budget_and_names_what_it_left_out(budget: int) -> None:
    ns: dict[str, object] = {f"value_{i}": list(range(i % 20)) for i in range(2000)}
    ns["frame"] = pd.DataFrame({"a": range(10), "b": range(10)})
    summary = summarize_namespace(ns, budget=budget)
    assert len(summary) <= budget
    if budget >= 200:
        assert "more: " in summary.splitlines()[-1]
        assert summary.splitlines()[-1].startswith("... and ")


def test_summary_shrinks_the_largest_descriptions_before_leaving_names_out() -> None:
    ns = {
        "frame": pd.DataFrame({f"col{i}": range(100) for i in range(10)}),
        "text": "word " * 400,
        "n": 1,
        "m": 2,
    }
    full = summarize_namespace(ns, budget=4000)
    assert "first 3 rows" in full
    tight = summarize_namespace(ns, budget=400)
    assert len(tight) <= 400
    assert "... and" not in tight  # everyone still listed ...
    assert "n: 1" in tight and "m: 2" in tight
    assert "frame: DataFrame shape=(100, 10); columns: col0 int64" in tight  # ... shrunk


def test_frames_and_arrays_are_described_before_the_rest() -> None:
    ns: dict[str, object] = {f"v{i}": i for i in range(5000)}
    ns["late_frame"] = pd.DataFrame({"price": [1.0]})
    ns["late_array"] = np.zeros(3)
    summary = summarize_namespace(ns, budget=1000)
    assert "late_frame: DataFrame shape=(1, 1); columns: price float64" in summary
    assert "late_array: ndarray shape=(3,)" in summary
    assert len(summary) <= 1000


def test_ten_thousand_variables_with_big_data_do_not_hang(hostile: dict[str, object]) -> None:
    ns: dict[str, object] = {f"v{i}": i for i in range(10_000)}
    ns.update(hostile)
    with within(1.0):
        summary = summarize_namespace(ns)
    assert len(summary) <= 4000
    assert "big_frame: DataFrame shape=(10000000, 2)" in summary


# -- step_start / step_changes ----------------------------------------------------------


def changes(start, ns, **options) -> str:  # type: ignore[no-untyped-def]
    """What ``step_changes`` says since ``start``; its fingerprints start the next step."""
    text, marks = step_changes(start, ns, **options)
    again, _ = step_changes(step_start(ns, marks), ns, **options)
    assert again == ""  # the fingerprints it ends with are the next step's start
    return text


def test_changes_created_rebound_deleted() -> None:
    ns: dict[str, object] = {"a": 1, "b": [1], "gone": "x", "same": (1, 2)}
    before = step_start(ns)
    ns["a"] = 2
    ns["new"] = pd.DataFrame({"q": [1]})
    del ns["gone"]
    text = changes(before, ns)
    assert text.splitlines() == [
        "rebound a: 2",
        "new new: DataFrame shape=(1, 1); columns: q int64",
        "    first 1 rows:",
        "       q",
        "    0  1",
        "deleted: gone",
    ]


def test_no_change_is_empty() -> None:
    ns = {"a": 1, "b": [1, 2]}
    assert changes(step_start(ns), ns) == ""


def test_in_place_changes_seen_through_fingerprints() -> None:
    df = pd.DataFrame({"a": [1, 2]})
    items = [1]
    ns: dict[str, object] = {"df": df, "items": items}
    before = step_start(ns)
    df["b"] = df["a"] * 2
    items.append(2)
    text = changes(before, ns)
    assert "changed df: DataFrame shape=(2, 2); columns: a int64, b int64" in text
    assert "changed items: list len=2: [1, 2]" in text


class _Odd(list):  # fingerprinted by list's own length
    pass


def test_changes_among_many_names_are_the_ones_a_step_made_in_namespace_order() -> None:
    """The comparison runs over every name in C passes: it still finds each kind of change
    wherever the name stands (a list subclass changed in place too) and keeps the order."""
    ns: dict[str, object] = {f"v{i}": [i] if i % 2 else i for i in range(300)}
    ns.update(frame=pd.DataFrame({"a": [1]}), same=(1, 2), odd=_Odd())
    hidden = {"v5": ns["v5"], "v7": "not its value"}  # IPython's: hidden while still bound
    before = step_start(ns)
    ns["v250"] = "rebound"
    ns["v3"].append(9)  # type: ignore[union-attr]
    del ns["v100"]
    ns["frame"]["b"] = 2  # type: ignore[index]
    ns["odd"].append(1)  # type: ignore[union-attr]
    ns["v1"] = ns["v1"]  # the same object again: no change
    ns["v5"].append(5)  # type: ignore[union-attr]  # hidden by IPython: not said
    ns["z_new"] = object()
    text = changes(before, ns, hidden=hidden, budget=10_000)
    names = [line.split(":")[0] for line in text.splitlines() if not line.startswith(" ")]
    assert names == [
        "changed v3",
        "rebound v250",
        "changed frame",
        "changed odd",
        "new z_new",
        "deleted",
    ]
    assert text.splitlines()[-1] == "deleted: v100"


def test_changes_hide_secrets_and_hidden_names() -> None:
    ns: dict[str, object] = {}
    before = step_start(ns)
    ns.update(api_key=SENTINEL, _tmp=1, Out={})
    text = changes(before, ns)
    assert text == "new api_key: str (value hidden)"


def test_changes_fit_their_budget() -> None:
    ns: dict[str, object] = {}
    before = step_start(ns)
    ns.update({f"x{i}": "y" * i for i in range(3000)})
    text = changes(before, ns, budget=500)
    assert len(text) <= 500
    assert "... and " in text and "more changed" in text


def test_imports_show_as_new_names() -> None:
    ns: dict[str, object] = {}
    before = step_start(ns)
    ns["np"] = np
    assert changes(before, ns) == "new np: module numpy"


class _Columns:
    """Labels whose comparison fails: every fingerprint is then compared on its own."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __eq__(self, other: object) -> bool:
        raise TypeError("not comparable")

    __hash__ = object.__hash__


def test_names_ipython_hides_are_said_once_the_user_binds_them() -> None:
    ns: dict[str, object] = {f"v{i}": [i] if i % 2 else i for i in range(12)}
    ns.update(In=[], np=np)
    hidden = {"v5": ns["v5"], "v7": "not its value", "v9": ns["v9"]}
    before = step_start(ns)
    ns["v9"] = "mine now"  # a name IPython hides, bound by the user: shown from now on
    ns["v7"] = "not its value"  # bound to what IPython hides: hidden from now on
    ns["_private"] = [1, 2]
    del ns["v10"]
    text = changes(before, ns, hidden=hidden)
    assert text.splitlines() == ["new v9: str len=8: 'mine now'", "deleted: v7, v10"]


def test_fingerprints_that_cannot_be_compared_are_compared_one_by_one() -> None:
    odd = {"c": pd.DataFrame({"a": [1]}), "k": [1]}
    odd["c"].columns = pd.Index([_Columns(1)], dtype=object)  # type: ignore[union-attr]
    before = step_start(odd)
    odd["k"].append(2)  # type: ignore[union-attr]
    assert changes(before, odd, hidden=["k"]) == ""
    assert changes(before, odd) == "changed k: list len=2: [1, 2]"


# -- interpolate ------------------------------------------------------------------------


def test_interpolate_variables_braces_and_code() -> None:
    ns = {"df": pd.DataFrame({"sales": [1, 2]}), "n": 3, "api_key": SENTINEL, "_p": 1}
    task = interpolate("plot {df} top {n} {{literal}} {'a': 1} {x+1} {unknown} {api_key} {_p}", ns)
    assert task.startswith("plot `df` (DataFrame shape=(2, 1); columns: sales int64\n")
    assert "    first 2 rows:" in task
    assert ") top `n` (3) {literal} {'a': 1} {x+1} {unknown} {api_key} {_p}" in task
    assert SENTINEL not in task


def test_interpolate_leaves_a_template_without_names_alone() -> None:
    assert interpolate("no braces here", {}) == "no braces here"
    assert interpolate("{}", {"x": 1}) == "{}"
    assert interpolate("{{x}}", {"x": 1}) == "{x}"
    assert interpolate("{{{x}}}", {"x": 1}) == "{`x` (1)}"


def test_interpolate_respects_hidden_and_limit() -> None:
    ns = {"In": ["history"], "text": "a" * 5000}
    assert interpolate("{In}", ns, hidden={"In": ns["In"]}) == "{In}"
    out = interpolate("{text}", ns, limit=100)
    assert len(out) <= 100 + len("`text` ()")


def test_interpolate_cells_and_results_from_the_history() -> None:
    ns = {"In": ["", "x = 1\ny = 2", "x + y", "%%agent ..."], "Out": {2: 3}}
    task = interpolate("Why {In[1]} then {Out[2]}? And {In[-2]}; {In[9]} {Out[1]}", ns)
    assert task.startswith("Why `In[1]`:\n```python\nx = 1\ny = 2\n```\n then `Out[2]` (3)?")
    assert "`In[2]`:\n```python\nx + y\n```" in task  # -2: two cells back from this one
    assert task.endswith("{In[9]} {Out[1]}")  # no such cell, no such result: left as typed
    raw = ["", "%timeit f()", "x + y", "..."]
    assert "%timeit f()" in interpolate("{In[1]}", ns, inputs=raw)


# -- one secrets policy ------------------------------------------------------------------


def test_secret_names_follow_the_secrets_module() -> None:
    # Names are judged by their words (agent_magic.secrets.is_secret_name): a tokenizer or
    # a keyboard layout is shown, an auth pair or a session key is not.
    ns = {"tokenizer": "bert-base", "keyboard": "us", "auth": ("ann", "pw"), "SessionKey": 7}
    summary = summarize_namespace(ns)
    assert "tokenizer: str len=9: 'bert-base'" in summary
    assert "keyboard: str len=2: 'us'" in summary
    assert "auth: tuple (value hidden)" in summary
    assert "SessionKey: int (value hidden)" in summary
    ghp = "ghp_" + "x" * 36
    assert describe(ghp) == "<str len=40, looks like a credential: hidden>"


def test_the_package_modules_are_small_and_say_what_they_hold() -> None:
    import pathlib

    import agent_magic.context as package

    for path in pathlib.Path(package.__file__).parent.glob("*.py"):
        text = path.read_text()
        assert len(text.splitlines()) < 400, path.name
        assert text.startswith('"""') and "Not here" in text.split('"""')[1], path.name
