"""Making a conversation fit a model's context window, and estimating its size in tokens.

Here: :func:`estimate_tokens` (a cheap, conservative token count for text, one message
or a request) and :func:`fit` (the messages to send so that the request leaves room for
the reply), with :class:`Fitted`, its result. Pure functions over chat-completions
message dicts: no IPython, no openai, no tokenizer. What is kept between calls (the
estimate's and the cuts' caches, the last few replays ``fit`` resumes) changes no
result, only the time: a fit of a history one step longer costs only that step.

Not here: where the window comes from (the endpoint), what to do when a server still
says the request is too long (the loop trims harder and retries), and the history
itself: the loop keeps every message and a parallel list of :data:`Kind` labels, and
calls :func:`fit` before each request. ``fit`` never changes what it is given.

The package's modules, each saying what lives in it and what does not:

* :mod:`.estimate` - :func:`estimate_tokens`, :func:`tools_tokens`, the overheads;
* :mod:`.cut` - cutting text and messages to a token count; :data:`NAMESPACE_HEADER`;
* :mod:`.recap` - the message that stands for folded turns;
* :mod:`.fit` - :func:`fit`, :class:`Fitted`, :data:`KINDS`, and how it trims.

``from agent_magic.window import ...`` of every name below keeps working.
"""

from __future__ import annotations

from .cut import NAMESPACE_HEADER
from .estimate import (
    IMAGE_TOKENS,
    MESSAGE_OVERHEAD,
    REQUEST_OVERHEAD,
    TOOL_CALL_OVERHEAD,
    estimate_tokens,
    tools_tokens,
)
from .fit import KINDS, LOW_WATER, Fitted, Kind, fit

__all__ = [
    "IMAGE_TOKENS",
    "KINDS",
    "LOW_WATER",
    "MESSAGE_OVERHEAD",
    "NAMESPACE_HEADER",
    "REQUEST_OVERHEAD",
    "TOOL_CALL_OVERHEAD",
    "Fitted",
    "Kind",
    "estimate_tokens",
    "fit",
    "tools_tokens",
]
