"""Tasks asked in the middle of a notebook: the facts are in the cells around the task.

An analyst does not repeat in every request what the notebook already says. Each task
here comes with a saved notebook (Markdown cells saying what the data is, a definition,
units, which rows to leave out; and code cells) in its own folder, and with the code
cells that ran before the task (loading a file into a variable with a short name,
cleaning it, a helper function). The worker runs those cells first in the same shell
(so they are in IPython's input history), points ``JPY_SESSION_NAME`` at the notebook
as Jupyter Server does, then runs the task's ``%%agent`` cell, whose text refers to
them as a user would ("the orders loaded above", "as defined in the notes").

What each task needs is stated plainly in the Markdown or in the earlier code, and
cannot be guessed from the task's text: so switching off a context source
(``--context-sources``) measures what it adds. Three tasks need a fact of the
Markdown (``needs = "notebook"``), three a fact only the earlier code shows
(``"cells"``: a separator, a filter or a threshold written inline, a helper's rates);
the variables the cells left behind are visible in every run. So in
``nb_invoice_helper`` the variables already show enough (the helper is in the
namespace, callable by its signature; only its rates are in the code alone), and in
``nb_same_cleaning`` the cleaned ``feb``'s first rows show the net column's ratio.

All of them are *evaluation* tasks: no rule of the loop is designed from their
transcripts. The expected values are computed here from the rows the files are
written from. Standard library only (the peers' workers import this module too).
"""

from __future__ import annotations

import datetime
import json
import statistics
from typing import Any

# -- the data ---------------------------------------------------------------------------

# (order id, placed, shipped, status): "X" is cancelled. Some ship exactly 3 days after.
_ORDERS = [
    ("o1", "2024-07-01", "2024-07-03", "S"),
    ("o2", "2024-07-01", "2024-07-04", "S"),
    ("o3", "2024-07-02", "2024-07-08", "S"),
    ("o4", "2024-07-03", "2024-07-09", "X"),
    ("o5", "2024-07-05", "2024-07-06", "S"),
    ("o6", "2024-07-05", "2024-07-10", "S"),
    ("o7", "2024-07-08", "2024-07-11", "S"),
    ("o8", "2024-07-08", "2024-07-15", "X"),
    ("o9", "2024-07-09", "2024-07-14", "S"),
    ("o10", "2024-07-10", "2024-07-12", "S"),
]
_LATE_DAYS = 3

# (region, gross) for two months, ';'-separated; "TEST" rows are the shop's own tests.
_FEB = [("north", 1200.0), ("south", 840.0), ("TEST", 999.0), ("east", 360.0)]
_MAR = [("north", 1500.0), ("TEST", 120.0), ("south", 960.0), ("west", 720.0), ("TEST", 60.0)]
_VAT = 1.2

# (invoice, amount, currency) and the helper's rates to euros.
_INVOICES = [("i1", 100.0, "USD"), ("i2", 250.0, "EUR"), ("i3", 80.0, "GBP"), ("i4", 40.0, "USD")]
_RATES = {"USD": 0.92, "GBP": 1.17, "EUR": 1.0}

# (sensor, reading in tenths of a degree Celsius); S3 was faulty.
_READINGS = [("S1", 215), ("S2", 198), ("S3", 402), ("S1", 220), ("S3", 390), ("S2", 203)]
_FAULTY = "S3"

# (date, amount): the fiscal year starts on 1 April.
_BOOKINGS = [
    ("2024-02-10", 500.0),
    ("2024-04-01", 1200.0),
    ("2024-09-15", 800.0),
    ("2024-12-31", 300.0),
    ("2025-03-31", 450.0),
    ("2025-04-02", 900.0),
]

# (line, department, amount) and the review threshold written in the earlier check. The
# line of exactly 750 is not among the first rows, which the variables' summary shows;
# more lines than departments are over it, so counting departments is not counting lines.
_SPEND = [
    (1, "IT", 820.0),
    (2, "HR", 120.0),
    (3, "Sales", 1400.0),
    (4, "HR", 760.0),
    (5, "IT", 750.0),
    (6, "Sales", 300.0),
    (7, "Ops", 990.0),
    (8, "IT", 905.0),
]
_THRESHOLD = 750.0


