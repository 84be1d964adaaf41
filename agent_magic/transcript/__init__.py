"""Recording conversations, answering from the recording, and reading it back.

A package; each module says what lives in it and what does not:

* :mod:`.records` - the record types (frozen dataclasses), the format version, reading
  a file; :mod:`.forms` - the JSON forms of their parts;
* :mod:`.keys` - request keys (what makes two requests the same) and their masking;
* :mod:`.store` - the JSON Lines file and its index; where it lives; replay drift;
* :mod:`.redact` - what is never written or sent (the cell's :class:`Redactor`);
* :mod:`.recorder` - events in, records out (:class:`Recorder`, :func:`record_events`);
* :mod:`.replay` - the seeded cache and the replay, as chat clients;
* :mod:`.log` - ``%agent log``.

Not here: IPython, widgets, openai (the package only sees events and records), and
nbformat (see :mod:`agent_magic.export`). ``from agent_magic.transcript import ...`` of
every name below keeps working.
"""

from __future__ import annotations

from ..text import canonical
from .forms import decision_from_record, error_from_record, reply_from_record
from .keys import Keyer, normalize
from .log import log_entry, render_log
from .recorder import Recorder, record_events
from .records import (
    FORMAT,
    CodeRecord,
    DecisionRecord,
    FinishedRecord,
    Record,
    ReplyRecord,
    RequestRecord,
    TaskRecord,
    parse_record,
    parse_records,
    read_records,
)
from .redact import RedactingChat, Redactor, cell_redactor
from .replay import CachedChat, Replay
from .store import (
    RECORDING_NAME,
    REPLAY_ENV,
    Recorded,
    Store,
    open_store,
    recording_path,
    replay_from_env,
    stores,
)

__all__ = [
    "FORMAT",
    "RECORDING_NAME",
    "REPLAY_ENV",
    "CachedChat",
    "CodeRecord",
    "DecisionRecord",
    "FinishedRecord",
    "Keyer",
    "Record",
    "Recorded",
    "Recorder",
    "RedactingChat",
    "Redactor",
    "Replay",
    "ReplyRecord",
    "RequestRecord",
    "TaskRecord",
    "Store",
    "stores",
    "canonical",
    "cell_redactor",
    "decision_from_record",
    "error_from_record",
    "log_entry",
    "normalize",
    "open_store",
    "parse_record",
    "parse_records",
    "read_records",
    "record_events",
    "recording_path",
    "render_log",
    "replay_from_env",
    "reply_from_record",
]
