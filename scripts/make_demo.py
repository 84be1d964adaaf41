"""Build demo.ipynb and its recording, agent-recording.jsonl, at the top of the repo.

    python scripts/make_demo.py

1. Writes the notebook's cells (below).
2. Records: starts our local OpenAI-compatible server (FakeOpenAIServer) playing the
   scripted replies in docs/demo_script.json, and executes the notebook with nbclient
   with AGENT_MAGIC_REPLAY=0, so every request goes to that server and the conversation
   is written to a fresh agent-recording.jsonl.
3. Replays: stops the server, removes every OpenAI variable and executes the notebook
   again, as a reader would, from the recording alone; that executed notebook is saved
   as demo.ipynb, and its outputs must equal the recording run's.

The replies are scripted, not a model's: the notebook says so.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agent_magic.session import NEVER_NOTICE  # noqa: E402
from agent_magic.testing import FakeOpenAIServer, replies_from_json  # noqa: E402
from agent_magic.transcript import RECORDING_NAME  # noqa: E402

NOTEBOOK = ROOT / "demo.ipynb"
RECORDING = ROOT / RECORDING_NAME
SCRIPT = ROOT / "docs" / "demo_script.json"
# A key-shaped value in the environment while recording: it must end up nowhere.
SENTINEL = "sk-test-SENTINEL-demo-recording-0000"

INTRO = """\
# agent_magic: a math problem, then your own data

A `%%agent` cell hands a task to a chat model. The code the model proposes runs in this
kernel, and what the code prints or raises goes back to the model until it answers.

**Where these replies come from.** Not from a real model: they are scripted. Our local
OpenAI-compatible test server (`agent_magic.testing.FakeOpenAIServer`) played the replies
in [`docs/demo_script.json`](docs/demo_script.json), and
[`scripts/make_demo.py`](scripts/make_demo.py) recorded the conversation into
`agent-recording.jsonl` beside this notebook. The code in those replies really ran here,
and its real output, errors included, is what went back.

