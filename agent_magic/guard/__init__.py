"""Which top-level names a step would change, and putting them back afterwards.

The module moved into this package; the next commit splits it (see its modules).
"""

from __future__ import annotations

from .touches import *  # noqa: F403
