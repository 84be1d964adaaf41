"""Plain-HTTP requests through the standard library, under the openai SDK.

A local server (llama.cpp, Ollama, vLLM, LM Studio) answers in milliseconds, and there
the SDK's HTTP stack (httpx, httpcore and h11, all in Python) was the largest part of a
step's cost: about 0.9 ms of CPU per streamed request against 0.3 ms for ``http.client``,
which parses in C where it can. :class:`StdlibTransport` is an httpx *transport* (httpx's
public extension point, handed to the SDK as ``http_client``): the SDK still builds the
requests, retries, raises its own errors, routes Azure and reads the answer; only the bytes
go over ``http.client``. And once the SDK has built a path's request twice alike, the next
bodies go out with that head (:class:`Shortcut`, :func:`post`), every answer but a 200
handed back to the SDK as its own. It serves ``http://`` URLs that no proxy from the
environment applies to (:func:`serves`: httpx reads no proxy settings once given a
transport, so a proxied endpoint keeps the SDK's own client); any other scheme a request
is redirected to goes to httpx's own transport.

The contract kept from httpcore: a connection is reused only when the answer before it was
read to the end and the server did not ask to close, and never once the server has closed
it (checked before reuse, as httpcore does: a request is never sent twice); a failure is
raised as httpx's exception of the same kind (connect, read, write, timeout, protocol), so
the SDK's retries and :mod:`.errors` judge it as before.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import select
import socket
import threading
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple, NoReturn
from urllib.parse import urlsplit

from .errors import http as sdk_httpx

_READ = 65536
_IDLE_PER_HOST = 8


def serves(url: object) -> bool:
    """True for a plain ``http://`` base URL that no ``*_PROXY`` variable applies to."""
    if not isinstance(url, str) or not url.lower().startswith("http://"):
        return False
    # Imported here: it imports ssl (~7 ms), and only a new client asks.
    from urllib.request import getproxies, proxy_bypass

    proxies = getproxies()
    if not (proxies.get("http") or proxies.get("all")):
        return True
    host = urlsplit(url).netloc
    return bool(proxy_bypass(host))


def _timeouts(request: Any) -> tuple[float | None, float | None, float | None]:
    """Connect, write and read timeouts of an httpx request (None: wait for ever)."""
    given = request.extensions.get("timeout") or {}
    return given.get("connect"), given.get("write"), given.get("read")


def _readable(sock: socket.socket | None) -> bool:
    """True when an idle connection has something to read: the server closed it (or sent
    what nobody asked for); either way it must not carry another request."""
    if sock is None:
        return True
    try:
        if hasattr(select, "poll"):
            poller = select.poll()
            poller.register(sock, select.POLLIN)
            return bool(poller.poll(0))
        return bool(select.select([sock], [], [], 0)[0])
    except (OSError, ValueError):
        return True


def _set_timeout(sock: socket.socket, seconds: float | None) -> None:
    """``sock.settimeout``, left alone when already so: each call makes system calls, and
    the read and write timeouts are most often the same."""
    if sock.gettimeout() != seconds:
        sock.settimeout(seconds)


def _raise_as_httpx(error: BaseException, stage: str) -> NoReturn:
    """Raise ``error`` as httpx's exception for it (``stage``: connect, write or read)."""
    httpx = sdk_httpx()
    if isinstance(error, socket.timeout):
        kind = {"connect": httpx.ConnectTimeout, "write": httpx.WriteTimeout}.get(
            stage, httpx.ReadTimeout
        )
    elif isinstance(error, (http.client.RemoteDisconnected, http.client.IncompleteRead)):
        kind = httpx.RemoteProtocolError
    elif isinstance(error, http.client.HTTPException):
        kind = httpx.RemoteProtocolError if stage == "read" else httpx.ProtocolError
    else:
        kind = {"connect": httpx.ConnectError, "write": httpx.WriteError}.get(
            stage, httpx.ReadError
        )
    raise kind(str(error) or type(error).__name__) from error


