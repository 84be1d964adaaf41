"""Tasks over files, as analysts type them in a notebook: the data has its traps.

Each task names files the worker writes into the task's own working directory before the
loop starts (separators other than commas, latin-1, title lines above the header,
thousands separators, decimal commas, missing-value markers, day-first dates, padded
headers, several files to combine). The expected values are computed here from the
same rows the files are written from.

The split (``Task.split``): the four ``tuning`` tasks may be read while designing the
loop's rules; the ``evaluation`` tasks are only ever measured, so a rule fitted to their
transcripts would show as a fit and not as an improvement. Standard library only (the
autogen and smolagents workers import it from their own venvs).
"""

from __future__ import annotations

import datetime
import json
import statistics
from typing import Any

# (name, amount) with amounts in thousands of euros, written "1.234,50" (decimal comma).
_SEMICOLON = [("Nord", 1234.5), ("Sud", 987.25), ("Est", 12045.0), ("Ouest", 310.75)]
_CITIES = [("Zürich", 421878), ("Genève", 203856), ("Bâle", 173863), ("Lausanne", 140202)]
_REPORT = [("2024-01", 5200, 3100), ("2024-02", 6100, 3900), ("2024-03", 5800, 3300)]
_ORDERS_QTY = [("A-1", 1250), ("A-2", 980), ("A-3", 15300), ("A-4", 2005)]
_TEMPS = ["12.5", "NA", "14.0", "", "13.25", "-", "15.5", "11.0"]
_EVENTS = ["03/04/2024", "15/04/2024", "04/03/2024", "30/04/2024", "01/05/2024", "12/04/2024"]
_SURVEY = [("Ana", 34, "Paris"), ("Ben", 41, "Lyon"), ("Chloé", 29, "Paris"), ("Dan", 52, "Paris")]
_SCORES = [("ada", 88), ("grace", 95), ("linus", 91), ("guido", 79)]
_LOG = [
    {"level": "info", "msg": "start"},
    {"level": "error", "msg": "disk full"},
    {"level": "warning", "msg": "slow"},
    {"level": "error", "msg": "timeout"},
    {"level": "ERROR", "msg": "crash"},
    {"level": "info", "msg": "stop"},
]
_CUSTOMERS = [(1, "Lyon"), (2, "Paris"), (3, "Lyon"), (4, "Nice")]
_CUSTOMER_ORDERS = [(1, 120.0), (2, 80.0), (3, 45.5), (1, 30.0), (4, 99.0), (3, 10.0)]
_RATES = ["12.5%", "7.25%", "30%", "0.75%"]
_MONTHLY = {"01": [("bolt", 120), ("nut", 300)], "02": [("bolt", 80)], "03": [("nut", 410)]}
_BOM = [(1, 10.5), (2, 7.0), (3, 42.25)]
_PRODUCTS = [("hammer", "tools", 12.5), ('saw "pro"', "tools", 30.0), ("glue|strong", "craft", 4.0)]
_REVENUE = [("2024-01", 100.0), ("2024-02", 120.0), ("2024-03", 114.0), ("2024-04", 171.0)]
_LEDGER = ["250.00", "(120.00)", "80.50", "(35.25)", "1,000.00"]


def _euro(value: float) -> str:
    whole, cents = f"{value:,.2f}".split(".")
    return whole.replace(",", ".") + "," + cents


def _ledger_value(text: str) -> float:
    value = float(text.strip("()").replace(",", ""))
    return -value if text.startswith("(") else value


def _day_first(text: str) -> datetime.date:
    day, month, year = (int(part) for part in text.split("/"))
    return datetime.date(year, month, day)


def _growth_month() -> str:
    best = max(range(1, len(_REVENUE)), key=lambda i: _REVENUE[i][1] / _REVENUE[i - 1][1])
    return _REVENUE[best][0]


