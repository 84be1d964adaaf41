"""``%agent undo``: the last step's changes to the namespace put back, through a real shell.

Each test runs a ``%%agent --mode never`` cell whose step changes the namespace, then
``%agent undo``, and checks the names and what the command said.
"""

from __future__ import annotations

import time

from conftest import code
from IPython.utils.capture import capture_output

from agent_magic.testing import FakeOpenAIServer


def run_step(shell, server: FakeOpenAIServer, src: str, language: str = "python") -> None:
    server.enqueue(code(src, language), "Done. TERMINATE")
    with capture_output():
        shell.run_cell_magic("agent", "--mode never", "Change something.")


def undo(shell) -> str:
    with capture_output() as said:
        shell.run_line_magic("agent", "undo")
    return said.stdout


def test_undo_removes_what_the_step_created_and_gives_back_what_it_rebound_or_deleted(
    shell, openai_env: FakeOpenAIServer
) -> None:
    ns = shell.user_ns
    kept, gone = [1, 2], {"a": 1}
    ns.update(kept=kept, gone=gone)
    run_step(shell, openai_env, "created = 42\nkept = 'something else'\ndel gone")
    assert ns["created"] == 42 and ns["kept"] == "something else" and "gone" not in ns
    said = undo(shell)
    assert "created" not in ns
    assert ns["kept"] is kept and ns["gone"] is gone  # the very objects, by reference
    assert "removed created, which it created" in said
    assert "gave kept back" in said and "put back gone, which it deleted" in said
    assert "outside the namespace (files, network, processes), are not undone" in said
    again = undo(shell)
    assert "nothing more to undo" in again and ns["kept"] is kept
    for name in ("kept", "gone"):
        ns.pop(name)


def test_a_list_appended_to_gets_its_contents_back_from_the_copy(
    shell, openai_env: FakeOpenAIServer
) -> None:
    items = [1, 2]
    shell.user_ns["items"] = items
    run_step(shell, openai_env, "items.append(3)\nitems[0] = 'x'")
    assert items == ["x", 2, 3]
    said = undo(shell)
    assert shell.user_ns["items"] is items and items == [1, 2]  # in place: other names see it
    assert "restored the contents of items from a copy taken before it" in said
    shell.user_ns.pop("items")


def test_an_object_too_big_to_copy_is_named_as_not_restored(
    shell, openai_env: FakeOpenAIServer
) -> None:
    big = list(range(50_000))  # more parts than an undo copies
    shell.user_ns["big"] = big
    run_step(shell, openai_env, "big.append(-1)\nsmall = 1")
    said = undo(shell)
    assert big[-1] == -1 and "small" not in shell.user_ns
    assert "Not restored: big (may have changed in place (.append()); not copied:" in said
    shell.user_ns.pop("big")


def test_nothing_to_undo_before_any_step_and_a_shell_step_changes_no_names(
    shell, openai_env: FakeOpenAIServer, tmp_path
) -> None:
    magics = shell.magics_manager.registry["AgentMagics"]
    magics.session._cell_executor = magics.session._earlier_undo = None  # a fresh kernel
    assert "nothing to undo; no step has run" in undo(shell)
    target = tmp_path / "made.txt"
    run_step(shell, openai_env, f"echo hi > {target}", language="sh")
    said = undo(shell)
    assert target.exists()  # files are not undone, and it says so
    assert "changed no names" in said and "(files, network, processes)" in said


def test_a_later_cell_without_a_step_leaves_the_last_step_undoable(
    shell, openai_env: FakeOpenAIServer
) -> None:
    run_step(shell, openai_env, "made_earlier = 1")
    openai_env.enqueue("No code needed this time. TERMINATE")
    with capture_output():
        shell.run_cell_magic("agent", "--mode never", "Just answer.")
    assert "removed made_earlier" in undo(shell) and "made_earlier" not in shell.user_ns


def test_the_bookkeeping_costs_little_with_a_thousand_names(shell, capsys) -> None:
    """Undo.before + after per step with 1,000 names bound (figure printed for the report)."""
    from agent_magic.guard import Undo, touches

    ns = {f"name_{i}": [i] for i in range(1000)}
    step = "import math\ntotal = sum(v[0] for v in values)\nvalues.append(total)\nprint(total)\n"
    ns["values"] = list(range(100))
    runs = 200
    start = time.perf_counter()
    for _ in range(runs):
        kept = Undo.before(ns, step, found=touches(step, transform=shell.transform_cell))
        ns["total"] = 1
        kept.after(ns)
    per_step = (time.perf_counter() - start) / runs
    with capsys.disabled():
        print(f"\n[undo bookkeeping per step, 1,000 names: {per_step * 1e3:.3f} ms]")
    assert per_step < 0.5  # seconds: only something pathological gets near this
