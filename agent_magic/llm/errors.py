"""Which errors are which, and the one line each gets.

A refusal of tools or of ``stream_options`` (ask again without them), a context-length
error as each server words it (and the window it names), an error a server put inside
a 200 answer, a broken connection, the errors worth trying the next endpoint for, and
:func:`explain`: the one line for the user, never holding a key. Every regex only
sees bounded text (:func:`status_text`), so each scan is linear. Not here: reading
streams and replies (:mod:`.wire`), retrying and fallback (:mod:`.client`).
"""

from __future__ import annotations

import re
from typing import Any

from ..conversation import ChatError
from .config import Endpoint, shown_url


def http() -> Any:
    """The HTTP library the openai SDK is built on: httpx, or its fork httpx2 (openai 3.x).

    Its exception and response classes are the ones to test against and ask for.
    """
    import openai._base_client as base

    return getattr(base, "httpx2", None) or base.httpx


def error_text(error: Any) -> str:
    if isinstance(error, dict):
        error = error.get("message") or error
    return " ".join(str(error)[:2000].split())[:300]


def stream_error(error: Any, endpoint: Endpoint) -> ChatError:
    """The error a server put inside a 200 answer (llama.cpp's server, vLLM, proxies)."""
    window = _context_error_in(error, error_text(error))
    if window is not False:
        return _ContextInBody(window)
    return ChatError(f"{endpoint.label}: the server sent an error: {error_text(error)}")


class _ContextInBody(ChatError):
    """A context-length error found in a stream or body; OpenAIChat words it."""

    def __init__(self, window: int | None) -> None:
        super().__init__("context window exceeded")
        self.window = window


def broken_connection(error: BaseException) -> bool:
    """A transport failure while reading a body: a cut connection or a stall."""
    import openai

    httpx = http()

    return isinstance(error, (httpx.TransportError, openai.APIConnectionError))


def connection_reset(error: BaseException) -> bool:
    """A request the server took and then dropped without an answer (a connection reset
    or closed under it), as opposed to one that never reached it (refused, timed out)."""
    import openai

    httpx = http()
    cause = error.__cause__
    return (
        isinstance(error, openai.APIConnectionError)
        and not isinstance(error, openai.APITimeoutError)
        and isinstance(cause, (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError))
    )


def status_text(error: BaseException) -> str:
    """What a status error says, bounded (the regexes below then stay linear)."""
    return (_detail(error) or str(error))[:2000]


def rejects_tools(error: BaseException) -> bool:
    """A 400/422/501 that blames the tools: servers and models without tool calling.

    Only messages that say tools are unsupported or invalid: any other 400 (a context
    too long, a bad message) is the user's to see, not a reason to ask again.
    """
    import openai

    if not isinstance(error, openai.APIStatusError) or error.status_code not in (400, 422, 501):
        return False
    return bool(_TOOLS_REJECTED.search(status_text(error)))


_TOOLS_REJECTED = re.compile(
    r"\b(tools?|tool_choice|function calling)\b.{0,40}\b(not |un)"
    r"(supported|available|allowed|recognized|permitted|enabled)"
    r"|\b(does not|doesn't|do not|cannot|can't) (support|use|accept|take) (tools?|function)"
    r"|\bunsupported\b.{0,40}\b(tools?|tool_choice|function[ _]call)"
    r"|\b(unrecognized|unknown|unexpected|extra|invalid)\b.{0,30}\b(tools|tool_choice)\b"
    r"|\btools(\[\d*\]|\.\d|\b.{0,20}\bextra (fields|inputs) (are )?not permitted)"
    r"|\btools? (param|parameter|choice|calling)\b.{0,20}\brequires\b"  # vLLM, llama.cpp
    r"|enable-auto-tool-choice",
    re.IGNORECASE | re.DOTALL,
)


def rejects_stream_options(error: BaseException) -> bool:
    """A 400/422 that names stream_options (older Azure API versions, some proxies)."""
    import openai

    if not isinstance(error, openai.APIStatusError) or error.status_code not in (400, 422):
        return False
    text = status_text(error).lower()
    return "stream_options" in text or "include_usage" in text


# Context-length errors, as each server words them. Kept to bounded text (status_text),
# with no nested repetition: linear in the message.
_CONTEXT_WORDS = re.compile(
    r"context_length_exceeded"  # OpenAI's code, llama-cpp-python's 400
    r"|exceed_context_size_error"  # llama.cpp's server (llama-server) type
    r"|maximum context length"  # OpenAI, vLLM, llama-cpp-python, Ollama's MLX runner
    r"|exceeds? (the )?(context window|available context size)"  # llama.cpp, llama-server
    r"|longer than the (context length|maximum model length)"  # Ollama, vLLM
    r"|input length exceeds the context length"  # Ollama
    r"|(prompt|input) is too long"  # Anthropic's compatible API, proxies
    r"|context window (is )?(full|exceeded)",
    re.IGNORECASE,
)
_CONTEXT_SIZE = re.compile(
    r"maximum context length (?:is |of )?\(?(\d+)"  # "...is 8192 tokens", "(8192 tokens)"
    r"|context window of (\d+)"  # "Requested tokens (1091) exceed context window of 1024"
    r"|available context size \((\d+)"  # "...exceeds the available context size (4096 tokens)"
    r"|maximum model length (?:of |is )?(\d+)",  # vLLM: "...maximum model length of 8192"
    re.IGNORECASE,
)


def context_error(error: BaseException) -> int | None | bool:
    """For a context-length error: the window it names, or None; False for other errors."""
    import openai

    if isinstance(error, _ContextInBody):
        return error.window
    if not isinstance(error, openai.APIStatusError):
        return False
    return _context_error_in(getattr(error, "body", None), status_text(error))


