"""Minimal mail servers on 127.0.0.1 for the demo, each connection in a thread.

Just enough of SMTP and IMAP for msmtp, mbsync and mailpin's own probe (`smtp.py`, `imap.py`), with
two switches an attacker would pull: serve a certificate from another CA, and stop offering
STARTTLS. Every read is a bounded line (or a bounded literal) under an idle timeout, and every
socket call is sliced into short ticks that watch the stop flag, so `stop()` returns within about a
second whatever the clients do.
"""

from __future__ import annotations

import functools
import socket
import ssl
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from mailpin.demo.ca import DemoPKI

MAX_LINE = 8192  # bytes in one command line: RFC 5321 §4.5.3.1.4 allows 512 for SMTP
MAX_DATA = 10 << 20  # bytes in one message, or one literal
IDLE = 15.0  # seconds a client may stay silent before the server hangs up
_TICK = 0.1  # socket timeout slice: how soon a thread notices the server stopping
_S = TypeVar("_S", bound="Server")


class Gone(Exception):
    """The client went away, sent too much, stayed silent too long, or the server is stopping."""


class Conn:
    """One client connection: a bounded line reader over a plain or TLS socket."""

    def __init__(self, server: Server, sock: socket.socket) -> None:
        self._server = server
        self._sock = sock
        self._buffer = bytearray()
        self.tls = False
        self.implicit = False  # TLS from the first byte (the Implicit TLS port), not after STARTTLS
        sock.settimeout(_TICK)

    def _recv(self, deadline: float) -> None:
        while True:
            if self._server.stopping or time.monotonic() >= deadline:
                raise Gone("stopping or idle")
            try:
                data = self._sock.recv(65536)
            except (TimeoutError, ssl.SSLWantReadError):
                continue
            except OSError as exc:
                raise Gone(str(exc)) from None
            if not data:
                raise Gone("closed by the client")
            self._buffer += data
            return

    def readline(self) -> bytes:
        """The next line, without CRLF (or a bare LF)."""
        deadline = time.monotonic() + IDLE
        while True:
            end = self._buffer.find(b"\n", 0, MAX_LINE + 2)
            if end >= 0:
                line = bytes(self._buffer[:end]).removesuffix(b"\r")
                del self._buffer[: end + 1]
                return line
            if len(self._buffer) > MAX_LINE:
                raise Gone("line too long")
            self._recv(deadline)

    def read_exact(self, size: int) -> bytes:
        """Exactly `size` bytes (an IMAP literal)."""
        if size > MAX_DATA:
            raise Gone("literal too large")
        deadline = time.monotonic() + IDLE
        while len(self._buffer) < size:
            self._recv(deadline)
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    def send(self, data: bytes) -> None:
        view, deadline = memoryview(data), time.monotonic() + IDLE
        while view:
            if self._server.stopping or time.monotonic() >= deadline:
                raise Gone("stopping or stalled")
            try:
                view = view[self._sock.send(view) :]
            except (TimeoutError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
                continue  # nothing sent: the same buffer again, as SSL_write requires
            except OSError as exc:
                raise Gone(str(exc)) from None

    def start_tls(self) -> None:
        """Server side of the handshake, with the certificate the server serves right now.

        Bytes the client sent before its ClientHello are dropped, never read as if they came over
        TLS (RFC 3207 §4.2: the STARTTLS command injection class)."""
        self._buffer.clear()
        wrapped = self._server.context().wrap_socket(self._sock, server_side=True, do_handshake_on_connect=False)
        self._sock, deadline = wrapped, time.monotonic() + IDLE
        while True:
            if self._server.stopping or time.monotonic() >= deadline:
                raise Gone("handshake did not complete")
            try:
                wrapped.do_handshake()
                break
            except (TimeoutError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                continue
            except OSError as exc:  # ssl.SSLError included: the client refused our certificate
                raise Gone(f"handshake failed: {exc}") from None
        self.tls = True

    def close(self) -> None:
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()


class Server:
    """Listeners on free loopback ports — `implicit` (TLS from the first byte), `starttls` — and a
    protocol `session(conn)` run per connection (subclasses)."""

    name = "server"

    def __init__(self, pki: DemoPKI, modes: tuple[str, ...] = ("implicit", "starttls")) -> None:
        self.pki = pki
        self.modes = modes
        self.ports: dict[str, int] = {}
        self.foreign = False  # switch: serve the foreign CA's certificate
        self.offer_starttls = True  # switch: False strips STARTTLS from the capabilities
        self.lock = threading.Lock()
        self.errors: list[str] = []  # what went wrong inside the server itself (a bug, not a client)
        self._stop = threading.Event()
        self._contexts = {False: _context(pki.good.chain_pem, pki.good.key_pem),
                          True: _context(pki.foreign.chain_pem, pki.foreign.key_pem)}  # fmt: skip
        self._listeners: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._conns: list[Conn] = []

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def context(self) -> ssl.SSLContext:
        return self._contexts[self.foreign]

    def session(self, conn: Conn) -> None:
        raise NotImplementedError

    def start(self: _S) -> _S:
        for mode in self.modes:
            listener = socket.create_server(("127.0.0.1", 0))
            listener.settimeout(_TICK)
            self._listeners.append(listener)
            self.ports[mode] = listener.getsockname()[1]
            self._spawn(f"demo-{self.name}-{mode}", functools.partial(self._accept, listener, mode == "implicit"))
        return self

    def stop(self) -> None:
        """Stop accepting, hang up on every client, and wait for the threads (about a second at most)."""
        self._stop.set()
        with self.lock:
            threads, conns = list(self._threads), list(self._conns)
        deadline = time.monotonic() + 2.0
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        for conn in conns:
            conn.close()
        for listener in self._listeners:
            listener.close()

    def _spawn(self, name: str, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        with self.lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)
        thread.start()

    def _accept(self, listener: socket.socket, implicit: bool) -> None:
        while not self.stopping:
            try:
                sock, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn = Conn(self, sock)
            with self.lock:
                self._conns.append(conn)
            self._spawn(f"demo-{self.name}-session", functools.partial(self._serve, conn, implicit))

    def _serve(self, conn: Conn, implicit: bool) -> None:
        try:
            if implicit:
                conn.implicit = True
                conn.start_tls()  # RFC 8314 §3: TLS from the first byte, then the protocol's greeting
            self.session(conn)
        except Gone:
            pass
        except Exception as exc:  # kept for the story to report; a thread's traceback would garble it
            with self.lock:
                self.errors.append(f"{self.name}: {type(exc).__name__}: {exc}")
        finally:
            conn.close()
            with self.lock:
                if conn in self._conns:
                    self._conns.remove(conn)


def _context(chain_pem: Path, key_pem: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(chain_pem, key_pem)
    return context
