"""The openai SDK itself: its clients shared across cells and the threads that call it.

:func:`shared_client` builds one SDK client per endpoint and settings and keeps it
(closed at exit by :func:`_close_clients`); :func:`in_thread` runs a blocking request
in a reused daemon thread (:class:`_Workers`) and hands its items over a queue, so the
kernel's interrupt lands within a tick. Not here: the warm-up that builds the first
client in the background (:mod:`agent_magic.warmup`, :func:`.client.warm_client`),
requests, fallback and errors (:mod:`.client`, :mod:`.errors`), what comes over the wire
(:mod:`.wire`).
"""

from __future__ import annotations

import atexit
import contextlib
import queue
import threading
import time
import weakref
from collections.abc import Iterator
from typing import Any

from ..conversation import ChatError, ChatReply, ThinkingDelta
from .transport import StdlibTransport, serves, stdlib_transport

# SDK clients are shared by every cell that uses the same endpoint and settings: building
# one costs ~0.1 s the first time (the HTTP transport's imports, and ~20 ms loading the CA
# bundle each time), and a shared client keeps its connections open between requests.
_CLIENTS: dict[tuple[Any, ...], Any] = {}
_CLIENTS_LOCK = threading.Lock()
_BUILDING: dict[tuple[Any, ...], threading.Lock] = {}


def shared_client(settings: tuple[Any, ...]) -> Any:
    with _CLIENTS_LOCK:
        client = _CLIENTS.get(settings)
        if client is not None:
            return client
        # One lock per settings: a client being built in the background for other
        # settings does not hold this one up.
        building = _BUILDING.setdefault(settings, threading.Lock())
    with building:
        with _CLIENTS_LOCK:
            client = _CLIENTS.get(settings)
        if client is None:
            client = _new_client(settings)
            with _CLIENTS_LOCK:
                _CLIENTS[settings] = client
                _BUILDING.pop(settings, None)
    return client


@atexit.register
def _close_clients() -> None:
    """Close the shared clients at exit, while the modules are still there.

    The SDK's HTTP client closes itself in ``__del__``, which fails noisily ("Exception
    ignored in ... __del__") when it runs after the interpreter has begun tearing its
    modules down, as it does for a client kept alive until then.
    """
    with _CLIENTS_LOCK:
        clients = list(_CLIENTS.values())
        _CLIENTS.clear()
    for client in clients:
        with contextlib.suppress(Exception):
            client.close()
        with contextlib.suppress(Exception):
            vars(client).pop("_client", None)  # its __del__ runs now, and finds it closed


def _new_client(settings: tuple[Any, ...]) -> Any:
    import openai  # deferred: the SDK takes most of a second to import

    kind, key, url, version, timeout, retries = settings
    common: dict[str, Any] = {"timeout": timeout, "max_retries": retries}
    transport = stdlib_transport() if serves(url) else None
    if transport is not None:
        # A local server: its bytes over http.client, under the SDK (see .transport).
        common["http_client"] = openai.DefaultHttpxClient(transport=transport)
    if kind == "azure":
        return openai.AzureOpenAI(api_key=key, azure_endpoint=url, api_version=version, **common)
    client = openai.OpenAI(api_key=key, base_url=url, **common)
    if transport is not None:
        _TRANSPORTS[client] = transport
    return client


# The stdlib transport under each plain OpenAI client that has one, for the requests
# that may take a learnt head (transport.post). Not Azure's: its client routes each
# request by deployment and may refresh its token between two.
_TRANSPORTS: weakref.WeakKeyDictionary[Any, StdlibTransport] = weakref.WeakKeyDictionary()


def transport_of(client: Any) -> StdlibTransport | None:
    return _TRANSPORTS.get(client)


