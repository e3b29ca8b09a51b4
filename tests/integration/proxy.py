"""TCP proxies on loopback in front of the test servers. ``Proxy`` is the one generic piece: it accepts, connects
upstream and pipes both ways, with an optional rewrite of each direction (in chunks, or line by line).

``DroppingProxy`` cuts a connection after a number of bytes from the server (a dropped link mid-fetch), for as
many connections as asked; later connections pass through untouched. It can also take a word out of what the
server says (``hide``): a capability, to play a server without that extension."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


class Hangup(Exception):
    """Raised by a rewrite: pass ``last`` on, then cut the connection on both sides."""

    def __init__(self, last: bytes = b"") -> None:
        super().__init__()
        self.last = last


@dataclass
class Link:
    """One proxied connection: the client's socket, the server's, and what the rewrites keep about it."""

    client: socket.socket
    server: socket.socket
    state: dict[str, Any] = field(default_factory=dict)


Rewrite = Callable[[bytes, Link], bytes]


class Proxy:
    """Passes everything between its clients and ``target_port`` on loopback. ``up`` rewrites what a client
    sends, ``down`` what the server answers: each gets the data (a chunk, or one line with ``lines``) and the
    link, returns what to pass on, and may answer the client itself (``link.client``) or raise ``Hangup``.
    ``connected`` is called for each new link before any data flows."""

    def __init__(
        self,
        target_port: int,
        *,
        up: Rewrite | None = None,
        down: Rewrite | None = None,
        lines: bool = False,
        connected: Callable[[Link], None] | None = None,
    ) -> None:
        self.target_port = target_port
        self._up, self._down, self._lines, self._connected = up, down, lines, connected
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=8)
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            link = Link(client, socket.create_connection(("127.0.0.1", self.target_port)))
            if self._connected:
                self._connected(link)
            threading.Thread(
                target=self._pipe, args=(link, client, link.server, self._up), daemon=True
            ).start()
            threading.Thread(
                target=self._pipe, args=(link, link.server, client, self._down), daemon=True
            ).start()

    def _pipe(self, link: Link, source: socket.socket, sink: socket.socket, rewrite: Rewrite | None) -> None:
        try:
            pieces = source.makefile("rb") if self._lines else iter(lambda: source.recv(65536), b"")
            for data in pieces:
                if rewrite:
                    data = rewrite(data, link)
                if data:
                    sink.sendall(data)
        except Hangup as hangup:
            with contextlib.suppress(OSError):
                sink.sendall(hangup.last)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()

    def close(self) -> None:
        self.listener.close()


class DroppingProxy(Proxy):
    def __init__(
        self, target_port: int, *, drop_after: int | None = None, drops: int = 1, hide: bytes | None = None
    ) -> None:
        self.hide = hide
        self.drop_after = drop_after
        self.drops_left = drops
        self.dropped = 0
        self._lock = threading.Lock()
        super().__init__(target_port, down=self._from_server, connected=self._new_link)

    def _new_link(self, link: Link) -> None:
        with self._lock:
            link.state["limit"] = self.drop_after if self.drops_left > 0 else None  # None: no drop
            if link.state["limit"] is not None:
                self.drops_left -= 1
        link.state["sent"] = 0

    def _from_server(self, data: bytes, link: Link) -> bytes:
        if self.hide:
            data = data.replace(self.hide, b"")
        limit, sent = link.state["limit"], link.state["sent"]
        if limit is not None and sent + len(data) > limit:
            with self._lock:
                self.dropped += 1
            raise Hangup(data[: max(0, limit - sent)])
        link.state["sent"] = sent + len(data)
        return data
