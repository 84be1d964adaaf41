"""Secrets a step prints, displays, returns or raises never leave: not to the model, not
into the recording, the export or the log, and not into the cell's own output.

Every credential shape :mod:`agent_magic.secrets` knows is read by a step from an
environment variable whose name says nothing (only its shape gives it away), and one more
from an environment variable whose name looks secret; the step prints them, displays them
as text, HTML and Markdown, returns them and raises with them. A real shell runs the cells
against the local server; what the server received, the files and what the cell showed are
then searched for every random part of every value.
"""

from __future__ import annotations

import base64
import json
import random
import string
import time

import pytest
from conftest import code
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output

from agent_magic.secrets import Redactor
from agent_magic.testing import FakeOpenAIServer

_ALNUM = string.ascii_letters + string.digits


class Secret:
    """A credential-shaped value built from random parts, so a test can look for each part."""

    def __init__(self, label: str, *pieces: str) -> None:
        self.label = label
        self.parts = [p for p in pieces if not p.startswith("=")]
        self.value = "".join(p.removeprefix("=") for p in pieces)


def shapes(seed: int) -> list[Secret]:
    """One value of every shape: literal prefixes (``=``) and random parts."""
    rng = random.Random(seed)

    def core(n: int, alphabet: str = _ALNUM) -> str:
        # digits and both cases, as a real key has (the rules tell keys from words by it)
        return (rng.choice("ABCDEFGH") + rng.choice("abcdefgh") + rng.choice("123456789")) + (
            "".join(rng.choice(alphabet) for _ in range(n - 3))
        )

    upper = string.ascii_uppercase + string.digits
    body = base64.b64encode(rng.randbytes(240)).decode()
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return [
        Secret("OpenAI API key", "=sk-", core(40)),
        Secret("OpenAI project key", "=sk-proj-", core(48)),
        Secret("Anthropic API key", "=sk-ant-api03-", core(40)),
        Secret("AWS access key id", "=AKIA", core(16, upper).upper()),
        Secret("AWS session key id", "=ASIA", core(16, upper).upper()),
        Secret("GitHub token", "=ghp_", core(36)),
        Secret("GitHub fine-grained token", "=github_pat_", core(22), "=_", core(40)),
        Secret("Slack token", "=xoxb-", core(12, string.digits), "=-", core(24)),
        Secret("Google API key", "=AIza", core(35)),
        Secret("JSON web token", "=eyJ", core(30), "=.", core(40), "=.", core(30)),
        Secret(
            "private key",
            "=-----BEGIN RSA PRIVATE KEY-----\n",
            *[piece for line in lines for piece in (line, "=\n")],
            "=-----END RSA PRIVATE KEY-----",
        ),
    ]


SHAPED = shapes(1)  # read from AGENTTEST_<i>_VALUE: only the shape says it is a secret
NAMED = "plain-looking-Value-7730-xyz"  # in MY_SERVICE_TOKEN: only the name says it


def everything_it_left(
    shell, server: FakeOpenAIServer, tmp_path, shown: capture_output
) -> dict[str, str]:
    """Every place a value could have gone: the requests, the files, what was shown."""
    with capture_output() as log:
        shell.run_line_magic("agent", "log")
    export = tmp_path / "out.ipynb"
    with capture_output():
        shell.run_line_magic("agent", f"export {export}")
    magics = shell.magics_manager.registry["AgentMagics"]

    def text(captured: capture_output) -> str:
        data = [json.dumps(o.data, ensure_ascii=False) for o in captured.outputs]
        return "\n".join([captured.stdout, captured.stderr, *data])

    return {
        "requests": "\n".join(r.body.decode("utf-8") for r in server.requests),
        "recording": open(magics.recording, encoding="utf-8").read(),
        "export": export.read_text(encoding="utf-8"),
        "log": text(log),
        "cell output": text(shown),
    }


