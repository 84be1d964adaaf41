"""One task through ``%%agent --mode never --new`` in a fresh IPython shell; JSON out.

A notebook task (:mod:`bench.effectiveness.notebook_tasks`) first runs its earlier code
cells in the same shell (into the input history, as a notebook's cells are) and sets
``JPY_SESSION_NAME`` to its saved notebook, as Jupyter Server does.

Run by :mod:`bench.effectiveness.run` as a subprocess per task, so every task starts from
a fresh ``InteractiveShell`` and a crash or a hang costs one task, not the run::

    python -m bench.effectiveness.agent_magic_worker --task sum_1_100 \\
        --base-url http://127.0.0.1:8090/v1 --model qwen --out result.json

Only the public surface is used: ``%load_ext``, ``%config AgentMagics.*``, the cell
magic, and afterwards the namespace (``answer``) and the conversation's replies (steps
and usage). Where the server gave no usage, tokens are estimated at 4 characters a
token and marked as estimates.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import tempfile
import time
from typing import Any

from bench.effectiveness.tasks import BY_ID, MISSING, plain


def _chars(message: dict[str, Any]) -> int:
    content = message.get("content") or ""
    if isinstance(content, list):
        content = " ".join(part.get("text", "") for part in content)
    calls = json.dumps(message.get("tool_calls") or "")
    return len(content) + len(calls) + 16  # a few tokens of chat template per message


def _tokens(conversation: Any) -> tuple[list[dict[str, Any]], bool]:
    """Per model call: prompt/completion tokens, and whether any are estimates."""
    replies = list(conversation.replies) if conversation else []
    messages = list(conversation.messages) if conversation else []
    # The i-th assistant message is the i-th reply; what came before it was its prompt.
    assistant_at = [i for i, m in enumerate(messages) if m["role"] == "assistant"]
    calls, estimated = [], False
    for n, reply in enumerate(replies):
        usage = reply.usage
        marked = bool(getattr(usage, "estimated", False))
        if usage is not None and (usage.prompt_tokens or usage.completion_tokens):
            prompt, completion = usage.prompt_tokens, usage.completion_tokens
        else:
            upto = assistant_at[n] if n < len(assistant_at) else len(messages)
            prompt = sum(_chars(m) for m in messages[:upto]) // 4
            completion = max(1, len(reply.content or "") // 4)
            marked = True
        estimated = estimated or marked
        calls.append({"prompt": prompt, "completion": completion, "estimated": marked})
    return calls, estimated


def run_task(
    task_id: str,
    *,
    base_url: str,
    model: str,
    max_turns: int,
    stream: bool,
    recording: str,
    temperature: float | None = None,
    context_window: int | None = None,
    context_sources: list[str] | None = None,
) -> dict:
    from IPython.core.error import UsageError
    from IPython.core.interactiveshell import InteractiveShell

    task = BY_ID[task_id]
    # The task's own folder, with its files: the kernel's working directory, as a
    # notebook's folder is in Lab.
    work = tempfile.mkdtemp(prefix=f"agent_magic-{task_id}-")
    task.write_files(work)
    # A notebook task: ``work`` is the server's root and the kernel starts in the
    # notebook's folder, whose path from the root Jupyter Server puts in
    # JPY_SESSION_NAME. Any other task has no notebook, whatever started the runner.
    os.environ.pop("JPY_SESSION_NAME", None)
    if task.notebook:
        os.environ["JPY_SESSION_NAME"] = task.notebook
    os.chdir(os.path.join(work, os.path.dirname(task.notebook)))
    os.environ["OPENAI_BASE_URL"] = base_url
    os.environ.setdefault("OPENAI_API_KEY", "none")
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "agent_magic")
    ip.run_line_magic("config", f"AgentMagics.model = {model!r}")
    # A small model on a busy 2-core machine can take minutes a turn: the bench measures
    # the loop, so neither the request timeout nor the retry budget may cut it short.
    ip.run_line_magic("config", "AgentMagics.timeout = 1200.0")
    ip.run_line_magic("config", "AgentMagics.retry_budget = 1800.0")
    ip.run_line_magic("config", "AgentMagics.max_retries = 0")
    ip.run_line_magic("config", f"AgentMagics.recording = {recording!r}")
    if temperature is not None:
        ip.run_line_magic("config", f"AgentMagics.temperature = {temperature!r}")
    if context_window is not None:  # the server's n_ctx, as the README tells a user to
        ip.run_line_magic("config", f"AgentMagics.context_window = {context_window!r}")
    if context_sources is not None:  # one source left out, to measure what it adds
        ip.run_line_magic("config", f"AgentMagics.context_sources = {context_sources!r}")
    error = ""
    earlier = io.StringIO()  # what the earlier cells showed: not the loop's transcript
    with contextlib.redirect_stdout(earlier):
        for code in task.setup:  # the cells run before the task, kept in In
            if not ip.run_cell(code, store_history=True).success:
                error = f"an earlier cell failed: {earlier.getvalue()[-300:]}"
                break
    flags = f"--mode never --new --max-turns {max_turns}" + ("" if stream else " --no-stream")
    shown = io.StringIO()
    start = time.monotonic()
    with contextlib.redirect_stdout(shown):
        try:
            if not error:
                ip.run_cell_magic("agent", flags, task.text)
        except UsageError as problem:
            error = str(problem)
        except Exception as problem:  # the worker reports; the runner decides
            error = f"{type(problem).__name__}: {problem}"
    wall = time.monotonic() - start
    magics = ip.magics_manager.registry["AgentMagics"]
    calls, estimated = _tokens(magics.history)
    value = ip.user_ns.get("answer", MISSING)
    import agent_magic  # loaded by %load_ext above: say which checkout ran

    return {
        "task": task_id,
        "loop": "agent_magic",
        "answer": plain(value),
        "steps": len(calls),
        "prompt_tokens": sum(c["prompt"] for c in calls),
        "completion_tokens": sum(c["completion"] for c in calls),
        "estimated": estimated,
        "calls": calls,
        "wall": round(wall, 2),
        "error": error,
        "transcript": shown.getvalue()[-20_000:],
        "agent_magic": os.path.dirname(os.path.dirname(os.path.abspath(agent_magic.__file__))),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", required=True, choices=sorted(BY_ID))
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--max-turns", type=int, default=10)
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--temperature", type=float)
    parser.add_argument("--context-window", type=int)
    parser.add_argument(
        "--context-sources", help="comma-separated AgentMagics.context_sources (default: all)"
    )
    parser.add_argument("--out", required=True)
    parser.add_argument("--agent-magic-tree", help="import agent_magic from this checkout")
    args = parser.parse_args(argv)
    if args.agent_magic_tree:
        # Before anything imports agent_magic (%load_ext does, in run_task); the bench's
        # own modules are already loaded from this checkout.
        sys.path.insert(0, os.path.abspath(args.agent_magic_tree))
    result = run_task(
        args.task,
        base_url=args.base_url,
        model=args.model,
        max_turns=args.max_turns,
        stream=args.stream,
        recording=os.path.abspath(args.out) + ".recording.jsonl",
        temperature=args.temperature,
        context_window=args.context_window,
        context_sources=None
        if args.context_sources is None
        else [s for s in args.context_sources.split(",") if s],
    )
    with open(args.out, "w") as out:
        json.dump(result, out, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
