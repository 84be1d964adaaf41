"""``python -m agent_magic.testing --script replies.json``: the server for another process.

:func:`main` serves a JSON reply script, prints the base URL on one line and serves
until ``--max-seconds`` pass, SIGTERM / Ctrl-C, or (``--parent-pid``) the process that
started it ends. Not here: the server itself
(:mod:`.server`), reading the script (:func:`~.scripting.replies_from_json`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import threading
from collections.abc import Sequence
from pathlib import Path

from .lifeline import tie_to
from .scripting import replies_from_json
from .server import FakeOpenAIServer


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m agent_magic.testing",
        description="Serve scripted chat replies on a local OpenAI-compatible endpoint. "
        "Prints the base_url on one line, then serves until --max-seconds pass or it is "
        "sent SIGTERM / Ctrl-C.",
    )
    parser.add_argument(
        "--script",
        type=Path,
        required=True,
        help='JSON list of replies: "text", {"content": ..., "tool_calls": [...]} or '
        '{"status": 429, "retry_after": 1}',
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 (default) picks a free port")
    parser.add_argument("--api-key", default=None, help="answer 401 to any other key")
    parser.add_argument(
        "--responses-only",
        action="append",
        default=[],
        metavar="MODEL",
        help="answer chat completions for MODEL with OpenAI's 404 'only supported in "
        "v1/responses' (repeatable); /v1/responses answers it from the script",
    )
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=600.0,
        help="exit after this long, so a forgotten server never outlives its use (default 600)",
    )
    parser.add_argument(
        "--parent-pid",
        type=int,
        default=None,
        metavar="PID",
        help="also exit when the process PID, the one that starts this server, ends (even "
        "killed by SIGKILL, when it cannot stop its server): give your own PID",
    )
    args = parser.parse_args(argv)
    if args.parent_pid is not None and args.parent_pid != os.getppid():
        parser.error(f"--parent-pid {args.parent_pid} is not the PID that started this server")
    try:
        items = replies_from_json(json.loads(args.script.read_text()))
    except (OSError, ValueError, TypeError) as exc:
        parser.error(f"--script {args.script}: {exc}")

    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    if args.parent_pid is not None:
        tie_to(args.parent_pid)
    server = FakeOpenAIServer(
        api_key=args.api_key, host=args.host, port=args.port, responses_only=args.responses_only
    )
    with server:
        server.enqueue(*items)
        print(server.base_url, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            done.wait(args.max_seconds)
    return 0
