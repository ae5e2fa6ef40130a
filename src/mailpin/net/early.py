"""Connect while Python imports: the TCP connection of a run starts before mailpin's modules load.

A run's CPU is mostly imports (bench/RESULTS.md); on a real network it waits a round trip for the
connection anyway. So `mailpin run` remembers where the last run with the same command line (and,
for msmtp, the same From: line) connected — `$XDG_CACHE_HOME/mailpin/connect.json`, host and port
only — and, at its very start, opens those TCP connections in background threads. The verifier
takes one only for exactly the endpoint it was about to connect to (same host name and port,
resolved the same way): nothing is decided by the hint, and everything — TLS, the certificate, the
profile — is verified on it as on any connection. A hint that no longer fits (the config changed,
another account) costs one unused connection, closed at once; no hint: the run connects as always.

Imports only what the run imports anyway (os, json, hashlib, socket, threading): this module runs
before the heavy ones.
"""

from __future__ import annotations

import hashlib
import socket
import threading
from collections.abc import Sequence
from pathlib import Path

from mailpin.state import cachefile

_TIMEOUT = 10.0  # a connect that takes longer is abandoned; the verifier's own takes over
_MAX = 32  # endpoints remembered per command line (mbsync -a over many accounts)
_KEYS = 64  # command lines remembered
_NAME = "connect.json"


def key(tool: str, argv: Sequence[str], message: bytes | None) -> str:
    """The command line, and for a message the From: line that may decide msmtp's account."""
    digest = hashlib.sha256("\0".join([tool, *argv]).encode("utf-8", "surrogateescape"))
    if message is not None:
        digest.update(b"\0" + _from_line(message))
    return digest.hexdigest()[:32]


def _from_line(message: bytes) -> bytes:
    head = message.split(b"\n\n", 1)[0].split(b"\r\n\r\n", 1)[0]
    for line in head.split(b"\n"):
        if line[:5].lower() == b"from:":
            return line.strip()
    return b""


class Early:
    """Connections opened from a hint, each handed out once to the verifier that wants it."""

    def __init__(self, endpoints: Sequence[tuple[str, int]]) -> None:
        self._lock = threading.Lock()
        self._ready: dict[tuple[str, int], socket.socket | None] = {}
        self._threads: dict[tuple[str, int], threading.Thread] = {}
        self._closed = False
        for endpoint in dict.fromkeys(endpoints):
            thread = threading.Thread(target=self._open, args=(endpoint,), daemon=True)
            self._threads[endpoint] = thread
            thread.start()

    def _open(self, endpoint: tuple[str, int]) -> None:
        sock = None
        try:
            for family, kind, proto, _, address in socket.getaddrinfo(*endpoint, type=socket.SOCK_STREAM):
                attempt = socket.socket(family, kind, proto)
                try:
                    attempt.settimeout(_TIMEOUT)
                    attempt.connect(address)
                    sock = attempt
                    break
                except OSError:
                    attempt.close()
        except (OSError, UnicodeError):
            pass
        with self._lock:
            if self._closed and sock is not None:
                sock.close()  # nobody will take it any more
                sock = None
            self._ready[endpoint] = sock

    def take(self, host: str, port: int, wait: float) -> socket.socket | None:
        """The connection to exactly (host, port), if one was opened and is up; else None."""
        thread = self._threads.pop((host, port), None)
        if thread is None:
            return None
        thread.join(wait)
        with self._lock:
            sock = self._ready.pop((host, port), None)
        if sock is None:
            return None
        try:  # still up: a server that hung up meanwhile (or sent a reset) is not handed over
            sock.setblocking(False)
            data = sock.recv(1, socket.MSG_PEEK)
            alive = bool(data)
        except BlockingIOError:
            alive = True
        except OSError:
            alive = False
        if not alive:
            sock.close()
            return None
        sock.setblocking(True)
        return sock

    def close(self) -> None:
        """Close what nobody took (a stale hint); a connect still under way closes when it ends."""
        with self._lock:
            self._closed = True
            left = [sock for sock in self._ready.values() if sock is not None]
            self._ready.clear()
        for sock in left:
            sock.close()


def start(cache_home: Path, run_key: str) -> Early | None:
    hint = cachefile.read(cache_home, _NAME).get(run_key)
    if not isinstance(hint, list):
        return None
    endpoints = [
        (item[0], item[1]) for item in hint[:_MAX]
        if isinstance(item, list) and len(item) == 2 and isinstance(item[0], str) and isinstance(item[1], int)
    ]  # fmt: skip
    return Early(endpoints) if endpoints else None


def remember(cache_home: Path, run_key: str, endpoints: Sequence[tuple[str, int]]) -> None:
    """Keep where this run connected, for the next one (written only when it changed)."""
    data = cachefile.read(cache_home, _NAME)
    value = [[host, port] for host, port in dict.fromkeys(endpoints)][:_MAX]
    if data.get(run_key) == value:
        return
    data.pop(run_key, None)
    data[run_key] = value
    while len(data) > _KEYS:
        del data[next(iter(data))]  # the oldest command line first
    cachefile.write(cache_home, _NAME, data)  # only a hint: unwritten, the next run connects as always
