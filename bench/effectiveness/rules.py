"""How often each of the loop's unattended rules fired in a run, read from recordings.

    python -m bench.effectiveness.rules DIR [DIR ...]

Each DIR holds ``<task>.recording.jsonl`` files (``run.py --transcripts DIR`` keeps them
beside the transcripts). Per task, and in total: replies, fenced blocks the model wrote,
blocks not proposed as steps because they quote output (data fences, a literal, the last
output again, a block introduced as output) or are the sign-off alone, steps whose code
signs off by printing the marker, nudges (an automatic answer to a reply without code),
and steps not run because the same code had already run (failed / cleanly). The figures
come from the recorded replies and decisions, not from the loop's own counters.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

from agent_magic.codeblocks import CodeBlock, extract_code_blocks, prints_marker

FIELDS = (
    "replies",
    "blocks written",
    "quotes not run",
    "print-marker sign-offs",
    "nudges",
    "repeats refused (failed)",
    "repeats refused (clean)",
)


def count(path: Path) -> Counter[str]:
    """The rule counts of one recording."""
    seen: Counter[str] = Counter()
    written = 0
    for line in path.read_text().splitlines():
        record = json.loads(line)
        event = record.get("event")
        if event == "reply" and not record.get("tool_calls"):
            seen["replies"] += 1
            written = len(extract_code_blocks(record.get("content") or ""))
            seen["blocks written"] += written
        elif event == "decision":
            proposed = record.get("proposed") or []
            seen["quotes not run"] += max(0, written - len(proposed))
            blocks = [CodeBlock(b["language"], b["code"]) for b in proposed]
            if proposed and prints_marker(blocks, "TERMINATE"):
                seen["print-marker sign-offs"] += 1
            text = record.get("text") or ""
            if record.get("automatic") and record.get("action") == "feedback":
                seen["nudges"] += 1
            elif record.get("action") == "skip" and "it is the same code that failed" in text:
                seen["repeats refused (failed)"] += 1
            elif record.get("action") == "skip" and "it is the same code that ran" in text:
                seen["repeats refused (clean)"] += 1
            written = 0
    return seen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dirs", nargs="+", type=Path)
    args = parser.parse_args(argv)
    total: Counter[str] = Counter()
    print("| task | " + " | ".join(FIELDS) + " |")
    print("|---|" + "---:|" * len(FIELDS))
    for folder in args.dirs:
        for path in sorted(folder.glob("*.recording.jsonl")):
            seen = count(path)
            total.update(seen)
            task = path.name.removesuffix(".recording.jsonl")
            print(f"| {task} | " + " | ".join(str(seen[f]) for f in FIELDS) + " |")
    print("| **all** | " + " | ".join(f"**{total[f]}**" for f in FIELDS) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
