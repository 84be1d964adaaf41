"""A local server that speaks the OpenAI chat-completions wire protocol, for tests.

The module moved into this package; the next commit splits it (see its modules).
"""

from __future__ import annotations

from .server import *  # noqa: F403
from .server import DEFAULT_MODELS, Responder, _Handler, _HTTPServer  # noqa: F401