**Running it.** The setup cell turns on replay of the recorded replies: every request is
answered from `agent-recording.jsonl`, offline and without a key. Where a cell asks
before each step (section 3), you make the decisions in the review widget; run headless
(`jupyter nbconvert --to notebook --execute demo.ipynb`, papermill), the recorded
decisions are repeated, to the same result. If what the model would be sent changes (a
task, a variable, a step's output), the cell stops and names the step.

**With a live model.** Set `OPENAI_API_KEY` (or, for Ollama,
`%config AgentMagics.base_url = "http://localhost:11434/v1"` and
`%config AgentMagics.model = "llama3.1"`), delete the `replay_replies` line, and consider
`--mode always` to review each step before it runs. A real model will answer in its own
words; new conversations are added to `agent-recording.jsonl`."""

SETUP = """\
%load_ext agent_magic
%config AgentMagics.replay_replies = True"""
# The recording run has nobody to click: the cell that asks runs as --mode never there.
RECORDING_SETUP = SETUP + "\n%config AgentMagics.headless = 'never'"

MATH_INTRO = """\
## 1. A math problem

The first attempt fails; the traceback goes back to the model, which fixes the code and
then answers."""

MATH_TASK = """\
%%agent --mode never
Find a + b + c, given that x + y != -1 and a*x + b*y + c = x + 7, \
a + b*x + c*y = 2*x + 6*y, a*y + b + c*x = 4*x + y."""

MATH_AFTER_INTRO = "What the assistant's code made is an ordinary variable of this kernel:"

MATH_AFTER = """\
print("a + b + c =", total)
totals"""

DATA_INTRO = """\
## 2. Your data

With each task the model is told what is in the session (names, types, shapes, a few
values), so it can use `temps` by name; what its code makes stays for later cells."""

DATA = """\
import numpy as np

# Four weeks of daily noon temperatures, in °C, one after another
temps = np.array(
    [
        [11.2, 12.0, 13.1, 12.4, 11.8, 10.9, 11.5],
        [13.0, 14.2, 15.1, 14.8, 13.9, 14.4, 15.0],
        [16.1, 17.3, 16.8, 18.0, 17.5, 16.9, 17.2],
        [15.2, 14.8, 15.9, 16.3, 15.5, 14.9, 15.1],
    ]
).ravel()"""

DATA_TASK = """\
%%agent --mode never
Put the mean temperature of each week of `temps` (7 days each, in order) in `weekly`, \
rounded to 2 decimals, and tell me which week was warmest."""

DATA_AFTER = """\
print("warming from week 1 to week 4:", round(float(weekly[-1] - weekly[0]), 2), "°C")"""

REVIEW_INTRO = """\
## 3. You decide: the review widget, no key needed

This cell asks before each step. In JupyterLab, Notebook 7 or VS Code the recorded replies
are played, but the decisions are yours: **Run** the code (edit it first if you like),
**Run all** (this step and the rest without asking), **Skip** it, **Stop**, or answer in
words instead; at the end, **Finish**. The recording holds what happens when you press Run
and then Finish, and `--new` starts this cell's conversation afresh, so you can run the
cell again and again. Decide otherwise and the cell ends with one line saying that the
recording cannot follow from there, and how to go on with a live model (the conversation
so far is kept); the cells below still run."""

REVIEW_TASK = """\
%%agent --mode always --new
Which weeks of `weekly` averaged above 15 °C? Print their numbers (from 1)."""

LOG_INTRO = """\
## What was recorded

`%agent log` shows the current conversation (the one `--new` started in section 3) as the
model saw it. `%agent usage` counts the tokens, and `%agent export conversation.ipynb`
writes it as a plain notebook (the code that ran, with its outputs, and the model and
decisions in cell metadata) that runs without this extension."""

LOG = "%agent log"


def build(setup: str = SETUP) -> nbformat.NotebookNode:
    v4 = nbformat.v4
    cells = [
        v4.new_markdown_cell(INTRO, id="intro"),
        v4.new_code_cell(setup, id="setup"),
        v4.new_markdown_cell(MATH_INTRO, id="math-intro"),
        v4.new_code_cell(MATH_TASK, id="math-task"),
        v4.new_markdown_cell(MATH_AFTER_INTRO, id="math-after-intro"),
        v4.new_code_cell(MATH_AFTER, id="math-after"),
        v4.new_markdown_cell(DATA_INTRO, id="data-intro"),
        v4.new_code_cell(DATA, id="data"),
        v4.new_code_cell(DATA_TASK, id="data-task"),
        v4.new_code_cell(DATA_AFTER, id="data-after"),
        v4.new_markdown_cell(REVIEW_INTRO, id="review-intro"),
        v4.new_code_cell(REVIEW_TASK, id="review-task"),
        v4.new_markdown_cell(LOG_INTRO, id="log-intro"),
        v4.new_code_cell(LOG, id="log"),
    ]
    nb = v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def execute(nb: nbformat.NotebookNode, env: dict[str, str | None]) -> nbformat.NotebookNode:
    """Run the notebook in a fresh kernel started in the repo's top folder, with ``env``."""
    saved = {name: os.environ.get(name) for name in env}
    for name, value in env.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    try:
        client = NotebookClient(
            nb,
            timeout=120,
            kernel_name="python3",
            record_timing=False,
            resources={"metadata": {"path": str(ROOT)}},
        )
        return client.execute()
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def outputs(nb: nbformat.NotebookNode) -> list[list[dict]]:
    """Each cell's outputs, with consecutive stream pieces joined (a live reply streams
    in many small pieces, a replayed one in one), without the once-per-kernel notice that
    a live --mode never cell prints and a replay, where nothing new runs, does not."""
    cells = []
    for cell in nb.cells:
        joined: list[dict] = []
        for output in json.loads(json.dumps(cell.get("outputs", []))):
            if output["output_type"] == "stream":
                output["text"] = output["text"].replace(NEVER_NOTICE + "\n", "")
                if not output["text"]:
                    continue
            last = joined[-1] if joined else None
            if (
                last is not None
                and output["output_type"] == last["output_type"] == "stream"
                and output["name"] == last["name"]
            ):
                last["text"] += output["text"]
            else:
                joined.append(output)
        cells.append(joined)
    return cells


OFFLINE = {
    "OPENAI_API_KEY": None,
    "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",  # nothing listens: a live call would fail
    "OAI_CONFIG_LIST": None,
    "AZURE_OPENAI_API_KEY": None,
    "AZURE_OPENAI_ENDPOINT": None,
    "AGENT_MAGIC_REPLAY": None,
}


def main() -> int:
    replies = replies_from_json(json.loads(SCRIPT.read_text(encoding="utf-8")))
    RECORDING.unlink(missing_ok=True)
    with FakeOpenAIServer() as server:
        server.enqueue(*replies)
        recorded = execute(
            build(RECORDING_SETUP),
            {
                **OFFLINE,
                "OPENAI_BASE_URL": server.base_url,
                "OPENAI_API_KEY": SENTINEL,
                "AGENT_MAGIC_REPLAY": "0",
            },
        )
        asked = len(server.requests)
    if asked != len(replies):
        print(f"expected {len(replies)} requests, the notebook made {asked}", file=sys.stderr)
        return 1
    replayed = execute(build(), OFFLINE)
    if outputs(replayed) != outputs(recorded):
        print("the replay's outputs differ from the recording run's", file=sys.stderr)
        return 1
    with open(NOTEBOOK, "w", encoding="utf-8") as file:
        nbformat.write(replayed, file)
    written = {
        "the recording run's notebook": json.dumps(recorded),
        NOTEBOOK.name: NOTEBOOK.read_text(encoding="utf-8"),
        RECORDING.name: RECORDING.read_text(encoding="utf-8"),
    }
    for where, text in written.items():
        if "SENTINEL" in text:
            print(f"the key leaked into {where}", file=sys.stderr)
            return 1
    print(f"wrote {NOTEBOOK.name} and {RECORDING.name}: {asked} scripted replies, replayed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
