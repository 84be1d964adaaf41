"""agent_magic.secrets: every credential shape hidden wherever it sits, nothing else touched."""

from __future__ import annotations

import base64
import hashlib
import json
import random
import time
import uuid

import pytest

from agent_magic.secrets import (
    DEFAULT_RULES,
    Redactor,
    SecretRules,
    is_secret_name,
    looks_like_credential,
)

# Built from pieces so no scanner mistakes this file for a leak; each is shaped like the real
# thing (length and alphabet).
RANDOM = "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8S9t0"
CREDENTIALS = {
    "OpenAI API key": "sk-" + RANDOM + "Uv1wXy4z",
    "OpenAI project key": "sk-" + "proj-" + RANDOM + "_-" + RANDOM,
    "Anthropic API key": "sk-" + "ant-api03-" + RANDOM + "-" + RANDOM + "AA",
    "AWS access key id": "AKIA" + "IOSFODNN7EXAMPLE",
    "AWS session key id": "ASIA" + "Y34FZKBOKMUTVV7A",
    "GitHub token": "ghp_" + RANDOM[:36],
    "GitHub OAuth token": "gho_" + RANDOM[4:40],
    "GitHub fine-grained token": "github_pat_" + "11ABCDEFG0" + RANDOM + "_" + RANDOM,
    "Slack token": "xoxb-" + "123456789012-1234567890123-" + RANDOM[:24],
    "Slack user token": "xoxp-" + "123456789012-1234567890123-" + RANDOM[:24],
    "Google API key": "AIza" + "SyD-" + RANDOM[:31],
    "JSON web token": "eyJ" + "hbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
    ".eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIn0"
    ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
    "Stripe secret key": "sk_" + "live_" + RANDOM[:24],
    "Hugging Face token": "hf_" + "aBcDeFgHiJkLmNoPqRsTuVwXyZaBcDeFgH",
    "bearer token": "Bearer " + "abc123" + RANDOM,
}
PEM_KINDS = ("", "RSA ", "EC ", "OPENSSH ", "ENCRYPTED ", "DSA ")


def pem(kind: str = "RSA ") -> str:
    body = base64.b64encode(random.Random(kind).randbytes(300)).decode()
    lines = "\n".join(body[i : i + 64] for i in range(0, len(body), 64))
    return f"-----BEGIN {kind}PRIVATE KEY-----\n{lines}\n-----END {kind}PRIVATE KEY-----"


AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


@pytest.mark.parametrize("label", sorted(CREDENTIALS))
def test_each_credential_shape_is_hidden_in_text(label: str) -> None:
    secret = CREDENTIALS[label]
    redactor = Redactor.build(env={})
    for text in (
        secret,
        f"printed: {secret}\n",
        f"config = {{'key': '{secret}'}}",
        json.dumps({"content": f"value={secret};"}),
        f"Authorization: {secret}",
    ):
        out = redactor.redact(text)
        assert secret not in out, text
        core = secret.removeprefix("Bearer ")
        assert core[8:24] not in out
        assert "[hidden: " in out
    assert redactor.hidden == 5


def test_markers_name_the_shape() -> None:
    redactor = Redactor.build(env={})
    text = "key=sk-test-SENTINEL-7f3a9c1e5b2d4680aa task-based sk-proj-abcdefghijklmnopqrstuv"
    assert (
        redactor.redact(text) == "key=[hidden: OpenAI API key] task-based [hidden: OpenAI API key]"
    )
    assert (
        redactor.redact(f"id {CREDENTIALS['AWS access key id']}.")
        == "id [hidden: AWS access key id]."
    )
    assert redactor.redact(CREDENTIALS["OpenAI API key"]) == "[hidden: OpenAI API key]"
    assert redactor.redact(CREDENTIALS["Anthropic API key"]) == "[hidden: Anthropic API key]"
    assert redactor.redact(CREDENTIALS["JSON web token"]) == "[hidden: JSON web token]"


def test_aws_secret_next_to_its_key_id_is_hidden() -> None:
    key_id = CREDENTIALS["AWS access key id"]
    text = f"aws_access_key_id = {key_id}\naws_secret_access_key = {AWS_SECRET}\n"
    out = Redactor.build(env={}).redact(text)
    assert key_id not in out and AWS_SECRET not in out
    assert "[hidden: AWS secret access key]" in out
    # Alone, a 40-character string is not taken for one (it could be anything).
    assert Redactor.build(env={}).redact(AWS_SECRET) == AWS_SECRET