def _context_error_in(body: Any, text: str) -> int | None | bool:
    fields = body if isinstance(body, dict) else {}
    if isinstance(fields.get("error"), dict):
        fields = fields["error"]
    marked = fields.get("code") == "context_length_exceeded" or (
        fields.get("type") == "exceed_context_size_error"
    )
    if not marked and not _CONTEXT_WORDS.search(text):
        return False
    n_ctx = fields.get("n_ctx")  # llama-server says it as a field too
    if isinstance(n_ctx, int) and n_ctx > 0:
        return n_ctx
    match = _CONTEXT_SIZE.search(text)
    if match:
        return int(next(g for g in match.groups() if g))
    return None


# The 404 (some proxies: 400) OpenAI sends on chat completions for a Responses-only
# model: "This model is only supported in v1/responses and not in v1/chat/completions."
_RESPONSES_ONLY = re.compile(r"only supported in /?v1/responses", re.IGNORECASE)
_MODEL_WORDS = re.compile(r"\bmodel\b", re.IGNORECASE)


def wants_responses(error: BaseException) -> bool:
    """An error saying the model is served by the Responses API only."""
    import openai

    if not isinstance(error, openai.APIStatusError) or error.status_code not in (400, 404):
        return False
    return bool(_RESPONSES_ONLY.search(status_text(error)))


def falls_through(error: BaseException) -> bool:
    """Errors after which the next endpoint is worth trying.

    Every HTTP error but a context-length one (the caller says that at once: the next
    endpoint would get the same conversation): a 400 or 422 is often one server's own
    limit (a parameter, a message shape, a model it does not serve) that the next entry
    does not have.
    """
    import openai

    if isinstance(error, (openai.APITimeoutError, openai.APIConnectionError)):
        return True
    if isinstance(error, openai.APIStatusError):
        return error.status_code in (400, 401, 403, 404, 408, 422, 429) or (
            error.status_code >= 500
        )
    if broken_connection(error):
        return True
    return isinstance(error, ChatError)


def explain(
    error: BaseException, endpoint: Endpoint, timeout: float | None = None, api: str = "chat"
) -> str:
    import openai

    httpx = http()

    where = endpoint.label
    if isinstance(error, ChatError):
        return str(error)
    if isinstance(error, openai.APITimeoutError):
        return f"{where}: the request timed out; raise AgentMagics.timeout or try again"
    if isinstance(error, openai.APIConnectionError):
        return (
            f"cannot reach {shown_url(endpoint.base_url) or where}: is the server running? "
            "Check --base-url / OPENAI_BASE_URL"
        )
    if isinstance(error, httpx.TimeoutException):
        after = f" for {timeout:g} s" if timeout else ""
        return (
            f"{where}: the server stopped sending{after} before the reply began; "
            "raise AgentMagics.timeout or try again"
        )
    if isinstance(error, httpx.TransportError):
        return f"{where}: the connection broke before the reply began; try again"
    if isinstance(error, openai.APIStatusError):
        detail = _detail(error)
        status = error.status_code
        if status in (401, 403):
            return (
                f"{where}: authentication failed ({status}); check OPENAI_API_KEY "
                "or the config entry's api_key"
            )
        if status in (400, 404) and wants_responses(error):
            # The model exists; it is served by the other API (AgentMagics.api = 'chat').
            return (
                f"{where}: model {endpoint.model!r} is served by the Responses API only, "
                f"not chat completions ({status}); set %config AgentMagics.api = "
                "'responses' (or 'auto', which switches by itself)"
            )
        if status == 404 and api == "responses" and not _MODEL_WORDS.search(detail):
            return (
                f"{where}: this server has no Responses API (404 on /responses); set "
                "%config AgentMagics.api = 'chat' (or 'auto')"
            )
        if status == 404:
            return (
                f"{where}: model {endpoint.model!r} not found (404); choose another with "
                "--model or %config AgentMagics.model"
            )
        if status == 429:
            return (
                f"{where}: rate limited (429) after retries; wait, raise "
                f"AgentMagics.max_retries, or add another endpoint. {detail}"
            ).strip()
        if status >= 500:
            return f"{where}: server error {status}. {detail}".strip()
        return f"{where}: request rejected ({status}): {detail}".strip()
    if isinstance(error, ValueError):  # JSON decoding of a malformed body
        return f"{where}: the server's reply could not be read ({type(error).__name__})"
    return f"{where}: {type(error).__name__}: {error_text(str(error))}"


def not_json_error(response: Any, endpoint: Endpoint) -> ChatError | None:
    """The one line for an answer whose body is not JSON and does not claim to be (a
    proxy's login page, a web server's index at the wrong base URL); None when it says it
    is JSON (then it is a malformed reply, worded as such)."""
    kind = str(response.headers.get("content-type") or "").split(";")[0].strip().lower()
    if "json" in kind:
        return None
    start = bytes(response.content[:512]).lstrip().lower()
    if "html" in kind or start.startswith((b"<!doctype html", b"<html")):
        what = "a web page (HTML)"
    else:
        what = f"something that is not JSON ({kind or 'no content type'})"
    return ChatError(
        f"{endpoint.label}: the server answered with {what}, not the API's reply: check the "
        "base URL (--base-url, OPENAI_BASE_URL or the config entry's base_url, usually "
        "ending in /v1), or a proxy in between (a login page?)"
    )


def _detail(error: Any) -> str:
    body = getattr(error, "body", None)
    if isinstance(body, dict):
        inner = body.get("error")
        message = body.get("message") or (
            inner.get("message") if isinstance(inner, dict) else inner
        )
        if message:
            return " ".join(str(message)[:2000].split())[:300]
    elif isinstance(body, str) and body:
        return " ".join(body[:2000].split())[:300]
    return ""
