"""Connect while Python imports: the TCP connections of a run start before mailpin's modules load.

A run's CPU is mostly imports (bench/RESULTS.md); on a real network it waits a round trip for the
connection anyway. So `mailpin run` remembers where the runs of each command line connected —
`$XDG_CACHE_HOME/mailpin/connect.json`, host and port only, and for msmtp per From: line of the
message, which may decide its account — and its very first step (cli.main, before anything else of
mailpin is imported) opens in background threads the TCP connections that every remembered run of
this command line made: they agree for one account, or for `-a NAME`. Where they do not (a `-t`
over several accounts), it waits until the message is read and opens what its From: line's runs
used. The verifier takes a connection only for exactly the endpoint it was about to connect to (same
host name and port, resolved the same way): nothing is decided by the hint, and everything — TLS,
the certificate, the profile — is verified on it as on any connection. A hint that no longer fits
(the config changed, another account) costs one unused connection, closed at once; no hint: the run
connects as always.

Imports only what the run imports anyway (hashlib, socket, threading, json): this module runs before
the heavy ones.
"""

from __future__ import annotations

import hashlib
import socket
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

from mailpin import xdg
from mailpin.state import cachefile

_TIMEOUT = 10.0  # a connect that takes longer is abandoned; the verifier's own takes over
_MAX = 32  # endpoints remembered per command line and sender (mbsync -a over many accounts)
_SENDERS = 16  # From: lines remembered per command line
_KEYS = 64  # command lines remembered
_NAME = "connect.json"

Endpoints = list[tuple[str, int]]


def key(tool: str, argv: Sequence[str]) -> str:
    """The command line's key: a digest, so that connect.json holds no argument as it was typed."""
    return hashlib.sha256("\0".join([tool, *argv]).encode("utf-8", "surrogateescape")).hexdigest()[:32]


def sender(message: bytes | None) -> str:
    """The From: line's key, which may decide msmtp's account; "" when the run reads no message."""
    return "" if message is None else hashlib.sha256(_from_line(message)).hexdigest()[:16]


def _from_line(message: bytes) -> bytes:
    head = message.split(b"\n\n", 1)[0].split(b"\r\n\r\n", 1)[0]
    for line in head.split(b"\n"):
        if line[:5].lower() == b"from:":
            return line.strip()
    return b""


class Hints:
    """What connect.json says about one command line: the endpoints each sender's runs connected to."""

    def __init__(self, cache_home: Path, run_key: str) -> None:
        self.cache_home, self.run_key = cache_home, run_key
        entry = cachefile.read(cache_home, _NAME).get(run_key)
        self.senders = {name: _endpoints(value) for name, value in entry.items()} if isinstance(entry, dict) else {}

    @classmethod
    def of_run(cls, environ: Mapping[str, str], tool: str, argv: Sequence[str]) -> Hints:
        return cls(Path(xdg.base(environ, "XDG_CACHE_HOME", ".cache")), key(tool, argv))

    def agreed(self) -> Endpoints:
        """Where every remembered run of the command line connected, when that is one place; else nothing."""
        places = {tuple(endpoints) for endpoints in self.senders.values()}
        return list(places.pop()) if len(places) == 1 else []

    def of(self, sender: str) -> Endpoints:
        return self.senders.get(sender, [])

    def remember(self, sender: str, endpoints: Sequence[tuple[str, int]]) -> None:
        """Keep where this run connected, for the next one (written only when it changed)."""
        value = list(dict.fromkeys(endpoints))[:_MAX]
        if self.senders.get(sender) == value:
            return
        data = cachefile.read(self.cache_home, _NAME)
        entry = data.pop(self.run_key, None)
        senders = {name: known for name, known in entry.items() if name != sender} if isinstance(entry, dict) else {}
        senders[sender] = [[host, port] for host, port in value]
        data[self.run_key] = dict(list(senders.items())[-_SENDERS:])  # the oldest sender first out
        while len(data) > _KEYS:
            del data[next(iter(data))]  # the oldest command line first
        cachefile.write(self.cache_home, _NAME, data)  # only a hint: unwritten, the next run connects as always


def _endpoints(value: object) -> Endpoints:
    if not isinstance(value, list):
        return []
    return [
        (item[0], item[1]) for item in value[:_MAX]
        if isinstance(item, list) and len(item) == 2 and isinstance(item[0], str) and type(item[1]) is int
    ]  # fmt: skip


def start(endpoints: Sequence[tuple[str, int]], opened: Early | None = None) -> Early | None:
    """Connections to ENDPOINTS, added to OPENED when there is one."""
    if not endpoints:
        return opened
    if opened is None:
        return Early(endpoints)
    opened.extend(endpoints)
    return opened


class Early:
    """Connections opened from a hint, each handed out once to the verifier that wants it."""

    def __init__(self, endpoints: Sequence[tuple[str, int]]) -> None:
        self._lock = threading.Lock()
        self._ready: dict[tuple[str, int], socket.socket | None] = {}
        self._threads: dict[tuple[str, int], threading.Thread] = {}
        self._closed = False
        self.extend(endpoints)

    def extend(self, endpoints: Sequence[tuple[str, int]]) -> None:
        """Open these too (those not already opened)."""
        for endpoint in dict.fromkeys(endpoints):
            if endpoint in self._threads or endpoint in self._ready:
                continue
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
