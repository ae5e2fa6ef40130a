"""Relay a verified session: the tool speaks its protocol in the clear on stdin/stdout, mailpin
carries it over the TLS session it has just verified (mbsync `Tunnel`, offlineimap
`transporttunnel`). The session that carries the credentials and the mail is the verified one.
"""

from __future__ import annotations

import os
import ssl
import time

from mailpin.model import Mode, Protocol
from mailpin.net.channel import Channel

# After our own STARTTLS the server says nothing more (RFC 3501 §6.2.1, RFC 2595 §4, RFC 3207 §4.2):
# the tool still expects a greeting, then asks for capabilities again itself. After an Implicit
# TLS handshake the server's own greeting is still unread and goes through untouched.
_GREETINGS = {
    Protocol.IMAP: b"* OK mailpin tunnel: TLS verified against the pinned profile\r\n",
    Protocol.POP3: b"+OK mailpin tunnel: TLS verified against the pinned profile\r\n",
    Protocol.SMTP: b"220 mailpin tunnel: TLS verified against the pinned profile\r\n",
}
_CHUNK = 65536
_LIMIT = 1 << 18  # bytes buffered per direction before that direction's reads pause
_LINGER = 2.0  # after the tool's side closes: seconds to pass on what the server still says (its BYE)


def greeting_for(protocol: Protocol, mode: Mode) -> bytes:
    return _GREETINGS[protocol] if mode is Mode.STARTTLS else b""


def relay(chan: Channel, greeting: bytes, stdin: int = 0, stdout: int = 1) -> None:
    """Copy bytes both ways until the server closes (or, once the tool has closed, `_LINGER` later).

    Everything is non-blocking with one bounded buffer per direction: a side that stops reading
    (Dovecot while its own output is full) only pauses the other direction's reads, never the
    whole relay — two large transfers at once cannot deadlock, and memory stays bounded. A readable
    TLS socket may carry only housekeeping (TLS 1.3 session tickets): reads that yield nothing are
    normal. No timeout while both sides are open: an IMAP IDLE may last hours."""
    import select

    tls = chan.sock
    assert isinstance(tls, ssl.SSLSocket)
    tls.setblocking(False)
    restore = os.get_blocking(stdout)
    os.set_blocking(stdout, False)
    to_server, to_tool = bytearray(), bytearray(greeting)
    tool_open, server_open = True, True
    linger: float | None = None
    try:
        while server_open or to_tool:
            if linger is not None and time.monotonic() >= linger:
                # The tool closed its side and took nothing for `_LINGER` seconds: whatever is still
                # pending or still coming (a server flooding a tool that stopped reading) goes nowhere.
                return
            reads = [fd for fd, want in ((stdin, tool_open and len(to_server) < _LIMIT),
                                         (tls.fileno(), server_open and len(to_tool) < _LIMIT)) if want]  # fmt: skip
            writes = [
                fd for fd, want in ((tls.fileno(), bool(to_server) and server_open), (stdout, bool(to_tool))) if want
            ]
            wait = None if linger is None else max(0.0, linger - time.monotonic())
            readable, writable, _ = select.select(reads, writes, [], wait) if reads or writes else ([], [], [])
            if not reads and not writes:
                return
            if stdin in readable:
                data = os.read(stdin, _CHUNK)
                if data:
                    to_server += data
                else:  # the tool is done (its LOGOUT sent) or died: the server's last words, then stop
                    tool_open, linger = False, time.monotonic() + _LINGER
            if server_open and (tls.fileno() in readable or tls.pending()):
                server_open = _read_tls(tls, to_tool)
            if to_server and (tls.fileno() in writable):
                try:
                    while to_server:
                        del to_server[: tls.send(to_server[:_CHUNK])]
                except (ssl.SSLWantWriteError, ssl.SSLWantReadError):
                    pass
            if to_tool and stdout in writable:
                try:
                    while to_tool:  # as much as the pipe takes now
                        del to_tool[: os.write(stdout, to_tool)]
                        if linger is not None:  # the tool still reads the server's last words: keep waiting
                            linger = time.monotonic() + _LINGER
                except BlockingIOError:
                    pass
                except BrokenPipeError:
                    return  # the tool has gone away: nobody left to tell
    finally:
        os.set_blocking(stdout, restore)


def _read_tls(tls: ssl.SSLSocket, into: bytearray) -> bool:
    """Read everything TLS has for the tool right now (every record already received, not one per
    wake-up: a bulk FETCH then costs a few large writes, not thousands of small ones); False once
    the server has closed the session."""
    while len(into) < _LIMIT:
        try:
            data = tls.recv(_CHUNK)
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return True  # nothing more for now (or only TLS housekeeping)
        if not data:
            return False
        into += data
    return True
