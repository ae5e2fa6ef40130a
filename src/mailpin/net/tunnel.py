"""`mailpin tunnel`'s relay: the tool speaks its protocol in the clear on stdin/stdout, mailpin
carries it over the TLS session it has just verified (mbsync `Tunnel`, offlineimap
`transporttunnel`, when no `mailpin run` relay holds the account's session: a tunnel named in the
user's own config, or the tool's second connection to an account). The same loop as the run's
relay (net/relay.py), with one link.
"""

from __future__ import annotations

import os
import ssl

from mailpin.net.channel import Channel
from mailpin.net.relay import FdSide, Link, ProcessGone, Relay, TlsSide


def relay(chan: Channel, greeting: bytes, stdin: int = 0, stdout: int = 1) -> None:
    """Copy bytes both ways until the server closes (or, once the tool has closed, a moment later
    for the server's last words: its BYE)."""
    tls = chan.sock
    assert isinstance(tls, ssl.SSLSocket)
    loop = Relay(ProcessGone(os.getppid()))  # the tool that started this tunnel
    loop.links = [Link("tunnel", TlsSide(tls), greeting, tool=FdSide(stdin, stdout, owned=False))]
    loop.serve()
