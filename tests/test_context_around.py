"""The notebook around the cell and the files a task names, as the model is sent them.

End to end through a real shell against the scripted server, plus the sources on their
own where a bound (10,000 cells, a 1 GB file) is the point.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from agent_magic.context.block import SOURCES, Around, build_context
from agent_magic.context.files import HEAD_BYTES, files_block, named_files
from agent_magic.context.notebook import earlier_cells, notebook_file, notebook_markdown
from agent_magic.plan import _ALL_SOURCES

# A latin-1 file with a title line above its header, ';' between fields, decimal commas.
SALES = (
    "Ventes 2024 - export du système\n"
    "date;région;montant;commentaire\n"
    "2024-01-05;Île-de-France;1.234,50;très bien\n"
    "2024-01-06;Provence-Alpes-Côte d'Azur;99,00;à revoir\n"
    "2024-01-07;Rhône;12,00;déjà payé\n"
)


def user_message(server, index: int = 0) -> str:
    return next(m["content"] for m in server.requests[index].messages if m["role"] == "user")


@pytest.fixture
def workdir(tmp_path, monkeypatch) -> Path:
    """The kernel's working directory, with a folder beside it that is not under it."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    return work


def save_notebook(path: Path, markdown: list[str]) -> None:
    cells = [{"cell_type": "markdown", "metadata": {}, "source": text} for text in markdown]
    cells.append(
        {
            "cell_type": "code",
            "metadata": {},
            "source": "%%agent\ntask",
            "outputs": [],
            "execution_count": None,
        }
    )
    notebook = {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    path.write_text(json.dumps(notebook), encoding="utf-8")


# -- end to end ---------------------------------------------------------------------------


def test_the_first_request_carries_the_notebook_and_the_named_file(
    shell, openai_env, workdir, monkeypatch
) -> None:
    (workdir / "ventes.csv").write_bytes(SALES.encode("latin-1"))
    (workdir / "analysis").mkdir()
    save_notebook(
        workdir / "analysis" / "Sales.ipynb",
        ["# Regional sales\nWe compare the regions' totals.", "## Cleaning\nDrop test rows."],
    )
    # Jupyter Server's path is relative to its root; the kernel runs in the notebook's folder.
    monkeypatch.chdir(workdir / "analysis")
    monkeypatch.setenv("JPY_SESSION_NAME", "analysis/Sales.ipynb")
    (workdir / "analysis" / "ventes.csv").write_bytes(SALES.encode("latin-1"))
    shell.run_cell("threshold_eur = 100\n", store_history=True)
    shell.run_cell("import math\nregions_seen = ['Rhône']\n", store_history=True)
    openai_env.enqueue("ok TERMINATE")
    shell.run_cell_magic("agent", "--mode never", "Total montant per région in ventes.csv")
    sent = user_message(openai_env)
    # the earlier cells, newest first
    assert sent.index("regions_seen = ['Rhône']") < sent.index("threshold_eur = 100")
    # the notebook's Markdown, read from the saved file
    assert "# Regional sales" in sent and "## Cleaning" in sent and "Drop test rows." in sent
    # the named file: its first line, dialect, header, column count, encoding
    assert "Ventes 2024 - export du système" in sent  # decoded right, not mojibake
    assert "encoding latin-1" in sent
    assert "delimiter ';'" in sent and "4 columns" in sent
    assert "line 2 looks like a header" in sent
    assert "date;région;montant;commentaire" in sent


def test_agent_context_shows_exactly_what_is_then_sent(
    shell, openai_env, workdir, monkeypatch, capsys
) -> None:
    (workdir / "ventes.csv").write_bytes(SALES.encode("latin-1"))
    (workdir / "settings.env").write_text(
        "HOST=db.internal\nDB_PASSWORD=correct-horse-battery\n"
        "OPENAI_KEY_BACKUP=sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcd\n"
    )
    save_notebook(workdir / "n.ipynb", ["# Notes"])
    monkeypatch.setenv("JPY_SESSION_NAME", "n.ipynb")
    shell.run_cell("rate = 0.2\n", store_history=True)
    shell.user_ns["rate"] = 0.2
    task = "Read ventes.csv and settings.env"
    capsys.readouterr()
    shell.run_line_magic("agent", f"context {task}")
    shown = capsys.readouterr().out
    openai_env.enqueue("ok TERMINATE")
    shell.run_cell_magic("agent", "--mode never", task)
    sent = user_message(openai_env)
    assert shown.startswith("agent: sent after the task:\n")
    assert sent == f"{task}\n\n{shown.partition(chr(10))[2].rstrip(chr(10))}"
    # a secret in a previewed file is hidden, in what is shown and what is sent
    for text in (shown, sent):
        assert "HOST=db.internal" in text
        assert "correct-horse-battery" not in text and "DB_PASSWORD=[hidden" in text
        assert "AbCdEfGhIjKlMnOpQrSt" not in text


def test_no_context_turns_every_source_off(shell, openai_env, workdir, monkeypatch) -> None:
    (workdir / "ventes.csv").write_bytes(SALES.encode("latin-1"))
    save_notebook(workdir / "n.ipynb", ["# A heading only the notebook has"])
    monkeypatch.setenv("JPY_SESSION_NAME", "n.ipynb")
    shell.run_cell("only_in_an_earlier_cell = 1\n", store_history=True)
    openai_env.enqueue("ok TERMINATE")
    shell.run_cell_magic("agent", "--mode never --no-context", "Read ventes.csv")
    assert user_message(openai_env) == "Read ventes.csv"


def test_one_source_can_be_switched_off(shell, openai_env, workdir) -> None:
    (workdir / "ventes.csv").write_bytes(SALES.encode("latin-1"))
    shell.run_line_magic("config", "AgentMagics.context_sources = ['variables', 'cells']")
    openai_env.enqueue("ok TERMINATE")
    shell.run_cell_magic("agent", "--mode never", "Read ventes.csv")
    sent = user_message(openai_env)
    assert "Variables in the session now" in sent and "montant" not in sent


def test_within_the_budget_with_10000_cells_and_a_1gb_file(
    shell, openai_env, workdir, monkeypatch
) -> None:
    with open(workdir / "huge.csv", "wb") as file:
        file.write(b"id,value\n1,2\n")
        file.truncate(1 << 30)  # sparse: 1 GB on paper, nothing on disk
    history = shell.history_manager
    cells = ["", *(f"step_{i} = {i} * 2\n" for i in range(10_000))]
    monkeypatch.setattr(history, "input_hist_raw", cells)
    save_notebook(workdir / "n.ipynb", [f"# Part {i}\n" + "words " * 80 for i in range(300)])
    monkeypatch.setenv("JPY_SESSION_NAME", "n.ipynb")
    task = "Sum the value column of huge.csv"
    openai_env.enqueue("ok TERMINATE")
    shell.run_cell_magic("agent", "--mode never", task)
    sent = user_message(openai_env)
    budget = shell.magics_manager.registry["AgentMagics"].context_budget
    assert len(sent) <= len(task) + 2 + budget
    assert "step_9999 = 9999 * 2" in sent and "earlier cells not shown" in sent
    assert "1,073,741,824 bytes" in sent and "# Part 0" in sent


def test_a_file_outside_the_working_directory_is_not_read(
    shell, openai_env, workdir, tmp_path
) -> None:
    outside = tmp_path / "outside.csv"
    outside.write_text("SENTINEL_OUTSIDE,1\n")
    (workdir / "link.csv").symlink_to(outside)
    openai_env.enqueue("ok TERMINATE")
    shell.run_cell_magic("agent", "--mode never", "Compare ../outside.csv with link.csv")
    sent = user_message(openai_env)
    assert "SENTINEL_OUTSIDE" not in sent and "Files the task names" not in sent


def test_an_absolute_path_in_the_task_is_read(shell, openai_env, workdir, tmp_path) -> None:
    outside = tmp_path / "elsewhere.csv"
    outside.write_text("city,population\nLyon,522000\n")
    openai_env.enqueue("ok TERMINATE")
    shell.run_cell_magic("agent", "--mode never", f"Load {outside} please.")
    assert "city,population" in user_message(openai_env)


# -- the sources on their own --------------------------------------------------------------


def test_the_sources_are_the_plans() -> None:
    assert set(SOURCES) == _ALL_SOURCES


def test_a_preview_reads_a_bounded_head(workdir) -> None:
    with open(workdir / "big.txt", "wb") as file:
        file.write(b"x" * (HEAD_BYTES * 4))
    block = files_block("look at big.txt", workdir, 2000)
    assert "65,536 bytes" in block and len(block) <= 2000


def test_binaries_are_named_by_type_and_size_only(workdir) -> None:
    (workdir / "plot.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    block = files_block("see plot.png", workdir, 2000)
    assert "PNG image" in block and "1,032 bytes" in block and "```" not in block


def test_a_glob_previews_its_matches(workdir) -> None:
    for month in ("01", "02", "03"):
        (workdir / f"sales_{month}.csv").write_text(f"month,total\n{month},1\n")
    found, more = named_files("Stack the files data in sales_*.csv.", workdir)
    assert [f.shown for f in found] == ["sales_01.csv", "sales_02.csv", "sales_03.csv"]
    assert more == 0


def test_a_utf8_file_says_no_encoding(workdir) -> None:
    (workdir / "a.tsv").write_text("név\tkor\nÁdám\t31\nÉva\t28\n", encoding="utf-8")
    block = files_block("open a.tsv", workdir, 2000)
    assert "encoding" not in block and "delimiter tab" in block and "2 columns" in block


def test_secret_named_columns_are_hidden(workdir) -> None:
    (workdir / "users.csv").write_text("user,password,age\nann,hunter2hunter2,31\n")
    block = files_block("users.csv", workdir, 2000)
    assert "hunter2" not in block and "ann,[hidden],31" in block


def test_earlier_cells_are_newest_first_and_skip_the_agents_own(workdir) -> None:
    text = earlier_cells(["", "a = 1", "%%agent\ndo it", "", "b = 2", "a = 1"], 1000)
    assert text.index("a = 1") < text.index("b = 2")
    assert "do it" not in text and text.count("a = 1") == 1


def test_a_long_cell_is_cut_by_lines_with_the_note_outside_the_code(workdir) -> None:
    text = earlier_cells(["", "\n".join(f"x{i} = {i}" for i in range(200))], 600)
    assert "x0 = 0" in text and "x199" not in text
    assert text.rstrip().endswith("lines)") and "(the first" in text.split("```")[-1]


def test_vs_code_names_its_notebook(workdir) -> None:
    save_notebook(workdir / "v.ipynb", ["# From VS Code"])
    found = notebook_file({}, {"__vsc_ipynb_file__": str(workdir / "v.ipynb")}, workdir)
    assert found == workdir / "v.ipynb"
    assert "# From VS Code" in notebook_markdown(found, 500)


def test_the_notebook_is_never_written(workdir) -> None:
    path = workdir / "n.ipynb"
    save_notebook(path, ["# Title\nsome words"])
    before = (path.read_bytes(), os.stat(path).st_mtime_ns)
    around = Around({}, (), None, {"JPY_SESSION_NAME": "n.ipynb"}, workdir)
    assert "# Title" in build_context("task", around, budget=3000)
    assert (path.read_bytes(), os.stat(path).st_mtime_ns) == before


def test_a_replay_matches_without_the_notebooks_own_blocks() -> None:
    # JupyterLab names the notebook (its Markdown is sent), nbconvert does not, and
    # execution counts differ between runs: the replay key leaves those blocks out.
    from agent_magic.transcript.keys import Keyer

    base = "Sum ventes.csv\n\nVariables in the session now:\nrate: 0.2"
    lab = base + "\n\nCode run before this cell in this kernel (newest first):\nIn [7]:\n..."
    lab += "\n\nThe Markdown cells of the notebook n.ipynb, in order:\n# Notes"
    keyer = Keyer()
    key = keyer.message_digest
    assert key({"role": "user", "content": lab}) == key({"role": "user", "content": base})
    other = base.replace("0.2", "0.3")
    assert key({"role": "user", "content": other}) != key({"role": "user", "content": base})


def test_the_help_says_what_is_sent() -> None:
    from agent_magic.magic import AgentMagics

    doc = AgentMagics.agent.__doc__
    assert "%agent context" in doc and "--no-context" in doc


def test_arithmetic_and_column_names_are_not_taken_for_files(workdir) -> None:
    (workdir / "x").write_text("not named\n")
    (workdir / "notes.txt").write_text("hello\n")
    found, _ = named_files("compute 3 * 4 and the 'x' column; [1, 2]", workdir)
    assert found == []


def test_a_notebook_that_is_not_json_is_left_out(workdir) -> None:
    (workdir / "broken.ipynb").write_text("{not json")
    around = Around({"n": 1}, (), None, {"JPY_SESSION_NAME": "broken.ipynb"}, workdir)
    text = build_context("task", around, budget=3000)
    assert text.startswith("Variables in the session now:") and "Markdown" not in text