def _csv(header: str, rows: list[tuple[Any, ...]], sep: str = ",") -> bytes:
    return (header + "\n" + "".join(sep.join(str(v) for v in row) + "\n" for row in rows)).encode()


def _days(placed: str, shipped: str) -> int:
    return (datetime.date.fromisoformat(shipped) - datetime.date.fromisoformat(placed)).days


def _fiscal_2024(day: str) -> bool:
    return (
        datetime.date(2024, 4, 1) <= datetime.date.fromisoformat(day) <= datetime.date(2025, 3, 31)
    )


def _left_out(value: str) -> str:
    """A pattern of code that leaves the rows of ``value`` out: ``!= 'X'``, ``~`` before a
    test naming it, ``not in``. Keeping the other values (``.isin([...])``) is missed."""
    quoted = f"""['"]{value}['"]"""
    return rf"!=\s*{quoted}|{quoted}\s*!=|~[^\n]*{quoted}|not\s+in[^\n]*{quoted}"


def notebook(cells: list[tuple[str, str]]) -> bytes:
    """A saved notebook (nbformat 4.5) of ``cells``: (``"markdown"``|``"code"``, source),
    the code cells numbered as they ran, with no outputs."""
    body = []
    count = 0
    for n, (kind, source) in enumerate(cells):
        cell: dict[str, Any] = {
            "cell_type": kind,
            "id": f"cell-{n}",
            "metadata": {},
            "source": source.splitlines(keepends=True),
        }
        if kind == "code":
            count += 1
            cell.update(execution_count=count, outputs=[])
        body.append(cell)
    document = {
        "cells": body,
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    return (json.dumps(document, indent=1) + "\n").encode()


# -- the tasks --------------------------------------------------------------------------

# id -> needs (the source holding the facts), folder, notebook cells, data files,
# prompt, expected, facts (name -> a pattern that matches code using it; read by
# bench.effectiveness.facts), kind of check. The notebook is saved as <folder>/<id>.ipynb, the
# data files beside it (the kernel's working directory, as in Lab); the code cells run
# first, in order.
NOTEBOOK_TASKS: dict[str, dict[str, Any]] = {
    "nb_late_orders": {
        "needs": "notebook",
        "folder": "shipping",
        "cells": [
            (
                "markdown",
                "# Shipping review, July 2024\n\n"
                "Web shop orders placed in July 2024, one row per order.",
            ),
            (
                "markdown",
                "## Definitions\n\n"
                f"- A **late** order is one shipped more than {_LATE_DAYS} days after it "
                "was placed.\n"
                "- Cancelled orders (status `X`) are left out of every count.",
            ),
            ("code", "import pandas as pd\n\nords = pd.read_csv('orders.csv')\nords.head()"),
        ],
        "files": {"orders.csv": _csv("order_id,placed,shipped,status", _ORDERS)},
        "prompt": "Using the orders loaded above, count the late orders as defined in the notes.",
        "expected": sum(
            1 for _, p, s, status in _ORDERS if status != "X" and _days(p, s) > _LATE_DAYS
        ),
        "facts": {
            "more than 3 days": r"(?:>|\+)\s*3\b|>=\s*4\b|days\s*=\s*3\b|\b3\s*(?:D|days?)\b",
            "status X left out": _left_out("X"),
        },
        "how": "number",
    },
    "nb_sensor_units": {
        "needs": "notebook",
        "folder": "lab",
        "cells": [
            (
                "markdown",
                "# Greenhouse temperatures\n\n"
                "`readings.csv` holds one reading per row from sensors S1, S2 and S3.",
            ),
            (
                "markdown",
                "## Units and exclusions\n\n"
                "The `value` column is in tenths of a degree Celsius (215 means 21.5 °C).\n"
                f"Sensor {_FAULTY} was faulty during this period: leave its readings out.",
            ),
            ("code", "import pandas as pd\n\nr = pd.read_csv('readings.csv')\nr.describe()"),
        ],
        "files": {"readings.csv": _csv("sensor,value", _READINGS)},
        "prompt": "What is the mean temperature in degrees Celsius over the valid readings "
        "loaded above?",
        "expected": statistics.mean(v / 10 for s, v in _READINGS if s != _FAULTY),
        "facts": {
            "tenths of a degree": r"/\s*10\b|\*\s*0?\.1\b",
            "S3 left out": _left_out("S3"),
        },
        "how": "number",
    },
    "nb_fiscal_year": {
        "needs": "notebook",
        "folder": "finance",
        "cells": [
            ("markdown", "# Bookings\n\nEvery booking of the consulting unit, in euros."),
            (
                "markdown",
                "Note: our fiscal year starts on 1 April. FY2024 runs from 2024-04-01 "
                "to 2025-03-31 (both days included).",
            ),
            (
                "code",
                "import pandas as pd\n\n"
                "bk = pd.read_csv('bookings.csv', parse_dates=['date'])\nbk.tail()",
            ),
        ],
        "files": {"bookings.csv": _csv("date,amount", _BOOKINGS)},
        "prompt": "What is the total booked amount of fiscal year 2024 in the bookings above?",
        "expected": sum(a for d, a in _BOOKINGS if _fiscal_2024(d)),
        "facts": {
            "starts on 1 April": r"2024-0?4-0?1|2025-0?3-31|2024,\s*4,\s*1|month\s*>=?\s*[34]\b"
        },
        "how": "number",
    },
    "nb_same_cleaning": {
        "needs": "cells",
        "folder": "sales",
        "cells": [
            ("markdown", "# Monthly sales\n\nOne export per month from the shop's back office."),
            (
                "code",
                "import pandas as pd\n\n"
                "feb = pd.read_csv('sales_feb.csv', sep=';')\n"
                "feb = feb[feb['region'] != 'TEST']\n"
                f"feb['net'] = feb['gross'] / {_VAT}\n"
                "feb['net'].sum()",
            ),
            ("markdown", "## March"),
        ],
        "files": {
            "sales_feb.csv": _csv("region;gross", _FEB, ";"),
            "sales_mar.csv": _csv("region;gross", _MAR, ";"),
        },
        "prompt": "Load sales_mar.csv and clean it exactly as February was cleaned above, "
        "then give the total net amount for March.",
        "expected": sum(g / _VAT for r, g in _MAR if r != "TEST"),
        "facts": {
            "';' separator": r"""(?:sep|delimiter)\s*=\s*['"];""",
            "TEST rows left out": _left_out("TEST"),
            "net = gross / 1.2": r"/\s*1\.2\b",
        },
        "how": "number",
    },
    "nb_invoice_helper": {
        "needs": "cells",
        "folder": "billing",
        "cells": [
            ("markdown", "# Invoices 2024\n\nInvoices of the year in their own currencies."),
            (
                "code",
                "def to_eur(amount, currency):\n"
                f"    rates = {_RATES!r}\n"
                "    return amount * rates[currency]",
            ),
            ("code", "import pandas as pd\n\ninv = pd.read_csv('invoices_2024.csv')"),
        ],
        "files": {"invoices_2024.csv": _csv("invoice,amount,currency", _INVOICES)},
        "prompt": "Convert every invoice loaded above to euros with the helper defined "
        "earlier, and give the total in euros.",
        "expected": sum(a * _RATES[c] for _, a, c in _INVOICES),
        "facts": {"the helper or its rates": r"\bto_eur\s*\(|0\.92"},
        "how": "number",
    },
    "nb_review_threshold": {
        "needs": "cells",
        "folder": "audit",
        "cells": [
            ("markdown", "# Spend review\n\nSpend lines of the quarter, by department."),
            ("code", "import pandas as pd\n\nspend = pd.read_csv('spend.csv')"),
            (
                "code",
                "# the review threshold agreed with finance\n"
                f"spend[spend['amount'] > {_THRESHOLD:g}].groupby('dept')['amount'].sum()",
            ),
        ],
        "files": {"spend.csv": _csv("line,dept,amount", _SPEND)},
        "prompt": "How many spend lines are over the review threshold used in the check above?",
        "expected": sum(1 for _, _, a in _SPEND if a > _THRESHOLD),
        "facts": {"threshold 750": r"\b750\b"},
        "how": "number",
    },
}


def notebook_files(task_id: str) -> dict[str, bytes]:
    """The task's files, paths relative to the server's root: the data and the notebook."""
    spec = NOTEBOOK_TASKS[task_id]
    folder = spec["folder"]
    files = {f"{folder}/{name}": data for name, data in spec["files"].items()}
    files[f"{folder}/{task_id}.ipynb"] = notebook(spec["cells"])
    return files
