"""A relay in front of a real server that holds the first streamed reply at its start.

The real interrupt test needs the interrupt to land while a generation is under way, on
every machine: SmolLM2 writes its 43 characters faster on some machines than the kernel
takes the interrupt on others. :class:`Gate` relays TCP between the kernel and the
server on 127.0.0.1, passes the first streamed reply's first chunk (the server has read
the prompt and begun writing), says so (``first_chunk``), and holds the rest back until
``release()``: between the two the reply is in flight by construction. It also says when
that reply's connection has closed on the kernel's side (``first_closed``). Every later
connection is relayed as it is. Its threads are daemons and end with their sockets;
``close()`` ends it.
"""

from __future__ import annotations

import contextlib
import socket
import threading


class Gate:
    def __init__(self, host: str, port: int) -> None:
        self.upstream = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.first_chunk = threading.Event()
        self.first_closed = threading.Event()
        self._released = threading.Event()
        self._lock = threading.Lock()
        self._armed = True  # the first streamed reply is held; later ones are not
        threading.Thread(target=self._accept, name="gate-accept", daemon=True).start()

    def release(self) -> None:
        self._released.set()

    def close(self) -> None:
        self._released.set()
        self.listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            upstream = socket.create_connection(self.upstream)
            held = threading.Event()  # this connection carries the held reply
            for args in ((client, upstream, False, held), (upstream, client, True, held)):
                threading.Thread(target=self._pipe, args=args, daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, reply: bool, held: threading.Event):
        seen = b""
        try:
            while data := src.recv(65536):
                dst.sendall(data)
                if not reply:
                    continue
                seen = (seen + data)[-4096:]
                with self._lock:
                    hold = self._armed and b"data: {" in seen  # the stream's first chunk
                    if hold:
                        self._armed = False
                if hold:
                    held.set()
                    self.first_chunk.set()
                    self._released.wait()
        except OSError:
            pass  # the other side closed
        finally:
            if not reply and held.is_set():
                self.first_closed.set()  # the kernel closed the held reply's connection
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