def assert_absent(places: dict[str, str], secrets: list[Secret]) -> None:
    for where, text in places.items():
        for secret in secrets:
            assert secret.value not in text, (where, secret.label)
            for part in secret.parts:
                if len(part) >= 12:
                    assert part not in text, (where, secret.label, part)


@pytest.fixture
def secrets_env(monkeypatch: pytest.MonkeyPatch) -> list[Secret]:
    for i, secret in enumerate(SHAPED):
        monkeypatch.setenv(f"AGENTTEST_{i}_VALUE", secret.value)
    monkeypatch.setenv("MY_SERVICE_TOKEN", NAMED)
    return [*SHAPED, Secret("named", NAMED)]


READ = (
    "import os, sys\n"
    "values = [os.environ[f'AGENTTEST_{i}_VALUE'] for i in range({n})]\n"
    "values.append(os.environ['MY_SERVICE_TOKEN'])\n"
)


def test_every_shape_printed_displayed_returned_or_raised_never_leaves(
    shell, openai_env: FakeOpenAIServer, secrets_env, tmp_path
) -> None:
    read = READ.replace("{n}", str(len(SHAPED)))
    openai_env.enqueue(
        code(read + "for v in values:\n    print('got', v)\nsys.stderr.write(values[0] + '\\n')"),
        code(
            "from IPython.display import display\n"
            "for v in values:\n"
            "    display({'text/plain': v, 'text/html': f'<b>{v}</b>',"
            " 'text/markdown': f'**{v}**'}, raw=True)\n"
            "{'first': values[0], 'last': values[-1]}"
        ),
        code("raise ValueError('bad key ' + values[3] + ' and ' + values[-1])"),
        "Done. TERMINATE",
    )
    with capture_output() as shown:
        shell.run_cell_magic("agent", "--mode never", "Look at the keys.")
    places = everything_it_left(shell, openai_env, tmp_path, shown)
    assert_absent(places, secrets_env)
    # hidden, not dropped: the markers say what each was
    told = places["requests"]
    for label in ("AWS access key id", "JSON web token", "private key", "$MY_SERVICE_TOKEN"):
        assert f"[hidden: {label}]" in told, label
    assert "got [hidden: " in places["cell output"] and "ValueError: bad key" in told
    # the terminal's step record says how many each step hid
    assert f"[step 1: {len(secrets_env) + 1} secret values hidden]" in shown.stdout
    assert "[step 2: " in shown.stdout and "[step 3: 2 secret values hidden]" in shown.stdout


def test_a_secret_bound_by_one_step_is_hidden_in_the_next_one_as_it_runs(
    shell, openai_env: FakeOpenAIServer, tmp_path
) -> None:
    password = "hunter2-" + "correct-horse-battery"  # no shape: only its name gives it away
    openai_env.enqueue(
        code(f"db_password = {'hunter2-'!r} + {'correct-horse-battery'!r}\nprint(db_password)"),
        code("print('again', db_password)\ndb_password"),
        "Done. TERMINATE",
    )
    with capture_output() as shown:
        shell.run_cell_magic("agent", "--mode never", "Set a password.")
    # Step 1 bound it and printed it at once: the cell showed it as it ran (nothing knew
    # the name yet); it went no further.
    step_2 = shown.stdout.split("again", 1)[1]
    assert password not in step_2 and "[hidden: variable db_password]" in step_2
    places = everything_it_left(shell, openai_env, tmp_path, shown)
    del places["cell output"]
    assert_absent(places, [Secret("password", password)])
    assert shell.user_ns["db_password"] == password  # hidden from others, not changed


