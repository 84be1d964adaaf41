"""A tampered extension says so (issue 20): a step (or any code in the kernel) that
replaces the extension's module, a class's method or a function the magic calls gets one
line naming what changed, the extension is put back as it was loaded, and the next
``%agent``/``%%agent``/``%agent export`` and ``%reload_ext agent_magic`` work: never a
traceback. Through a real shell against the scripted server."""

from __future__ import annotations

import sys

from conftest import code

from agent_magic.session import Session


def agent_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if "agent:" in line]


def run(shell, source: str):
    """Run a cell as a user does; its result (an error in it is a failed result)."""
    return shell.run_cell(source)


def test_a_step_that_replaces_the_module_is_said_and_export_works(
    shell, openai_env, capsys, tmp_path
) -> None:
    package = sys.modules["agent_magic"]
    openai_env.enqueue(
        code("import sys, types\nsys.modules['agent_magic'] = types.ModuleType('agent_magic')"),
        "Done. TERMINATE",
    )
    assert run(shell, "%%agent --mode never --no-context\nreplace it").success
    assert sys.modules["agent_magic"] is package  # put back
    said = agent_lines(capsys.readouterr().err)
    assert len(said) == 1 and "sys.modules['agent_magic']" in said[0]
    assert "put back" in said[0] and "restart the kernel" in said[0]
    exported = run(shell, f"%agent export {tmp_path / 'out.ipynb'}")
    assert exported.success and (tmp_path / "out.ipynb").exists()
    assert "Traceback" not in capsys.readouterr().out


def test_a_step_that_breaks_a_method_is_said_and_reload_ext_works(
    shell, openai_env, capsys, tmp_path
) -> None:
    start = Session.start
    openai_env.enqueue(
        code("from agent_magic.session import Session\nSession.start = None"), "Done. TERMINATE"
    )
    assert run(shell, "%%agent --mode never --no-context\nbreak it").success
    assert Session.start is start
    said = agent_lines(capsys.readouterr().err)
    assert len(said) == 1 and "(Session.start)" in said[0]
    # a user cell does it again, then reloads the extension: no traceback, it works
    run(shell, "from agent_magic.session import Session\nSession.start = None")
    assert len(agent_lines(capsys.readouterr().err)) == 1
    reloaded = run(shell, "%reload_ext agent_magic")
    assert reloaded.success, reloaded.error_in_exec
    magics = shell.magics_manager.registry["AgentMagics"]
    magics.recording, magics.max_retries = str(tmp_path / "rec.jsonl"), 0
    openai_env.enqueue(code("after = 1"), "Done. TERMINATE")
    assert run(shell, "%%agent --mode never --no-context\nafter").success
    assert shell.user_ns["after"] == 1
    assert "Traceback" not in capsys.readouterr().out


def test_a_change_made_outside_any_cell_is_put_back_by_the_next_command(
    shell, openai_env, capsys
) -> None:
    """A thread or a callback can change it between cells: the magic looks first."""
    from agent_magic import session as session_module

    originals = (Session.export, session_module.open_store)
    Session.export = None  # type: ignore[assignment, method-assign]
    session_module.open_store = lambda path: 1 / 0  # type: ignore[assignment]
    openai_env.enqueue(code("fine = 1"), "Done. TERMINATE")
    shell.run_cell_magic("agent", "--mode never --no-context", "go")
    assert shell.user_ns["fine"] == 1
    assert (Session.export, session_module.open_store) == originals
    (said,) = agent_lines(capsys.readouterr().err)
    assert "Session.export" in said and "agent_magic.session.open_store" in said