class _Workers:
    """Daemon threads that run requests, reused from one request to the next.

    Starting a thread per request cost about a millisecond per step. An interrupted
    request is abandoned, not joined: its thread finishes at the client's timeout and
    meanwhile a new request simply gets another thread.
    """

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._idle = 0
        self._running = 0
        self._lock = threading.Lock()
        self._settled = threading.Condition(self._lock)

    def submit(self, job: Any) -> None:
        with self._lock:
            start = self._idle == 0
            if not start:
                self._idle -= 1
        if start:
            threading.Thread(target=self._serve, name="agent_magic-request", daemon=True).start()
        self._jobs.put(job)

    def wait_idle(self, timeout: float) -> bool:
        """True once no thread is running a request (a streamed reply is handed over
        before its body's end is read; that reading is part of the request)."""
        with self._settled:
            return self._settled.wait_for(lambda: self._running == 0, timeout)

    def _serve(self) -> None:
        while True:
            job = self._jobs.get()
            with self._lock:
                self._running += 1
            try:
                job()
            finally:
                with self._lock:
                    self._idle += 1
                    self._running -= 1
                    self._settled.notify_all()


WORKERS = _Workers()
_DONE = object()
SETTLE = 0.01  # seconds the main thread lets deltas gather after showing one


def _delta_text(item: str | ThinkingDelta) -> str:
    return item if isinstance(item, str) else item.text


def in_thread(
    produce: Any, tick: float, first_within: float | None = None, where: str = ""
) -> Iterator[str | ThinkingDelta | ChatReply]:
    """Run a blocking generator in a worker thread and hand its items over a queue.

    The main thread waits in short ticks, so a KeyboardInterrupt from the
    kernel's interrupt button lands within one tick even while the socket is
    silent; after handing on a delta it lets the next ones gather for up to ``SETTLE``
    seconds, woken at once by anything else. The worker is a daemon and is abandoned on
    interrupt; its request ends at the client's timeout. With ``first_within``, a
    ChatError naming ``where`` is raised when no item came in that many seconds (the SDK
    retrying all the while); once the reply has begun (its thinking counts), only the
    client's timeout between reads applies: a model still sending is never cut off, a
    silent one is.
    """
    items: queue.SimpleQueue[Any] = queue.SimpleQueue()
    cancelled = threading.Event()
    # Set once an item that is not a delta is queued (the reply, an error, the end): the
    # main thread, settling after a delta, is woken at once for it.
    urgent = threading.Event()

    def work() -> None:
        try:
            for item in produce():
                if cancelled.is_set():
                    return
                items.put(item)
                if not isinstance(item, (str, ThinkingDelta)):
                    urgent.set()
            items.put(_DONE)
        except BaseException as error:  # handed to the main thread, raised there
            items.put(error)
        urgent.set()

    WORKERS.submit(work)
    pending: Any = None
    deadline = time.monotonic() + first_within if first_within else None
    try:
        while True:
            if pending is not None:
                item, pending = pending, None
            else:
                try:
                    item = items.get(timeout=tick)
                except queue.Empty:
                    if deadline is not None and time.monotonic() >= deadline:
                        raise ChatError(
                            f"{where}: no answer within {first_within:g} s, retries "
                            "included; raise AgentMagics.retry_budget or try again"
                        ) from None
                    continue
                deadline = None
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            if isinstance(item, (str, ThinkingDelta)):
                # Deltas of one kind that arrived together are handed on as one: fewer
                # events and redraws when the model (or a network buffer) sends a burst.
                kind = type(item)
                parts = [_delta_text(item)]
                while pending is None:
                    try:
                        more = items.get_nowait()
                    except queue.Empty:
                        break
                    if type(more) is kind:
                        parts.append(_delta_text(more))
                    else:
                        pending = more
                item = "".join(parts) if kind is str else ThinkingDelta("".join(parts))
                yield item
                # The deltas that follow within SETTLE are shown together: this thread is
                # not woken (and the GIL not handed back and forth) for each chunk of a
                # fast stream, and a widget redraws ~100 times a second at most. The
                # reply, an error or the end wakes it at once.
                urgent.wait(SETTLE)
                continue
            yield item
    finally:
        cancelled.set()
