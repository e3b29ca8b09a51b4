"""A TCP proxy on loopback that can cut a connection after a number of bytes from the server (a dropped link
mid-fetch), for as many connections as asked; later connections pass through untouched. It can also take a
word out of what the server says (``hide``): a capability, to play a server without that extension."""

from __future__ import annotations

import contextlib
import socket
import threading


class DroppingProxy:
    def __init__(
        self, target_port: int, *, drop_after: int | None = None, drops: int = 1, hide: bytes | None = None
    ) -> None:
        self.target_port = target_port
        self.hide = hide
        self.drop_after = drop_after
        self.drops_left = drops
        self.dropped = 0
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(8)
        self.port = self.listener.getsockname()[1]
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target_port))
            with self._lock:
                limit = self.drop_after if self.drops_left > 0 else None  # None: no drop
                if limit is not None:
                    self.drops_left -= 1
            threading.Thread(target=self._pipe, args=(client, server, None), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, limit, self.hide), daemon=True).start()

    def _pipe(
        self, source: socket.socket, sink: socket.socket, limit: int | None, hide: bytes | None = None
    ) -> None:
        sent = 0
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if hide:
                    data = data.replace(hide, b"")
                if limit is not None and sent + len(data) > limit:
                    sink.sendall(data[: max(0, limit - sent)])
                    with self._lock:
                        self.dropped += 1
                    break
                sink.sendall(data)
                sent += len(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()

    def close(self) -> None:
        self.listener.close()
