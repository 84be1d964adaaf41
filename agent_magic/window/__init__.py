"""Making a conversation fit a model's context window, and estimating its size in tokens.

The module moved into this package; the next commit splits it (see its modules).
"""

from __future__ import annotations

from .fit import *  # noqa: F403
