"""A scriptable hostile mail server on 127.0.0.1 for STARTTLS attack tests.

Real servers (Dovecot, aiosmtpd) cannot strip STARTTLS, inject responses or stall on purpose, so
this one runs a *script* per accepted connection: a callable that talks to the client through a
:class:`Peer`. The catalogue :data:`SCENARIOS` plays the client-side attack classes of the STARTTLS
literature (anchors.md §1.13: stripping, refusal, PREAUTH, buffering/response injection, tampering)
plus stalls and abuse; :data:`EXPECTED` says what a correct client concludes from each one.

Scripts end promptly when the server stops: every socket operation runs in short timeout slices
that check the stop flag, so ``__exit__`` returns within about two seconds at worst.
"""

from __future__ import annotations

import math
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType

Script = Callable[["Peer"], None]
MAX_LINE = 8192  # a line longer than this is never returned (bounded buffer)
TICK = 0.05  # socket timeout slice: how soon a blocked script notices the server stopping
COMMAND_TIMEOUT = 10.0  # scenarios give up on a client silent for this long


class PeerGone(Exception):
    """The client went away (EOF, reset, failed TLS handshake) or the server is stopping."""


class Peer:
    """One accepted client connection, as the script sees it."""

    def __init__(self, server: HostileServer, sock: socket.socket) -> None:
        self._server = server
        self._sock = sock
        self._buf = b""
        self.tls = False  # True once start_tls() completed
        self.closed = False  # the client sent EOF, or the socket was closed
        self.leftover = b""  # unread plaintext bytes the client sent before the TLS handshake

    @property
    def stopping(self) -> bool:
        return self._server.stopping

    def send(self, data: bytes) -> None:
        """Send all of ``data`` (in one ``send()`` call when the socket takes it); PeerGone on failure."""
        view = memoryview(data)
        while view:
            if self.stopping:
                raise PeerGone("server stopping")
            try:
                sent = self._sock.send(view)
            except (TimeoutError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
                continue  # nothing sent: retry the same buffer (as SSL_write requires)
            except OSError as exc:
                raise PeerGone(f"send failed: {exc}") from exc
            view = view[sent:]

    def _recv(self) -> bytes:
        """One receive slice: data, or b"" when nothing arrived within TICK or on EOF."""
        try:
            data = self._sock.recv(65536)
        except (TimeoutError, ssl.SSLWantReadError):
            return b""
        except OSError as exc:
            raise PeerGone(f"recv failed: {exc}") from exc
        if not data:
            self.closed = True
        return data

    def line(self, timeout: float = 5.0) -> bytes | None:
        """Next line without its CRLF/LF; None on EOF, timeout, server stop or a line over MAX_LINE."""
        deadline = time.monotonic() + timeout
        while True:
            end = self._buf.find(b"\n", 0, MAX_LINE + 1)
            if end >= 0:
                text, self._buf = self._buf[:end], self._buf[end + 1 :]
                text = text.removesuffix(b"\r")
                self._server._record(text)
                return text
            if len(self._buf) > MAX_LINE or self.closed or self.stopping or time.monotonic() >= deadline:
                return None
            self._buf += self._recv()

    def start_tls(self, timeout: float = 10.0) -> None:
        """Server-side TLS handshake on this socket; afterwards send/line go over TLS."""
        context = self._server.tls_context
        if context is None:
            raise RuntimeError("HostileServer has no certificate: pass chain_pem and key_pem")
        self.leftover, self._buf = self._buf, b""
        try:
            self._sock = context.wrap_socket(self._sock, server_side=True, do_handshake_on_connect=False)
        except OSError as exc:
            # The client already closed (a block before its handshake): CPython's wrap_socket raises
            # "Closed before TLS handshake with data in recv buffer" — the client going away, as below.
            self._server.tls_failures.append(str(exc))
            raise PeerGone(f"TLS handshake failed: {exc}") from exc
        deadline = time.monotonic() + timeout
        while True:
            if self.stopping or time.monotonic() >= deadline:
                raise PeerGone("TLS handshake did not complete")
            try:
                self._sock.do_handshake()
                break
            except (TimeoutError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                continue
            except OSError as exc:  # includes ssl.SSLError: the client refused us or is not TLS
                self._server.tls_failures.append(str(exc))
                raise PeerGone(f"TLS handshake failed: {exc}") from exc
        self.tls = True
        self._server._count_handshake()

    def sleep(self, seconds: float) -> None:
        """Sleep, returning early when the server stops."""
        self._server._stop.wait(seconds)

    def drain(self, timeout: float = math.inf) -> None:
        """Read and discard raw bytes until the client closes, the server stops or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        self._buf = b""
        while not (self.closed or self.stopping or time.monotonic() >= deadline):
            self._recv()

    def close(self) -> None:
        self.closed = True
        self._sock.close()

    def wait_bytes(self, timeout: float = COMMAND_TIMEOUT) -> bytes:
        """Raw bytes (e.g. a ClientHello) as soon as any arrive; b"" on timeout, EOF or server stop."""
        deadline = time.monotonic() + timeout
        data, self._buf = self._buf, b""
        while not (data or self.closed or self.stopping or time.monotonic() >= deadline):
            data = self._recv()
        return data

    def peek(self, timeout: float = COMMAND_TIMEOUT) -> bool:
        """Wait until the client has sent something, without reading it (it stays for start_tls)."""
        deadline = time.monotonic() + timeout
        while not (self._buf or self.closed or self.stopping or time.monotonic() >= deadline):
            try:
                if self._sock.recv(1, socket.MSG_PEEK):
                    return True
                self.closed = True
            except (TimeoutError, ssl.SSLWantReadError):
                continue
            except OSError as exc:
                raise PeerGone(f"recv failed: {exc}") from exc
        return bool(self._buf)

    def reset(self) -> None:
        """Abort the connection with a TCP RST (SO_LINGER 0), as a crashing middlebox would."""
        try:
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.close()


class HostileServer:
    """Accepts on 127.0.0.1:<free port> and runs ``script(peer)`` per connection, each in a thread."""

    host = "127.0.0.1"

    def __init__(
        self,
        script: Script,
        *,
        chain_pem: Path | None = None,
        key_pem: Path | None = None,
        implicit_tls: bool = False,
    ) -> None:
        self.script = script
        self.implicit_tls = implicit_tls
        self.port = 0
        self.connections = 0  # accepted so far
        self.handshakes = 0  # TLS handshakes completed so far
        self.tls_failures: list[str] = []  # handshakes the client broke off (e.g. it rejected the cert)
        self.received: list[bytes] = []  # every line the client sent, without line endings, in order
        self.errors: list[BaseException] = []  # script failures other than the client going away
        self.tls_context: ssl.SSLContext | None = None
        if chain_pem is not None and key_pem is not None:
            self.tls_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.tls_context.minimum_version = ssl.TLSVersion.TLSv1_2
            self.tls_context.maximum_version = ssl.TLSVersion.TLSv1_3
            self.tls_context.load_cert_chain(chain_pem, key_pem)
        elif chain_pem is not None or key_pem is not None or implicit_tls:
            raise ValueError("TLS needs both chain_pem and key_pem")
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._peers: list[Peer] = []
        self._threads: list[threading.Thread] = []
        self._listener: socket.socket | None = None
        self._acceptor: threading.Thread | None = None

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def use_tls(self, chain_pem: Path, key_pem: Path, maximum: ssl.TLSVersion | None = None) -> None:
        """Serve this certificate (and at most TLS version ``maximum``) from the next handshake on:
        the same port, another certificate variant or a downgraded TLS stack."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.maximum_version = maximum or ssl.TLSVersion.TLSv1_3
        context.load_cert_chain(chain_pem, key_pem)
        self.tls_context = context  # one attribute store: atomic for the connection threads

    def __enter__(self) -> HostileServer:
        self._listener = socket.create_server((self.host, 0))
        self._listener.settimeout(TICK)
        self.port = self._listener.getsockname()[1]
        self._acceptor = threading.Thread(target=self._accept_loop, name=f"hostile-{self.port}", daemon=True)
        self._acceptor.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def stop(self, grace: float = 2.0) -> None:
        """Close the listener and every client socket; join all threads within ``grace`` seconds."""
        self._stop.set()
        deadline = time.monotonic() + grace
        if self._acceptor is not None:
            self._acceptor.join(grace)
        if self._listener is not None:
            self._listener.close()
        with self._lock:
            threads, peers = list(self._threads), list(self._peers)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        for peer in peers:
            peer.close()
        stuck = [t.name for t in threads if t.is_alive()]
        if stuck:
            self.errors.append(RuntimeError(f"script threads did not stop: {stuck}"))

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self.stopping:
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError as exc:
                if not self.stopping:
                    self.errors.append(exc)
                return
            conn.settimeout(TICK)
            peer = Peer(self, conn)
            with self._lock:
                self.connections += 1
                thread = threading.Thread(
                    target=self._serve, args=(peer,), name=f"hostile-{self.port}-{self.connections}"
                )
                thread.daemon = True
                self._peers.append(peer)
                self._threads.append(thread)
            thread.start()

    def _serve(self, peer: Peer) -> None:
        try:
            if self.implicit_tls:
                peer.start_tls()
            self.script(peer)
        except PeerGone:
            pass
        except BaseException as exc:  # reported to the test through .errors, never lost
            with self._lock:
                self.errors.append(exc)
        finally:
            peer.close()

    def _record(self, line: bytes) -> None:
        with self._lock:
            self.received.append(line)

    def _count_handshake(self) -> None:
        with self._lock:
            self.handshakes += 1


# --- dialogues ---------------------------------------------------------------------------------------

StartTLS = Callable[[Peer, bytes], bool]  # (peer, IMAP tag or b"") -> go on with the dialogue?
_TLS_ONLY = {"smtp": ["AUTH PLAIN LOGIN"], "imap": ["AUTH=PLAIN"], "pop3": ["SASL PLAIN"]}
_PRE_TLS_ONLY = {"STARTTLS", "STLS", "LOGINDISABLED"}


def _words(line: bytes, count: int) -> list[bytes]:
    return [*line.split(None, count)[:count], b"", b""][:count]


def _caps(proto: str, caps: Sequence[str], peer: Peer) -> list[str]:
    """RFC 3207 §4.2 / RFC 2595 §3.1: after TLS the server stops offering STARTTLS and allows auth."""
    if not peer.tls:
        return list(caps)
    return [c for c in caps if c not in _PRE_TLS_ONLY] + [c for c in _TLS_ONLY[proto] if c not in caps]


def starttls_reply(reply: bytes, *, handshake: bool = True, hold: bool = False) -> StartTLS:
    """Answer STARTTLS with ``reply`` (``{tag}`` is the client's IMAP tag) in one send, then maybe TLS."""

    def react(peer: Peer, tag: bytes) -> bool:
        peer.send(reply.replace(b"{tag}", tag))
        if hold:  # accepted, yet never handshake: keep the socket open until client or server quits
            peer.drain()
            return False
        if handshake:
            peer.start_tls()
        return True

    return react


SMTP_GREETING = b"220 hostile.test ESMTP ready\r\n"
SMTP_CAPS = ("PIPELINING", "SIZE 10240000", "STARTTLS", "8BITMIME", "ENHANCEDSTATUSCODES")


def _multiline(code: int, lines: Sequence[str]) -> bytes:
    last = len(lines) - 1
    return b"".join(f"{code}{'-' if n < last else ' '}{text}\r\n".encode() for n, text in enumerate(lines))


def _smtp(peer: Peer, greeting: bytes, caps: Sequence[str], on_starttls: StartTLS) -> None:
    peer.send(greeting)
    while (line := peer.line(COMMAND_TIMEOUT)) is not None:
        verb = _words(line, 1)[0].upper()
        if verb in (b"EHLO", b"HELO"):
            exts = _caps("smtp", caps, peer) if verb == b"EHLO" else []
            peer.send(_multiline(250, ["hostile.test greets you", *exts]))
        elif verb == b"STARTTLS" and "STARTTLS" in caps and not peer.tls:
            if not on_starttls(peer, b""):
                return
        elif verb == b"QUIT":
            peer.send(b"221 2.0.0 Bye\r\n")
            return
        elif verb in (b"NOOP", b"RSET"):
            peer.send(b"250 2.0.0 OK\r\n")
        else:
            peer.send(b"502 5.5.1 Command not implemented\r\n")


IMAP_GREETING = b"* OK hostile.test IMAP4rev1 ready\r\n"
IMAP_CAPS = ("IMAP4rev1", "SASL-IR", "ID", "IDLE", "STARTTLS", "LOGINDISABLED")


def _imap(peer: Peer, greeting: bytes, caps: Sequence[str], on_starttls: StartTLS) -> None:
    peer.send(greeting)
    while (line := peer.line(COMMAND_TIMEOUT)) is not None:
        tag, verb = _words(line, 2)
        verb = verb.upper()
        if verb == b"CAPABILITY":
            untagged = f"* CAPABILITY {' '.join(_caps('imap', caps, peer))}\r\n".encode()
            peer.send(untagged + tag + b" OK CAPABILITY completed\r\n")
        elif verb == b"STARTTLS" and "STARTTLS" in caps and not peer.tls:
            if not on_starttls(peer, tag):
                return
        elif verb == b"LOGOUT":
            peer.send(b"* BYE logging out\r\n" + tag + b" OK LOGOUT completed\r\n")
            return
        elif verb == b"NOOP":
            peer.send(tag + b" OK NOOP completed\r\n")
        elif verb == b"ID":  # RFC 2971: offlineimap says who it is before it logs in
            peer.send(b"* ID NIL\r\n" + tag + b" OK ID completed\r\n")
        else:
            peer.send((tag or b"*") + b" BAD command unknown or not allowed\r\n")


POP3_GREETING = b"+OK hostile.test POP3 ready\r\n"
POP3_CAPS = ("TOP", "UIDL", "USER", "RESP-CODES", "PIPELINING", "STLS")


def _pop3(peer: Peer, greeting: bytes, caps: Sequence[str], on_starttls: StartTLS) -> None:
    peer.send(greeting)
    while (line := peer.line(COMMAND_TIMEOUT)) is not None:
        verb = _words(line, 1)[0].upper()
        if verb == b"CAPA":
            lines = "".join(f"{cap}\r\n" for cap in _caps("pop3", caps, peer))
            peer.send(f"+OK Capability list follows\r\n{lines}.\r\n".encode())
        elif verb == b"STLS" and "STLS" in caps and not peer.tls:
            if not on_starttls(peer, b""):
                return
        elif verb == b"QUIT":
            peer.send(b"+OK bye\r\n")
            return
        elif verb == b"NOOP":
            peer.send(b"+OK\r\n")
        else:
            peer.send(b"-ERR unknown command\r\n")


_DIALOGUES = {"smtp": _smtp, "imap": _imap, "pop3": _pop3}
_DEFAULTS = {"smtp": (SMTP_GREETING, SMTP_CAPS), "imap": (IMAP_GREETING, IMAP_CAPS), "pop3": (POP3_GREETING, POP3_CAPS)}
GO_AHEAD = {  # the benign STARTTLS / STLS answer
    "smtp": b"220 2.0.0 Ready to start TLS\r\n",
    "imap": b"{tag} OK Begin TLS negotiation now\r\n",
    "pop3": b"+OK Begin TLS negotiation\r\n",
}


def dialogue(
    proto: str,
    *,
    greeting: bytes | None = None,
    caps: Sequence[str] | None = None,
    on_starttls: StartTLS | None = None,
) -> Script:
    """A just-correct-enough ``proto`` ("smtp", "imap", "pop3") server; None means the benign default.

    It answers EHLO / CAPABILITY / CAPA (STARTTLS, STLS and LOGINDISABLED dropped after TLS), STARTTLS /
    STLS through ``on_starttls`` (only when advertised), QUIT / LOGOUT, NOOP; anything else is refused.
    """
    default_greeting, default_caps = _DEFAULTS[proto]

    def script(peer: Peer) -> None:
        _DIALOGUES[proto](
            peer,
            default_greeting if greeting is None else greeting,
            default_caps if caps is None else caps,
            starttls_reply(GO_AHEAD[proto]) if on_starttls is None else on_starttls,
        )

    return script


# --- scenario factories, by attack class -------------------------------------------------------------


def benign(proto: str, *, greeting: bytes | None = None, caps: Sequence[str] | None = None) -> Script:
    """Benign: STARTTLS offered and honoured (also the Implicit TLS dialogue: run it with implicit_tls)."""
    return dialogue(proto, greeting=greeting, caps=caps)


def stripped(proto: str) -> Script:
    """Negotiation / STARTTLS stripping (§1.13 class 1, NDSS T1): STARTTLS/STLS hidden, plain auth offered."""
    caps = [c for c in _DEFAULTS[proto][1] if c not in _PRE_TLS_ONLY] + _TLS_ONLY[proto]
    return dialogue(proto, caps=caps)


def refused(proto: str, reply: bytes) -> Script:
    """STARTTLS command rejection (§1.13 class 1 O_*, NDSS T3): the STARTTLS reply is ``reply``."""
    return dialogue(proto, on_starttls=starttls_reply(reply, handshake=False))


def preauth() -> Script:
    """PREAUTH (§1.13 class 2): the IMAP greeting already authenticates, so STARTTLS is impossible."""
    greeting = b"* PREAUTH IMAP4rev1 server logged in as you\r\n"
    reply = b"{tag} BAD STARTTLS not allowed in authenticated state\r\n"
    return dialogue("imap", greeting=greeting, on_starttls=starttls_reply(reply, handshake=False))


def injected(proto: str, reply: bytes) -> Script:
    """Buffering / response injection (§1.13 class 4): plaintext lines ride in the same send as the
    STARTTLS go-ahead, then the handshake happens if the client goes on."""
    return dialogue(proto, on_starttls=starttls_reply(reply))


def tampered(reply: bytes) -> Script:
    """Tampering / UI spoofing (§1.13 classes 5, 6): untagged data (EXISTS, [ALERT]) comes between the
    IMAP STARTTLS command and its tagged OK; the client must not carry it into the TLS session."""
    return dialogue("imap", on_starttls=starttls_reply(reply))


def accept_then_silent(proto: str) -> Script:
    """Post-STARTTLS stall (NDSS T4): STARTTLS is accepted, then nothing; the handshake never happens."""
    return dialogue(proto, on_starttls=starttls_reply(GO_AHEAD[proto], hold=True))


def drip(data: bytes, interval: float = 1.0) -> Script:
    """Tarpit: ``data`` repeated forever, one byte per ``interval`` (defeats per-read timeouts)."""

    def script(peer: Peer) -> None:
        while True:
            for byte in data:
                peer.send(bytes([byte]))
                peer.sleep(interval)

    return script


def endless_line(prefix: bytes) -> Script:
    """Abuse: ``prefix`` then 'A' forever without a newline, until the client goes away."""

    def script(peer: Peer) -> None:
        peer.send(prefix)
        chunk = b"A" * 65536
        while True:  # paced by the client: send() waits (in stop-aware slices) while its buffers are full
            peer.send(chunk)

    return script


def bad_greeting(greeting: bytes) -> Script:
    """Service refused in the greeting (SMTP 554, IMAP BYE, POP3 -ERR); SMTP then waits for QUIT
    (RFC 5321 §3.1), the others close."""

    def script(peer: Peer) -> None:
        peer.send(greeting)
        while greeting.startswith(b"554") and (line := peer.line(COMMAND_TIMEOUT)) is not None:
            if _words(line, 1)[0].upper() == b"QUIT":
                peer.send(b"221 2.0.0 Bye\r\n")
                return
            peer.send(b"503 5.5.1 No service\r\n")

    return script


def plaintext_greeting(greeting: bytes) -> Script:
    """Wrong mode: a plaintext greeting where the client expects Implicit TLS (serve with
    implicit_tls=False); the client's ClientHello is read and discarded until it hangs up."""

    def script(peer: Peer) -> None:
        peer.send(greeting)
        peer.drain(COMMAND_TIMEOUT)

    return script


def silent(peer: Peer) -> None:
    """Stall: accept and say nothing until the client hangs up or the server stops."""
    peer.drain()


def injected_late(proto: str, extra: bytes) -> Script:
    """Response injection in a second packet: the go-ahead alone; once the client's ClientHello is
    there (so the client has looked for leftovers and found none), ``extra`` in plaintext, then the
    server's side of the handshake. The client meets the plaintext where the ServerHello is due."""

    def react(peer: Peer, tag: bytes) -> bool:
        peer.send(GO_AHEAD[proto].replace(b"{tag}", tag))
        if not peer.peek():
            return False
        peer.send(extra)
        peer.start_tls()
        return True

    return dialogue(proto, on_starttls=react)


def unasked(proto: str, data: bytes, *, greeting: bytes | None = None, delay: float = 0.0) -> Script:
    """Control of the STARTTLS client suite: ``data`` sent unasked right after the greeting — in the
    same send (already waiting when the client says STARTTLS), or ``delay`` seconds later (arriving
    after the client's STARTTLS, before its answer). Pre-TLS state a client discards (RFC 3501
    §6.2.1, RFC 3207 §4.2), not an injection; its sibling attack sends the same bytes after the go-ahead."""
    default_greeting, caps = _DEFAULTS[proto]

    def script(peer: Peer) -> None:
        peer.send((default_greeting if greeting is None else greeting) + (b"" if delay else data))
        if delay:
            peer.sleep(delay)
            peer.send(data)
        _DIALOGUES[proto](peer, b"", caps, starttls_reply(GO_AHEAD[proto]))

    return script


def unasked_after_capabilities(proto: str, data: bytes) -> Script:
    """Control (SMTP, POP3): ``data`` sent unasked in the same send as the EHLO reply / CAPA listing,
    so it is waiting when the client says STARTTLS / STLS: pre-TLS state, not the go-ahead."""
    greeting, caps = _DEFAULTS[proto]
    if proto == "smtp":
        answer = _multiline(250, ["hostile.test greets you", *caps])
    else:
        answer = b"+OK Capability list follows\r\n" + b"".join(f"{cap}\r\n".encode() for cap in caps) + b".\r\n"

    def script(peer: Peer) -> None:
        peer.send(greeting)
        if peer.line(COMMAND_TIMEOUT) is None:  # EHLO / CAPA, whatever it says
            return
        peer.send(answer + data)
        _DIALOGUES[proto](peer, b"", caps, starttls_reply(GO_AHEAD[proto]))

    return script


def reset_on_hello(peer: Peer) -> None:
    """Connection reset mid-handshake on an Implicit TLS port (serve with implicit_tls=False): the
    ClientHello is read, then the connection is aborted with a RST."""
    if peer.wait_bytes():
        peer.reset()


def reset_after_starttls(proto: str) -> Script:
    """Connection reset mid-handshake after STARTTLS: the go-ahead, the ClientHello, then a RST."""

    def react(peer: Peer, tag: bytes) -> bool:
        peer.send(GO_AHEAD[proto].replace(b"{tag}", tag))
        if peer.wait_bytes():
            peer.reset()
        return False

    return dialogue(proto, on_starttls=react)


def many_capabilities(proto: str, count: int) -> Script:
    """Benign dialogue with ``count`` extra capabilities: SMTP and POP3 one per line (EHLO, CAPA),
    IMAP all on the one CAPABILITY line. A few hundred is long but legitimate; many thousands is
    abuse that a bounded client must refuse."""
    extra = [f"X-CAP-{number:05d}" for number in range(count)]
    return dialogue(proto, caps=[*_DEFAULTS[proto][1], *extra])


def reordered(proto: str) -> Script:
    """Benign: the same capabilities in reverse order (STARTTLS no longer where it usually is)."""
    return dialogue(proto, caps=list(reversed(_DEFAULTS[proto][1])))


# STARTTLS in the middle of a long list of real-world and odd (Exchange, Postfix XCLIENT, old AUTH=) ones.
_ODD_EXTENSIONS = "PIPELINING|SIZE|X-EXPS GSSAPI NTLM|AUTH=LOGIN|ETRN|STARTTLS|XCLIENT NAME ADDR|X-LINK2STATE|"
_ODD_EXTENSIONS += "XXXXXXXA|DSN|8BITMIME|SMTPUTF8|CHUNKING|X-" + "Z" * 300
_SMTP_MULTILINE = b"220-hostile.test ESMTP\r\n220-No UCE, no relaying\r\n220 ready\r\n"
_CAPS_GREETING = b"* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] ready\r\n"
_INJECT = {
    "smtp": b"220 go ahead\r\n250 injected\r\n",
    "imap": b"{tag} OK Begin TLS negotiation now\r\n* 1 EXISTS\r\n",
    "pop3": b"+OK Begin TLS negotiation\r\n+OK injected\r\n",
}
# The STARTTLS client suite's controls: what legitimate servers send unasked after the greeting.
_UNTAGGED = b'* LIST (\\HasNoChildren) "/" INBOX\r\n* 54321 EXISTS\r\n* 3 RECENT\r\n'
_CAPABILITY_LINES = b"* CAPABILITY IMAP4rev1 STARTTLS IDLE\r\n* OK [CAPABILITY IMAP4rev1 STARTTLS IDLE] more\r\n"
_REFERRAL = b"* OK [REFERRAL imap://user;AUTH=*@imap2.hostile.test/] mailboxes live there too\r\n"
_STRAY = {"smtp": b"220 hostile.test ESMTP still ready\r\n", "pop3": b"+OK hostile.test still ready\r\n"}
_TAMPER = b"* 5 EXISTS\r\n* OK [ALERT] Your mailbox is full, log in at http://hostile.test\r\n" + GO_AHEAD["imap"]

# key -> (script, what a correct client concludes).
_CATALOGUE: dict[str, tuple[Script, str]] = {
    "smtp/benign": (benign("smtp"), "ok"),
    "smtp/benign-multiline-greeting": (benign("smtp", greeting=_SMTP_MULTILINE), "ok"),
    "smtp/benign-extra-extensions": (benign("smtp", caps=_ODD_EXTENSIONS.split("|")), "ok"),
    "smtp/benign-implicit": (benign("smtp"), "ok"),
    "smtp/starttls-not-advertised": (stripped("smtp"), "starttls-not-offered"),
    "smtp/starttls-454": (refused("smtp", b"454 4.7.0 TLS not available now\r\n"), "starttls-refused"),
    "smtp/starttls-502": (refused("smtp", b"502 5.5.1 Command not implemented\r\n"), "starttls-refused"),
    "smtp/starttls-554": (refused("smtp", b"554 5.7.3 Unable to initialize TLS\r\n"), "starttls-refused"),
    "smtp/inject-after-220": (injected("smtp", _INJECT["smtp"]), "response-injection"),
    "smtp/control-reply-waiting": (unasked_after_capabilities("smtp", _STRAY["smtp"]), "ok"),
    "smtp/inject-reply-after-220": (injected("smtp", GO_AHEAD["smtp"] + _STRAY["smtp"]), "response-injection"),
    "smtp/accept-then-silent": (accept_then_silent("smtp"), "timeout"),
    "smtp/drip": (drip(b"220-tarpit\r\n"), "timeout"),
    "smtp/endless-line": (endless_line(b"220 "), "malformed-reply"),
    "smtp/bye-554-greeting": (bad_greeting(b"554 5.3.2 no service\r\n"), "service-refused"),
    "smtp/plaintext-on-implicit": (plaintext_greeting(SMTP_GREETING), "tls-handshake-failed"),
    "smtp/silent-greeting": (silent, "timeout"),
    "imap/benign": (benign("imap"), "ok"),
    "imap/benign-capability-in-greeting": (benign("imap", greeting=_CAPS_GREETING), "ok"),
    "imap/benign-implicit": (benign("imap"), "ok"),
    "imap/starttls-not-advertised": (stripped("imap"), "starttls-not-offered"),
    "imap/starttls-no": (refused("imap", b"{tag} NO STARTTLS unavailable\r\n"), "starttls-refused"),
    "imap/starttls-bad": (refused("imap", b"{tag} BAD STARTTLS unknown\r\n"), "starttls-refused"),
    "imap/starttls-continuation": (refused("imap", b"+ go ahead\r\n"), "starttls-refused"),
    "imap/preauth": (preauth(), "preauth"),
    "imap/inject-after-ok": (injected("imap", _INJECT["imap"]), "response-injection"),
    "imap/untagged-before-ok": (tampered(_TAMPER), "ok"),
    "imap/control-untagged-waiting": (unasked("imap", _UNTAGGED, greeting=_CAPS_GREETING), "ok"),
    "imap/control-untagged-late": (unasked("imap", _UNTAGGED, greeting=_CAPS_GREETING, delay=0.2), "ok"),
    "imap/control-untagged-then-capability": (unasked("imap", _UNTAGGED), "ok"),
    "imap/control-capability-lines": (unasked("imap", _CAPABILITY_LINES, greeting=_CAPS_GREETING), "ok"),
    "imap/control-referral": (unasked("imap", _REFERRAL, greeting=_CAPS_GREETING), "ok"),
    "imap/inject-untagged-after-ok": (injected("imap", GO_AHEAD["imap"] + _UNTAGGED), "response-injection"),
    "imap/inject-untagged-late": (injected_late("imap", _UNTAGGED), "response-injection"),
    "imap/inject-capability-after-ok": (injected("imap", GO_AHEAD["imap"] + _CAPABILITY_LINES), "response-injection"),
    "imap/inject-referral-after-ok": (injected("imap", GO_AHEAD["imap"] + _REFERRAL), "response-injection"),
    "imap/accept-then-silent": (accept_then_silent("imap"), "timeout"),
    "imap/endless-line": (endless_line(b"* OK "), "malformed-reply"),
    "imap/bye-greeting": (bad_greeting(b"* BYE go away\r\n"), "service-refused"),
    "imap/plaintext-on-implicit": (plaintext_greeting(IMAP_GREETING), "tls-handshake-failed"),
    "imap/silent-greeting": (silent, "timeout"),
    "pop3/benign": (benign("pop3"), "ok"),
    "pop3/benign-implicit": (benign("pop3"), "ok"),
    "pop3/starttls-not-advertised": (stripped("pop3"), "starttls-not-offered"),
    "pop3/stls-err": (refused("pop3", b"-ERR STLS not available\r\n"), "starttls-refused"),
    "pop3/inject-after-ok": (injected("pop3", _INJECT["pop3"]), "response-injection"),
    "pop3/control-status-waiting": (unasked_after_capabilities("pop3", _STRAY["pop3"]), "ok"),
    "pop3/inject-status-after-ok": (injected("pop3", GO_AHEAD["pop3"] + _STRAY["pop3"]), "response-injection"),
    "pop3/accept-then-silent": (accept_then_silent("pop3"), "timeout"),
    "pop3/err-greeting": (bad_greeting(b"-ERR go away\r\n"), "service-refused"),
    "pop3/plaintext-on-implicit": (plaintext_greeting(POP3_GREETING), "tls-handshake-failed"),
    "pop3/silent-greeting": (silent, "timeout"),
}
SCENARIOS: dict[str, Script] = {key: script for key, (script, _) in _CATALOGUE.items()}
EXPECTED: dict[str, str] = {key: verdict for key, (_, verdict) in _CATALOGUE.items()}
# Served with implicit_tls=True (*/plaintext-on-implicit is the Implicit TLS port gone plaintext: it is not).
IMPLICIT_TLS: frozenset[str] = frozenset(f"{proto}/benign-implicit" for proto in _DEFAULTS)
