"""Which of a notebook task's facts reached the code the model wrote, read from recordings.

    python -m bench.effectiveness.facts DIR [DIR ...]

Each DIR holds ``<task>.recording.jsonl`` files of the notebook tasks (``run.py
--transcripts DIR``). A task is solved or not; between the two, this says whether the
model used what the notebook said (the definition, the unit, the rows to leave out) or
what the earlier code did (the separator, the filter, the threshold): a fact counts as
used when a pattern of it (``NOTEBOOK_TASKS[id]["facts"]``) matches any fenced block of
any reply, run or not (comments left out). A pattern can match code that only copies an
earlier cell, and miss a right use written another way: read it beside the transcripts.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from agent_magic.codeblocks import extract_code_blocks
from bench.effectiveness.notebook_tasks import NOTEBOOK_TASKS


def written_code(path: Path) -> str:
    """Every fenced block of every reply in the recording at ``path``."""
    blocks = []
    for line in path.read_text().splitlines():
        record = json.loads(line)
        if record.get("event") == "reply":
            blocks += [b.code for b in extract_code_blocks(record.get("content") or "")]
    # Comments left out: a comment that repeats the notes is not a use of them.
    return re.sub(r"#[^\n]*", "", "\n".join(blocks))


def facts_used(task_id: str, code: str) -> dict[str, bool]:
    """Each fact of the task: whether ``code`` uses it."""
    facts = NOTEBOOK_TASKS[task_id]["facts"]
    return {name: bool(re.search(pattern, code)) for name, pattern in facts.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dirs", nargs="+", type=Path)
    args = parser.parse_args(argv)
    for folder in args.dirs:
        used = total = 0
        print(f"{folder}:")
        for task_id in NOTEBOOK_TASKS:
            path = folder / f"{task_id}.recording.jsonl"
            if not path.exists():
                continue
            seen = facts_used(task_id, written_code(path))
            used += sum(seen.values())
            total += len(seen)
            marks = ", ".join(f"{name}: {'yes' if ok else 'no'}" for name, ok in seen.items())
            print(f"  {task_id}: {marks}")
        print(f"  facts used: {used} of {total}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