@pytest.mark.parametrize("kind", PEM_KINDS)
def test_private_key_blocks_are_hidden_whole(kind: str) -> None:
    block = pem(kind)
    redactor = Redactor.build(env={})
    out = redactor.redact(f"before\n{block}\nafter")
    assert out == "before\n[hidden: private key]\nafter"
    # Written into JSON (newlines as \n), and cut before its END line by a digest.
    assert redactor.redact(json.dumps(block)) == '"[hidden: private key]"'
    cut = block[: len(block) // 2]
    assert redactor.redact(f"x\n{cut}\n«900 characters cut here»").startswith(
        "x\n[hidden: private key]"
    )
    assert block.splitlines()[2] not in redactor.redact(cut)


def test_public_keys_and_certificates_are_left() -> None:
    text = "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkq\n-----END PUBLIC KEY-----"
    assert Redactor.build(env={}).redact(text) == text


def test_environment_variables_with_secret_names() -> None:
    env = {
        "MY_SERVICE_TOKEN": "tok-0123456789",
        "OPENAI_API_KEY": "local-key-abcdef",
        "PGPASSWORD": "hunter2hunter2",
        "GithubToken": "gh-value-98765",
        "SHORT_TOKEN": "abc",  # under 8 characters: too common to hide
        "PATH": "/usr/local/bin:/usr/bin",
        "KEYBOARD_LAYOUT": "us-international",
        "PWD": "/home/user/project",
        "SSH_AUTH_SOCK": "/tmp/ssh-XXXX/agent.123",
        "GOOGLE_APPLICATION_CREDENTIALS_FILE": "/home/user/creds.json",
    }
    redactor = Redactor.build(env=env)
    text = "\n".join(f"{k}={v}" for k, v in env.items())
    out = redactor.redact(text)
    assert "MY_SERVICE_TOKEN=[hidden: $MY_SERVICE_TOKEN]" in out
    assert "OPENAI_API_KEY=[hidden: $OPENAI_API_KEY]" in out
    assert "PGPASSWORD=[hidden: $PGPASSWORD]" in out
    assert "GithubToken=[hidden: $GithubToken]" in out
    for kept in ("SHORT_TOKEN=abc", "/usr/local/bin", "us-international", "/home/user/project"):
        assert kept in out
    assert "/tmp/ssh-XXXX/agent.123" in out and "/home/user/creds.json" in out
    assert redactor.hidden == 4


def test_env_values_are_found_in_json_and_repr_forms() -> None:
    value = 'pa"ss\\word\nline2'
    redactor = Redactor.build(env={"DB_PASSWORD": value})
    assert value not in redactor.redact(value)
    assert "[hidden: $DB_PASSWORD]" in redactor.redact(json.dumps({"out": value}))
    assert "[hidden: $DB_PASSWORD]" in redactor.redact(repr(value))


def test_namespace_variables_with_secret_names() -> None:
    namespace = {
        "aws_secret": "my-aws-secret-value-1",
        "db_password": "hunter2hunter2",
        "config": {"api_key": "config-api-key-value", "nested": {"token": "nested-token-value"}},
        "short_token": "abc",
        "tokenizer": "bert-base-uncased",
        "keys": "not-a-secret-list",
        "_private_key": "private-but-underscore",
        "n_tokens": 12345678,
    }
    redactor = Redactor.build(env={}, namespace=namespace)
    text = "\n".join(f"{k}: {v}" for k, v in namespace.items())
    out = redactor.redact(text)
    assert "[hidden: variable aws_secret]" in out
    assert "[hidden: variable db_password]" in out
    assert "[hidden: variable config['api_key']]" in out
    assert "[hidden: variable config['nested']['token']]" in out
    for kept in ("bert-base-uncased", "not-a-secret-list", "12345678", "short_token: abc"):
        assert kept in out
    for gone in ("my-aws-secret-value-1", "hunter2hunter2", "config-api-key-value"):
        assert gone not in out


def test_aws_key_in_a_variable_and_printed() -> None:
    # The example: aws_secret = "AKIA..."; print(aws_secret)
    key = CREDENTIALS["AWS access key id"]
    redactor = Redactor.build(env={}, namespace={"aws_secret": key})
    out = redactor.redact(f"aws_secret = {key!r}; print(aws_secret)\n{key}\n")
    assert key not in out
    assert out.count("[hidden: variable aws_secret]") == 2


def test_extra_values_such_as_configured_keys() -> None:
    redactor = Redactor.build(env={}, values=["local-secret-key-1", "short", None])  # type: ignore[list-item]
    assert redactor.redact("key local-secret-key-1 short") == "key [hidden: api key] short"


def test_longest_value_wins_when_one_contains_another() -> None:
    env = {"API_TOKEN": "abcdefgh", "LONG_TOKEN": "abcdefgh-and-more"}
    out = Redactor.build(env=env).redact("abcdefgh-and-more abcdefgh")
    assert out == "[hidden: $LONG_TOKEN] [hidden: $API_TOKEN]"


def test_redact_json_is_deep_and_counts() -> None:
    key = CREDENTIALS["GitHub token"]
    redactor = Redactor.build(env={"X_TOKEN": "tok-12345678"})
    data = {
        "messages": [{"role": "user", "content": f"use {key}"}, ("tok-12345678", 3)],
        "n": 1,
        "flag": None,
    }
    out = redactor.redact_json(data)
    assert out == {
        "messages": [
            {"role": "user", "content": "use [hidden: GitHub token]"},
            ("[hidden: $X_TOKEN]", 3),
        ],
        "n": 1,
        "flag": None,
    }
    assert redactor.hidden == 2
    clean = {"a": ["b", 1]}
    assert redactor.redact_json(clean) is clean
    cyclic: list[object] = ["x"]
    cyclic.append(cyclic)
    assert redactor.redact_json(cyclic) is cyclic


def test_redaction_is_idempotent_on_markers() -> None:
    redactor = Redactor.build(env={"MY_TOKEN": "abcdefgh1234"})
    once = redactor.redact(f"{CREDENTIALS['OpenAI API key']} abcdefgh1234 {pem()}")
    assert redactor.redact(once) == once


# -- no false positives ------------------------------------------------------------------

ORDINARY = [
    "task-1234567890abcdef",
    "skip-connection-1234567890abcdefghij",
    "risk-assessment-2024-abcdefghijklmnop",
    "sk-learn-compatible-estimators-everywhere",
    "desk-sk-" + "0123456789abcdefghijklmnop",  # not a key: must stay
    "Bearer authentication-is-required-here",
    hashlib.sha256(b"x").hexdigest(),
    hashlib.sha1(b"x").hexdigest() + " AKIA is a prefix",
    str(uuid.UUID(int=0x1234567890ABCDEF1234567890ABCDEF)),
    "def main(api_key: str) -> None:\n    client = OpenAI(api_key=api_key)\n    return None\n",
    "for key, token in zip(keys, tokens):\n    print(key, token)\n",
    "import os\nos.environ['OPENAI_API_KEY']\nhf_hub_download(repo_id='gpt2')\n",
    "AKIAL is a word, ASIAN too; eyJ alone; ghp_short; xoxb-; AIza-short",
    "/usr/lib/python3.11/site-packages/numpy/__init__.py",
    "https://example.com/path?query=value&other=1",
]


@pytest.mark.parametrize("text", ORDINARY)
def test_ordinary_text_is_left_alone(text: str) -> None:
    redactor = Redactor.build(env={})
    assert redactor.redact(text) == text
    assert redactor.hidden == 0


def test_base64_of_a_png_is_left_alone() -> None:
    png = b"\x89PNG\r\n\x1a\n" + random.Random(7).randbytes(200_000)
    encoded = base64.b64encode(png).decode()
    assert Redactor.build(env={}).redact(encoded) == encoded


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("api_key", True),
        ("OPENAI_API_KEY", True),
        ("GithubToken", True),
        ("APIKey", True),
        ("MYAPIKEY", True),
        ("db_password", True),
        ("PGPASSWORD", True),
        ("client_secret", True),
        ("aws_secret", True),
        ("AWS_SECRET_ACCESS_KEY", True),
        ("GOOGLE_CREDENTIALS", True),
        ("auth", True),
        ("MYSQL_PWD", True),
        ("private_key", True),
        ("PATH", False),
        ("KEYBOARD", False),
        ("monkey", False),
        ("tokenizer", False),
        ("author", False),
        ("PWD", False),
        ("OLDPWD", False),
        ("SSH_AUTH_SOCK", False),
        ("KEY_FILE", False),
        ("keys", False),
        ("n_tokens", False),
        ("", False),
        ("_", False),
    ],
)
def test_secret_names(name: str, secret: bool) -> None:
    assert is_secret_name(name) is secret