class StdlibTransport:
    """Built by :func:`stdlib_transport` (the class is made an httpx transport there)."""

    def __init__(self) -> None:
        self._idle: dict[tuple[str, int], list[http.client.HTTPConnection]] = {}
        self._lock = threading.Lock()
        self._fallback: Any = None
        self._local = threading.local()
        self._shortcuts: dict[Any, Shortcut] = {}

    # -- connections -----------------------------------------------------------------

    def _take(self, host: str, port: int) -> http.client.HTTPConnection | None:
        with self._lock:
            idle = self._idle.get((host, port))
            while idle:
                connection = idle.pop()
                if not _readable(connection.sock):
                    return connection
                connection.close()
        return None

    def give_back(self, connection: http.client.HTTPConnection) -> None:
        """An answer read to its end: its connection may carry the next request."""
        key = (connection.host, connection.port)
        with self._lock:
            idle = self._idle.setdefault(key, [])
            if len(idle) < _IDLE_PER_HOST:
                idle.append(connection)
                return
        connection.close()

    def _connect(self, host: str, port: int, timeout: float | None) -> http.client.HTTPConnection:
        connection = http.client.HTTPConnection(host, port, timeout=timeout)
        try:
            connection.connect()  # sets TCP_NODELAY
        except BaseException as error:
            connection.close()
            if isinstance(error, Exception):
                _raise_as_httpx(error, "connect")
            raise
        return connection

    # -- httpx's transport interface -------------------------------------------------

    def handle_request(self, request: Any) -> Any:
        """What the SDK's client calls: the answer :meth:`hold` kept for this thread, if
        any (the SDK then judges it as its own first attempt), else the request sent."""
        local = self._local
        if getattr(local, "watching", False):  # the SDK's first attempt, for take_sent
            local.watching, local.sent = False, request
        held, local.held = getattr(local, "held", None), None
        if isinstance(held, BaseException):
            raise held
        if held is not None:
            return held
        return self.send(request)

    def hold(self, answer: Any) -> None:
        """The next request the SDK sends from this thread gets ``answer`` (a response or
        an exception) instead of going out; None forgets one not taken."""
        self._local.held = answer

    def watch(self) -> None:
        """Keep the next request the SDK sends from this thread (a first attempt, not a
        retry's or a redirect's) for :meth:`take_sent`; no other request is kept."""
        self._local.watching, self._local.sent = True, None

    def take_sent(self) -> Any:
        """The request :meth:`watch` kept, or None; let go of: its body is not kept past
        the learning."""
        local = self._local
        sent, local.sent, local.watching = getattr(local, "sent", None), None, False
        return sent

    def shortcut(self, key: Any) -> Shortcut:
        with self._lock:
            return self._shortcuts.setdefault(key, Shortcut())

    def send(self, request: Any) -> Any:
        """Send ``request`` and return httpx's response once its head has arrived."""
        url = request.url
        if url.scheme != "http":  # a redirect to https
            return self._other().handle_request(request)
        target = (url.host, url.port or 80, url.raw_path.decode("ascii"))
        return self._exchange(
            request.method, target, request.headers.raw, request.read(), _timeouts(request)
        )

    def send_head(self, head: Head, content: bytes) -> Any:
        """Send ``content`` under a learnt head (its length put in)."""
        headers = [*head.headers, (b"Content-Length", str(len(content)).encode())]
        return self._exchange(head.method, head.target, headers, content, head.timeouts)

    def _exchange(
        self,
        method: str,
        target: tuple[str, int, str],
        headers: Iterable[tuple[bytes, bytes]],
        content: bytes,
        timeouts: tuple[float | None, float | None, float | None],
    ) -> Any:
        host, port, path = target
        connect, write, read = timeouts
        connection = self._take(host, port) or self._connect(host, port, connect)
        try:
            assert connection.sock is not None
            _set_timeout(connection.sock, write)
            connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            for name, value in headers:
                connection.putheader(name, value)
            connection.endheaders(content or None)
        except BaseException as error:
            connection.close()
            if isinstance(error, Exception):
                _raise_as_httpx(error, "write")
            raise
        try:
            _set_timeout(connection.sock, read)
            answer = connection.getresponse()
        except BaseException as error:
            connection.close()
            if isinstance(error, Exception):
                _raise_as_httpx(error, "read")
            raise
        return sdk_httpx().Response(
            status_code=answer.status,
            headers=answer.getheaders(),
            stream=_body_stream(self, connection, answer),
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": answer.reason.encode()},
        )

    def _other(self) -> Any:
        with self._lock:
            if self._fallback is None:
                self._fallback = sdk_httpx().HTTPTransport()
            return self._fallback

    def close(self) -> None:
        with self._lock:
            idle = [c for connections in self._idle.values() for c in connections]
            self._idle.clear()
            fallback, self._fallback = self._fallback, None
        for connection in idle:
            connection.close()
        if fallback is not None:
            fallback.close()

    def __enter__(self) -> StdlibTransport:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class _Body:
    """An answer's body as httpx reads it: pieces as they arrive, then closed."""

    def __init__(
        self,
        transport: StdlibTransport,
        connection: http.client.HTTPConnection,
        answer: http.client.HTTPResponse,
    ) -> None:
        self._transport = transport
        self._connection: http.client.HTTPConnection | None = connection
        self._answer = answer
        self._read_to_end = False

    def __iter__(self) -> Iterator[bytes]:
        read = self._answer.read1
        while True:
            try:
                piece = read(_READ)
            except Exception as error:
                self.close()
                _raise_as_httpx(error, "read")
            if not piece:
                self._read_to_end = True
                return
            yield piece

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        answer = self._answer
        with contextlib.suppress(Exception):
            answer.close()  # its file only: the socket is the connection's
        if self._read_to_end and not answer.will_close:
            self._transport.give_back(connection)
        else:
            connection.close()


