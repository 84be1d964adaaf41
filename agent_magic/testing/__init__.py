"""A local server that speaks the OpenAI chat-completions (and Responses) wire protocol,
for tests.

What lives here: ``FakeOpenAIServer`` (real HTTP on 127.0.0.1, an ephemeral port, a
daemon thread), the script it answers from (``Reply``, ``ToolCall``, ``Failure``), the
``RecordedRequest`` log, a small CLI (``python -m agent_magic.testing --script
replies.json``) for driving a notebook or another process, and ``ScriptedChat``, the
loop's chat seam faked without HTTP.

It is stdlib only, so any test can use it without pulling in a client library, and it
knows nothing about the magic or the conversation loop: it only serves the wire. The
pytest fixtures (``openai_server``, ``openai_env``) live in ``agent_magic.pytest_plugin``.

    with FakeOpenAIServer() as server:
        server.enqueue("Hello!", Reply(tool_calls=[ToolCall("run", {"code": "1+1"})]))
        client = openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0)
        ...
        assert server.requests[-1].messages[-1]["content"] == "hi"

The package's modules, each saying what lives in it and what does not:

* :mod:`.scripting` - :class:`Reply`, :class:`ToolCall`, :class:`Failure`, reading a script;
* :mod:`.server` - :class:`FakeOpenAIServer`: lifecycle, queue, log, refusals;
* :mod:`.handler` - the HTTP handler: routing and writing JSON or SSE;
* :mod:`.chat_wire` - :class:`RecordedRequest` and the answer's JSON and stream chunks;
* :mod:`.responses_wire` - the Responses API's answer: output items, events, the 404 on chat;
* :mod:`.chat` - :class:`ScriptedChat`, :class:`ScriptedCall`;
* :mod:`.cli` (and ``__main__``) - ``python -m agent_magic.testing``.

``from agent_magic.testing import ...`` of every name below keeps working; the HTTP
handler (tests and the bench wrap its methods) is ``agent_magic.testing.handler.Handler``.
"""

from __future__ import annotations

from .chat import ScriptedCall, ScriptedChat
from .chat_wire import RecordedRequest
from .cli import main
from .handler import DEFAULT_MODELS
from .scripting import Failure, Reply, ReplyItem, ToolCall, replies_from_json
from .server import NO_REPLY_LEFT, FakeOpenAIServer, Responder

__all__ = [
    "DEFAULT_MODELS",
    "NO_REPLY_LEFT",
    "Failure",
    "FakeOpenAIServer",
    "RecordedRequest",
    "Reply",
    "ReplyItem",
    "Responder",
    "ScriptedCall",
    "ScriptedChat",
    "ToolCall",
    "main",
    "replies_from_json",
]