def test_odd_names_and_values() -> None:
    assert is_secret_name(None) is False  # type: ignore[arg-type]
    assert is_secret_name(3) is False  # type: ignore[arg-type]
    assert looks_like_credential(CREDENTIALS["GitHub token"])
    assert looks_like_credential("sk-test-SENTINEL")
    assert not looks_like_credential("skip this")
    assert not looks_like_credential(b"sk-bytes")  # type: ignore[arg-type]
    redactor = Redactor.build(env={"ODD_TOKEN": "value-\udcff-surrogate"}, namespace={1: 2})  # type: ignore[dict-item]
    out = redactor.redact("a \udcff b value-\udcff-surrogate \ud800")
    assert out == "a \udcff b [hidden: $ODD_TOKEN] \ud800"
    assert redactor.redact(12345) == "12345"  # type: ignore[arg-type]


class Hostile(dict):  # type: ignore[type-arg]
    def items(self):  # type: ignore[no-untyped-def]
        raise RuntimeError("no")


def test_hostile_mappings_do_not_stop_a_build() -> None:
    redactor = Redactor.build(env=Hostile(), namespace={"cfg": Hostile(token="abcdefghijk")})
    assert redactor.redact("abcdefghijk") == "abcdefghijk"  # a dict subclass is not opened


