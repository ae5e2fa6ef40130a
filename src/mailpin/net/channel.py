"""A line-oriented connection with hard limits: the only place mailpin reads from a server.

Replies are read line by line from our own buffer (the way CPython's `smtplib.getreply`
does, never one `recv()` per step), each line capped in length, each step under a timeout and
the whole dialogue under one deadline, so a server that drips, stalls or never ends a line
costs bounded time and memory. Low-level `OSError`/`ssl.SSLError` are translated into
`ProbeError` here and in `net.probe`, nowhere else.
"""

from __future__ import annotations

import socket
import ssl
import time

from mailpin.errors import ProbeError
from mailpin.net.replies import printable

MAX_LINE = 16 * 1024  # RFC 5321 §4.5.3.1.5 caps SMTP reply lines at 512; IMAP CAPABILITY runs longer
MAX_LINES = 256  # lines in one reply (EHLO extensions, CAPA items, untagged data before a tag)
_CHUNK = 4096


class Deadline:
    """The overall deadline of one dialogue, plus the per-step timeout under it."""

    def __init__(self, total: float, step: float | None = None) -> None:
        self.total = total
        self.step = min(step, total) if step is not None else total
        self.start = time.monotonic()
        self.expires = self.start + total

    def remaining(self) -> float:
        return self.expires - time.monotonic()

    def next_step(self, what: str) -> float:
        """The timeout for the next blocking call; raises once the deadline has passed."""
        left = self.remaining()
        if left <= 0:
            raise ProbeError("timeout", f"no complete answer within {self.total:g} s ({what})")
        return min(self.step, left)

    def elapsed_ms(self) -> float:
        return (time.monotonic() - self.start) * 1000.0


class Channel:
    """A socket (plain, then perhaps TLS) with a bounded line buffer."""

    def __init__(self, sock: socket.socket, deadline: Deadline) -> None:
        self.sock = sock
        self.deadline = deadline
        self._buffer = bytearray()
        self.heard: bytearray | None = None  # when not None: every byte the replies consumed, as sent

    def unread_for_tool(self) -> bytes:
        """What a tool taking over this session must hear first: the bytes read since `heard` was
        set (the server's greeting, exactly as it sent it), and whatever came after them."""
        return bytes(self.heard or b"") + bytes(self._buffer)

    # -- reading ------------------------------------------------------------------------------

    def readline(self, what: str) -> bytes:
        """One line without its line ending (CRLF, or a bare LF as lenient servers send)."""
        step_ends = time.monotonic() + self.deadline.next_step(what)
        while True:
            end = self._buffer.find(b"\n")
            if end >= 0:
                line = bytes(self._buffer[:end])
                if self.heard is not None:
                    self.heard += self._buffer[: end + 1]
                del self._buffer[: end + 1]
                if len(line) > MAX_LINE:
                    raise ProbeError("protocol-error", f"reply line longer than {MAX_LINE} bytes ({what})")
                return line[:-1] if line.endswith(b"\r") else line
            if len(self._buffer) > MAX_LINE:
                raise ProbeError("protocol-error", f"reply line longer than {MAX_LINE} bytes ({what})")
            timeout = min(step_ends - time.monotonic(), self.deadline.next_step(what))
            if timeout <= 0:
                raise ProbeError("timeout", f"server went silent ({what})")
            self._fill(timeout, what)

    def _fill(self, timeout: float, what: str) -> None:
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(_CHUNK)
        except TimeoutError:
            raise ProbeError("timeout", f"server went silent ({what})") from None
        except ssl.SSLError as exc:
            raise ProbeError("protocol-error", f"TLS error while reading ({what}): {exc.reason}") from None
        except OSError as exc:
            raise ProbeError("unreachable", f"connection lost ({what}): {exc.strerror or exc}") from None
        if not data:
            partial = f": {printable(self._buffer.decode('ascii', 'replace'), 80)!r}" if self._buffer else ""
            # A hang-up is not a downgrade: report "could not verify" (75), as for a refused connect.
            raise ProbeError("unreachable", f"server closed the connection ({what}){partial}")
        self._buffer += data

    def leftover(self) -> bytes:
        """Bytes the server sent that no reply has consumed: in our buffer, or already queued
        in the kernel (peeked without blocking). Before a TLS handshake this must be empty."""
        pending = bytes(self._buffer)
        if not isinstance(self.sock, ssl.SSLSocket):
            # Non-blocking peek: with a timeout set, Python would wait for data before recv().
            self.sock.settimeout(0)
            try:
                pending += self.sock.recv(_CHUNK, socket.MSG_PEEK)
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                pass  # a reset here surfaces in the handshake that follows
        return pending

    # -- writing ------------------------------------------------------------------------------

    def send(self, data: bytes, what: str) -> None:
        self.sock.settimeout(self.deadline.next_step(what))
        try:
            self.sock.sendall(data)
        except TimeoutError:
            raise ProbeError("timeout", f"server stopped reading ({what})") from None
        except OSError as exc:
            raise ProbeError("unreachable", f"connection lost ({what}): {exc.strerror or exc}") from None

    # -- TLS ----------------------------------------------------------------------------------

    def start_tls(
        self, context: ssl.SSLContext, sni: str | None, what: str, plaintext_reason: str = "protocol-error"
    ) -> None:
        """Handshake on this socket; afterwards every read and write is over TLS.

        `plaintext_reason` names a plaintext answer to the handshake: on an Implicit TLS port
        that is the mode having changed under the profile (RFC 8314 §3), not a mere protocol error."""
        raw = self.sock
        try:
            tls = context.wrap_socket(raw, server_hostname=sni, do_handshake_on_connect=False)
        except (UnicodeError, ValueError):  # IDNA refuses the name before any byte is sent
            raise ProbeError("protocol-error", f"not a valid server name for TLS: {sni!r}") from None
        self.sock = tls
        tls.settimeout(self.deadline.next_step(what))
        try:
            tls.do_handshake()
        except TimeoutError:
            raise ProbeError("timeout", f"TLS handshake did not complete ({what})") from None
        except ssl.SSLEOFError as exc:
            # The peer hung up or reset the connection mid-handshake: like a hang-up anywhere else
            # (see _fill) that is "could not verify", not a verdict on the server. A TLS alert —
            # the peer refusing our handshake on purpose — stays a protocol error below.
            raise ProbeError("unreachable", f"connection lost in the TLS handshake ({what}): {exc}") from None
        except ssl.SSLError as exc:
            if exc.reason in ("WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG"):
                # Plaintext where a TLS record was due: no TLS on this port, or (after STARTTLS)
                # plaintext injected after the peek above could see it. Blocked either way.
                raise ProbeError(
                    plaintext_reason,
                    f"no TLS: the server answered the handshake in plaintext ({what})",
                ) from None
            raise ProbeError("protocol-error", f"TLS handshake failed ({what}): {exc.reason or exc}") from None
        except OSError as exc:  # reset, broken pipe: lost, as above
            raise ProbeError("unreachable", f"connection lost in the TLS handshake ({what}): {exc}") from None

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass
