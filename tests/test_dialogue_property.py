"""Property: whatever a server sends before TLS, a dialogue either gets ready for the handshake
or raises `ProbeError` with a DESIGN §4 reason — never another exception, never a hang."""

from __future__ import annotations

import socket
import threading

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
                    b"m1 NO ", b"+ ", b"* OK [CAPABILITY STARTTLS] "],
    Protocol.POP3: [b"+OK ", b"-ERR ", b"STLS", b".", b"USER"],
}  # fmt: skip


def _server_bytes(protocol: Protocol) -> st.SearchStrategy[bytes]:
    line = st.builds(lambda head, tail: head + tail, st.sampled_from(_LINE_STARTS[protocol]), st.binary(max_size=40))
    junk = st.binary(max_size=60)
    pieces = st.lists(st.one_of(line.map(lambda b: b + b"\r\n"), junk), max_size=8)
    return pieces.map(b"".join)


def _run(protocol: Protocol, data: bytes) -> None:
    ours, theirs = socket.socketpair()
    writer = threading.Thread(target=_feed, args=(theirs, data))
    writer.start()
    chan = Channel(ours, Deadline(2.0))
    reason = None
    try:
        dialogue_for(protocol).upgrade(chan)
    except ProbeError as exc:
        reason = exc.reason
    finally:
        chan.close()
        writer.join()
    assert reason is None or reason in REASONS


def _feed(sock: socket.socket, data: bytes) -> None:
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
