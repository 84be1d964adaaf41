"""The conversation loop: ask the model, propose its code, get a decision, run, observe.

This module knows nothing about Jupyter, widgets or HTTP. It talks to three
seams, all Protocols defined here:

* a :class:`ChatClient` that turns a message list into a streamed reply,
* an :class:`Executor` that runs one code block and returns a :class:`StepOutcome`,
* whoever drives the loop, who answers each :class:`ReviewRequested` with a
  :class:`Decision` (a widget, ``input()``, a recording, a test script).

:meth:`Conversation.run` is a generator of events. Most events are
notifications; a :class:`ReviewRequested` event expects a :class:`Decision` to
be sent back. :func:`drive` and :func:`adrive` run the generator with a
synchronous or asynchronous handler (one driver, one interrupt contract: see
:func:`_drive`), so the same loop serves a terminal, a notebook widget waiting
with ``await``, and a headless replay.

A :class:`Conversation` is one cell's work; the :class:`History` it appends to
(messages, replies, steps) outlives it. Also here: the events, the tool schemas,
:func:`edit_diff`, and the loop's rules for what may run unseen:

* a reply that was cut off (``ChatReply.cut_off``) never has its code run unasked: in
  mode never/terminate the model is told and asked for a shorter step;
* a Python step that would change a protected name (:mod:`agent_magic.guard`) is always
  asked, and refused where nobody can be asked (``attended=False``);
* a reply that signs off and holds code has that code proposed as a step; if it runs
  cleanly, the conversation ends after it.

A refusal is an automatic ``skip`` whose ``Decision.text`` says why (what the model is
told), so a replay, which answers every review from the recording, repeats it exactly.
Each request is fitted to the context window when one is known
(:func:`agent_magic.window.fit` over the records' kinds); a server's context-length error
trims harder and asks once more. Not here: building any of it for a kernel
(:mod:`agent_magic.session`), the scripted client for tests
(:class:`agent_magic.testing.ScriptedChat`).

What lives where (this file only re-exports the public names, so callers import from
``agent_magic.conversation`` and need not know; a private helper is imported from its
own module):

* :mod:`.seams`: ``ChatClient`` (``ChatBase`` its defaults, ``ChatWrapper`` a client
  around another), ``ChatReply``, ``Usage``, ``ToolCallRequest``, ``ChatError``,
  ``ContextWindowExceeded``, ``Executor``, ``StepOutcome``, ``StepError``;
* :mod:`.events`: ``Proposal``, ``Decision``, the events, ``Event``, ``Steps``;
* :mod:`.history`: ``History``, ``Message`` (one record per message), ``cut_off_why``;
* :mod:`.rules`: the system prompt, modes, tool schemas, ``review_warnings``, the step
  reports, ``edit_diff``;
* :mod:`.lookback`: ``CellSteps``, what one cell remembers of its steps (repeats, the
  nudge);
* :mod:`.unstick`: ``repeat_help``, what a refused repeat of failing code tells the model
  (the error's line, what to try, the start of the data it reads);
* :mod:`.loop`: ``Conversation``;
* :mod:`.drive`: ``drive``, ``adrive``, ``Handler``, ``EventHandler`` (a method per event).
"""

from __future__ import annotations

from .drive import AsyncHandler, EventHandler, Handler, adrive, drive
from .events import (
    BudgetAsked,
    CodeRan,
    Decided,
    Decision,
    Event,
    Finished,
    Proposal,
    ReplyDelta,
    ReplyReceived,
    RequestSent,
    ReviewRequested,
    Steps,
    TaskStarted,
)
from .history import (
    CUT_OFF_WHY,
    History,
    Message,
    SentMessage,
    cut_off_why,
)
from .loop import Conversation
from .rules import (
    DEFAULT_SYSTEM_PROMPT,
    MODES,
    RUN_PYTHON_TOOL,
    RUN_SHELL_TOOL,
    Mode,
    edit_diff,
    review_warnings,
    with_code,
)
from .seams import (
    BudgetSpent,
    ChatBase,
    ChatClient,
    ChatError,
    ChatReply,
    ChatStopped,
    ChatWrapper,
    ContextWindowExceeded,
    Executor,
    StepError,
    StepOutcome,
    ThinkingDelta,
    ToolCallRequest,
    Usage,
)

__all__ = [
    "CUT_OFF_WHY",
    "DEFAULT_SYSTEM_PROMPT",
    "MODES",
    "RUN_PYTHON_TOOL",
    "RUN_SHELL_TOOL",
    "AsyncHandler",
    "ChatBase",
    "ChatClient",
    "ChatWrapper",
    "ChatError",
    "BudgetAsked",
    "BudgetSpent",
    "ChatStopped",
    "ChatReply",
    "ThinkingDelta",
    "CodeRan",
    "ContextWindowExceeded",
    "Conversation",
    "Decided",
    "Decision",
    "Event",
    "EventHandler",
    "Executor",
    "Finished",
    "Handler",
    "History",
    "Message",
    "Mode",
    "Proposal",
    "ReplyDelta",
    "ReplyReceived",
    "RequestSent",
    "SentMessage",
    "ReviewRequested",
    "StepError",
    "StepOutcome",
    "Steps",
    "TaskStarted",
    "ToolCallRequest",
    "Usage",
    "adrive",
    "cut_off_why",
    "drive",
    "edit_diff",
    "review_warnings",
    "with_code",
]
