"""The effectiveness suite's tasks: what users ask, each with a checker.

Every task ends with the same sentence, asking for the result in a variable named
``answer``. That is the one value both loops can produce: ``%%agent`` runs code in the
kernel, so the checker reads ``answer`` from the namespace after the cell; AG2's
``UserProxyAgent`` runs each code block in a fresh ``python`` subprocess, so a footer the
model never sees saves ``answer`` (when a block defines it) to a file after each block,
and the checker reads the last one. Both values go through :func:`plain` first (numpy
arrays and tuples become lists, sets sorted lists, numpy scalars Python numbers), so a
checker sees the same thing whichever loop produced it.

Standard library only: the autogen worker, in its own venv, imports this module too.
The expected values are computed here from the task's data where that is easy, so a typo
in a hand-written constant cannot make a right answer fail.
"""

from __future__ import annotations

import calendar
import datetime
import json
import math
import statistics
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

ASK = " Store the result in a variable named `answer`."
MISSING = "<answer was never set>"


@dataclass(frozen=True)
class Task:
    id: str
    kind: str  # numeric | text | data | file | notebook
    prompt: str  # without the closing sentence; see ``text``
    check: Callable[[Any], bool]  # on plain(answer)
    # "tuning": the transcripts may be read to design the loop's rules; "evaluation":
    # only measured (see file_tasks.py).
    split: str = "tuning"
    files: tuple[tuple[str, bytes], ...] = ()  # written into the task's folder first
    # A notebook task (notebook_tasks.py): the code cells run before the task, and the
    # saved notebook's path among ``files`` (the kernel starts in its folder).
    setup: tuple[str, ...] = ()
    notebook: str = ""

    def write_files(self, folder: str) -> None:
        """Put the task's files in ``folder`` (the loop's working directory)."""
        import os

        for name, data in self.files:
            path = os.path.join(folder, name)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as out:
                out.write(data)

    @property
    def text(self) -> str:
        return self.prompt + ASK


def plain(value: Any, depth: int = 0) -> Any:
    """``value`` as JSON-able Python data, the same for both loops (see the module doc)."""
    if depth > 20:
        return repr(value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    tolist = getattr(value, "tolist", None)  # numpy arrays and scalars, pandas Series
    if callable(tolist):
        try:
            return plain(tolist(), depth + 1)
        except Exception:  # a tolist() that wants arguments: not numpy's
            pass
    if isinstance(value, dict):
        return {str(k): plain(v, depth + 1) for k, v in value.items()}
    if isinstance(value, set | frozenset):
        items = [plain(v, depth + 1) for v in value]
        try:
            return sorted(items)
        except TypeError:
            return sorted(items, key=repr)
    if isinstance(value, list | tuple | range):
        return [plain(v, depth + 1) for v in value]
    if isinstance(value, complex):
        return [value.real, value.imag]
    if isinstance(value, datetime.date):
        return value.isoformat()
    return repr(value)


# -- checkers ----------------------------------------------------------------------------


def number(expected: float, tol: float = 1e-6) -> Callable[[Any], bool]:
    def check(got: Any) -> bool:
        if isinstance(got, list) and len(got) == 1:  # [x] or a 1-element array
            got = got[0]
        if isinstance(got, str):
            try:
                got = float(got.strip().replace(",", ""))
            except ValueError:
                return False
        if isinstance(got, bool) or not isinstance(got, int | float):
            return False
        return math.isclose(got, expected, rel_tol=tol, abs_tol=tol)

    return check


def numbers(expected: list[float], tol: float = 1e-6) -> Callable[[Any], bool]:
    def check(got: Any) -> bool:
        if not isinstance(got, list) or len(got) != len(expected):
            return False
        return all(number(e, tol)(g) for g, e in zip(got, expected, strict=True))

    return check


def equal(expected: Any) -> Callable[[Any], bool]:
    return lambda got: got == plain(expected)


def text(expected: str, *, fold: bool = False) -> Callable[[Any], bool]:
    def check(got: Any) -> bool:
        if not isinstance(got, str):
            return False
        a, b = got.strip(), expected
        return a.casefold() == b.casefold() if fold else a == b

    return check


def pair(first: float, second: float, tol: float = 1e-6) -> Callable[[Any], bool]:
    """(x, y) as a tuple/list, or a dict with two values in that order."""

    def check(got: Any) -> bool:
        if isinstance(got, dict):
            got = list(got.values())
        return numbers([first, second], tol)(got)

    return check


# -- the data the tasks quote --------------------------------------------------------------

SALES_CSV = """region,product,amount
north,apples,120
south,apples,80
north,pears,45
east,apples,60
north,plums,30
south,pears,75
"""
TEXT = "the cat sat on the mat and the dog sat on the log"
STAFF = [("Ana", 31), ("Ben", 25), ("Caro", 42), ("Dev", 19)]
MATRIX = [[4.0, 1.0, 2.0], [1.0, 3.0, 0.0], [2.0, 0.0, 5.0]]
GRID = [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12]]
ORDER_JSON = '{"order": {"id": 17, "items": [{"sku": "a1", "qty": 2}, {"sku": "b7", "qty": 5}]}}'
POEM = "Roses are red\nViolets are blue\nSugar is sweet\nAnd so are you"
SEED_PROBLEM = (
    "Find a + b + c, given that x + y != -1 and\n"
    "a*x + b*y + c = x + 7,\n"
    "a + b*x + c*y = 2*x + 6*y,\n"
    "a*y + b + c*x = 4*x + y."
)


