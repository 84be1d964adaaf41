"""What hiding pieces of known secrets costs on a step's output.

``python bench/bench_secret_pieces.py [OLD_CHECKOUT]`` redacts 1 MB of step output (table
and log lines, or a base64 dump, with a key's halves and a cut-off password in it) with
a redactor knowing a handful of secrets, and prints the median ms with pieces hidden
(this checkout) and, given the path of a checkout from before pieces were hidden (e.g.
``git worktree add --detach /tmp/old <commit>``), of its redactor on the same text, and
the ratio. ``main()`` returns the rows.
"""

from __future__ import annotations

import base64
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


def output(size: int = SIZE, shape: str = "table") -> str:
    """1 MB of step output with a key's halves and a cut-off password here and there.

    ``table``: what steps mostly print (a DataFrame, log lines: words, numbers, dates);
    ``base64``: a data dump, the worst case (every character could be part of a key).
    """
    rng = random.Random(0)
    rows = []
    total = 0
    words = ["alpha", "beta", "gamma", "delta", "user_17", "ok", "failed", "NaN", "Paris"]
    while total < size:
        if shape == "base64":
            row = base64.b64encode(rng.randbytes(57)).decode()
        else:
            row = (
                f"{rng.randrange(10**5):>6}  {rng.random():.4f}  {rng.choice(words):<8}"
                f"  2024-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}  "
                f"{rng.choice(words)} {rng.randrange(1000)}"
            )
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
    rows: list[dict[str, object]] = []
    new = _redactor(HERE)
    before = _redactor(Path(old)) if old else None
    for shape in ("table", "base64"):
        text = output(size, shape)
        assert KEY[:16] not in new.redact(text) and KEY[16:] not in new.redact(text)
        row: dict[str, object] = {"output": shape, "pieces hidden": _ms(new.redact, text, runs)}
        if before is not None:
            row["before"] = _ms(before.redact, text, runs)
            row["ratio"] = row["pieces hidden"] / row["before"]  # type: ignore[operator]
        rows.append(row)
    return rows


if __name__ == "__main__":
    print(f"ms to redact 1 MB of step output ({SIZE:,} chars), median of {RUNS} runs\n")
    print("| output | pieces hidden | before (whole values only) | ratio |\n|---|---:|---:|---:|")
    for row in main(sys.argv[1] if len(sys.argv) > 1 else None):
        before = f"{row['before']:.1f} | {row['ratio']:.1f}" if "before" in row else "- | -"
        print(f"| {row['output']} | {row['pieces hidden']:.1f} | {before} |")
