"""A "split" server: benign on the first connection, hostile on the next ones.

A TCP forwarder on 127.0.0.1: connection 1 goes to the real server (mailpin's pre-flight probe sees
exactly what was pinned), every later connection to a hostile one (the tool's own session). It is
the active attacker, or the load balancer, that tells two TCP connections apart — the gap between a
pre-flight check and the session that carries the password and the mail.
"""

from __future__ import annotations

import socket
import threading
from types import TracebackType

from .pki import free_port


class SplitServer:
    host = "127.0.0.1"

    def __init__(self, benign: int, hostile: int, benign_connections: int = 1) -> None:
        self.benign, self.hostile, self.benign_connections = benign, hostile, benign_connections
        self.port = free_port()
        self.connections = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._listener: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self._sockets: list[socket.socket] = []

    def __enter__(self) -> SplitServer:
        self._listener = socket.create_server((self.host, self.port))
        self._listener.settimeout(0.05)
        self._spawn(self._accept)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._stop.set()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        for thread in list(self._threads):
            thread.join(2)
        if self._listener is not None:
            self._listener.close()

    def _spawn(self, target, *args) -> None:  # type: ignore[no-untyped-def]
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        assert self._listener is not None
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.connections += 1
                port = self.benign if self.connections <= self.benign_connections else self.hostile
            try:
                server = socket.create_connection((self.host, port), timeout=5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            with self._lock:
                self._sockets += [client, server]
            self._spawn(self._pipe, client, server)
            self._spawn(self._pipe, server, client)

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            try:
                sink.shutdown(socket.SHUT_WR)
            except OSError:
                pass