def _primes(below: int) -> list[int]:
    return [n for n in range(2, below) if all(n % d for d in range(2, math.isqrt(n) + 1))]


def _fib(n: int) -> list[int]:
    out = [0, 1]
    while len(out) < n:
        out.append(out[-1] + out[-2])
    return out[:n]


def _det3(m: list[list[float]]) -> float:
    (a, b, c), (d, e, f), (g, h, i) = m
    return a * (e * i - f * h) - b * (d * i - f * g) + c * (d * h - e * g)


def _sales(region: str) -> int:
    rows = [line.split(",") for line in SALES_CSV.strip().splitlines()[1:]]
    return sum(int(r[2]) for r in rows if r[0] == region)


def _caesar(s: str, k: int) -> str:
    def shift(ch: str) -> str:
        return chr((ord(ch) - 97 + k) % 26 + 97) if ch.islower() else ch

    return "".join(shift(ch) for ch in s)


def _solve2(a11: float, a12: float, b1: float, a21: float, a22: float, b2: float) -> list[float]:
    det = a11 * a22 - a12 * a21
    return [(b1 * a22 - a12 * b2) / det, (a11 * b2 - b1 * a21) / det]


TASKS: tuple[Task, ...] = (
    # The seed notebook's problem: a + b + c = 7 for every x, y with x + y != -1.
    Task("seed_abc", "numeric", SEED_PROBLEM, number(7.0, 1e-6)),
    Task("sum_1_100", "numeric", "Compute the sum of the integers from 1 to 100.", number(5050)),
    Task(
        "squares",
        "numeric",
        "Make a list of the squares of the integers 1 to 10, in order.",
        equal([n * n for n in range(1, 11)]),
    ),
    Task("primes", "numeric", "List the prime numbers below 50, in order.", equal(_primes(50))),
    Task("factorial", "numeric", "Compute 20 factorial (20!).", number(math.factorial(20), 0)),
    Task(
        "fibonacci",
        "numeric",
        "Make a list of the first 15 Fibonacci numbers, starting 0, 1, 1, 2.",
        equal(_fib(15)),
    ),
    Task("gcd", "numeric", "Find the greatest common divisor of 462 and 1071.", number(21)),
    Task(
        "compound",
        "numeric",
        "1000 dollars earn 5% interest compounded yearly. What is the balance after 10 "
        "years, rounded to 2 decimals?",
        number(round(1000 * 1.05**10, 2), 1e-9),
    ),
    Task(
        "mean_std",
        "data",
        "For the numbers [2, 4, 4, 4, 5, 5, 7, 9] compute the mean and the population "
        "standard deviation, as a tuple (mean, std).",
        pair(
            statistics.mean([2, 4, 4, 4, 5, 5, 7, 9]), statistics.pstdev([2, 4, 4, 4, 5, 5, 7, 9])
        ),
    ),
    Task(
        "median",
        "data",
        "Find the median of [12, 3, 7, 19, 5, 8].",
        number(statistics.median([12, 3, 7, 19, 5, 8])),
    ),
    Task(
        "linear_system",
        "numeric",
        "Solve the linear system 2x + y = 5 and x - 3y = -1 with numpy; the result is the "
        "list [x, y].",
        numbers(_solve2(2, 1, 5, 1, -3, -1), 1e-6),
    ),
    Task(
        "determinant",
        "numeric",
        f"Compute the determinant of the matrix {MATRIX} with numpy.",
        number(_det3(MATRIX), 1e-6),
    ),
    Task(
        "column_means",
        "data",
        f"Given the 3x4 array {GRID}, compute the mean of each column with numpy, as a list.",
        numbers([statistics.mean(col) for col in zip(*GRID, strict=True)]),
    ),
    Task(
        "reverse_words",
        "text",
        "Reverse the order of the words in 'the quick brown fox jumps'.",
        text("jumps fox brown quick the"),
    ),
    Task(
        "vowels",
        "text",
        "Count the vowels (a, e, i, o, u) in 'Programming in Python is fun'.",
        number(sum(ch in "aeiou" for ch in "programming in python is fun")),
    ),
    Task(
        "word_counts",
        "text",
        f"Count how often each word occurs in {TEXT!r}; the result is a dict from word to count.",
        equal(dict(Counter(TEXT.split()))),
    ),
    Task(
        "palindromes",
        "text",
        "From ['level', 'python', 'radar', 'noon', 'jupyter', 'civic'] keep the palindromes, "
        "in their order.",
        equal(["level", "radar", "noon", "civic"]),
    ),
    Task(
        "caesar",
        "text",
        "Encode 'hello world' with a Caesar cipher shifting each letter by 3.",
        text(_caesar("hello world", 3)),
    ),
    Task("roman", "text", "Convert 1994 to Roman numerals, as a string.", text("MCMXCIV")),
    Task(
        "binary",
        "text",
        "Write 173 in binary as a string of 0s and 1s, no prefix.",
        text("10101101"),
    ),
    Task(
        "poem_stats",
        "text",
        f"For the text {POEM!r}, count its lines and its words, as a tuple (lines, words).",
        pair(len(POEM.splitlines()), len(POEM.split())),
    ),
    Task(
        "days_between",
        "data",
        "How many days are there from 2024-01-15 to 2024-03-01?",
        number((datetime.date(2024, 3, 1) - datetime.date(2024, 1, 15)).days),
    ),
    Task(
        "weekday",
        "data",
        "On which day of the week was 1 January 2000? The result is the English day name.",
        text(calendar.day_name[datetime.date(2000, 1, 1).weekday()], fold=True),
    ),
    Task(
        "csv_total",
        "data",
        f"Parse this CSV text and total the amount for the region north:\n{SALES_CSV}",
        number(_sales("north")),
    ),
    Task(
        "sort_people",
        "data",
        f"Given the (name, age) pairs {STAFF}, list the names sorted from youngest to oldest.",
        equal([name for name, _ in sorted(STAFF, key=lambda p: p[1])]),
    ),
    Task(
        "json_qty",
        "data",
        f"Parse the JSON {ORDER_JSON} and compute the total quantity over all items.",
        number(sum(item["qty"] for item in json.loads(ORDER_JSON)["order"]["items"])),
    ),
)
try:  # as bench.effectiveness.tasks, or as a top-level module in the peers' venvs
    from .file_tasks import FILE_TASKS
except ImportError:
    from file_tasks import FILE_TASKS  # type: ignore[no-redef]

_CHECKS = {"number": lambda v: number(v, 1e-6), "text": lambda v: text(v, fold=True)}
TASKS += tuple(
    Task(task_id, "file", prompt, _CHECKS[how](expected), split, tuple(files.items()))
    for task_id, (split, files, prompt, expected, how) in FILE_TASKS.items()
)
try:
    from .notebook_tasks import NOTEBOOK_TASKS, notebook_files
except ImportError:
    from notebook_tasks import NOTEBOOK_TASKS, notebook_files  # type: ignore[no-redef]

TASKS += tuple(
    Task(
        task_id,
        "notebook",
        spec["prompt"],
        _CHECKS[spec["how"]](spec["expected"]),
        "evaluation",
        tuple(notebook_files(task_id).items()),
        tuple(source for kind, source in spec["cells"] if kind == "code"),
        f"{spec['folder']}/{task_id}.ipynb",
    )
    for task_id, spec in NOTEBOOK_TASKS.items()
)
BY_ID = {task.id: task for task in TASKS}
SPLITS = ("tuning", "evaluation")
