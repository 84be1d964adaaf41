"""How fast agent_magic.window fits a history, and how the requests of a long session behave.

``python bench/bench_window.py`` prints Markdown tables; ``run()`` returns the same
figures as a dict for a benchmark runner. The histories are built in the shapes the loop
writes (``conversation.rules.step_report`` / ``user_content``) with step outputs of everyday kinds
(numbers, a frame, a traceback, prose), made deterministically.

Measured:

* ms per :func:`fit` of a history of 20, 200 and 2000 messages, one step longer than the
  history fitted before (as the loop fits before every request: the replay resumes where
  that fit left it), and the same fit from the start (the kept replays dropped: what each
  fit cost before they were kept; the estimate's cache is warm in both), in CPU time
  (``time.process_time``): the machines this runs on are shared, and wall time there
  mostly measures the neighbours;
* over a 200-step cell and over 50 cells of 4 steps (each task with a 40-variable
  summary), fitted before every request as the loop will: how often a request's prefix
  differs from the one before (a server's prompt cache starts over there), the largest
  request's estimate against the budget (window less the reply's room), and what the
  unbounded history would have weighed.

``python bench/bench_window.py MODEL.gguf ...`` also renders every tenth fitted request of
those sessions with a ChatML template (Qwen2.5's and SmolLM2's) and counts its tokens with
each model's own tokenizer (llama-cpp-python, ``vocab_only``: no weights are loaded), to
show the real size against the estimate and the budget.
"""

from __future__ import annotations

import json
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agent_magic.conversation import DEFAULT_SYSTEM_PROMPT, StepOutcome  # noqa: E402
from agent_magic.conversation.rules import step_report, user_content  # noqa: E402
from agent_magic.window import NAMESPACE_HEADER, estimate_tokens, fit  # noqa: E402
from agent_magic.window.fit import _forget  # noqa: E402

WINDOWS = (2048, 8192, 32768)
RUNS = 7

_TRACEBACK = """Traceback (most recent call last):
  File "<cell>", line 3, in <module>
    total = frame["amount"].sum() / count
            ~~~~~^^^^^^^^^^
KeyError: 'amount'"""


def _printed(rng: random.Random, step: int) -> tuple[str, bool]:
    """What a step printed, and whether it ran cleanly."""
    kind = step % 4
    if kind == 0:
        return "\n".join(f"{rng.random() * 1000:.4f}" for _ in range(rng.randint(1, 40))), True
    if kind == 1:
        rows = [f"{0:>3}  {rng.choice(['Paris', 'Berlin', 'Tokyo'])}  {rng.randint(1, 99):>3}"]
        rows += [f"{i:>3}  city_{i}  {rng.gauss(0, 1):.3f}" for i in range(rng.randint(3, 25))]
        return "    city  value\n" + "\n".join(rows), True
    if kind == 2:
        return _TRACEBACK, False
    return "The column has mixed types; converting them to numbers first. " * rng.randint(
        1, 6
    ), True