def test_user_patterns_and_names_from_the_traits_are_hidden_too(
    shell, openai_env: FakeOpenAIServer, tmp_path, monkeypatch
) -> None:
    magics = shell.magics_manager.registry["AgentMagics"]
    monkeypatch.setattr(magics, "secret_patterns", [r"acme_[A-Za-z0-9]{20}"])
    monkeypatch.setattr(magics, "secret_names", ["dsn"])
    house = Secret("house key", "=acme_", "Zq8" + "x" * 5 + "Yw3vT7pL9kQ2")
    dsn = Secret("dsn", "=https://", "u5er:pa55w0rd-sentry", "=@sentry.example/42")
    monkeypatch.setenv("PLAIN_SETTING", house.value)
    monkeypatch.setenv("SENTRY_DSN", dsn.value)
    openai_env.enqueue(
        code("import os\nprint(os.environ['PLAIN_SETTING'], os.environ['SENTRY_DSN'])"),
        "Done. TERMINATE",
    )
    with capture_output() as shown:
        shell.run_cell_magic("agent", "--mode never", "Show the settings.")
    places = everything_it_left(shell, openai_env, tmp_path, shown)
    assert_absent(places, [house, dsn])
    assert "[hidden: custom pattern]" in places["cell output"]
    assert "[hidden: $SENTRY_DSN]" in places["requests"]


def test_a_pattern_that_is_not_a_regex_is_one_line(shell, monkeypatch) -> None:
    magics = shell.magics_manager.registry["AgentMagics"]
    monkeypatch.setattr(magics, "secret_patterns", ["acme_[A-Z"])
    with pytest.raises(UsageError, match="fix it in AgentMagics.secret_patterns"):
        shell.run_cell_magic("agent", "--mode never", "anything")


def test_a_key_printed_line_by_line_is_hidden_whole(shell) -> None:
    from agent_magic.codeblocks import CodeBlock
    from agent_magic.executor import IPythonExecutor

    key = SHAPED[-1]
    shell.user_ns["pem_text"] = key.value
    executor = IPythonExecutor(shell, redactor=Redactor.build(env={}))
    with capture_output() as shown:
        outcome = executor.run(
            CodeBlock("python", "import sys\nfor line in pem_text.splitlines():\n    print(line)")
        )
    assert_absent({"shown": shown.stdout, "digest": outcome.digest}, [key])
    assert "[hidden: private key]" in shown.stdout and outcome.hidden == 1
    shell.user_ns.pop("pem_text")


def test_the_trait_help_documents_the_rules() -> None:
    from agent_magic.magic import AgentMagics

    traits = AgentMagics.class_traits(config=True)
    assert "regular expression" in traits["secret_patterns"].help
    assert "SENTRY_DSN" in traits["secret_names"].help


def test_hiding_costs_little_per_step(capsys) -> None:
    """A typical 2 KB digest is redacted well under a millisecond (timed loosely here;
    the figure is printed for the report)."""
    redactor = Redactor.build(
        env={"MY_SERVICE_TOKEN": NAMED},
        namespace={f"v{i}": i for i in range(1000)} | {"db_password": "hunter2hunter2"},
    )
    line = "epoch 12 loss=0.1234 accuracy=0.9876 lr=0.001 elapsed=12.3s\n"
    digest = (line * 40)[:2048]
    runs = 2000
    start = time.perf_counter()
    for _ in range(runs):
        redactor.redact(digest)
    per_digest = (time.perf_counter() - start) / runs
    start = time.perf_counter()
    for _ in range(runs):
        redactor.redact(line)
    per_line = (time.perf_counter() - start) / runs
    start = time.perf_counter()
    for _ in range(100):
        redactor.refresh()
    per_refresh = (time.perf_counter() - start) / 100
    with capsys.disabled():
        print(
            f"\n[redact a 2 KB digest: {per_digest * 1e3:.3f} ms; a line: {per_line * 1e6:.1f} µs;"
            f" refresh from 1,000 names: {per_refresh * 1e3:.3f} ms]"
        )
    assert per_digest < 0.05  # 50 ms: only a runaway regex on a loaded machine gets here


