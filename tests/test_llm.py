"""Endpoint resolution, key hygiene and pricing (pure functions, no network)."""

from __future__ import annotations

import pytest

from agent_magic.conversation import Usage
from agent_magic.llm import ConfigError, Endpoint, cost, redact, resolve_endpoints


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
    cleaned = redact(text, ["mysecretvalue"])
    assert "sk-" not in cleaned and "mysecretvalue" not in cleaned and "Bearer" not in cleaned


def test_cost() -> None:
    assert cost("gpt-4o-mini", Usage(1_000_000, 1_000_000)) == pytest.approx(0.75)
    assert cost("gpt-4o-2024-08-06", Usage(1_000_000, 0)) == pytest.approx(2.5)
    assert cost("llama3.1", Usage(10, 10)) is None
