"""One task through the seed's loop: AG2's classic AssistantAgent + UserProxyAgent.

Runs in the autogen venv (``scripts/real_models.py --autogen``: ``autogen`` 0.14.1
needs another openai major than agent_magic), started by :mod:`bench.effectiveness.run`
as a subprocess per task::

    ~/.cache/agent_magic/autogen-venv/bin/python bench/effectiveness/autogen_worker.py \\
        --task sum_1_100 --base-url http://127.0.0.1:8091/v1 --model qwen --out result.json

The agents are the seed notebook's: the default ``AssistantAgent`` system message, a
``UserProxyAgent`` with the seed's ``is_termination_msg`` (the message ends with
TERMINATE; messages are dicts in AG2, so it reads their content), here with
``human_input_mode="NEVER"`` and local execution (``use_docker`` False). ``cache_seed``
None, so every reply is a real model call.

AG2 runs each code block as a fresh ``python`` process, so nothing a block defines
outlives it. For the checker only, every Python block gets a footer that writes
``answer`` (if the block defined it) to a file: the model never sees the footer, and its
output and exit code are unchanged. The last value written is the loop's answer.
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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # tasks.py, stdlib only

from tasks import BY_ID, MISSING, plain  # noqa: E402

FOOTER = """

# --- added by the benchmark, after the model's code: keep `answer` for the checker ---
def _bench_keep_answer():
    import json, sys
    sys.path.insert(0, {tasks_dir!r})
    from tasks import plain
    with open({path!r}, "w") as out:
        json.dump(plain(globals()["answer"]), out)
if "answer" in globals():
    try:
        _bench_keep_answer()
    except Exception:
        pass
"""


def run_task(
    task_id: str, *, base_url: str, model: str, max_turns: int, temperature: float | None = None
) -> dict:
    from autogen import AssistantAgent, UserProxyAgent

    task = BY_ID[task_id]
    work = Path(tempfile.mkdtemp(prefix=f"autogen-{task_id}-"))
    task.write_files(str(work))  # the code runs in work_dir: the task's files are there
    answer_file = work / "answer.json"
    footer = FOOTER.format(tasks_dir=str(Path(__file__).resolve().parent), path=str(answer_file))

    class Proxy(UserProxyAgent):
        def run_code(self, code: str, **kwargs):  # type: ignore[override]
            if kwargs.get("lang") == "python":
                code = code + footer
            return super().run_code(code, **kwargs)

    config_list = [{"model": model, "base_url": base_url, "api_key": "none"}]
    llm_config = {"config_list": config_list, "cache_seed": None, "timeout": 600}
    if temperature is not None:
        llm_config["temperature"] = temperature
    assistant = AssistantAgent(name="assistant", llm_config=llm_config)
    user = Proxy(
        name="user",
        human_input_mode="NEVER",
        # The seed: lambda x: x.rstrip().endswith("TERMINATE"), on a message's content.
        is_termination_msg=lambda x: (x.get("content") or "").rstrip().endswith("TERMINATE"),
        # The proxy answers after each assistant reply; max_turns - 1 answers allow
        # max_turns model calls, the same limit as %%agent --max-turns.
        max_consecutive_auto_reply=max_turns - 1,
        code_execution_config={"work_dir": str(work), "use_docker": False, "timeout": 120},
    )
    shown = io.StringIO()
    error = ""
    start = time.monotonic()
    result = None
    with contextlib.redirect_stdout(shown):
        try:
            result = user.initiate_chat(assistant, message=task.text, clear_history=True)
        except Exception as problem:
            error = f"{type(problem).__name__}: {str(problem)[:300]}"
    wall = time.monotonic() - start
    history = result.chat_history if result else assistant.chat_messages.get(user, [])
    steps = sum(1 for m in history if m.get("name") == "assistant")
    usage = assistant.get_total_usage() or {}
    prompt = sum(v.get("prompt_tokens", 0) for v in usage.values() if isinstance(v, dict))
    completion = sum(v.get("completion_tokens", 0) for v in usage.values() if isinstance(v, dict))
    estimated = False
    if steps and not (prompt or completion):  # the server gave no usage: estimate
        estimated = True  # 4 characters a token; each call's prompt is all before it
        seen = len(assistant.system_message)
        for m in history:
            size = len(m.get("content") or "")
            if m.get("name") == "assistant":
                prompt += seen // 4
                completion += max(1, size // 4)
            seen += size
    value = json.loads(answer_file.read_text()) if answer_file.exists() else MISSING
    return {
        "task": task_id,
        "loop": "autogen",
        "answer": plain(value),
        "steps": steps,
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "estimated": estimated,
        "wall": round(wall, 2),
        "error": error,
        "transcript": shown.getvalue()[-20_000:],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", required=True, choices=sorted(BY_ID))
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--max-turns", type=int, default=10)
    parser.add_argument("--temperature", type=float)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    os.environ.pop("OPENAI_BASE_URL", None)  # the config list says where
    result = run_task(
        args.task,
        base_url=args.base_url,
        model=args.model,
        max_turns=args.max_turns,
        temperature=args.temperature,
    )
    with open(args.out, "w") as out:
        json.dump(result, out, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
