"""Properties: whatever a server sends before TLS, a dialogue either gets ready for the handshake
or raises `ProbeError` with a DESIGN §4 reason — never another exception, never a hang; and what a
server sends unasked before the go-ahead is discarded, while any byte after it is an injection."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from functools import partial

from hypothesis import given, settings
from hypothesis import strategies as st

from mailpin.errors import ProbeError
from mailpin.model import Protocol
from mailpin.net.channel import Channel, Deadline
from mailpin.net.starttls import dialogue_for

REASONS = {"starttls-missing", "starttls-refused", "plaintext-injection", "preauth", "protocol-error",
           "unreachable", "timeout"}  # fmt: skip

_LINE_STARTS = {
    Protocol.SMTP: [b"220 ", b"220-", b"250-", b"250 ", b"250-STARTTLS", b"250 STARTTLS", b"454 ", b"421 ", b"554 "],
    Protocol.IMAP: [b"* OK ", b"* PREAUTH ", b"* BYE ", b"* CAPABILITY IMAP4rev1 STARTTLS", b"m1 OK ", b"m2 OK ",
                    b"m1 NO ", b"+ ", b"* OK [CAPABILITY STARTTLS] ", b"* 1 EXISTS", b"* OK [REFERRAL "],
    Protocol.POP3: [b"+OK ", b"-ERR ", b"STLS", b".", b"USER"],
}  # fmt: skip


def _server_bytes(protocol: Protocol) -> st.SearchStrategy[bytes]:
    line = st.builds(lambda head, tail: head + tail, st.sampled_from(_LINE_STARTS[protocol]), st.binary(max_size=40))
    junk = st.binary(max_size=60)
    pieces = st.lists(st.one_of(line.map(lambda b: b + b"\r\n"), junk), max_size=8)
    return pieces.map(b"".join)


def _upgrade(protocol: Protocol, serve: Callable[[socket.socket], None]) -> str | None:
    """Run the dialogue against `serve` on the other end of a socket pair: its ProbeError reason,
    or None when it got ready for the handshake."""
    ours, theirs = socket.socketpair()
    server = threading.Thread(target=serve, args=(theirs,))
    server.start()
    chan = Channel(ours, Deadline(2.0))
    try:
        dialogue_for(protocol).upgrade(chan)
    except ProbeError as exc:
        return exc.reason
    finally:
        chan.close()
        server.join()
    return None


def _run(protocol: Protocol, data: bytes) -> None:
    reason = _upgrade(protocol, partial(_feed, data=data))
    assert reason is None or reason in REASONS


def _feed(sock: socket.socket, *, data: bytes) -> None:
    try:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)  # then EOF: the dialogue must not wait for more
        sock.settimeout(2.0)
        while sock.recv(4096):  # swallow what the client says until it closes
            pass
    except OSError:
        pass
    finally:
        sock.close()


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_any_server_bytes_end_in_ready_or_probe_error(data: st.DataObject) -> None:
    protocol = data.draw(st.sampled_from(list(Protocol)))
    _run(protocol, data.draw(_server_bytes(protocol)))


# -- the line DESIGN §3 draws: before the go-ahead, discarded; after it, an injection -------------

# What servers send unasked (the controls of the STARTTLS client suite, USENIX Security 2021).
_UNASKED = {
    Protocol.SMTP: [b"220 mx.test still ready", b"250 2.0.0 OK", b"250-PIPELINING", b"421 4.3.2 later"],
    Protocol.IMAP: [b"* 54321 EXISTS", b"* 3 RECENT", b'* LIST (\\HasNoChildren) "/" INBOX', b"* FLAGS (\\Seen)",
                    b"* CAPABILITY IMAP4rev1 STARTTLS IDLE", b"* OK [REFERRAL imap://mx2.test/] there too",
                    b"* OK [ALERT] log in at http://hostile.test"],
    Protocol.POP3: [b"+OK still ready", b"-ERR not now", b"STLS", b"."],
}  # fmt: skip


def _scripted(sock: socket.socket, *, protocol: Protocol, unasked: bytes, before_ok: bytes, extra: bytes) -> None:
    """A server that sends `unasked` with its capabilities (waiting before the client says
    STARTTLS), `before_ok` ahead of an IMAP tagged OK, and `extra` in the same send as its go-ahead."""
    reader = sock.makefile("rb")
    sock.settimeout(2.0)
    try:
        if protocol is Protocol.SMTP:
            sock.sendall(b"220 mx.test ESMTP\r\n")
            reader.readline()  # EHLO
            sock.sendall(b"250-mx.test\r\n250 STARTTLS\r\n" + unasked)
            reader.readline()  # STARTTLS
            sock.sendall(b"220 2.0.0 go ahead\r\n" + extra)
        elif protocol is Protocol.IMAP:
            sock.sendall(b"* OK [CAPABILITY IMAP4rev1 STARTTLS] ready\r\n" + unasked)
            tag = reader.readline().split(b" ")[0]  # STARTTLS
            sock.sendall(before_ok + tag + b" OK begin TLS\r\n" + extra)
        else:
            sock.sendall(b"+OK ready\r\n")
            reader.readline()  # CAPA
            sock.sendall(b"+OK\r\nSTLS\r\n.\r\n" + unasked)
            reader.readline()  # STLS
            sock.sendall(b"+OK begin TLS\r\n" + extra)
        while sock.recv(4096):
            pass
    except OSError:
        pass
    finally:
        reader.close()
        sock.close()


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_unasked_lines_before_the_go_ahead_are_discarded_any_byte_after_it_is_an_injection(
    data: st.DataObject,
) -> None:
    protocol = data.draw(st.sampled_from(list(Protocol)))
    lines = st.lists(st.sampled_from(_UNASKED[protocol]), max_size=6).map(lambda ls: b"".join(x + b"\r\n" for x in ls))
    unasked = data.draw(lines)
    before_ok = data.draw(lines) if protocol is Protocol.IMAP else b""  # RFC 3501 §7: untagged data, any time
    extra = data.draw(st.binary(max_size=60))
    reason = _upgrade(
        protocol, partial(_scripted, protocol=protocol, unasked=unasked, before_ok=before_ok, extra=extra)
    )
    assert reason == ("plaintext-injection" if extra else None)
