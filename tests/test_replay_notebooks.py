"""Whole notebooks: the committed demo replays headless, offline, without a key; a
recording made in one kernel replays in another; an export runs without the extension."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from agent_magic.codeblocks import CodeBlock
from agent_magic.conversation import Decision, ReviewRequested, drive

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "demo.ipynb"
RECORDING = ROOT / "agent-recording.jsonl"
WIDGET = "application/vnd.jupyter.widget-view+json"


def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """No key, no configured endpoint; a live call could only hit a closed port."""
    for name in list(os.environ):
        if name.startswith(("OPENAI_", "AZURE_OPENAI_")) or name in ("OAI_CONFIG_LIST",):
            monkeypatch.delenv(name)
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.delenv("AGENT_MAGIC_REPLAY", raising=False)


def joined_outputs(nb) -> list[list[dict]]:
    cells = []
    for cell in nb.cells:
        joined: list[dict] = []
        for output in json.loads(json.dumps(cell.get("outputs", []))):
            last = joined[-1] if joined else None
            same_stream = last and output["output_type"] == last["output_type"] == "stream"
            if same_stream and output["name"] == last["name"]:
                last["text"] += output["text"]
                continue
            joined.append(output)
        cells.append(joined)
    return cells


def text_of(outputs: list[dict]) -> str:
    parts = []
    for output in outputs:
        if output["output_type"] == "stream":
            parts.append(output["text"])
        elif output["output_type"] == "error":
            parts.append(f"{output['ename']}: {output['evalue']}")
        else:
            parts.append(str(output.get("data", {}).get("text/plain", "")))
    return "\n".join(parts)


def run(nb, cwd: Path):
    client = NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}
    )
    return client.execute()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_demo_replays_offline_to_its_committed_outputs(monkeypatch, tmp_path) -> None:
    offline(monkeypatch)
    before = digest(RECORDING)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "jupyter",
            "nbconvert",
            "--to",
            "notebook",
            "--execute",
            str(DEMO),
            "--output-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    fresh = nbformat.read(tmp_path / "demo.ipynb", as_version=4)
    committed = nbformat.read(DEMO, as_version=4)
    assert joined_outputs(fresh) == joined_outputs(committed)
    assert digest(RECORDING) == before  # a replay writes nothing

    cells = {c.get("id"): c for c in fresh.cells}
    assert "a + b + c = 7.0" in text_of(cells["math-after"].outputs)
    math = text_of(cells["math-task"].outputs)
    assert "NameError: name 'np' is not defined" in math  # the wrong first attempt
    assert "[7.0, 7.0, 7.0]" in math and "a + b + c = 7" in math
    assert "TERMINATE" not in math and "Step 3: finished" in math  # the sign-off is the loop's
    assert "warmest week: 3" in text_of(cells["data-task"].outputs)
    assert "3.55" in text_of(cells["data-after"].outputs)
    assert "[3, 4]" in text_of(cells["review-task"].outputs)  # headless: the recording decides
    assert "--mode always" in cells["review-task"].source
    markdown = "\n".join(c.source for c in fresh.cells if c.cell_type == "markdown")
    assert "scripted" in markdown and "FakeOpenAIServer" in markdown
    assert "OPENAI_API_KEY" in markdown  # how to use a live model


def test_the_demo_reads_without_a_kernel() -> None:
    """Everything a reader needs is in static outputs: no widget state required."""
    nb = nbformat.read(DEMO, as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if WIDGET in data:
                assert set(data) - {WIDGET}, "a widget output needs a static fallback"
    everything = json.dumps(nb)
    for part in ("Find a + b + c", "Step 1: ran", "np.linalg.solve", "[7.0, 7.0, 7.0]"):
        assert part in everything
    assert "SENTINEL" not in everything
    assert "SENTINEL" not in RECORDING.read_text()


def test_the_demo_script_is_kept_with_the_demo() -> None:
    script = json.loads((ROOT / "docs" / "demo_script.json").read_text())
    recorded = [
        json.loads(line)
        for line in RECORDING.read_text().splitlines()
        if json.loads(line)["event"] == "reply"
    ]
    assert [r["content"] for r in recorded] == script


def test_a_recording_replays_in_another_kernel_headless(shell, openai_env, monkeypatch, tmp_path):
    """Recorded with a person deciding (an edit included), replayed by nbclient, which has
    nobody to ask: the recorded decisions answer, in mode always."""
    magics = shell.magics_manager.registry["AgentMagics"]
    openai_env.enqueue(
        "```python\ngreeting = 'hello'\n```",
        "```python\nprint(greeting.upper())\n```",
        "Done. TERMINATE",
    )
    answers = [
        lambda p: Decision.run(),
        lambda p: Decision.run([CodeBlock("python", "print(greeting.title() + '!')")]),
        lambda p: Decision.run(),
    ]
    steps, handler = magics._start("--mode always --no-context", "greet")

    def person(event):
        if isinstance(event, ReviewRequested):
            return answers.pop(0)(event.proposal)
        return handler(event)

    magics._conclude(drive(steps, person))
    assert Path(magics.recording) == tmp_path / "agent-recording.jsonl"  # the kernel's cwd

    offline(monkeypatch)
    monkeypatch.setenv("AGENT_MAGIC_REPLAY", "1")
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell("%load_ext agent_magic"),
            nbformat.v4.new_code_cell("%%agent --mode always --no-context\ngreet"),
            nbformat.v4.new_code_cell("greeting"),
        ]
    )
    done = run(nb, tmp_path)
    out = text_of(joined_outputs(done)[1])
    assert "Hello!" in out and "HELLO" not in out  # the edit was applied again
    assert "Step 2: edited and ran" in out
    assert done.cells[2].outputs[0]["data"]["text/plain"] == "'hello'"


def test_an_export_runs_without_the_extension(shell, openai_env, tmp_path) -> None:
    openai_env.enqueue(
        "```python\nsquares = [n * n for n in range(5)]\nprint(sum(squares))\n```",
        "```python\nsquares[10]\n```",
        "```python\nsquares[-1]\n```",
        "The last square is 16. TERMINATE",
    )
    shell.run_cell_magic("agent", "--mode never --no-context", "squares")
    target = tmp_path / "squares.ipynb"
    shell.run_line_magic("agent", f"export {target}")
    exported = nbformat.read(target, as_version=4)
    nbformat.validate(exported)
    assert not any("agent" in c.source for c in exported.cells if c.cell_type == "code")
    done = run(nbformat.read(target, as_version=4), tmp_path)  # errors tagged, not fatal
    again = [c for c in done.cells if c.cell_type == "code"]
    assert text_of(again[0].outputs) == "30\n"
    assert again[1].outputs[-1]["ename"] == "IndexError"
    assert again[2].outputs[0]["data"]["text/plain"] == "16"
    before = [c for c in exported.cells if c.cell_type == "code"]
    assert [text_of(c.outputs) for c in before] == [text_of(c.outputs) for c in again]


def test_a_key_in_the_kernel_environment_ends_up_nowhere(openai_server, monkeypatch, tmp_path):
    sentinel = "sk-test-SENTINEL-kernel-environment-1234"
    offline(monkeypatch)
    monkeypatch.setenv("OPENAI_BASE_URL", openai_server.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", sentinel)
    monkeypatch.setenv("AGENT_MAGIC_REPLAY", "0")
    openai_server.enqueue(
        "```python\nimport os\nprint('has a key:', bool(os.environ.get('OPENAI_API_KEY')))\n```",
        "It has one. TERMINATE",
    )
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell("%load_ext agent_magic"),
            nbformat.v4.new_code_cell("%%agent --mode never --seed 42\nIs a key set?"),
            nbformat.v4.new_code_cell("%agent log"),
            nbformat.v4.new_code_cell("%agent usage"),
            nbformat.v4.new_code_cell("%agent export exported.ipynb"),
        ]
    )
    done = run(nb, tmp_path)
    assert openai_server.requests[0].headers.get("authorization") == f"Bearer {sentinel}"
    notebook = json.dumps(done)
    assert "has a key: True" in notebook
    written = [notebook] + [p.read_text() for p in tmp_path.iterdir() if p.is_file()]
    assert {p.name for p in tmp_path.iterdir()} == {"agent-recording.jsonl", "exported.ipynb"}
    for text in written:
        assert "SENTINEL" not in text
