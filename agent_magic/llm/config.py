"""The config list and what a user types: endpoints, ``--model``, keys kept out of messages.

:func:`resolve_endpoints` turns the traits, flags and environment (AutoGen's
``OAI_CONFIG_LIST`` format included) into :class:`Endpoint` records;
:func:`clean_model_name` cleans ``--model``; :func:`shown_url` keeps URL credentials out
of every message (keys: :func:`agent_magic.secrets.redact_message`). Nothing here talks
to a server.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..secrets import redact_message


@dataclass(frozen=True)
class Endpoint:
    """One entry of the config list. ``api_key`` never appears in repr or labels.

    ``context_window`` is the size in tokens the entry declares (config-list field
    ``context_window``); :func:`context_window_for` falls back to what the server and
    the table of known models say.
    """

    model: str
    api_key: str | None = field(default=None, repr=False)
    base_url: str | None = None
    api_type: str = "openai"  # "openai" or "azure"
    api_version: str | None = None
    context_window: int | None = None
    # Config-list fields: "chat", "responses" or "auto" (None: AgentMagics.api), and the
    # reasoning effort to ask for (None: AgentMagics.reasoning_effort).
    api: str | None = None
    reasoning_effort: str | None = None

    @property
    def label(self) -> str:
        where = shown_url(self.base_url) or (
            "Azure OpenAI" if self.api_type == "azure" else "api.openai.com"
        )
        return f"{self.model} @ {where}"


def shown_url(url: str | None) -> str:
    """A URL as messages and labels show it: without ``user:password@`` or the query
    string (``?api-key=...``), where credentials hide in URLs."""
    if not url:
        return ""
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    host, slash, path = rest.partition("/")
    host = host.rpartition("@")[2]
    path = path.split("?", 1)[0].split("#", 1)[0]
    return f"{scheme}{sep}{host}{slash}{path}"


class ConfigError(ValueError):
    """The configuration cannot work; the message says how to fix it."""


_QUOTES = "\"'`“”‘’"  # noqa: RUF001  (curly quotes come from pasted text)


def clean_model_name(text: str) -> str:
    """A model name as typed after ``--model``: surrounding whitespace and quotes removed.

    ``--model '"gpt-4o"'`` reaches the magic with the quotes as part of the text, which
    the server would take for part of the name; ``--model ''`` leaves nothing, which
    is refused here with the fix.
    """
    name = text.strip()
    while len(name) >= 2 and name[0] in _QUOTES and name[-1] in _QUOTES:
        name = name[1:-1].strip()
    if name and name[0] in _QUOTES and name.count(name[0]) == 1:
        name = name[1:].strip()  # a quote opened and never closed
    if name and name[-1] in _QUOTES and name.count(name[-1]) == 1:
        name = name[:-1].strip()
    if not name:
        raise ConfigError(
            "--model is empty; give a model name (e.g. --model gpt-4o-mini) or leave the "
            "flag out to use AgentMagics.model"
        )
    return name


def load_config_list(source: str) -> list[dict[str, Any]]:
    """Read a config list from a JSON string, a JSON file path, or an env var holding either.

    No message quotes the source itself: it may hold keys.
    """
    text = source.strip()
    if not text.startswith(("[", "{")):
        path = Path(os.path.expanduser(text))
        try:
            is_file = path.is_file()
        except (OSError, ValueError):  # a name too long for a path, a NUL in it
            is_file = False
        if not is_file:
            # Echo it only when it looks like a path: anything else may be a mistyped
            # list, holding a key.
            pathlike = len(text) <= 200 and not any(
                c.isspace() or c in "\"'{}:,=" for c in text[2:]
            )
            shown = repr(redact_message(text)) if pathlike else "given"
            raise ConfigError(
                f"config list {shown} is neither a JSON list nor a readable file; "
                "give a path to a JSON file or the JSON itself"
            )
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
            raise ConfigError(f"cannot read the config list file {str(path)!r}: {reason}") from None
    try:
        entries = json.loads(text)
    except ValueError as error:
        raise ConfigError(
            f"config list is not valid JSON ({error.msg} at line {error.lineno})"
        ) from None
    if isinstance(entries, dict):
        raise ConfigError(
            "config list is one JSON object, not a list: wrap it in [ ] "
            '(a list of entries like [{"model": "gpt-4o"}])'
        )
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ConfigError('config list must be a JSON list of objects like {"model": "gpt-4o"}')
    return entries


def resolve_endpoints(
    *,
    model: str,
    base_url: str | None = None,
    config_list: str | None = None,
    env: Mapping[str, str] | None = None,
) -> list[Endpoint]:
    """Decide which endpoints to try, in order.

    A config list (trait, or ``OAI_CONFIG_LIST``) wins; ``--model`` then picks
    its entries for that model when any match. Without one, a single endpoint
    is built from the model, ``base_url`` and the SDK's own variables.
    """
    env = os.environ if env is None else env
    source = config_list or env.get("OAI_CONFIG_LIST")
    if source:
        entries = [_endpoint(entry, i) for i, entry in enumerate(load_config_list(source))]
        if not entries:
            raise ConfigError('config list is empty; add at least one {"model": ...} entry')
        if base_url:
            entries = [replace(e, base_url=base_url) for e in entries]
        return entries
    if base_url:
        return [Endpoint(model, None, base_url)]
    azure = env.get("AZURE_OPENAI_ENDPOINT") and not env.get("OPENAI_BASE_URL")
    if azure and (not env.get("OPENAI_API_KEY") or env.get("AZURE_OPENAI_API_KEY")):
        return [
            Endpoint(
                model,
                None,
                env["AZURE_OPENAI_ENDPOINT"],
                "azure",
                env.get("OPENAI_API_VERSION"),
            )
        ]
    return [Endpoint(model, None, env.get("OPENAI_BASE_URL") or None)]


def _endpoint(entry: dict[str, Any], index: int) -> Endpoint:
    if not entry.get("model"):
        raise ConfigError(f'config list entry {index + 1} has no "model"')
    api_type = str(entry.get("api_type") or "openai").lower()
    if api_type not in ("openai", "azure", "open_ai"):
        raise ConfigError(f"config list entry {index + 1}: api_type must be openai or azure")
    return Endpoint(
        model=str(entry["model"]),
        api_key=entry.get("api_key") or None,
        base_url=entry.get("base_url") or entry.get("api_base") or None,
        api_type="azure" if api_type == "azure" else "openai",
        api_version=entry.get("api_version") or None,
        context_window=_window_field(entry.get("context_window"), index),
        api=_choice(entry, "api", API_CHOICES, index),
        reasoning_effort=_choice(entry, "reasoning_effort", EFFORTS, index),
    )


API_CHOICES = ("auto", "chat", "responses")
EFFORTS = ("none", "minimal", "low", "medium", "high")


def _choice(entry: dict[str, Any], name: str, choices: Sequence[str], index: int) -> str | None:
    value = entry.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str) or value.strip().lower() not in choices:
        raise ConfigError(
            f"config list entry {index + 1}: {name} must be one of {', '.join(choices)}"
        )
    return value.strip().lower()


def _window_field(value: Any, index: int) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(
            f"config list entry {index + 1}: context_window must be a whole number of "
            'tokens, like "context_window": 8192'
        )
    return value


# Azure's Responses API came with 2025-03-01-preview; chat completions with much older ones.
AZURE_RESPONSES_VERSION = "2025-04-01-preview"


def client_settings(
    endpoint: Endpoint, timeout: float, max_retries: int, *, api: str = "chat"
) -> tuple[Any, ...]:
    """What an SDK client for ``endpoint`` is built from (held in memory only, never
    written): the key and URL from the entry, else the environment; ``api`` picks Azure's
    api-version. Raises :class:`ConfigError` with the fix when no key is set."""
    if endpoint.api_type == "azure":
        key = endpoint.api_key or os.environ.get("AZURE_OPENAI_API_KEY")
        if not key:
            raise ConfigError(
                f"{endpoint.label}: no Azure key; set AZURE_OPENAI_API_KEY or the entry's api_key"
            )
        azure_endpoint = endpoint.base_url or os.environ.get("AZURE_OPENAI_ENDPOINT")
        default = AZURE_RESPONSES_VERSION if api == "responses" else "2024-10-21"
        version = endpoint.api_version or os.environ.get("OPENAI_API_VERSION") or default
        return ("azure", key, azure_endpoint, version, timeout, max_retries)
    key = endpoint.api_key or os.environ.get("OPENAI_API_KEY")
    base_url = endpoint.base_url or os.environ.get("OPENAI_BASE_URL") or None
    if not key and not base_url:
        raise ConfigError(
            "no API key: set OPENAI_API_KEY or type one with %agent key (kept in this "
            "kernel's memory only), give a config list (OAI_CONFIG_LIST), point "
            "--base-url at a local server (Ollama, vLLM...), or use --replay"
        )
    # Local servers (Ollama, llama.cpp) accept any key, but the SDK wants one.
    return ("openai", key or "no-key-needed", base_url, None, timeout, max_retries)
