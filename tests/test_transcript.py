"""Transcript, seeded cache, replay and export, on a real shell against the local server."""

from __future__ import annotations

import builtins
import json
import os
from pathlib import Path

import nbformat
import pytest
from conftest import answers, code
from IPython.core.error import UsageError
from IPython.core.magic_arguments import parse_argstring

from agent_magic import transcript
from agent_magic.codeblocks import CodeBlock
from agent_magic.conversation import Decision, ReviewRequested, drive
from agent_magic.testing import Failure, FakeOpenAIServer

SENTINEL = "sk-test-SENTINEL-7f3a9c1e5b2d4680aa"


def magics_of(shell):
    return shell.magics_manager.registry["AgentMagics"]


def recording(shell) -> Path:
    return Path(magics_of(shell).recording)


def records(shell) -> list[dict]:
    return [json.loads(line) for line in recording(shell).read_text().splitlines()]


def forget_namespace(shell, before: set[str]) -> None:
    """Back to the namespace the recording started from, as a fresh kernel would be."""
    for name in set(shell.user_ns) - before:
        shell.user_ns.pop(name, None)


def go_offline(server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Stop the model and leave no key: any live call would fail loudly."""
    server.stop()
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")


def run_with_person(shell, line: str, task: str, answers: list) -> None:
    """Run a %%agent cell whose reviews a scripted person answers (edits included), in
    the UI's place: each event reaches the recorder first, as in a notebook."""
    magics = magics_of(shell)
    steps, handler = magics._start(line, task)
    ui = handler.ui

    def person(event):
        if isinstance(event, ReviewRequested):
            return answers.pop(0)(event.proposal)
        return ui(event)

    handler.ui = person
    try:
        finished = drive(steps, handler)
    finally:
        steps.close()
    magics._conclude(finished)


# --- record and replay ------------------------------------------------------------------


def test_replay_reapplies_every_decision_offline(shell, openai_env, monkeypatch, capsys) -> None:
    openai_env.enqueue(
        code("base = 20"),
        code("bonus = 1"),
        code("never = 1"),
        code("print(base + bonus)"),
        "The answer is 22. TERMINATE",
    )
    answers = [
        lambda p: Decision.run(),
        lambda p: Decision.run([CodeBlock("python", "bonus = 2")]),  # edited, then ran
        lambda p: Decision("skip"),
        lambda p: Decision.run(),
        lambda p: Decision.run(),  # accept the final answer
    ]
    before = set(shell.user_ns)
    run_with_person(shell, "--mode always", "add things up", answers)
    recorded_out = capsys.readouterr().out
    assert shell.user_ns["bonus"] == 2 and "never" not in shell.user_ns
    assert len(openai_env.requests) == 5

    forget_namespace(shell, before)
    go_offline(openai_env, monkeypatch)
    shell.run_cell_magic("agent", "--mode always --new --replay", "add things up")
    replayed_out = capsys.readouterr().out
    assert replayed_out == recorded_out
    assert shell.user_ns["base"] == 20 and shell.user_ns["bonus"] == 2
    assert "never" not in shell.user_ns
    assert len(openai_env.requests) == 5  # nothing was asked
    usage = magics_of(shell)._usage()[0]
    assert "replay" in usage and "live" not in usage


def test_replay_from_the_environment_variable(shell, openai_env, monkeypatch) -> None:
    openai_env.enqueue(code("made = 'here'"), "Done. TERMINATE")
    before = set(shell.user_ns)
    shell.run_cell_magic("agent", "--mode never", "make it")
    forget_namespace(shell, before)
    go_offline(openai_env, monkeypatch)
    monkeypatch.setenv("AGENT_MAGIC_REPLAY", "1")
    shell.run_cell_magic("agent", "--mode never --new", "make it")
    assert shell.user_ns["made"] == "here"
    monkeypatch.setenv("AGENT_MAGIC_REPLAY", "0")  # wins over the trait, for a whole run
    magics_of(shell).replay = True
    magics = magics_of(shell)
    assert magics._replaying(parse_argstring(magics.agent, "")) is False


def test_feedback_and_stop_are_replayed(shell, openai_env, monkeypatch) -> None:
    openai_env.enqueue(code("first = 1"), code("second = 2"), code("third = 3"))
    answers(monkeypatch, "use second = 2 instead", "", "stop")
    before = set(shell.user_ns)
    shell.run_cell_magic("agent", "--mode always", "make names")
    assert "first" not in shell.user_ns and shell.user_ns["second"] == 2
    forget_namespace(shell, before)
    go_offline(openai_env, monkeypatch)
    monkeypatch.setattr(builtins, "input", lambda prompt="": pytest.fail("replay asked"))
    shell.run_cell_magic("agent", "--mode always --new --replay", "make names")
    assert "first" not in shell.user_ns and shell.user_ns["second"] == 2
    assert "third" not in shell.user_ns
    log = magics_of(shell)._log()[0]
    assert "[step 1: feedback]" in log and "[step 3: stopped]" in log


def test_changed_task_is_a_drift_at_step_1(shell, openai_env, monkeypatch) -> None:
    openai_env.enqueue("Hello. TERMINATE")
    shell.run_cell_magic("agent", "--mode never", "say hello")
    go_offline(openai_env, monkeypatch)
    with pytest.raises(UsageError) as info:
        shell.run_cell_magic("agent", "--mode never --new --replay", "say goodbye")
    message = str(info.value)
    assert "\n" not in message
    assert "step 1 does not match the recording" in message
    assert "say goodbye" in message and "say hello" in message


def test_changed_output_is_a_drift_naming_the_step(shell, openai_env, monkeypatch, tmp_path):
    data = tmp_path / "data.txt"
    data.write_text("7")
    openai_env.enqueue(
        code(f"print(open({str(data)!r}).read())"), code("print('more')"), "TERMINATE"
    )
    before = set(shell.user_ns)
    shell.run_cell_magic("agent", "--mode never", "read the file")
    forget_namespace(shell, before)
    data.write_text("8")  # the world changed since the recording
    go_offline(openai_env, monkeypatch)
    with pytest.raises(UsageError) as info:
        shell.run_cell_magic("agent", "--mode never --new --replay", "read the file")
    message = str(info.value)
    assert "step 2 does not match the recording" in message
    assert "after step 1" in message and "'8'" in message and "'7'" in message
    assert len(openai_env.requests) == 3


def test_replay_without_a_recording(shell, monkeypatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    with pytest.raises(UsageError, match="no recording at .*agent-recording.jsonl"):
        shell.run_cell_magic("agent", "--replay", "anything")


def test_replay_matches_across_cell_numbers_and_addresses() -> None:
    keyer = transcript.Keyer()
    first = [{"role": "user", "content": "Cell In[3], line 1\n<Foo object at 0x7f3a2b1c>"}]
    later = [{"role": "user", "content": "Cell In[12], line 1\n<Foo object at 0x55d0e9a8>"}]
    other = [{"role": "user", "content": "Cell In[12], line 2\n<Foo object at 0x55d0e9a8>"}]
    assert keyer.replay_key(first, None) == keyer.replay_key(later, None)
    assert keyer.replay_key(first, None) != keyer.replay_key(other, None)
    path = "File ~/.pyenv/versions/3.11.7/lib/python3.11/site-packages/numpy/linalg.py:9"
    assert transcript.normalize(path) == "File <packages>/numpy/linalg.py:9"


# --- the transcript ------------------------------------------------------------------------


def test_transcript_has_requests_replies_decisions_and_steps(shell, openai_env) -> None:
    openai_env.enqueue(code("print(6 * 7)"), "It is 42. TERMINATE")
    shell.run_cell_magic("agent", "--mode never --seed 5", "multiply")
    kinds = [r["event"] for r in records(shell)]
    assert kinds == ["task", "request", "reply", "decision", "code", "request", "reply"] + [
        "decision",
        "finished",
    ]
    task, request, reply, decision, step = records(shell)[:5]
    assert task["task"] == "multiply" and task["model"] == "gpt-4o-mini" and task["seed"] == 5
    assert request["messages"][0]["role"] == "system" and request["seed"] == 5
    assert reply["endpoint"].startswith("gpt-4o-mini @ http://127.0.0.1")
    assert reply["usage"]["prompt_tokens"] > 0 and reply["source"] == "live"
    assert decision["label"] == "ran" and decision["automatic"] is True
    assert step["ok"] and "42" in step["digest"]
    assert step["outputs"] == [{"output_type": "stream", "name": "stdout", "text": "42\n"}]
    second = records(shell)[5]
    assert second["base"] == 2 and [m["role"] for m in second["messages"]] == ["assistant", "user"]


def test_each_step_s_records_are_on_disk_before_code_runs_or_the_model_is_asked(
    shell, openai_env
) -> None:
    """A reply is written with its decision and the last block's result with the next
    request (two writes a step), an earlier block's at once: what each block and the
    model's next turn see on disk."""
    path = recording(shell)
    read = f"import json; seen = [json.loads(l)['event'] for l in open({str(path)!r})]"
    first = read.replace("seen =", "seen_first =")
    two_blocks = f"Two blocks.\n```python\n{first}\n```\n```python\n{read}\n```"
    on_disk: list[list[str]] = []

    def second_turn(request):
        on_disk.append([json.loads(line)["event"] for line in path.read_text().splitlines()])
        return "All done. TERMINATE"

    openai_env.enqueue(two_blocks)
    openai_env.responder = second_turn  # asked once the queue is empty: the second turn
    run_with_person(shell, "--mode never", "two blocks", [])
    # The reply and the decision were on disk when the first block ran, its result when
    # the second block ran.
    assert shell.user_ns["seen_first"] == ["task", "request", "reply", "decision"]
    assert shell.user_ns["seen"][-1] == "code"
    assert shell.user_ns["seen"].count("code") == 1
    # Both results, and the request itself, were on disk when the model was asked again.
    assert on_disk == [["task", "request", "reply", "decision", "code", "code", "request"]]
    assert [r["event"] for r in records(shell)][-3:] == ["reply", "decision", "finished"]


def test_transcript_survives_a_crash_mid_conversation(shell, openai_env) -> None:
    openai_env.enqueue(code("kept = 1"), code("lost = 2"))

    def crash(proposal):
        raise RuntimeError("the kernel died here")

    with pytest.raises(RuntimeError):
        run_with_person(shell, "--mode always", "crash", [lambda p: Decision.run(), crash])
    kinds = [(r["event"], r.get("step")) for r in records(shell)]
    assert ("code", 1) in kinds and ("reply", 2) in kinds
    assert kinds[-1] == ("reply", 2)  # everything up to the moment it died


def test_log_reads_the_transcript(shell, openai_env, capsys) -> None:
    openai_env.enqueue(code("q = 1"), "done TERMINATE")
    shell.run_cell_magic("agent", "--mode never", "a logged task")
    path = magics_of(shell).recorder.store.path
    path.unlink()  # the log reads the records in memory: the file is for others and replay
    shell.run_line_magic("agent", "log")
    out = capsys.readouterr().out
    assert "--- user\na logged task" in out and "q = 1" in out and "done TERMINATE" in out


# --- the seeded cache --------------------------------------------------------------------


def test_seed_answers_a_repeated_request_from_the_cache(shell, openai_env) -> None:
    openai_env.enqueue("Forty-two. TERMINATE", "Forty-three. TERMINATE", "Live. TERMINATE")
    shell.run_cell_magic("agent", "--mode never --seed 42", "the answer?")
    shell.run_cell_magic("agent", "--mode never --seed 42 --new", "the answer?")
    assert len(openai_env.requests) == 1  # the same request with the same seed: a hit
    shell.run_cell_magic("agent", "--mode never --seed 43 --new", "the answer?")
    assert len(openai_env.requests) == 2  # another seed: a miss
    shell.run_cell_magic("agent", "--mode never --new", "the answer?")
    assert len(openai_env.requests) == 3  # no seed: always live
    shell.run_line_magic("config", "AgentMagics.seed = 43")
    shell.run_cell_magic("agent", "--mode never --new", "the answer?")
    assert len(openai_env.requests) == 3  # the trait works as the flag does
    sources = [r["source"] for r in records(shell) if r["event"] == "reply"]
    assert sources == ["live", "cache", "live", "live", "cache"]
    replies = magics_of(shell).history.replies
    assert replies[-1].content == "Forty-three. TERMINATE"


def test_seed_cache_is_read_by_a_new_kernel(shell, openai_env) -> None:
    openai_env.enqueue("Cached. TERMINATE")
    shell.run_cell_magic("agent", "--mode never --seed 1", "remember")
    transcript.stores.clear()  # as if the kernel restarted
    shell.run_cell_magic("agent", "--mode never --seed 1 --new", "remember")
    assert len(openai_env.requests) == 1


def test_model_and_parameters_are_part_of_the_cache_key(shell, openai_env) -> None:
    openai_env.enqueue("a TERMINATE", "b TERMINATE", "c TERMINATE")
    shell.run_cell_magic("agent", "--mode never --seed 1", "same words")
    shell.run_cell_magic("agent", "--mode never --seed 1 --new --model gpt-4o", "same words")
    shell.run_line_magic("config", "AgentMagics.temperature = 0.5")
    try:
        shell.run_cell_magic("agent", "--mode never --seed 1 --new", "same words")
    finally:
        magics_of(shell).temperature = None
    assert len(openai_env.requests) == 3


@pytest.mark.parametrize(
    "damage",
    [
        b"\x00\x9f\xff not json at all\n",
        b'{"event": "reply", "rkey": "x"}\n{"event": "request"\n',
        b'{"event": "reply", "conversation": "c", "step": 1, "rkey": 5, "content": []}\n',
        b'{"event": "decision", "conversation": "c", "step": 1, "action": "explode"}\n',
    ],
)
def test_a_corrupt_cache_is_a_one_line_warning(shell, openai_env, capsys, damage) -> None:
    recording(shell).write_bytes(damage)
    openai_env.enqueue("Fine. TERMINATE", "Again. TERMINATE")
    shell.run_cell_magic("agent", "--mode never --seed 42", "hello")
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("agent:")]
    assert len(lines) == 1 and "unreadable line" in lines[0]
    assert len(openai_env.requests) == 1
    shell.run_cell_magic("agent", "--mode never --seed 42 --new", "hello")
    assert len(openai_env.requests) == 1  # what was written after the damage still works


def test_an_unusable_recording_path_is_a_warning(shell, openai_env, capsys, tmp_path) -> None:
    blocked = tmp_path / "a-directory.jsonl"
    blocked.mkdir()
    magics_of(shell).recording = str(blocked)
    openai_env.enqueue(code("still = 'works'"), "TERMINATE")
    shell.run_cell_magic("agent", "--mode never --seed 3", "go")
    assert shell.user_ns["still"] == "works"
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("agent:")]
    assert len(err) == 2  # cannot read it, cannot write it: one line each
    assert "cannot read" in err[0] and "cannot write" in err[1]


