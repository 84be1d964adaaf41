"""Runs :func:`agent_magic.testing.cli.main`: ``python -m agent_magic.testing --script ...``.

Nothing else lives here; the CLI's options are in :mod:`.cli`.
"""

from __future__ import annotations

from .cli import main

raise SystemExit(main())
