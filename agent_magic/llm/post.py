"""A chat request's POST through the SDK's own HTTP client, its headers built once.

The SDK's ``client.post`` builds every request from scratch: it copies its options model
twice, merges the headers, joins the URL and validates them, ~0.4 ms of CPU a request,
a quarter of what a step costs beyond the server. From one chat request to the next
only the body changes. So for a client whose requests differ only in their body (an
``openai.OpenAI`` client with a fixed key: no key provider, workload identity, provider
runtime, custom auth or idempotency key), :func:`post` takes the method, URL, headers
and extensions (the timeout) of a request the SDK itself built for this path and model,
puts the body in (serialized by the SDK's own ``openapi_dumps``), and sends it through
the SDK's ``_send_request``. Retries are the SDK's loop, step for step: the same
exceptions retried, the same ``_should_retry`` and ``_sleep_for_retry`` (``Retry-After``,
backoff), the same errors raised (``APITimeoutError``, ``APIConnectionError``, the
status errors of ``_make_status_error_from_response``); a retry's request is built by
the SDK itself (its ``x-stainless-retry-count`` header counts it).

Any other client (Azure's, with its deployment routing and token refresh), or an SDK
whose internals are not the ones this was written against, goes through ``client.post``
as before. Not here: what the reply means (:mod:`.wire`), which errors are which
(:mod:`.errors`).
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

from .errors import http

_MISSING = object()
# Attributes that make a request's headers or auth change from one request to the next.
_DYNAMIC = ("_api_key_provider", "_provider_runtime", "_workload_identity_auth")


class _Prepared:
    """A request the SDK built for one path and model, ready to take a body."""

    def __init__(self, client: Any, path: str, model: str, sdk: Any) -> None:
        self.client, self.path, self.sdk = client, path, sdk
        options = sdk.FinalRequestOptions.construct(
            method="post", url=path, json_data={"model": model}
        )
        request = self._built(options, 0)
        self.method, self.url = request.method, request.url
        self.headers = [(k, v) for k, v in request.headers.raw if k.lower() != b"content-length"]
        self.extensions = dict(request.extensions)

    def _built(self, options: Any, retries_taken: int) -> Any:
        """The request as the SDK's ``request`` builds it for this attempt."""
        client = self.client
        options = client._prepare_options(self.sdk.model_copy(options))
        request = client._build_request(options, retries_taken=retries_taken)
        client._prepare_request(request)
        return request

    def send(self, body: dict[str, Any], stream: bool) -> Any:
        """The SDK's ``request`` loop (openai/_base_client.py), the first attempt's
        request made from this one."""
        client, sdk = self.client, self.sdk
        content = sdk.openapi_dumps(body)  # a lone surrogate raises here, as in the SDK
        options = sdk.FinalRequestOptions.construct(method="post", url=self.path, json_data=body)
        max_retries = options.get_max_retries(client.max_retries)
        for retries_taken in range(max_retries + 1):
            remaining = max_retries - retries_taken
            if retries_taken:
                request = self._built(options, retries_taken)
            else:
                request = sdk.httpx.Request(
                    self.method,
                    self.url,
                    headers=self.headers,
                    content=content,
                    extensions=dict(self.extensions),
                )
            try:
                response = client._send_request(request, stream=stream)
            except sdk.timeout_exceptions() as error:
                if remaining > 0:
                    self._sleep(retries_taken, max_retries, options, None)
                    continue
                raise sdk.APITimeoutError(request=request) from error
            except sdk.OpenAIError:
                raise
            except sdk.request_exceptions() as error:
                if remaining > 0:
                    self._sleep(retries_taken, max_retries, options, None)
                    continue
                raise sdk.APIConnectionError(request=request) from error
            try:
                response.raise_for_status()
            except sdk.status_exceptions() as error:
                if remaining > 0 and client._should_retry(error.response):
                    error.response.close()
                    self._sleep(retries_taken, max_retries, options, response)
                    continue
                if not error.response.is_closed:
                    error.response.read()
                raise client._make_status_error_from_response(error.response) from None
            return response
        raise AssertionError("unreachable: the loop returns or raises")

    def _sleep(self, retries_taken: int, max_retries: int, options: Any, response: Any) -> None:
        self.client._sleep_for_retry(
            retries_taken=retries_taken, max_retries=max_retries, options=options, response=response
        )


class _Sdk:
    """The SDK's names :class:`_Prepared` uses; None from :func:`_sdk` when one is missing."""

    def __init__(self) -> None:
        import openai
        from openai._base_client import FinalRequestOptions
        from openai._compat import model_copy
        from openai._httpx2 import request_exceptions, status_exceptions, timeout_exceptions
        from openai._utils._json import openapi_dumps

        self.openai = openai
        self.httpx = http()
        self.FinalRequestOptions = FinalRequestOptions
        self.model_copy = model_copy
        self.openapi_dumps = openapi_dumps
        self.timeout_exceptions = timeout_exceptions
        self.request_exceptions = request_exceptions
        self.status_exceptions = status_exceptions
        self.OpenAIError = openai.OpenAIError
        self.APITimeoutError = openai.APITimeoutError
        self.APIConnectionError = openai.APIConnectionError


_SDK: list[_Sdk | None] = []  # loaded on first use
_LOCK = threading.Lock()
# Per client: (path, model) -> its prepared request, or None (the client's own post).
_PREPARED: weakref.WeakKeyDictionary[Any, dict[tuple[str, str], _Prepared | None]] = (
    weakref.WeakKeyDictionary()
)


def _sdk() -> _Sdk | None:
    with _LOCK:
        if not _SDK:
            try:
                _SDK.append(_Sdk())
            except (ImportError, AttributeError):  # another SDK version: its own post
                _SDK.append(None)
        return _SDK[0]


def _steady(client: Any, sdk: _Sdk) -> bool:
    """Whether every request of ``client`` carries the same headers and auth."""
    if type(client) is not sdk.openai.OpenAI or getattr(client, "_idempotency_header", None):
        return False
    if any(getattr(client, name, _MISSING) is not None for name in _DYNAMIC):
        return False
    if not isinstance(getattr(client, "_client", None), sdk.httpx.Client):
        return False
    try:
        return client._custom_auth({"bearer_auth": True}) is None
    except Exception:
        return False


def _prepared(client: Any, path: str, model: str) -> _Prepared | None:
    with _LOCK:
        known = _PREPARED.setdefault(client, {})
        if (path, model) in known:
            return known[path, model]
    sdk = _sdk()
    prepared = None
    if sdk is not None and _steady(client, sdk):
        try:
            prepared = _Prepared(client, path, model, sdk)
        except Exception:  # the SDK's internals are not as expected: its own post
            prepared = None
    with _LOCK:
        known[path, model] = prepared
    return prepared


def post(client: Any, path: str, body: dict[str, Any], *, stream: bool) -> Any:
    """``client.post(path, cast_to=httpx.Response, body=body, stream=stream)``: the raw
    HTTP response (its body read unless ``stream``), or the SDK's error."""
    model = body.get("model")
    prepared = _prepared(client, path, model) if isinstance(model, str) else None
    if prepared is None:
        return client.post(path, cast_to=http().Response, body=body, stream=stream)
    return prepared.send(body, stream)