# id -> (split, files {name: bytes}, prompt, expected, kind of check)
FILE_TASKS: dict[str, tuple[str, dict[str, bytes], str, Any, str]] = {
    "semicolon_sales": (
        "evaluation",
        {
            "sales.csv": (
                "region;amount\n" + "".join(f"{r};{_euro(a)}\n" for r, a in _SEMICOLON)
            ).encode()
        },
        "Load sales.csv and compute the total of the amount column.",
        sum(a for _, a in _SEMICOLON),
        "number",
    ),
    "latin1_cities": (
        "evaluation",
        {
            "cities.csv": ("city,population\n" + "".join(f"{c},{p}\n" for c, p in _CITIES)).encode(
                "latin-1"
            )
        },
        "What is the population of Genève according to cities.csv?",
        dict(_CITIES)["Genève"],
        "number",
    ),
    "preamble_header": (
        "evaluation",
        {
            "report.csv": (
                "Monthly report generated 2024-04-02\nAll figures in EUR\n"
                "month,revenue,cost\n" + "".join(f"{m},{r},{c}\n" for m, r, c in _REPORT)
            ).encode()
        },
        "Using report.csv, compute the total profit (revenue minus cost) over all months.",
        sum(r - c for _, r, c in _REPORT),
        "number",
    ),
    "thousands_commas": (
        "evaluation",
        {
            "orders.csv": (
                "order,quantity\n" + "".join(f'{o},"{q:,}"\n' for o, q in _ORDERS_QTY)
            ).encode()
        },
        "Sum the quantity column of orders.csv.",
        sum(q for _, q in _ORDERS_QTY),
        "number",
    ),
    "missing_values": (
        "evaluation",
        {
            "temps.csv": (
                "day,temp_c\n" + "".join(f"{i + 1},{t}\n" for i, t in enumerate(_TEMPS))
            ).encode()
        },
        "temps.csv has daily temperatures; some days are missing. Compute the mean "
        "temperature over the days that have one.",
        statistics.mean(float(t) for t in _TEMPS if t not in ("NA", "", "-")),
        "number",
    ),
    "dates_dayfirst": (
        "evaluation",
        {
            "events.csv": (
                "event,date\n" + "".join(f"e{i},{d}\n" for i, d in enumerate(_EVENTS))
            ).encode()
        },
        "events.csv lists events with dates written day/month/year. How many events "
        "happened in April 2024?",
        sum(1 for d in _EVENTS if _day_first(d).month == 4),
        "number",
    ),
    "dirty_headers": (
        "evaluation",
        {
            "survey.csv": (
                " Name ,AGE ,  City\n" + "".join(f"{n},{a},{c}\n" for n, a, c in _SURVEY)
            ).encode()
        },
        "What is the mean age of the respondents from Paris in survey.csv?",
        statistics.mean(a for _, a, c in _SURVEY if c == "Paris"),
        "number",
    ),
    "tab_scores": (
        "evaluation",
        {"scores.txt": ("student\tscore\n" + "".join(f"{s}\t{p}\n" for s, p in _SCORES)).encode()},
        "Which student has the highest score in scores.txt? Give the name as a string.",
        max(_SCORES, key=lambda row: row[1])[0],
        "text",
    ),
    "jsonl_errors": (
        "evaluation",
        {"app.log.jsonl": "".join(json.dumps(e) + "\n" for e in _LOG).encode()},
        "app.log.jsonl has one JSON record per line. How many records have level error "
        "(in any letter case)?",
        sum(1 for e in _LOG if e["level"].lower() == "error"),
        "number",
    ),
    "join_two_files": (
        "evaluation",
        {
            "customers.csv": (
                "customer_id,city\n" + "".join(f"{i},{c}\n" for i, c in _CUSTOMERS)
            ).encode(),
            "purchases.csv": (
                "customer_id,amount\n" + "".join(f"{i},{a}\n" for i, a in _CUSTOMER_ORDERS)
            ).encode(),
        },
        "Join purchases.csv with customers.csv and compute the total purchase amount of "
        "customers in Lyon.",
        sum(a for i, a in _CUSTOMER_ORDERS if dict(_CUSTOMERS)[i] == "Lyon"),
        "number",
    ),
    "percent_strings": (
        "evaluation",
        {
            "rates.csv": (
                "product,rate\n" + "".join(f"p{i},{r}\n" for i, r in enumerate(_RATES))
            ).encode()
        },
        "rates.csv has rates written like 12.5%. Compute the mean rate as a percentage "
        "number (12.5% is 12.5).",
        statistics.mean(float(r.rstrip("%")) for r in _RATES),
        "number",
    ),
    "glob_monthly": (
        "evaluation",
        {
            f"data/units_2024_{m}.csv": (
                "item,units\n" + "".join(f"{i},{u}\n" for i, u in rows)
            ).encode()
            for m, rows in _MONTHLY.items()
        },
        "Combine the files data/units_2024_*.csv and compute the total units of nut.",
        sum(u for rows in _MONTHLY.values() for i, u in rows if i == "nut"),
        "number",
    ),
    "bom_lookup": (
        "tuning",
        {"values.csv": ("id,value\n" + "".join(f"{i},{v}\n" for i, v in _BOM)).encode("utf-8-sig")},
        "In values.csv, what is the value for id 3?",
        dict(_BOM)[3],
        "number",
    ),
    "pipe_quoted": (
        "tuning",
        {
            "products.psv": (
                "name|category|price\n"
                + "".join(
                    '"{}"|{}|{}\n'.format(n.replace('"', '""'), c, p) for n, c, p in _PRODUCTS
                )
            ).encode()
        },
        "products.psv is separated by | with quoted names. Sum the price of the products "
        "in the category tools.",
        sum(p for _, c, p in _PRODUCTS if c == "tools"),
        "number",
    ),
    "growth_month": (
        "tuning",
        {"revenue.csv": ("month,revenue\n" + "".join(f"{m},{r}\n" for m, r in _REVENUE)).encode()},
        "From revenue.csv, compute the month-over-month growth and give the month "
        "(as YYYY-MM) with the highest growth.",
        _growth_month(),
        "text",
    ),
    "ledger_parens": (
        "tuning",
        {
            "ledger.csv": (
                "entry,amount\n" + "".join(f'{i},"{a}"\n' for i, a in enumerate(_LEDGER))
            ).encode()
        },
        "ledger.csv writes negative amounts in parentheses, like (120.00). Compute the "
        "balance (the sum of the amounts).",
        sum(_ledger_value(a) for a in _LEDGER),
        "number",
    ),
}