def test_recording_can_be_turned_off(shell, openai_env, tmp_path, capsys) -> None:
    magics_of(shell).recording = ""
    openai_env.enqueue("ok TERMINATE")
    shell.run_cell_magic("agent", "--mode never", "quiet")
    assert list(tmp_path.iterdir()) == []
    shell.run_line_magic("agent", "log")
    assert "quiet" in capsys.readouterr().out


# --- export --------------------------------------------------------------------------------


def test_export_is_a_valid_notebook_with_what_ran(shell, openai_env, tmp_path) -> None:
    openai_env.enqueue(
        code("from IPython.display import display, HTML\ndisplay(HTML('<b>hi</b>'))\n6 * 7"),
        code("1 / 0", words="This will fail:"),
        "```sh\necho from-shell\n```",
        code("value = 41"),
        "Done. TERMINATE",
    )
    answers = [lambda p: Decision.run()] * 3 + [
        lambda p: Decision.run([CodeBlock("python", "value = 42\nprint(value)")]),
        lambda p: Decision.run(),
    ]
    run_with_person(shell, "--mode always", "show the export", list(answers))
    target = tmp_path / "out" / "exported.ipynb"
    shell.run_line_magic("agent", f"export {target}")
    nb = nbformat.read(target, as_version=4)
    nbformat.validate(nb)
    code_cells = [c for c in nb.cells if c.cell_type == "code"]
    assert [c.source for c in code_cells] == [
        "from IPython.display import display, HTML\ndisplay(HTML('<b>hi</b>'))\n6 * 7",
        "1 / 0",
        "%%bash\necho from-shell",
        "value = 42\nprint(value)",  # the code that ran, after the edit
    ]
    first = code_cells[0].outputs
    assert first[0]["data"]["text/html"] == "<b>hi</b>"
    assert first[1]["output_type"] == "execute_result" and first[1]["data"]["text/plain"] == "42"
    error = code_cells[1].outputs[-1]
    assert error["output_type"] == "error" and error["ename"] == "ZeroDivisionError"
    assert code_cells[1].metadata["tags"] == ["raises-exception"]
    assert code_cells[2].outputs[0]["text"] == "from-shell\n"
    edited = code_cells[3].metadata["agent_magic"]
    assert edited["decision"] == "edited and ran" and edited["automatic"] is False
    markdown = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert "show the export" in markdown and "This will fail:" in markdown
    assert "value = 41" in markdown  # the proposal, shown as edited
    assistant = next(c for c in nb.cells if c.cell_type == "markdown" and "step 1" in c.source)
    provenance = assistant.metadata["agent_magic"]
    assert provenance["model"] == "gpt-4o-mini" and provenance["usage"]["prompt_tokens"] > 0
    assert "%%agent" not in json.dumps(nb)


