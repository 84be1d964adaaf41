"""What hiding pieces of known secrets costs on a step's output.

``python bench/bench_secret_pieces.py [OLD_CHECKOUT]`` redacts 1 MB of step output
(printed rows, a few keys and their halves in it) with a redactor knowing a handful of
secrets, and prints the median ms with pieces hidden (this checkout) and, given the path
of a checkout from before pieces were hidden (e.g. ``git worktree add /tmp/old main~1``),
of its redactor on the same text, and the ratio. ``main()`` returns the rows.
"""

from __future__ import annotations

import gc
import importlib
import random
import statistics
import string
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
SIZE = 1_000_000
RUNS = 5

KEY = "k3y-" + "".join(random.Random(1).choices(string.ascii_letters + string.digits, k=28))
ENV = {
    "MY_SERVICE_TOKEN": "tok-0123456789abcdefXYZ",
    "DB_PASSWORD": "p" + "".join(random.Random(2).choices(string.ascii_letters, k=63)),
}
NAMESPACE = {"db_password": "hunter2hunter2hunter2", "api_token": "t0k3n-" + "x1y2" * 8}


def output(size: int = SIZE) -> str:
    """Rows like a DataFrame print, with a key's halves and a cut-off password here and
    there (the pieces are found; the rest is ordinary output)."""
    rng = random.Random(0)
    rows = []
    total = 0
    while total < size:
        row = f"{rng.randrange(10**6):>8} {rng.random():.6f} {'abcdefghij'[rng.randrange(10)] * 12}"
        if rng.random() < 0.001:
            row += f" {KEY[:16]}\n{KEY[16:]} {ENV['DB_PASSWORD'][:47]}..."
        rows.append(row)
        total += len(row) + 1
    return "\n".join(rows)[:size]


def _redactor(root: Path):  # type: ignore[no-untyped-def]
    for name in [m for m in sys.modules if m == "agent_magic" or m.startswith("agent_magic.")]:
        del sys.modules[name]
    sys.path.insert(0, str(root))
    try:
        secrets = importlib.import_module("agent_magic.secrets")
        return secrets.Redactor.build(env=ENV, namespace=NAMESPACE, values=[KEY])
    finally:
        sys.path.remove(str(root))


def _ms(redact, text: str, runs: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    gc.collect()
    for _ in range(runs):
        started = time.perf_counter()
        redact(text)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main(old: str | None = None, size: int = SIZE, runs: int = RUNS) -> list[dict[str, object]]:
    text = output(size)
    rows: list[dict[str, object]] = []
    new = _redactor(HERE)
    rows.append({"redactor": "pieces hidden", "ms": _ms(new.redact, text, runs)})
    assert KEY[:16] not in new.redact(text) and KEY[16:] not in new.redact(text)
    if old:
        before = _redactor(Path(old))
        rows.append(
            {"redactor": "before (whole values only)", "ms": _ms(before.redact, text, runs)}
        )
        rows.append({"redactor": "ratio", "ms": rows[0]["ms"] / rows[1]["ms"]})  # type: ignore[operator]
    return rows


if __name__ == "__main__":
    print(f"1 MB of step output ({SIZE:,} chars), median of {RUNS} runs\n")
    print("| redactor | ms |\n|---|---:|")
    for row in main(sys.argv[1] if len(sys.argv) > 1 else None):
        print(f"| {row['redactor']} | {row['ms']:.1f} |")
