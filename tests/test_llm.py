"""Endpoint resolution, key hygiene, pricing, usage, windows (pure functions, no network)."""

from __future__ import annotations

import json
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent_magic import llm
from agent_magic.conversation import ChatReply, Usage
from agent_magic.llm import (
    ConfigError,
    Endpoint,
    clean_model_name,
    context_window_for,
    cost,
    known_window,
    resolve_endpoints,
    usage_table,
)
from agent_magic.secrets import redact_message


def test_defaults_use_the_sdk_variables() -> None:
    [endpoint] = resolve_endpoints(model="m", env={"OPENAI_BASE_URL": "http://h/v1"})
    assert endpoint == Endpoint("m", None, "http://h/v1")


def test_base_url_flag_wins_over_environment() -> None:
    [endpoint] = resolve_endpoints(model="m", base_url="http://x/v1", env={})
    assert endpoint.base_url == "http://x/v1"


def test_azure_from_environment() -> None:
    env = {"AZURE_OPENAI_ENDPOINT": "https://r.openai.azure.com", "OPENAI_API_VERSION": "v1"}
    [endpoint] = resolve_endpoints(model="deploy", env=env)
    assert (endpoint.api_type, endpoint.base_url, endpoint.api_version) == (
        "azure",
        "https://r.openai.azure.com",
        "v1",
    )


