"""The context window of an endpoint: the config list, what its server says, known models.

:func:`context_window_for` is the one entry point; answers are cached per endpoint for
the kernel's life, and a context-length error that names the window
(:class:`~agent_magic.conversation.ContextWindowExceeded`) teaches it too. Fitting a
conversation into the window is not here (``agent_magic.window``).

What each server reports was read from its source: vLLM's ``/v1/models`` entries carry
``max_model_len`` (``ModelCard`` in ``vllm/entrypoints/openai/protocol.py``);
llama.cpp's own server (``llama-server``) reports the running ``n_ctx`` in ``GET /props``
(``default_generation_settings``), while its ``/v1/models`` ``meta`` has only
``n_ctx_train``, the model's maximum; llama-cpp-python's server lists ids only
(``llama_cpp/server/app.py`` ``get_models``: id, object, owned_by, permissions);
Ollama's ``GET /api/ps`` gives a loaded model's ``context_length`` and ``POST /api/show``
its ``model_info["<arch>.context_length"]``, the trained maximum (``api/types.go``).
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from typing import Any, Protocol

from .config import ConfigError, Endpoint, client_settings
from .errors import http
from .sdk import shared_client


class LendsClients(Protocol):
    """A chat client that lends its SDK client for an endpoint (:class:`.client.OpenAIChat`)."""

    def _client(self, index: int, endpoint: Endpoint) -> Any: ...


# Context windows (tokens, prompt and reply together) of well-known models, used when
# neither the config list nor the server says. Keys are matched as the longest prefix
# of the model name with its provider ("openai/", "meta-llama/") and Ollama tag
# (":8b") removed, lower-cased, and "-", "_" and spaces dropped, so "gpt-4o-mini-2024-
# 07-18", "Meta-Llama-3.1-8B-Instruct" and "llama3.1:8b" all find their row. For
# open-weight models the figure is the model's own maximum: a local server may run a
# smaller window (llama.cpp's --n_ctx, Ollama's num_ctx), which is why the server's
# word, when it gives one, wins over this table.
KNOWN_WINDOWS: dict[str, int] = {
    # OpenAI, from the model pages at platform.openai.com/docs/models.
    "gpt-4o": 128_000,
    "gpt-4o-mini": 128_000,
    "chatgpt-4o": 128_000,
    "gpt-4.1": 1_047_576,
    "gpt-4.1-mini": 1_047_576,
    "gpt-4.1-nano": 1_047_576,
    "gpt-4.5": 128_000,
    "gpt-4-turbo": 128_000,
    "gpt-4": 8_192,
    "gpt-4-32k": 32_768,
    "gpt-3.5-turbo": 16_385,
    "gpt-5": 400_000,
    "o1": 200_000,
    "o1-mini": 128_000,
    "o1-preview": 128_000,
    "o3": 200_000,
    "o3-mini": 200_000,
    "o4-mini": 200_000,
    "codex-mini": 200_000,  # codex-mini-latest, served by the Responses API only
    # Meta Llama, from the model cards on huggingface.co/meta-llama (3.0: 8K; 3.1, 3.2
    # and 3.3: 128K = 131072).
    "llama3": 8_192,
    "llama3.1": 131_072,
    "llama3.2": 131_072,
    "llama3.3": 131_072,
    "llama2": 4_096,
    "codellama": 16_384,
    # Qwen, from the Qwen2.5 / Qwen2.5-Coder model cards (config.json's 32768; 128K
    # only with YaRN scaling, which servers do not enable by default) and Qwen3's (32K
    # native).
    "qwen2.5": 32_768,
    "qwen2.5-coder": 32_768,
    "qwen2": 32_768,
    "qwen3": 32_768,
    # Mistral AI, from docs.mistral.ai's model pages and the model cards: Mistral 7B
    # v0.2+ 32K, Mixtral 8x7B 32K, Nemo 128K, Small 3 32K, Codestral 32K (v0.1).
    "mistral": 32_768,
    "mistral-nemo": 131_072,
    "mistral-small": 32_768,
    "mixtral": 32_768,
    "codestral": 32_768,
    # Google Gemma, from the model cards: Gemma 2 8K; Gemma 3 128K (1B and 270M: 32K).
    "gemma2": 8_192,
    "gemma-2": 8_192,
    "gemma3": 131_072,
    "gemma-3": 131_072,
    "gemma3:1b": 32_768,
    "gemma-3-1b": 32_768,
    "gemma-3-270m": 32_768,
    "gemma3:270m": 32_768,
    # Microsoft Phi, from the model cards: Phi-3 mini 4K (the -128k variants say so in
    # their name), Phi-4 16K.
    "phi3": 4_096,
    "phi-3": 4_096,
    "phi-3-mini-128k": 131_072,
    "phi4": 16_384,
    "phi-4": 16_384,
    # Hugging Face SmolLM2, from its model card (8K).
    "smollm2": 8_192,
    # DeepSeek, from api-docs.deepseek.com (deepseek-chat / -reasoner: 64K) and the
    # R1 distills' model cards (128K).
    "deepseek-chat": 65_536,
    "deepseek-reasoner": 65_536,
    "deepseek-r1": 131_072,
}


def _model_key(model: str) -> str:
    """The lookup form of a model name: see KNOWN_WINDOWS."""
    name = model.strip().lower().rsplit("/", 1)[-1]
    name = name.removeprefix("meta-")
    return re.sub(r"[-_ ]", "", name)


_WINDOW_KEYS = sorted(
    ((_model_key(name), size) for name, size in KNOWN_WINDOWS.items()),
    key=lambda item: -len(item[0]),
)


def known_window(model: str) -> int | None:
    """The context window of a well-known model by name, or None (see KNOWN_WINDOWS)."""
    key = _model_key(model)
    if not key:
        return None
    for candidate in (key, key.split(":", 1)[0]):
        for name, size in _WINDOW_KEYS:  # longest first: "gpt4omini" before "gpt4o"
            if candidate.startswith(name):
                return size
    return None


# -- the context window and the model list -------------------------------------------

# Windows learned per endpoint (what its server said, or what a context-length error
# named), so each server is asked once per kernel. Keyed by what answers, never a key.
_WINDOWS: dict[tuple[str, str, str], int | None] = {}
_WINDOWS_LOCK = threading.Lock()
# Ollama's num_ctx when nothing sets it: 4096 since 0.6 (2048 before; more with
# OLLAMA_CONTEXT_LENGTH or enough VRAM in the newest releases). Its /api/show gives the
# model's trained maximum only, so that figure is capped at this one: trimming a little
# early is harmless, overflowing is not (Ollama then drops the start of the prompt).
OLLAMA_DEFAULT_NUM_CTX = 4096


def _window_key(endpoint: Endpoint) -> tuple[str, str, str]:
    return (
        endpoint.api_type,
        endpoint.base_url or os.environ.get("OPENAI_BASE_URL", ""),
        endpoint.model,
    )


# Windows the servers' own context-length errors named: the limit they enforce.
_LEARNED: dict[tuple[str, str, str], int] = {}


def remember_window(endpoint: Endpoint, window: int) -> None:
    """Keep the window a context-length error named, for this endpoint from now on."""
    with _WINDOWS_LOCK:
        _LEARNED[_window_key(endpoint)] = window


def context_window_for(
    endpoint: Endpoint,
    chat: LendsClients | None = None,
    *,
    index: int = 0,
    ask_server: bool = True,
    timeout: float = 3.0,
) -> int | None:
    """The endpoint's context window in tokens, or None when nothing says it.

    In order: a window the server's own context-length error named (the limit it
    enforces; with a config-list ``context_window`` too, the smaller); the config list's
    ``context_window``; what this endpoint's server reports (asked once per kernel and
    cached); the table of well-known models (:data:`KNOWN_WINDOWS`). The server is
    asked only for a ``base_url`` that is not api.openai.com, and only what it reports
    as the *running* window counts: vLLM's ``max_model_len`` and similar fields in
    ``GET /models``, llama.cpp's server ``GET /props`` (``n_ctx``), Ollama's
    ``GET /api/ps`` (``context_length`` of a loaded model) or, for a model not loaded,
    its ``POST /api/show`` maximum capped at Ollama's default num_ctx.
    llama-cpp-python's server says nothing (its ``/v1/models`` has ids only): its window
    is learned from its first context-length error. ``chat`` (with ``index``, the
    endpoint's position in it) lends its SDK client and settings; without it a client
    is built from the endpoint and the environment.
    """
    key = _window_key(endpoint)
    with _WINDOWS_LOCK:
        learned = _LEARNED.get(key)
    if learned:
        return min(learned, endpoint.context_window or learned)
    if endpoint.context_window:
        return endpoint.context_window
    with _WINDOWS_LOCK:
        if key in _WINDOWS and _WINDOWS[key]:
            return _WINDOWS[key]
        asked = key in _WINDOWS
    if ask_server and not asked and _asks_server(endpoint):
        found, window = _server_window(endpoint, chat, index, timeout)
        if found:  # the server answered (saying a window or not): do not ask again
            with _WINDOWS_LOCK:
                _WINDOWS.setdefault(key, window)
            if window:
                return window
    return known_window(endpoint.model)


def _asks_server(endpoint: Endpoint) -> bool:
    if endpoint.api_type == "azure":
        return False
    url = endpoint.base_url or os.environ.get("OPENAI_BASE_URL") or ""
    return bool(url) and "api.openai.com" not in url


def _server_window(
    endpoint: Endpoint, chat: LendsClients | None, index: int, timeout: float
) -> tuple[bool, int | None]:
    """(whether the server answered at all, the window it reports or None)."""
    try:
        if chat is not None:
            client = chat._client(index, endpoint)
        else:
            client = shared_client(client_settings(endpoint, timeout=120.0, max_retries=0))
    except ConfigError:
        return (False, None)
    base = str(client.base_url).rstrip("/")
    root = base[: -len("/v1")] if base.endswith("/v1") else base
    answered = False
    probes: list[tuple[str, str, dict[str, Any] | None, Any]] = [
        ("get", base + "/models", None, lambda data: _window_in_models(data, endpoint.model)),
        ("get", root + "/props", None, _window_in_props),
        ("get", root + "/api/ps", None, lambda data: _window_in_ollama_ps(data, endpoint.model)),
        ("post", root + "/api/show", {"model": endpoint.model}, _window_in_ollama_show),
    ]
    for method, url, body, read in probes:
        try:
            data = _call_json(client, method, url, body, timeout)
        except _Unanswered:
            return (answered, None)  # unreachable or silent: no point asking further
        except Exception:
            answered = True  # an error status (404 for a route it lacks), or not JSON
            continue
        answered = True
        with contextlib.suppress(Exception):
            window = read(data)
            if isinstance(window, int) and not isinstance(window, bool) and window > 0:
                return (True, window)
    return (answered, None)


class _Unanswered(Exception):
    """The server could not be reached or did not answer in time."""


def _call_json(client: Any, method: str, url: str, body: Any, timeout: float) -> Any:
    import openai

    httpx = http()

    options: Any = {"timeout": timeout, "max_retries": 0}
    try:
        if method == "get":
            response = client.get(url, cast_to=httpx.Response, options=options)
        else:
            response = client.post(url, body=body, cast_to=httpx.Response, options=options)
    except (openai.APIConnectionError, httpx.TransportError) as error:
        raise _Unanswered from error
    return response.json()


def model_entries(data: Any) -> list[dict[str, Any]]:
    """The entries of a model listing (``{"data": [...]}`` or a bare list) that are objects."""
    items = data.get("data") if isinstance(data, dict) else data
    return [e for e in items if isinstance(e, dict)] if isinstance(items, list) else []


def _window_in_models(data: Any, model: str) -> int | None:
    entries = model_entries(data)
    matching = [e for e in entries if e.get("id") == model] or (
        entries if len(entries) == 1 else []  # one model served, whatever it is called
    )
    for entry in matching:
        # vLLM: max_model_len; Groq and proxies: context_window; OpenRouter:
        # context_length; LM Studio: max_context_length; llama.cpp server forks put the
        # running n_ctx in "meta" (never n_ctx_train: that is the model's maximum).
        meta = entry.get("meta") if isinstance(entry.get("meta"), dict) else {}
        for value in (
            entry.get("max_model_len"),
            entry.get("context_window"),
            entry.get("context_length"),
            entry.get("max_context_length"),
            meta.get("n_ctx"),
        ):
            if isinstance(value, int) and value > 0:
                return value
    return None


def _window_in_props(data: Any) -> int | None:
    if not isinstance(data, dict):
        return None
    settings = data.get("default_generation_settings")
    n_ctx = settings.get("n_ctx") if isinstance(settings, dict) else None
    return n_ctx if isinstance(n_ctx, int) else data.get("n_ctx")


def _ollama_names(model: str) -> set[str]:
    return {model, model if ":" in model else model + ":latest"}


def _window_in_ollama_ps(data: Any, model: str) -> int | None:
    names = _ollama_names(model)
    for entry in (data.get("models") if isinstance(data, dict) else None) or ():
        if isinstance(entry, dict) and (entry.get("name") in names or entry.get("model") in names):
            return entry.get("context_length")
    return None


def _window_in_ollama_show(data: Any) -> int | None:
    info = data.get("model_info") if isinstance(data, dict) else None
    if not isinstance(info, dict):
        return None
    for name, value in info.items():
        if str(name).endswith(".context_length") and isinstance(value, int) and value > 0:
            return min(value, OLLAMA_DEFAULT_NUM_CTX)
    return None
