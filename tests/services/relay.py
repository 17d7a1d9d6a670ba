"""A TCP relay on loopback to the test PostgreSQL that can be cut: while cut, every
relayed connection is closed and the port refuses connections, as a server that went
away (a restart, a failover, a network blip) does to its clients."""

from __future__ import annotations

import socket
import threading
from contextlib import suppress

UPSTREAM = ("127.0.0.1", 5432)


class Relay:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._listener = self._listen(0)
        self.port = self._listener.getsockname()[1]
        self.cuts = 0

    def _listen(self, port: int) -> socket.socket:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen(16)
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return listener

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # the listener was closed: a cut, or the end
            upstream = socket.create_connection(UPSTREAM)
            with self._lock:
                self._sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        with suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        for s in (source, sink):
            with suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        """Drop every connection and refuse new ones until `restore`."""
        with self._lock:
            with suppress(OSError):  # wakes the thread blocked in accept (Linux)
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            for s in self._sockets:
                with suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()
            self._sockets = []
            self.cuts += 1

    def restore(self) -> None:
        with self._lock:
            self._listener = self._listen(self.port)

    def close(self) -> None:
        self.cut()
