"""How long the text helpers take on one unbroken line of a megabyte.

``python bench/bench_longlines.py`` prints a Markdown table; ``main()`` returns the rows
(dicts) for a benchmark runner. Each helper that sees model replies, step outputs, tasks
or tracebacks runs on 1 MB lines of a few shapes: base64 (a data literal), hex (a digest
dump), one letter repeated, and the worst openers for each helper (a path-like line for
the normaliser, ``sk-`` and ``eyJ`` runs for the redactor, ``\\(`` and ``$a`` for the
reply renderer). The target is well under 100 ms per helper and line.

``--old`` adds the masks ``transcript.normalize`` used before ``text.normalize_volatile``
on 10 KB and 40 KB path-like lines (they were quadratic: about 1 s and 20 s); it is off
by default because of that.
"""

from __future__ import annotations

import base64
import gc
import random
import re
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agent_magic.codeblocks import extract_code_blocks, inert_markdown  # noqa: E402
from agent_magic.secrets import Redactor  # noqa: E402
from agent_magic.text import head_tail, normalize_volatile, strip_ansi  # noqa: E402

SIZE = 1_000_000
RUNS = 3
TARGET_MS = 100.0


def lines(size: int = SIZE) -> dict[str, str]:
    rng = random.Random(0)
    raw = rng.randbytes(size)
    return {
        "base64": base64.b64encode(raw).decode()[:size],
        "hex": raw.hex()[:size],
        "letters": "x" * size,
        "path-like": ("a/b" * (size // 3 + 1))[:size],
        "sk- run": ("sk-" * (size // 3 + 1))[:size],
        "eyJ run": ("eyJ" * (size // 3 + 1))[:size],
        "\\( run": ("\\(" * (size // 2 + 1))[:size],
        "$a run": ("$a" * (size // 2 + 1))[:size],
        "ANSI": ("\x1b[1;31mred\x1b[0m" * (size // 14 + 1))[:size],
    }


def helpers() -> dict[str, Callable[[str], object]]:
    redactor = Redactor.build(
        env={"MY_SERVICE_TOKEN": "tok-0123456789abcdef"},
        namespace={"db_password": "hunter2hunter2"},
        values=["local-api-key-1234"],
    )
    return {
        "normalize_volatile": normalize_volatile,
        "Redactor.redact": redactor.redact,
        "extract_code_blocks": extract_code_blocks,
        "inert_markdown": inert_markdown,
        "strip_ansi": strip_ansi,
        "head_tail": lambda text: head_tail(text, 8000),
    }


def _ms(function: Callable[[str], object], text: str, runs: int) -> float:
    times = []
    gc.collect()
    for _ in range(runs):
        started = time.perf_counter()
        function(text)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main(size: int = SIZE, runs: int = RUNS, *, old: bool = False) -> list[dict[str, object]]:
    """One row per (helper, line shape): the median ms of ``runs`` calls on ``size`` chars."""
    rows: list[dict[str, object]] = []
    for name, function in helpers().items():
        for shape, text in lines(size).items():
            rows.append(
                {"helper": name, "line": shape, "chars": len(text), "ms": _ms(function, text, runs)}
            )
    if old:
        for size_kb in (10, 40):
            text = ("a/b" * (size_kb * 1000 // 3 + 1))[: size_kb * 1000]
            rows.append(
                {
                    "helper": "old transcript.normalize",
                    "line": "path-like",
                    "chars": len(text),
                    "ms": _ms(_old_normalize, text, 1),
                }
            )
            rows.append(
                {
                    "helper": "normalize_volatile",
                    "line": "path-like",
                    "chars": len(text),
                    "ms": _ms(normalize_volatile, text, runs),
                }
            )
    return rows


# The masks as transcript.py wrote them before text.normalize_volatile (for --old).
_OLD_VOLATILE = (
    (re.compile(r"Cell In\[\d+\]"), "Cell In[_]"),
    (re.compile(r"\bat 0x[0-9a-fA-F]{4,}"), "at 0x_"),
    (re.compile(r"/tmp/ipykernel_\d+/\d+\.py"), "<ipykernel cell>"),
    (re.compile(r"""[^\s"'(<]*[/\\](?:site|dist)-packages[/\\]"""), "<packages>/"),
    (re.compile(r"""[^\s"'(<]*[/\\]lib[/\\]python3\.\d+[/\\]"""), "<python>/"),
)


def _old_normalize(text: str) -> str:
    for pattern, replacement in _OLD_VOLATILE:
        text = pattern.sub(replacement, text)
    return text


def markdown(rows: list[dict[str, object]]) -> str:
    out = ["| helper | line | chars | ms |", "|---|---|---:|---:|"]
    for row in rows:
        out.append(f"| `{row['helper']}` | {row['line']} | {row['chars']:,} | {row['ms']:.1f} |")
    worst = max((row for row in rows if "old" not in str(row["helper"])), key=lambda r: r["ms"])
    out.append("")
    out.append(
        f"Slowest: `{worst['helper']}` on {worst['line']}, {worst['ms']:.1f} ms "
        f"(target: under {TARGET_MS:.0f} ms per helper and line)."
    )
    return "\n".join(out)


if __name__ == "__main__":
    print(markdown(main(old="--old" in sys.argv)))
