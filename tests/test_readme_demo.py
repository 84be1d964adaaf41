"""The README's first command, as a newcomer runs it: a fresh venv, the README's install
line, then the demo executed headless without a key (nbconvert and papermill), with no
error output in any cell.

The install line is read from the README, so the test follows the README. It needs the
package index (pip), so it is slow (a minute or two) and runs under CI; set
AGENT_MAGIC_SKIP_VENV=1 to leave it out of a quick local run.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"

pytestmark = pytest.mark.skipif(
    os.environ.get("AGENT_MAGIC_SKIP_VENV") == "1", reason="AGENT_MAGIC_SKIP_VENV=1"
)


def readme_demo_command() -> tuple[list[str], str]:
    """The README's first command: its pip install arguments, and the notebook it opens."""
    block = re.search(r"```bash\n(.*?)```", README.read_text(), re.S)
    assert block, "the README starts with a ```bash block of two commands"
    first = block.group(1).splitlines()[0].split("#")[0]
    install, _, launch = first.partition("&&")
    words = shlex.split(install)
    assert words[:2] == ["pip", "install"], f"the demo command starts with pip install: {first}"
    notebook = shlex.split(launch)[-1]
    assert notebook.endswith(".ipynb"), f"the demo command opens a notebook: {first}"
    return words[2:], notebook


def offline_env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OPENAI_", "AZURE_OPENAI_", "AGENT_MAGIC_", "VIRTUAL_ENV"))
        and k not in ("OAI_CONFIG_LIST", "PYTHONPATH")
    }
    env["OPENAI_BASE_URL"] = "http://127.0.0.1:9/v1"  # a live call could only fail
    return env


def error_outputs(path: Path) -> list[str]:
    notebook = json.loads(path.read_text())
    found = []
    for cell in notebook["cells"]:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                found.append(f"{output.get('ename')}: {output.get('evalue')}")
    return found


def test_the_readme_demo_runs_in_a_fresh_venv(tmp_path: Path) -> None:
    install, notebook = readme_demo_command()
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    env = offline_env()
    pip = [python, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    done = subprocess.run(
        [*pip, *install], cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200
    )
    assert done.returncode == 0, done.stderr[-3000:]

    work = tmp_path / "work"
    work.mkdir()
    for name in (notebook, "agent-recording.jsonl"):
        (work / name).write_bytes((ROOT / name).read_bytes())

    converted = subprocess.run(
        [python, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute", notebook],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert converted.returncode == 0, converted.stderr[-3000:]
    assert error_outputs(work / notebook.replace(".ipynb", ".nbconvert.ipynb")) == []

    # papermill is not part of the demo's install; a user who runs notebooks with it adds it.
    subprocess.run([*pip, "papermill"], env=env, check=True, timeout=1200)
    papered = subprocess.run(
        [python, "-m", "papermill", notebook, "out.ipynb"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert papered.returncode == 0, papered.stderr[-3000:]
    assert error_outputs(work / "out.ipynb") == []
