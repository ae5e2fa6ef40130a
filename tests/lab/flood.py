"""Servers that flood: scripts for :class:`tests.lab.hostile.HostileServer` (issue 9's fault runs).

Each script sends as fast as the client takes it and counts what it sent in a :class:`Flood`, so a
test can tell how much a client was offered, and see when the client stopped taking it (the
count no longer grows: TCP's buffers are full). They end when the client goes away or the rig
stops (``Peer.send`` raises ``PeerGone``).
"""

from __future__ import annotations

import threading

from tests.lab.hostile import GO_AHEAD, SMTP_GREETING, Peer, Script, dialogue

CHUNK = 64 * 1024


class Flood:
    """The bytes sent so far by every connection of one script."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.sent = 0

    def pour(self, peer: Peer, pattern: bytes) -> None:
        """Send ``pattern`` repeated for ever (in CHUNK-sized sends), counting."""
        chunk = pattern * max(1, CHUNK // len(pattern))
        while True:
            peer.send(chunk)
            with self._lock:
                self.sent += len(chunk)


def endless_line(flood: Flood, prefix: bytes) -> Script:
    """``prefix``, then one line that never ends (hostile.endless_line, counted)."""

    def script(peer: Peer) -> None:
        peer.send(prefix)
        flood.pour(peer, b"A")

    return script


def endless_ehlo(flood: Flood) -> Script:
    """A huge capability list: EHLO answered by `250-` lines of 1000 bytes that never end (no `250 `)."""

    def script(peer: Peer) -> None:
        peer.send(SMTP_GREETING)
        if peer.line() is None:
            return
        flood.pour(peer, b"250-X-FLOOD " + b"X" * 986 + b"\r\n")

    return script


def endless_capability(flood: Flood) -> Script:
    """IMAP: one CAPABILITY line that never ends (the greeting ok, then atoms for ever)."""

    def script(peer: Peer) -> None:
        peer.send(b"* OK hostile.test IMAP4rev1 ready\r\n")
        if peer.line() is None:
            return
        flood.pour(peer, b" X-FLOOD-ATOM")

    return script


def untagged_flood(flood: Flood) -> Script:
    """IMAP: CAPABILITY answered by untagged lines for ever, never the tagged OK."""

    def script(peer: Peer) -> None:
        peer.send(b"* OK hostile.test IMAP4rev1 ready\r\n")
        if peer.line() is None:
            return
        flood.pour(peer, b"* CAPABILITY IMAP4rev1 STARTTLS X-FLOOD\r\n")

    return script


def after_starttls(proto: str, flood: Flood, pattern: bytes) -> Script:
    """A benign dialogue up to a real TLS handshake after STARTTLS, then ``pattern`` for ever over TLS."""

    def react(peer: Peer, tag: bytes) -> bool:
        peer.send(GO_AHEAD[proto].replace(b"{tag}", tag))
        peer.start_tls()
        flood.pour(peer, pattern)
        return False

    return dialogue(proto, on_starttls=react)


def over_tls(flood: Flood, first: bytes, pattern: bytes) -> Script:
    """For an Implicit TLS rig: ``first``, then ``pattern`` for ever, read or not."""

    def script(peer: Peer) -> None:
        peer.send(first)
        flood.pour(peer, pattern)

    return script
