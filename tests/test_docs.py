"""The docs point at tests that exist: every ``file.py::test_name`` in docs/reliability.md
names a test function in tests/ (a name ending in ``*`` matches a prefix)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_test_the_fault_matrix_names_exists() -> None:
    text = (ROOT / "docs" / "reliability.md").read_text()
    refs = re.findall(r"`((?:real/)?test_\w+\.py)::(test_\w+\*?)`", text)
    assert len(refs) > 40
    missing = []
    for file, name in refs:
        source = (ROOT / "tests" / file).read_text()
        defined = re.findall(r"^(?:async )?def (test_\w+)", source, re.M)
        if name.endswith("*"):
            found = any(d.startswith(name[:-1]) for d in defined)
        else:
            found = name in defined
        if not found:
            missing.append(f"{file}::{name}")
    assert missing == []