class Shortcut:
    """The request the SDK builds for one path of one client, learnt by watching it.

    Building a request anew (its options model, headers merged and checked, the URL
    parsed) is about half of what the SDK and httpx cost a local step. Once the SDK has
    built two requests in a row that differ in their body only, the same head is sent with
    the next bodies directly (:func:`post`); a head that changes from one request to the
    next (a refreshed token, a per-request key, a retry's count, cookies) is never
    learnt. Whatever is not a plain 200 answer is handed to the SDK as its own first
    attempt's, so its retries and errors are what they always were.
    """

    def __init__(self) -> None:
        self._seen: Head | None = None
        self.head: Head | None = None  # once learnt

    def learn(self, request: Any) -> None:
        head = None if request is None else _head(request)
        self.head = head if head is not None and head == self._seen else None
        self._seen = head


class Head(NamedTuple):
    """What a request is sent with, but its body and length."""

    method: str
    target: tuple[str, int, str]  # host, port, path with its query
    headers: tuple[tuple[bytes, bytes], ...]
    timeouts: tuple[float | None, float | None, float | None]
    extensions: tuple[tuple[str, Any], ...]  # all of them, for telling two heads apart


def _head(request: Any) -> Head | None:
    """The head of an ``http://`` request the SDK built, or None when it carries cookies
    (the SDK's jar stays in charge) or is not sent whole with a length."""
    url = request.url
    headers = tuple(
        (name, value) for name, value in request.headers.raw if name.lower() != b"content-length"
    )
    names = {name.lower() for name, _ in headers}
    if url.scheme != "http" or b"cookie" in names or b"transfer-encoding" in names:
        return None
    return Head(
        request.method,
        (url.host, url.port or 80, url.raw_path.decode("ascii")),
        headers,
        _timeouts(request),
        tuple(sorted((k, repr(v)) for k, v in request.extensions.items())),
    )


def post(
    client: Any, transport: StdlibTransport | None, path: str, body: dict[str, Any], stream: bool
) -> Any:
    """``client.post(path)`` of a JSON ``body`` for an httpx response (read whole unless
    ``stream``), with the head the SDK built for ``path`` before when it was learnt.

    A body that cannot be encoded raises UnicodeEncodeError before anything is sent (as
    the SDK's own serialising does)."""
    httpx = sdk_httpx()
    if transport is None:
        return client.post(path, cast_to=httpx.Response, body=body, stream=stream)
    shortcut = transport.shortcut((path, stream))
    head = shortcut.head
    if head is not None:
        content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        try:
            response = transport.send_head(head, content)
            if response.status_code == 200:
                if not stream:
                    response.read()
                return response
            transport.hold(response)  # the SDK reads it, raises or retries
        except httpx.TransportError as error:
            transport.hold(error)  # raised to the SDK as its first attempt's
    transport.watch()  # what the SDK builds next is the one to learn from
    try:
        response = client.post(path, cast_to=httpx.Response, body=body, stream=stream)
    finally:
        transport.hold(None)
    shortcut.learn(transport.take_sent())
    return response


_CLASSES: dict[Any, tuple[type, type]] = {}


def _classes() -> tuple[type, type]:
    """The transport and body classes, made subclasses of the SDK's httpx (httpx or its
    fork httpx2, imported only once a client is built)."""
    httpx = sdk_httpx()
    made = _CLASSES.get(httpx)
    if made is None:
        transport = type("StdlibTransport", (StdlibTransport, httpx.BaseTransport), {})
        body = type("StdlibBody", (_Body, httpx.SyncByteStream), {})
        made = _CLASSES[httpx] = (transport, body)
    return made


def _body_stream(transport: StdlibTransport, connection: Any, answer: Any) -> Any:
    return _classes()[1](transport, connection, answer)


def raw_pieces(response: Any) -> Iterable[bytes]:
    """A response's body as it came (not decompressed), piece by piece: from this
    transport's reading itself when it carried the response (httpx's ``iter_raw`` adds a
    layer of bookkeeping per piece that nothing here reads), else ``iter_raw``.
    ``response.close()`` still closes it."""
    stream = response.stream
    return stream if isinstance(stream, _Body) else response.iter_raw()


def stdlib_transport() -> Any:
    """A new :class:`StdlibTransport`, an instance of the SDK's ``httpx.BaseTransport``."""
    return _classes()[0]()
