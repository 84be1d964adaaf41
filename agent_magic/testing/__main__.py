"""Runs ``python -m agent_magic.testing --script ...``."""

from __future__ import annotations

from .server import main

raise SystemExit(main())
