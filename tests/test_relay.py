"""The run's relay (run/relay.py, net/relay.py) with a real `sh` and `cat`: a Tunnel command claims its
account's slot once; a second connection to the account runs the fallback (`mailpin tunnel` in real
runs); a session the server closed while it waited is replaced by a fresh one (`reopen`)."""

from __future__ import annotations

import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mailpin.net.relay import Link, ProcessGone, Relay, TlsSide
from mailpin.run.relay import Relayed


@contextmanager
def tls_server(pki, greetings: list[bytes], echo: bool) -> Iterator[int]:
    """Accepts one connection per greeting: sends it, then echoes lines — or hangs up at once after
    a BYE, or always without `echo`."""
    cert = pki.cert("good")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert.chain_pem, cert.key_pem)
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        for greeting in greetings:
            raw, _ = listener.accept()
            with context.wrap_socket(raw, server_side=True) as tls:
                tls.sendall(greeting)
                while echo and b"BYE" not in greeting and (data := tls.recv(4096)):
                    tls.sendall(b"echo " + data)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()


def session(pki, port: int) -> TlsSide:
    context = ssl.create_default_context(cafile=str(pki.ca_pem))
    return TlsSide(context.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="localhost"))


class Outcome:  # the two fields Relayed.tunnel_for reads
    def __init__(self, key: str) -> None:
        self.target = type("Target", (), {"key": key})()


def relayed(tmp_path: Path, link: Link, reopen) -> tuple[Relayed, str, threading.Thread]:
    directory = tmp_path / "relay"
    directory.mkdir(mode=0o700)
    ready = Relayed(str(directory))
    ready._link = lambda outcome: link  # type: ignore[attr-defined]
    import mailpin.run.relay as module

    original = module._link
    module._link = lambda outcome: link
    try:
        command = ready.tunnel_for(Outcome("mbsync:lab"), ["echo", "fallback: second connection"], reopen)  # type: ignore[arg-type]
    finally:
        module._link = original
    loop = Relay(ProcessGone(1))  # never fires here: the loop ends when its link and slot are done
    loop.links, loop.watches = ready.links, ready.watches
    thread = threading.Thread(target=loop.serve, daemon=True)
    thread.start()
    return ready, command, thread


def test_the_tunnel_gets_the_verified_session_once_then_the_fallback(tmp_path: Path, pki) -> None:
    with tls_server(pki, [b"* OK verified\r\n"], echo=True) as port:
        link = Link("mbsync:lab", session(pki, port))
        _, command, thread = relayed(tmp_path, link, lambda: None)
        first = subprocess.run(["sh", "-c", command], input=b"a1 NOOP\r\n", capture_output=True, timeout=20)
        assert first.stdout.startswith(b"* OK verified\r\n"), first
        second = subprocess.run(["sh", "-c", command], capture_output=True, timeout=20)
        assert second.stdout == b"fallback: second connection\n", second  # the slot is claimed once
        thread.join(10)
        assert not thread.is_alive()


def test_a_session_the_server_closed_while_it_waited_is_replaced(tmp_path: Path, pki) -> None:
    with tls_server(pki, [b"* BYE idle too long\r\n", b"* OK fresh\r\n"], echo=True) as port:
        link = Link("mbsync:lab", session(pki, port))
        reopened: list[bool] = []

        def reopen() -> Link:
            reopened.append(True)
            return Link("mbsync:lab", session(pki, port))

        _, command, thread = relayed(tmp_path, link, reopen)
        import time

        time.sleep(0.5)  # the server says BYE and hangs up before the tool comes
        done = subprocess.run(["sh", "-c", command], input=b"a1 NOOP\r\n", capture_output=True, timeout=20)
        assert reopened == [True]
        assert done.stdout.startswith(b"* OK fresh\r\n") and b"BYE" not in done.stdout, done
        thread.join(10)


def test_a_refused_fresh_session_gives_the_tool_nothing(tmp_path: Path, pki) -> None:
    """The sibling: the fresh session does not verify (reopen says None): the tunnel closes empty."""
    with tls_server(pki, [b"* BYE idle too long\r\n"], echo=False) as port:
        link = Link("mbsync:lab", session(pki, port))
        _, command, thread = relayed(tmp_path, link, lambda: None)
        import time

        time.sleep(0.5)
        done = subprocess.run(["sh", "-c", command], input=b"a1 LOGIN test secret\r\n", capture_output=True, timeout=20)
        assert done.stdout == b"", done
        thread.join(10)
        assert not thread.is_alive()