# -- extending ---------------------------------------------------------------------------


def test_rules_extend_with_patterns_and_names() -> None:
    rules = DEFAULT_RULES.extended(
        patterns={"Acme key": r"acme_[A-Za-z0-9]{16}"}, names=["dsn", "SESSION_COOKIE"]
    )
    assert rules.is_secret_name("SENTRY_DSN") and rules.is_secret_name("my_session_cookie")
    assert not rules.is_secret_name("cookie") and not DEFAULT_RULES.is_secret_name("SENTRY_DSN")
    env = {"SENTRY_DSN": "https://abc@sentry.example/1"}
    redactor = Redactor.build(env=env, rules=rules)
    out = redactor.redact("acme_0123456789abcdef and https://abc@sentry.example/1")
    assert out == "[hidden: Acme key] and [hidden: $SENTRY_DSN]"
    listed = DEFAULT_RULES.extended(patterns=[r"zz-[0-9]{6}"])
    assert (
        Redactor.build(env={}, rules=listed).redact("id zz-123456") == "id [hidden: custom pattern]"
    )


def test_a_bad_pattern_is_one_line_that_says_what_to_fix() -> None:
    with pytest.raises(ValueError, match=r"not a valid regular expression.*secret_patterns"):
        DEFAULT_RULES.extended(patterns=["(unclosed"])


def test_rules_are_frozen_data() -> None:
    rules = SecretRules(min_length=12)
    with pytest.raises(AttributeError):
        rules.min_length = 3  # type: ignore[misc]
    assert Redactor.build(env={"A_TOKEN": "elevenchars"}, rules=rules).values == ()


# -- linear time -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "unit", ["a", "sk-", "eyJ", "AKIA", "ghp_", "xoxb-", "Bearer ", "-----BEGIN PRIVATE KEY-----"]
)
def test_a_megabyte_on_one_line_is_quick(unit: str) -> None:
    redactor = Redactor.build(env={"MY_TOKEN": "abcdefgh1234"}, namespace={"pw_secret": "x" * 9})
    text = unit * (1_000_000 // len(unit))
    started = time.perf_counter()
    redactor.redact(text)
    assert time.perf_counter() - started < 5  # generous: ~30 ms here; quadratic would be minutes


def test_a_refresh_sees_the_environment_change_both_ways(monkeypatch) -> None:
    # os.environ is read again only when it changed: a variable set, then removed, is seen.
    value = "zq8-not-a-real-token-4f1c2e9a7b"
    monkeypatch.delenv("AGENTTEST_REFRESH_TOKEN", raising=False)
    redactor = Redactor.build(namespace={})
    assert not redactor.refresh()
    monkeypatch.setenv("AGENTTEST_REFRESH_TOKEN", value)
    assert redactor.refresh()
    assert redactor.redact(f"got {value}") == "got [hidden: $AGENTTEST_REFRESH_TOKEN]"
    assert not redactor.refresh()
    monkeypatch.delenv("AGENTTEST_REFRESH_TOKEN")
    assert redactor.refresh()
    assert redactor.redact(f"got {value}") == f"got {value}"