def test_log_and_export_show_reply_images_and_html_inert(shell, openai_env, tmp_path) -> None:
    openai_env.enqueue(
        "![x](https://evil.example/x.png?k=v) <iframe src=https://evil.example>\nTERMINATE"
    )
    shell.run_cell_magic("agent", "--mode never --no-context", "say hi")
    plain, markdown = shell.magics_manager.registry["AgentMagics"]._log()
    target = tmp_path / "inert.ipynb"
    shell.run_line_magic("agent", f"export {target}")
    exported = "\n".join(c.source for c in nbformat.read(target, as_version=4).cells)
    for shown in (markdown, exported):
        assert "![x]" not in shown and "<iframe" not in shown
        assert "[image: x](https://evil.example/x.png?k=v)" in shown
    assert "![x](https://evil.example/x.png?k=v)" in plain  # plain text is not rendered


def test_export_before_any_conversation(shell, tmp_path) -> None:
    with pytest.raises(UsageError, match="nothing to export"):
        shell.run_line_magic("agent", f"export {tmp_path / 'out.ipynb'}")
    assert not (tmp_path / "out.ipynb").exists()


# --- keys never leave the process ------------------------------------------------------------


def test_the_key_is_never_written(shell, openai_env, monkeypatch, tmp_path, capsys) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SENTINEL)
    openai_env.enqueue(
        code("import os\nprint('key set:', 'OPENAI_API_KEY' in os.environ)"),
        Failure(401, f"Incorrect API key provided: {SENTINEL}"),
    )
    with pytest.raises(UsageError, match="authentication failed"):
        shell.run_cell_magic("agent", "--mode never --seed 7", "check the environment")
    config = [{"model": "gpt-4o-mini", "base_url": openai_env.base_url, "api_key": SENTINEL}]
    shell.run_line_magic("config", f"AgentMagics.config_list = {json.dumps(json.dumps(config))}")
    openai_env.enqueue(code("x = 1"), "TERMINATE")
    shell.run_cell_magic("agent", "--mode never --new", "again, with a config list")
    shell.run_line_magic("agent", "log")
    shell.run_line_magic("agent", "usage")
    shell.run_line_magic("agent", f"export {tmp_path / 'export.ipynb'}")
    captured = capsys.readouterr()
    written = recording(shell).read_text() + (tmp_path / "export.ipynb").read_text()
    assert "check the environment" in written and "key set: True" in written
    for text in (written, captured.out, captured.err):
        assert "SENTINEL" not in text


