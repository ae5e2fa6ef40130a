"""Relay a verified session: the tool speaks its protocol in the clear on stdin/stdout, mailpin
carries it over the TLS session it has just verified (mbsync `Tunnel`, offlineimap
`transporttunnel`). The session that carries the credentials and the mail is the verified one.
"""

from __future__ import annotations

import os
import selectors
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
_LINGER = 10.0  # after the tool's side closes: seconds to pass on what the server still says (its BYE)


def greeting_for(protocol: Protocol, mode: Mode) -> bytes:
    return _GREETINGS[protocol] if mode is Mode.STARTTLS else b""


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def relay(chan: Channel, greeting: bytes, stdin: int = 0, stdout: int = 1) -> None:
    """Copy bytes both ways until either side closes. No timeout: an IMAP IDLE may last hours."""
    tls = chan.sock
    assert isinstance(tls, ssl.SSLSocket)
    # Reads are non-blocking: a readable socket may carry only TLS housekeeping (TLS 1.3 session
    # tickets) and no data, and a blocking read would then wait while the tool waits for us.
    tls.setblocking(False)
    if greeting:
        _write_all(stdout, greeting)
    linger: float | None = None  # set once the tool's side is closed
    with selectors.DefaultSelector() as selector:
        selector.register(stdin, selectors.EVENT_READ, "tool")
        selector.register(tls, selectors.EVENT_READ, "server")
        while True:
            left = None if linger is None else linger - time.monotonic()
            if left is not None and left <= 0:
                return  # the tool is gone and the server has not closed: enough
            ready = selector.select(left)
            for key, _ in ready:
                if key.data == "tool":
                    data = os.read(stdin, _CHUNK)
                    if not data:
                        # The tool is done (its LOGOUT sent) or died: pass on the server's last words
                        # for a while, then end the session.
                        selector.unregister(stdin)
                        linger = time.monotonic() + _LINGER
                        continue
                    tls.setblocking(True)  # writes may block: the server reads at its own pace
                    try:
                        tls.sendall(data)
                    finally:
                        tls.setblocking(False)
                else:
                    try:
                        data = tls.recv(_CHUNK)
                    except ssl.SSLWantReadError:
                        continue  # a TLS record not complete yet (or a post-handshake message)
                    if not data:
                        return  # the server closed the session
                    while tls.pending():  # TLS buffers whole records: drain what select() cannot see
                        try:
                            data += tls.recv(tls.pending())
                        except ssl.SSLWantReadError:
                            break
                    _write_all(stdout, data)
