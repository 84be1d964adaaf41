"""Known secrets hidden in pieces too (issue 20): a key printed over two lines, a password
cut short by pandas' repr, each half of a short key. Any run of 12 or more characters of
a known value is hidden like the whole: in what reaches the model, the recording, the
export, ``%agent log`` and the cell."""

from __future__ import annotations

import random
import string

from IPython.utils.capture import capture_output
from test_step_secrets import Secret, assert_absent, code, everything_it_left

from agent_magic.secrets import Redactor
from agent_magic.secrets.pieces import MIN_PIECE

_ALNUM = string.ascii_letters + string.digits


def plain(n: int, seed: int) -> str:
    """A value with no credential shape: only being known makes it a secret."""
    return "".join(random.Random(seed).choices(_ALNUM, k=n))


def pieces(value: str) -> list[str]:
    """Every run of MIN_PIECE characters of ``value``: none may be left anywhere."""
    return [value[i : i + MIN_PIECE] for i in range(len(value) - MIN_PIECE + 1)]


def test_halves_cut_reprs_and_split_lines_of_known_secrets_never_leave(
    shell, openai_env, tmp_path, monkeypatch
) -> None:
    key = plain(32, 1)  # the configured key: 32 characters, so each half is 16
    token = plain(40, 2)
    password = plain(64, 3)
    monkeypatch.setenv("OPENAI_API_KEY", key)
    monkeypatch.setenv("MY_SERVICE_TOKEN", token)
    shell.user_ns["db_password"] = password
    openai_env.enqueue(
        code(
            "import os\n"
            "k = os.environ['OPENAI_API_KEY']\n"
            "print(k[:16])\n"
            "print(k[16:])\n"
            "t = os.environ['MY_SERVICE_TOKEN']\n"
            "print(t[:20] + '\\n' + t[20:])"
        ),
        code(
            "import pandas as pd\n"
            "pd.set_option('display.max_colwidth', 50)\n"
            "pd.DataFrame({'user': ['ann'], 'secret': [db_password]})"
        ),
        "Done. TERMINATE",
    )
    with capture_output() as shown:
        shell.run_cell_magic("agent", "--mode never", "Show the settings in pieces.")
    places = everything_it_left(shell, openai_env, tmp_path, shown)
    secrets = [Secret(name, *pieces(value)) for name, value in [("key", key), ("token", token)]]
    secrets.append(Secret("password", *pieces(password)))
    assert_absent(places, secrets)
    told = places["requests"]
    assert "[hidden: $MY_SERVICE_TOKEN]" in told and "[hidden: variable db_password]..." in told
    assert "[hidden: " in places["cell output"] and "ann" in told  # hidden, not dropped
    assert shell.user_ns["db_password"] == password  # hidden from others, not changed


def test_only_runs_of_twelve_or_more_characters_are_hidden() -> None:
    secret = plain(40, 4)
    redactor = Redactor.build(env={}, values=[secret])
    assert redactor.redact(f"a {secret[:11]} b") == f"a {secret[:11]} b"
    assert redactor.redact(f"a {secret[:12]} b") == "a [hidden: api key] b"
    assert redactor.redact(f"{secret[5:30]}\n{secret[30:]}{secret[:20]}") == (
        "[hidden: api key]\n" + secret[30:] + "[hidden: api key]"
    )
    # a run that continues past the secret's end stops there
    assert redactor.redact(secret[-15:] + "tail") == "[hidden: api key]tail"


def test_pieces_of_a_secret_inside_json_text_are_hidden() -> None:
    secret = plain(48, 5)
    redactor = Redactor.build(env={"SERVICE_PASSWORD": secret})
    line = '{"outputs":["' + secret[:24] + "\\n" + secret[24:] + '"]}'
    clean = redactor.redact(line)
    assert secret[:12] not in clean and secret[-12:] not in clean
    assert clean == '{"outputs":["[hidden: $SERVICE_PASSWORD]\\n[hidden: $SERVICE_PASSWORD]"]}'


def test_a_path_under_a_secret_name_is_hidden_whole_but_its_folders_stay_readable() -> None:
    path = "/home/analyst/project/credentials/service-account.json"
    redactor = Redactor.build(env={"GOOGLE_APPLICATION_CREDENTIALS": path})
    trace = 'File "/home/analyst/project/notebook.py", line 3'
    assert redactor.redact(trace) == trace
    assert redactor.redact(f"using {path}") == "using [hidden: $GOOGLE_APPLICATION_CREDENTIALS]"


def test_with_many_secrets_known_every_piece_is_still_found() -> None:
    """Past a few secrets the search probes the text instead of finding each block: the
    same pieces are hidden either way."""
    secrets = [plain(40, seed) for seed in range(10, 22)]
    many = Redactor.build(env={f"SERVICE_{i}_TOKEN": s for i, s in enumerate(secrets)})
    assert many._pieces().blocks is None  # the probing search
    one = Redactor.build(env={"SERVICE_0_TOKEN": secrets[0]})
    assert one._pieces().blocks is not None  # the block search
    text = "\n".join(f"x {s[:13]} y {s[13:27]}\n{s[27:]}z" for s in secrets)
    hidden = many.redact(text)
    for secret in secrets:
        assert all(piece not in hidden for piece in pieces(secret))
    assert hidden.count("[hidden: $SERVICE_") == 3 * len(secrets)  # pieces of 13, 14, 13
    shown = one.redact(text)
    assert secrets[0][:13] not in shown and secrets[1][:13] in shown