def test_a_key_the_code_prints_is_not_kept(shell, openai_env, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SENTINEL)
    openai_env.enqueue(code("import os\nprint(os.environ['OPENAI_API_KEY'])"), "TERMINATE")
    shell.run_cell_magic("agent", "--mode never", "print the key (a careless step)")
    shell.run_line_magic("agent", f"export {tmp_path / 'export.ipynb'}")
    written = recording(shell).read_text() + (tmp_path / "export.ipynb").read_text()
    assert "SENTINEL" not in written and "[hidden: $OPENAI_API_KEY]" in written
    sent = json.dumps([r.json for r in openai_env.requests])
    assert "SENTINEL" not in sent  # nor sent to the model


def test_secrets_and_redaction(monkeypatch) -> None:
    """The cell's redactor: key-like environment values (8+ characters), configured
    keys, key-shaped text; the word boundary keeps "task-..." intact."""
    monkeypatch.setenv("OPENAI_API_KEY", SENTINEL)
    monkeypatch.setenv("SHORT_TOKEN", "abc")

    class Chat:
        endpoints = [type("Endpoint", (), {"api_key": "configured-key-123456"})()]

    redactor = transcript.cell_redactor(Chat())
    text = f"key={SENTINEL} task-based abc sk-proj-Ab3dEfGh1jKlMn0pQrStUv configured-key-123456"
    shown = redactor.redact(text)
    assert SENTINEL not in shown and "sk-proj-Ab3" not in shown and "configured-key" not in shown
    assert "task-based abc" in shown and redactor.hidden == 3


def test_replay_env_parsing() -> None:
    assert transcript.replay_from_env({"AGENT_MAGIC_REPLAY": "1"}) is True
    assert transcript.replay_from_env({"AGENT_MAGIC_REPLAY": "off"}) is False
    assert transcript.replay_from_env({}) is None
    assert transcript.recording_path("") is None
    assert transcript.recording_path("r.jsonl", "/nb") == Path("/nb/r.jsonl")
    assert transcript.recording_path(os.path.join("/abs", "r.jsonl")) == Path("/abs/r.jsonl")


def test_help_names_the_recording_flags() -> None:
    from agent_magic.magic import AgentMagics

    doc = AgentMagics.agent.__doc__
    for words in ("--seed N", "--replay", "%agent export", "agent-recording.jsonl"):
        assert words in doc
    assert AgentMagics.class_traits()["replay"].help.count("AGENT_MAGIC_REPLAY") == 1