class Session:
    """A history and its kinds, grown as the conversation loop grows it."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = [{"role": "system", "content": DEFAULT_SYSTEM_PROMPT}]
        self.kinds: list[str] = ["system"]
        self.rng = random.Random(0)
        self.steps = 0

    def task(self, text: str, variables: int) -> None:
        lines = "\n".join(f"v{i}: list len={i % 9}: {list(range(i % 9))}" for i in range(variables))
        self.messages.append({"role": "user", "content": f"{text}\n\n{NAMESPACE_HEADER}\n{lines}"})
        self.kinds.append("task")

    def step(self) -> None:
        self.steps += 1
        n = self.steps
        printed, ok = _printed(self.rng, n)
        reply = f"Step {n}: look at the data.\n```python\nresult_{n} = analyse(frame, {n})\n```"
        if n % 3 == 0:  # a native tool call now and then
            call = {
                "id": f"call_{n}",
                "type": "function",
                "function": {"name": "run_python", "arguments": json.dumps({"code": f"f({n})"})},
            }
            self.messages.append({"role": "assistant", "content": "", "tool_calls": [call]})
            self.kinds.append("reply")
            outcome = StepOutcome(ok=ok, digest=printed)
            self.messages.append(
                {"role": "tool", "tool_call_id": f"call_{n}", "content": step_report(outcome)}
            )
        else:
            self.messages.append({"role": "assistant", "content": reply})
            self.kinds.append("reply")
            outcome = StepOutcome(ok=ok, digest=printed)
            self.messages.append(
                {"role": "user", "content": user_content(step_report(outcome), [])}
            )
        self.kinds.append("output")


def _session(messages: int) -> Session:
    session = Session()
    session.task("analyse the sales data", 20)
    while len(session.messages) < messages:
        session.step()
    return session


def bench_fit_speed(sizes: tuple[int, ...] = (20, 200, 2000), runs: int = RUNS) -> dict[int, dict]:
    """Per call as the loop calls it: a step added, then a fit (which resumes the replay
    the fit before kept); and the same history fitted from the start (kept replays
    dropped first), which is what every fit cost before they were kept."""
    rows = {}
    for size in sizes:
        session = _session(size)
        fit(session.messages, session.kinds, window=8192, reply_room=1024)  # warm the caches
        times, afresh = [], []
        for _ in range(runs):
            session.step()
            started = time.process_time()
            fitted = fit(session.messages, session.kinds, window=8192, reply_room=1024)
            times.append((time.process_time() - started) * 1000)
            _forget()
            started = time.process_time()
            again = fit(session.messages, session.kinds, window=8192, reply_room=1024)
            afresh.append((time.process_time() - started) * 1000)
            assert again == fitted
        rows[size] = {
            "median_ms": statistics.median(times),
            "min_ms": min(times),
            "max_ms": max(times),
            "afresh_ms": statistics.median(afresh),
            "sent": len(fitted.messages),
            "estimate": fitted.estimate,
        }
    return rows


def _replay(session_steps, window: int) -> dict[str, Any]:
    reply_room = min(1024, window // 4)
    previous = None
    changes = requests = 0
    largest = 0
    unbounded = 0
    times = []
    for session in session_steps:
        started = time.process_time()
        fitted = fit(session.messages, session.kinds, window=window, reply_room=reply_room)
        times.append((time.process_time() - started) * 1000)
        requests += 1
        largest = max(largest, fitted.estimate)
        unbounded = max(unbounded, estimate_tokens(session.messages))
        if previous is not None:
            kept = fitted.messages[: len(previous.messages)] == previous.messages
            changes += not kept
        previous = fitted
    return {
        "window": window,
        "budget": window - reply_room,
        "requests": requests,
        "prefix_changes": changes,
        "max_estimate": largest,
        "unbounded_max": unbounded,
        "mean_ms": statistics.fmean(times),
        "folded_at_end": previous.folded if previous else 0,
    }


def _one_cell(steps: int):
    session = Session()
    session.task("a long analysis", 20)
    for _ in range(steps):
        session.step()
        yield session


def _many_cells(cells: int, steps: int):
    session = Session()
    for cell in range(cells):
        session.task(f"cell {cell}: the next question about the data", 40)
        for _ in range(steps):
            session.step()
            yield session


def bench_sessions(steps: int = 200, cells: int = 50, windows=WINDOWS) -> dict[str, list]:
    return {
        f"one cell, {steps} steps": [_replay(_one_cell(steps), w) for w in windows],
        f"{cells} cells of 4 steps": [_replay(_many_cells(cells, 4), w) for w in windows],
    }


def run(steps: int = 200, cells: int = 50, sizes=(20, 200, 2000), runs: int = RUNS) -> dict:
    return {"fit": bench_fit_speed(sizes, runs), "sessions": bench_sessions(steps, cells)}


def _chatml(messages: list[dict[str, Any]]) -> str:
    """The prompt a ChatML template (Qwen2.5, SmolLM2) makes of these messages."""
    out = []
    for message in messages:
        content = message.get("content") or ""
        if isinstance(content, list):
            content = "".join(
                p.get("text", "") if p.get("type") == "text" else "<image>" for p in content
            )
        for call in message.get("tool_calls") or ():
            function = call["function"]
            body = {"name": function["name"], "arguments": json.loads(function["arguments"])}
            content += f"\n<tool_call>\n{json.dumps(body)}\n</tool_call>"
        role = message["role"]
        if role == "tool":
            role, content = "user", f"<tool_response>\n{content}\n</tool_response>"
        out.append(f"<|im_start|>{role}\n{content}<|im_end|>\n")
    return "".join(out) + "<|im_start|>assistant\n"


def real_counts(models: list[str], windows=(2048, 8192)) -> list[dict[str, Any]]:
    """Real token counts of fitted requests, by the models' own tokenizers."""
    import llama_cpp

    tokenizers = {
        Path(path).name: llama_cpp.Llama(model_path=path, vocab_only=True, verbose=False)
        for path in models
    }
    sessions = {
        "one cell, 200 steps": lambda: _one_cell(200),
        "50 cells of 4 steps": lambda: _many_cells(50, 4),
    }
    rows = []
    for name, grow in sessions.items():
        for window in windows:
            reply_room = min(1024, window // 4)
            found = {model: {"largest_real": 0, "worst_ratio": 0.0} for model in tokenizers}
            for index, session in enumerate(grow()):
                if index % 10:
                    continue
                fitted = fit(session.messages, session.kinds, window=window, reply_room=reply_room)
                prompt = _chatml(fitted.messages).encode("utf-8", "surrogatepass")
                for model, tokenizer in tokenizers.items():
                    real = len(tokenizer.tokenize(prompt, add_bos=False, special=True))
                    row = found[model]
                    row["largest_real"] = max(row["largest_real"], real)
                    row["worst_ratio"] = max(row["worst_ratio"], real / fitted.estimate)
            for model, row in found.items():
                rows.append(
                    {
                        "session": name,
                        "window": window,
                        "budget": window - reply_room,
                        "model": model,
                        **row,
                    }
                )
    return rows


def markdown(report: dict[str, Any]) -> str:
    """The tables of :func:`run`'s figures."""
    out = [
        "| messages in the history | ms per fit after a step, median (min-max) "
        "| ms per fit from the start | sent | estimate |"
    ]
    out.append("|---:|---:|---:|---:|---:|")
    for size, row in report["fit"].items():
        out.append(
            f"| {size} | {row['median_ms']:.2f} ({row['min_ms']:.2f}-{row['max_ms']:.2f}) "
            f"| {row['afresh_ms']:.2f} | {row['sent']} | {row['estimate']} |"
        )
    out += [
        "",
        "| session | window | budget | requests | prefix changes | largest request "
        "| unbounded largest | ms per fit |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, rows in report["sessions"].items():
        for row in rows:
            out.append(
                f"| {name} | {row['window']} | {row['budget']} | {row['requests']} "
                f"| {row['prefix_changes']} | {row['max_estimate']} | {row['unbounded_max']} "
                f"| {row['mean_ms']:.2f} |"
            )
    return "\n".join(out)


def main() -> None:
    print(markdown(run()))
    models = [arg for arg in sys.argv[1:] if arg.endswith(".gguf")]
    if models:
        print()
        print("| session | window | budget | tokenizer | largest real request | real / estimate |")
        print("|---|---:|---:|---|---:|---:|")
        for row in real_counts(models):
            print(
                f"| {row['session']} | {row['window']} | {row['budget']} | {row['model']} "
                f"| {row['largest_real']} | {row['worst_ratio']:.2f} |"
            )


if __name__ == "__main__":
    main()