@pytest.mark.parametrize("secret", SHAPED, ids=lambda s: s.label)
def test_a_key_at_the_start_of_a_line_is_hidden_in_a_json_message(secret: Secret) -> None:
    """Messages and records are redacted as JSON text, where a line break is the two
    characters ``\\n``: the key after it starts a word all the same."""
    from agent_magic.transcript import RedactingChat

    sent: list[list[dict]] = []

    class Chat:
        model = "m"

        def stream(self, messages, *, tools=None):
            sent.append(messages)
            return iter(())

    chat = RedactingChat(Chat(), Redactor.build(env={}))
    for text in (f"stderr:\n{secret.value}\n", f"a\tb\r\n{secret.value}"):
        chat.stream([{"role": "user", "content": text}])
    assert_absent({"sent": json.dumps(sent)}, [secret])


def test_the_widget_record_says_how_many_values_a_step_hid() -> None:
    from agent_magic.codeblocks import CodeBlock
    from agent_magic.conversation import CodeRan, Decided, Decision, Proposal, StepOutcome
    from agent_magic.ui.widget import Display, NotebookUI

    class Outputs(Display):
        def __init__(self) -> None:
            self.bundles: list[dict] = []

        def show(self, bundle: dict) -> int:
            self.bundles.append(bundle)
            return len(self.bundles) - 1

        def update(self, handle: int, bundle: dict) -> None:
            self.bundles[handle] = bundle

    outputs = Outputs()
    ui = NotebookUI(interactive=False, display=outputs)
    block = CodeBlock("python", "print(token)")
    proposal = Proposal(step=1, reply="", blocks=(block,))
    ui(Decided(proposal, Decision("run"), automatic=True))
    ui(CodeRan(1, 0, block, StepOutcome(ok=True, digest="", hidden=3)))
    record = outputs.bundles[-1]
    assert "✓ ok · 3 secret values hidden" in record["text/markdown"]
    assert "3 secret values hidden" in record["text/plain"]


def test_in_a_kernel_the_notebook_keeps_no_secret_a_step_showed(
    openai_env: FakeOpenAIServer, tmp_path, monkeypatch
) -> None:
    """nbclient: ipykernel's own stdout, display publisher and traceback display."""
    import nbformat
    from nbclient import NotebookClient

    token, key = Secret("named", NAMED), SHAPED[3]
    monkeypatch.setenv("MY_SERVICE_TOKEN", token.value)
    monkeypatch.setenv("AGENTTEST_VALUE", key.value)
    openai_env.enqueue(
        code(
            "import os\nfrom IPython.display import Markdown, display\n"
            "print(os.environ['MY_SERVICE_TOKEN'])\n"
            "display(Markdown('**' + os.environ['AGENTTEST_VALUE'] + '**'))\n"
            "raise KeyError(os.environ['AGENTTEST_VALUE'])"
        ),
        "Done. TERMINATE",
    )
    cells = ["%load_ext agent_magic", "%%agent --mode never --no-context\nShow them."]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in cells])
    NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    saved = json.dumps(nb.cells[1].outputs, ensure_ascii=False)
    places = {
        "notebook": saved,
        "requests": "\n".join(r.body.decode() for r in openai_env.requests),
        "recording": (tmp_path / "agent-recording.jsonl").read_text(encoding="utf-8"),
    }
    assert_absent(places, [token, key])
    assert "[hidden: $MY_SERVICE_TOKEN]" in saved and "[hidden: AWS access key id]" in saved
    assert "KeyError" in saved and "secret values hidden" in saved


def test_a_shell_step_s_output_is_hidden_too(
    shell, openai_env: FakeOpenAIServer, secrets_env, tmp_path
) -> None:
    openai_env.enqueue(
        'Next step:\n```sh\necho "$MY_SERVICE_TOKEN"; echo "$AGENTTEST_0_VALUE" >&2\n```',
        "Done. TERMINATE",
    )
    with capture_output() as shown:
        shell.run_cell_magic("agent", "--mode never", "Echo them.")
    places = everything_it_left(shell, openai_env, tmp_path, shown)
    assert_absent(places, [secrets_env[0], secrets_env[-1]])
    assert "[step 1: 2 secret values hidden]" in shown.stdout
