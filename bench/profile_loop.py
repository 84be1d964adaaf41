"""Where a step's time goes: ``python bench/profile_loop.py [--stream] [--top N]``.

Runs the 20-step conversation of ``run.py`` (mode never, local server) a few times to
warm up, then under cProfile, and prints the per-step wall time and the functions with
the most cumulative time. The request itself runs in a worker thread, which cProfile does
not follow: ``--request`` profiles ``OpenAIChat``'s request on the main thread instead.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run  # noqa: E402

from agent_magic import llm  # noqa: E402
from agent_magic.testing import FakeOpenAIServer  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stream", action="store_true", help="streamed replies")
    parser.add_argument("--request", action="store_true", help="profile one request's work")
    parser.add_argument("--top", type=int, default=40, help="rows to print")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    profile = cProfile.Profile()
    with FakeOpenAIServer() as server, run.model_env(server):
        if args.request:
            messages = run._messages()
            for i in range(run.STEPS):
                messages += [
                    {"role": "assistant", "content": run.reply(i)},
                    {"role": "user", "content": f"stdout:\n{i * 2}"},
                ]
            server.enqueue(*["ok"] * (args.runs * 100 + 20))
            endpoint = llm.Endpoint("gpt-4o-mini", "sk-test-bench", server.base_url)
            chat = llm.OpenAIChat([endpoint], stream=args.stream, max_retries=0)
            client = chat._client(0, endpoint)
            for _ in range(20):
                list(chat._request(client, endpoint, messages, None))
            start = time.perf_counter()
            profile.enable()
            for _ in range(args.runs * 100):
                list(chat._request(client, endpoint, messages, None))
            profile.disable()
            each = (time.perf_counter() - start) * 1000 / (args.runs * 100)
            print(f"{each:.3f} ms per request (profiled)")
        else:
            shell = run._shell()
            magics = shell.magics_manager.registry["AgentMagics"]
            magics.recording = str(Path(run.tempfile.mkdtemp()) / "rec.jsonl")
            magics.max_retries = 0
            for _ in range(3):
                server.enqueue(*run.script(run.STEPS))
                run.agent_cell(server, shell, run.STEPS, args.stream)
            start = time.perf_counter()
            for _ in range(args.runs):
                server.enqueue(*run.script(run.STEPS))
                profile.enable()
                run.agent_cell(server, shell, run.STEPS, args.stream)
                profile.disable()
            each = (time.perf_counter() - start) * 1000 / (args.runs * (run.STEPS + 1))
            print(f"{each:.3f} ms per step (profiled, server included)")
    pstats.Stats(profile).sort_stats("cumulative").print_stats(args.top)


if __name__ == "__main__":
    main()
