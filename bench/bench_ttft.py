"""Time to first token per turn, with llama.cpp and SmolLM2, as one conversation grows.

    python3 bench/bench_ttft.py [--turns 20] [--n-ctx 2048] [--write]

Starts llama.cpp's server (``scripts/real_models.py`` must have run), and between
``%%agent`` and the server a small pass-through proxy on 127.0.0.1 that timestamps each
streamed request: when it arrived, when the first chunk with reply text came back, when
it ended. Each turn is a cell ``%%agent --mode never --max-turns 1`` in one real
InteractiveShell, so the conversation (and its namespace summary) grows turn by turn the
way a user's does. After each turn the server's log says how many prompt tokens it had
to evaluate (``prompt eval ... tokens``): when the request's prefix is the same as the
last one's, llama.cpp reuses its cache and evaluates only the new tokens, and the first
token comes sooner.

What it shows: whether time to first token grows with every turn, or stays flat once
the context window is full (older turns trimmed in steps that keep the prefix stable).
It prints a table, and with ``--write`` puts it into docs/benchmarks.md under its own
heading (replacing an earlier one).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import http.client
import importlib.util
import io
import json
import os
import re
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
HEADING = "## Time to first token per turn (llama.cpp, SmolLM2)"


def _real_models() -> Any:
    spec = importlib.util.spec_from_file_location("real_models", ROOT / "scripts/real_models.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("real_models", module)
    spec.loader.exec_module(module)
    return module


class Proxy:
    """Forwards to the upstream server; records per request when the first text came."""

    def __init__(self, upstream_port: int) -> None:
        self.records: list[dict[str, Any]] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                self._forward(b"")

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self._forward(self.rfile.read(length))

            def _forward(self, body: bytes) -> None:
                record: dict[str, Any] = {"arrived": time.perf_counter(), "bytes": len(body)}
                if self.command == "POST":
                    # Kept at arrival: the client may be done before this thread is.
                    proxy.records.append(record)
                if body:
                    with contextlib.suppress(ValueError):
                        record["messages"] = len(json.loads(body).get("messages") or ())
                upstream = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=600)
                headers = {"Content-Type": self.headers.get("Content-Type", "application/json")}
                upstream.request(self.command, self.path, body=body or None, headers=headers)
                reply = upstream.getresponse()
                self.send_response(reply.status)
                for name, value in reply.getheaders():
                    if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                        self.send_header(name, value)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                while True:
                    line = reply.readline()
                    if not line:
                        break
                    if "first" not in record and _has_text(line):
                        record["first"] = time.perf_counter()
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
                record["ended"] = time.perf_counter()
                record["status"] = reply.status
                self.wfile.write(b"0\r\n\r\n")
                upstream.close()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _has_text(line: bytes) -> bool:
    """An SSE line whose chunk carries reply text (not the role or the finish chunk)."""
    if not line.startswith(b"data:") or b"[DONE]" in line:
        return False
    try:
        choices = json.loads(line[5:]).get("choices") or [{}]
    except ValueError:
        return False
    delta = choices[0].get("delta") or {}
    return bool(delta.get("content") or delta.get("tool_calls"))


# llama-cpp-python logs each request's prompt ("prompt eval ... N tokens") and, when the
# start of the prompt is the same as the cached one, "K prefix-match hit, remaining R
# prompt tokens to eval": R is what the server really had to evaluate.
PROMPT_EVAL = re.compile(r"prompt eval time =\s*[\d.]+ ms /\s*(\d+) tokens")
PREFIX = re.compile(r"(\d+) prefix-match hit, remaining (\d+) prompt tokens to eval")


def run(turns: int, n_ctx: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    from IPython.core.error import UsageError
    from IPython.core.interactiveshell import InteractiveShell

    rm = _real_models()
    layout = rm.Layout.default()
    why = layout.missing(rm.SMOLLM2)
    if why:
        sys.exit(f"bench_ttft: {why}: run python3 scripts/real_models.py first")
    server = rm.start_server(layout, rm.SMOLLM2, n_ctx=n_ctx)
    proxy = Proxy(int(server.base_url.split(":")[2].split("/")[0]))
    rows: list[dict[str, Any]] = []
    try:
        os.environ["OPENAI_BASE_URL"] = proxy.base_url
        os.environ["OPENAI_API_KEY"] = "none"
        ip = InteractiveShell.instance()
        ip.run_line_magic("load_ext", "agent_magic")
        for setting in (
            f"AgentMagics.model = {server.model!r}",
            "AgentMagics.temperature = 0.0",
            "AgentMagics.max_retries = 0",
            "AgentMagics.timeout = 600.0",
            "AgentMagics.retry_budget = 1200.0",
            f"AgentMagics.recording = {str(server.log) + '.recording.jsonl'!r}",
        ):
            ip.run_line_magic("config", setting)
        ip.run_cell("values = list(range(50))\nlabel = 'turn counter'")
        requests = 0
        for turn in range(1, turns + 1):
            log_before = len(server.log_text())
            task = f"Turn {turn}: in one short sentence, name a colour and a number near {turn}."
            error = ""
            start = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()):
                try:
                    ip.run_cell_magic("agent", "--mode never --max-turns 1", task)
                except UsageError as problem:
                    error = str(problem)
            wall = time.perf_counter() - start
            record = proxy.records[-1] if len(proxy.records) > requests else {}
            requests = len(proxy.records)
            new_log = server.log_text()[log_before:]
            prompts = PROMPT_EVAL.findall(new_log)
            hits = PREFIX.findall(new_log)
            rows.append(
                {
                    "turn": turn,
                    "messages": record.get("messages"),
                    "request_kb": round(record.get("bytes", 0) / 1024, 1),
                    "ttft": (record["first"] - record["arrived"]) if "first" in record else None,
                    # Without a prefix hit the whole prompt is evaluated.
                    "cached": int(hits[-1][0]) if hits else 0,
                    "evaluated": int(hits[-1][1])
                    if hits
                    else (int(prompts[-1]) if prompts else None),
                    "wall": wall,
                    "error": error,
                }
            )
            r = rows[-1]
            r["prompt"] = None if r["evaluated"] is None else r["cached"] + r["evaluated"]
            print(
                f"turn {turn:2}: ttft {_s(r['ttft'])}, prompt {r['prompt']} tokens, "
                f"{r['cached']} from cache, {r['evaluated']} evaluated, "
                f"{r['messages']} messages, {r['request_kb']} KiB, "
                f"cell {wall:.1f} s" + (f"; {error}" if error else ""),
                flush=True,
            )
    finally:
        proxy.close()
        server.stop()
    meta = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "n_ctx": n_ctx,
        "server_start": round(server.started_in, 1),
        "cores": os.cpu_count(),
    }
    return rows, meta


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def table(rows: list[dict[str, Any]], meta: dict[str, Any], commit: str) -> str:
    lines = [
        HEADING,
        "",
        f"`python3 bench/bench_ttft.py --turns {len(rows)} --n-ctx {meta['n_ctx']}` at "
        f"{commit}, {meta['date']}, {meta['cores']} cores (shared with other work; read the",
        "trend, not the absolute figures). One conversation, one `%%agent --mode never",
        "--max-turns 1` cell per turn; time to first token measured by a pass-through proxy",
        "(request in to first reply text out); *prompt tokens*, *from cache* and *evaluated*",
        "are from llama.cpp's log (the prefix it could reuse, and what it had to evaluate).",
        "",
        "| turn | messages sent | request KiB | prompt tokens | from cache | evaluated "
        "| first token | cell |",
        "|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        cell = f"{r['wall']:.1f} s" + (f": {r['error'][:90]}" if r["error"] else "")
        evaluated = "-" if r["evaluated"] is None else str(r["evaluated"])
        prompt = "-" if r["prompt"] is None else str(r["prompt"])
        lines.append(
            f"| {r['turn']} | {r['messages'] or '-'} | {r['request_kb']} | {prompt} | "
            f"{r['cached']} | {evaluated} | {_s(r['ttft'])} | {cell} |"
        )
    return "\n".join(lines) + "\n"


def write(section: str) -> None:
    path = ROOT / "docs" / "benchmarks.md"
    text = path.read_text() if path.exists() else ""
    if HEADING in text:
        before, _, after = text.partition(HEADING)
        rest = after.split("\n## ", 1)
        text = before + section + ("\n## " + rest[1] if len(rest) > 1 else "")
    else:
        text = text.rstrip() + "\n\n" + section
    path.write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--n-ctx", type=int, default=2048)
    parser.add_argument("--write", action="store_true", help="into docs/benchmarks.md")
    args = parser.parse_args(argv)
    # Stopped with SIGTERM, still stop the server (it runs in a session of its own).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    rows, meta = run(args.turns, args.n_ctx)
    import subprocess

    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    section = table(rows, meta, commit)
    print()
    print(section)
    if args.write:
        write(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