def test_config_list_from_env_json_and_file(tmp_path) -> None:
    text = '[{"model": "a", "api_key": "sk-test-aaaa"}, {"model": "b", "api_type": "azure"}]'
    from_env = resolve_endpoints(model="x", env={"OAI_CONFIG_LIST": text})
    path = tmp_path / "list.json"
    path.write_text(text)
    from_file = resolve_endpoints(model="x", config_list=str(path), env={})
    assert from_env == from_file
    assert [e.model for e in from_env] == ["a", "b"]
    assert "sk-test" not in repr(from_env) and "sk-test" not in from_env[0].label


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("[1, 2]", "list of objects"),
        ("[{}]", 'has no "model"'),
        ("[", "not valid JSON"),
        ("/no/such/file.json", "neither a JSON list nor a readable file"),
        ("[]", "empty"),
        ('[{"model": "m", "api_type": "bedrock"}]', "api_type must be"),
    ],
)
def test_bad_config_lists_say_how_to_fix(source: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        resolve_endpoints(model="m", config_list=source, env={})
    assert "\n" not in str(info.value)


def test_redact() -> None:
    text = "Incorrect API key provided: sk-proj-abc***xyz. Bearer sk-live-123 and mysecretvalue"
    cleaned = redact_message(text, ["mysecretvalue"])
    assert "sk-" not in cleaned and "mysecretvalue" not in cleaned and "Bearer" not in cleaned


def test_cost() -> None:
    assert cost("gpt-4o-mini", Usage(1_000_000, 1_000_000)) == pytest.approx(0.75)
    assert cost("gpt-4o-2024-08-06", Usage(1_000_000, 0)) == pytest.approx(2.5)
    assert cost("llama3.1", Usage(10, 10)) is None


# -- bad input: one line, never a key ---------------------------------------------------


def test_a_config_list_given_as_an_object_says_so_without_its_key() -> None:
    source = '{"model": "gpt-4o", "api_key": "sk-proj-verysecret1234567890"}'
    with pytest.raises(ConfigError, match=r"one JSON object, not a list: wrap it in \[ \]") as info:
        resolve_endpoints(model="m", config_list=source, env={})
    assert "verysecret" not in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize(
    "source",
    [
        "model: gpt-4o, api_key: plainsecret123",  # neither JSON nor a path
        " 'api_key': 'plainsecret123' ",
        "plainsecret123 " * 20,
    ],
)
def test_a_config_list_that_is_neither_json_nor_a_file_is_not_echoed(source: str) -> None:
    with pytest.raises(ConfigError, match="neither a JSON list nor a readable file") as info:
        resolve_endpoints(model="m", config_list=source, env={})
    assert "plainsecret" not in str(info.value)


def test_a_missing_config_file_is_named(tmp_path) -> None:
    missing = tmp_path / "nope.json"
    with pytest.raises(ConfigError, match="nope.json"):
        resolve_endpoints(model="m", config_list=str(missing), env={})


@pytest.mark.parametrize(
    ("typed", "model"),
    [
        ('"gpt-4o"', "gpt-4o"),
        ("'gpt-4o'", "gpt-4o"),
        ("  gpt-4o-mini \n", "gpt-4o-mini"),
        ("\"'llama3.1:8b'\"", "llama3.1:8b"),
        ("“qwen2.5-coder”", "qwen2.5-coder"),
        ('"gpt-4o', "gpt-4o"),  # a quote never closed
        ("org/model-name", "org/model-name"),
    ],
)
def test_clean_model_name_strips_quotes_and_space(typed: str, model: str) -> None:
    assert clean_model_name(typed) == model


@pytest.mark.parametrize("typed", ["", "  ", "''", '""', "\"' '\""])
def test_clean_model_name_refuses_an_empty_name_with_the_fix(typed: str) -> None:
    with pytest.raises(ConfigError, match=r"--model is empty; give a model name") as info:
        clean_model_name(typed)
    assert "\n" not in str(info.value)


# -- the context window -------------------------------------------------------------------


def test_context_window_from_the_config_list() -> None:
    text = '[{"model": "a", "context_window": 4096}, {"model": "b", "context_window": "8192"}]'
    a, b = resolve_endpoints(model="x", config_list=text, env={})
    assert (a.context_window, b.context_window) == (4096, 8192)
    assert context_window_for(a) == 4096  # the entry's word wins: nothing is asked
    one = json.dumps([{"model": "a", "context_window": 4096}])
    [moved] = resolve_endpoints(model="x", base_url="http://h/v1", config_list=one, env={})
    assert moved.context_window == 4096 and moved.base_url == "http://h/v1"


@pytest.mark.parametrize("value", ["big", -5, 0, 1.5, True])
def test_a_bad_context_window_field_says_how_to_write_it(value) -> None:
    text = json.dumps([{"model": "a", "context_window": value}])
    with pytest.raises(ConfigError, match="context_window must be a whole number of tokens"):
        resolve_endpoints(model="x", config_list=text, env={})


@pytest.mark.parametrize(
    ("model", "window"),
    [
        ("gpt-4o", 128_000),
        ("gpt-4o-mini-2024-07-18", 128_000),
        ("openai/gpt-4.1-nano", 1_047_576),
        ("gpt-4", 8_192),
        ("o3-mini", 200_000),
        ("meta-llama/Meta-Llama-3.1-8B-Instruct", 131_072),
        ("llama3.1:8b", 131_072),
        ("llama3:latest", 8_192),
        ("Qwen/Qwen2.5-Coder-0.5B-Instruct", 32_768),
        ("qwen2.5-coder:0.5b", 32_768),
        ("mistral-nemo", 131_072),
        ("mistral:7b", 32_768),
        ("gemma3:1b", 32_768),
        ("smollm2:135m", 8_192),
        ("my-own-finetune", None),
        ("", None),
    ],
)
def test_known_windows_of_well_known_models(model: str, window: int | None) -> None:
    assert known_window(model) == window


def test_without_a_server_to_ask_the_table_answers() -> None:
    # api.openai.com is never asked: its model list carries no window.
    assert context_window_for(Endpoint("gpt-4o-mini", "sk-test-table-000")) == 128_000
    assert context_window_for(Endpoint("unknown-model", "sk-test-table-000")) is None


@pytest.mark.parametrize(
    ("body", "text", "window"),
    [
        (
            {"code": "context_length_exceeded"},
            "This model's maximum context length is 8192 tokens.",
            8192,
        ),
        ({}, "Requested tokens (1091) exceed context window of 1024", 1024),
        (
            {"type": "exceed_context_size_error", "n_ctx": 4096},
            "request exceeds the available context size",
            4096,
        ),
        ({}, "request (4476 tokens) exceeds the available context size (4096 tokens)", 4096),
        ({}, "the prompt is longer than the context length currently available to the model", None),
        ({}, "the input length exceeds the context length", None),
        (
            {},
            "The decoder prompt (length 9000) is longer than the maximum model length of 8192.",
            8192,
        ),
        (
            {},
            "input length (5000 tokens) exceeds the model's maximum context length (4096 tokens)",
            4096,
        ),
        ({}, "'tools' is not supported with this model.", False),
        ({}, "Incorrect API key provided", False),
    ],
)
def test_context_length_errors_in_each_servers_words(body, text, window) -> None:
    assert llm.errors._context_error_in(body, text) == window


def test_error_scans_see_bounded_text_however_long_the_servers_message() -> None:
    import httpx
    import openai

    message = "maximum context length, tools " * 50_000 + "x" * 1_000_000  # 2 MB, one line
    request = httpx.Request("POST", "http://127.0.0.1/v1/chat/completions")
    response = httpx.Response(400, request=request, json={"error": {"message": message}})
    error = openai.BadRequestError(message, response=response, body={"message": message})
    start = time.perf_counter()
    assert llm.errors.context_error(error) is None  # the words are there, no size
    assert llm.errors.rejects_tools(error) is False
    assert llm.errors.rejects_stream_options(error) is False
    assert redact_message("sk-" + "a" * 1_000_000) == "[hidden: api key]"
    assert time.perf_counter() - start < 2  # milliseconds here


# -- %agent usage -------------------------------------------------------------------------


def test_usage_table_says_unknown_never_zero() -> None:
    replies = [
        ChatReply("a", usage=Usage(100, 20), model="gpt-4o-mini", endpoint="e1"),
        ChatReply("b", usage=None, model="local-llama", endpoint="e2"),
    ]
    plain, markdown = usage_table(replies)
    rows = plain.splitlines()
    assert rows[0].split() == [
        "call",
        "model",
        "endpoint",
        "prompt",
        "completion",
        "total",
        "cost",
        "source",
    ]
    assert rows[1].split()[:6] == ["1", "gpt-4o-mini", "e1", "100", "20", "120"]
    assert rows[2].split()[3:6] == ["unknown"] * 3
    assert rows[3].split()[:4] == ["total", "100", "20", "120"]
    assert "$0.00003" in rows[1] and "$0.00003" in rows[3]
    assert "no token usage for call 2" in plain and "not in the totals" in plain
    assert "| 2 | local-llama | e2 | unknown | unknown | unknown |" in markdown
    assert " 0 " not in plain.replace("0.0", "")  # no call shows zero tokens


def test_usage_table_when_no_server_reported_usage() -> None:
    plain, _ = usage_table([ChatReply("a", model="m"), ChatReply("b", model="m")])
    total = plain.splitlines()[3]
    assert total.split()[:4] == ["total", "unknown", "unknown", "unknown"]
    assert "calls 1, 2" in plain and "No known price for m: add one with" in plain


def test_usage_table_empty() -> None:
    assert usage_table([]) == ("(no model calls yet)", "*(no model calls yet)*")


# -- properties: never a crash, never a key ----------------------------------------------


@settings(max_examples=200, deadline=None)
@given(st.text(), st.text(min_size=8, alphabet=st.characters(min_codepoint=33, max_codepoint=126)))
def test_redact_never_leaves_a_configured_key(text: str, key: str) -> None:
    hidden = redact_message(text + key + text, [key])
    assert key not in hidden or key in "[hidden: api key]"


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_shown_url_never_keeps_userinfo_or_query(tail: str) -> None:
    url = f"https://user:pw-SECRET@host.example/v1/{tail}?api-key=q-SECRET"
    shown = llm.shown_url(url)
    assert "SECRET" not in shown.replace(tail, "") and shown.startswith("https://host.example/v1/")


@pytest.mark.slow  # fuzz: hundreds of generated inputs, 5-20 s
@settings(max_examples=200, deadline=None)
@given(st.recursive(st.text(), lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner)))
def test_escaped_bodies_always_encode(body) -> None:
    escaped = llm.wire._escape_surrogates({"messages": [body]})
    json.dumps(escaped, ensure_ascii=False).encode("utf-8")  # what httpx does; never raises


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_clean_model_name_gives_a_name_or_the_fix(text: str) -> None:
    try:
        name = clean_model_name(text)
    except ConfigError as error:
        assert "--model is empty" in str(error)
    else:
        assert name and name == name.strip()


def test_usage_table_marks_estimates_and_counts_them() -> None:
    replies = [
        ChatReply("a", usage=Usage(100, 20), model="gpt-4o-mini", endpoint="e"),
        ChatReply("b", usage=None, model="gpt-4o-mini", endpoint="e"),
        ChatReply("c", usage=None, model="gpt-4o-mini", endpoint="e"),
    ]
    plain, markdown = usage_table(replies, [None, Usage(50, 10), None])
    rows = plain.splitlines()
    assert rows[2].split()[3:7] == ["~50", "~10", "~60", "~$0.00001"]
    assert rows[3].split()[3:6] == ["unknown"] * 3
    assert rows[4].split()[:4] == ["total", "~150", "~30", "~180"]
    assert "~ marks an estimate: the server reported no usage for call 2." in plain
    assert "no token usage for call 3" in markdown
