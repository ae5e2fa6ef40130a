"""Tests of the hostile server rig itself, driven by stdlib clients and raw sockets only."""

from __future__ import annotations

import datetime as dt
import imaplib
import ipaddress
import poplib
import smtplib
import socket
import ssl
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from tests.lab.hostile import EXPECTED, IMPLICIT_TLS, SCENARIOS, HostileServer, Peer
from tests.lab.pki import crafted, write_served


@dataclass(frozen=True)
class Cert:
    chain: Path
    key: Path
    client: ssl.SSLContext  # trusts exactly this certificate


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> Cert:
    """A self-signed P-256 certificate for localhost and 127.0.0.1."""
    key = ec.generate_private_key(ec.SECP256R1())
    san = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    certificate = crafted(
        "localhost",
        key,
        (x509.BasicConstraints(ca=False, path_length=None), True),
        (x509.SubjectAlternativeName(san), False),
        (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False),
        (x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False),
        valid=(dt.timedelta(hours=1), dt.timedelta(days=2)),
    )
    chain, key_pem = write_served(tmp_path_factory.mktemp("hostile-cert"), certificate, key)
    return Cert(chain, key_pem, ssl.create_default_context(cafile=str(chain)))


def serve(key: str, cert: Cert) -> HostileServer:
    return HostileServer(SCENARIOS[key], chain_pem=cert.chain, key_pem=cert.key, implicit_tls=key in IMPLICIT_TLS)


def connect(srv: HostileServer, timeout: float = 3.0) -> socket.socket:
    return socket.create_connection((srv.host, srv.port), timeout=timeout)


def readline(sock: socket.socket) -> bytes:
    """One line, byte by byte, so nothing past it is consumed (it may precede a TLS handshake)."""
    data = b""
    while not data.endswith(b"\n") and (byte := sock.recv(1)):
        data += byte
    return data


def verbs(srv: HostileServer, imap: bool = False) -> list[bytes]:
    return [line.split()[1 if imap else 0].upper() for line in srv.received]


def assert_clean(srv: HostileServer, connections: int = 1) -> None:
    assert srv.errors == []
    assert srv.connections == connections


def test_catalogue_covers_every_class() -> None:
    assert set(EXPECTED) == set(SCENARIOS)
    assert {key.split("/")[0] for key in SCENARIOS} == {"smtp", "imap", "pop3"}
    for proto in ("smtp", "imap", "pop3"):
        for suffix in ("benign-implicit", "starttls-not-advertised", "accept-then-silent"):
            assert f"{proto}/{suffix}" in SCENARIOS
        assert f"{proto}/plaintext-on-implicit" in SCENARIOS
        assert f"{proto}/silent-greeting" in SCENARIOS
    assert {"smtp/benign-implicit", "imap/benign-implicit", "pop3/benign-implicit"} == IMPLICIT_TLS


@pytest.mark.parametrize("key", ["smtp/benign", "smtp/benign-multiline-greeting", "smtp/benign-extra-extensions"])
def test_smtp_benign_starttls(cert: Cert, key: str) -> None:
    with serve(key, cert) as srv, smtplib.SMTP(srv.host, srv.port, "client.test", timeout=5) as smtp:
        smtp.ehlo()
        assert smtp.has_extn("starttls")
        smtp.starttls(context=cert.client)
        smtp.ehlo()
        assert not smtp.has_extn("starttls")
        assert smtp.has_extn("auth")
    assert srv.received[0] == b"ehlo client.test"  # recorded as sent: smtplib speaks lower case
    assert verbs(srv) == [b"EHLO", b"STARTTLS", b"EHLO", b"QUIT"]
    assert srv.handshakes == 1
    assert_clean(srv)


@pytest.mark.parametrize("key", ["imap/benign", "imap/benign-capability-in-greeting"])
def test_imap_benign_starttls(cert: Cert, key: str) -> None:
    with serve(key, cert) as srv, imaplib.IMAP4(srv.host, srv.port, timeout=5) as imap:
        assert "LOGINDISABLED" in imap.capabilities
        imap.starttls(ssl_context=cert.client)
        assert "STARTTLS" not in imap.capabilities
        assert "AUTH=PLAIN" in imap.capabilities
    assert verbs(srv, imap=True) == [b"CAPABILITY", b"STARTTLS", b"CAPABILITY", b"LOGOUT"]
    assert_clean(srv)


def test_imap_capability_in_greeting_without_capability_command(cert: Cert) -> None:
    with serve("imap/benign-capability-in-greeting", cert) as srv, connect(srv) as sock:
        assert readline(sock).startswith(b"* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED]")
        sock.sendall(b"x1 STARTTLS\r\n")
        assert readline(sock) == b"x1 OK Begin TLS negotiation now\r\n"
        with cert.client.wrap_socket(sock, server_hostname="localhost") as tls:
            tls.sendall(b"x2 LOGOUT\r\n")
            assert readline(tls) == b"* BYE logging out\r\n"
            assert readline(tls) == b"x2 OK LOGOUT completed\r\n"
    assert srv.received == [b"x1 STARTTLS", b"x2 LOGOUT"]
    assert_clean(srv)


def test_pop3_benign_stls(cert: Cert) -> None:
    with serve("pop3/benign", cert) as srv:
        pop = poplib.POP3(srv.host, srv.port, timeout=5)
        try:
            pop.stls(context=cert.client)
            assert "STLS" not in pop.capa()
        finally:
            pop.quit()
    assert srv.received == [b"CAPA", b"STLS", b"CAPA", b"QUIT"]
    assert srv.handshakes == 1
    assert_clean(srv)


def test_implicit_tls_benign(cert: Cert) -> None:
    with (
        serve("smtp/benign-implicit", cert) as srv,
        smtplib.SMTP_SSL(srv.host, srv.port, "c.test", timeout=5, context=cert.client) as smtp,
    ):
        smtp.ehlo()
        assert not smtp.has_extn("starttls")
    assert verbs(srv) == [b"EHLO", b"QUIT"]
    assert_clean(srv)
    with (
        serve("imap/benign-implicit", cert) as srv,
        imaplib.IMAP4_SSL(srv.host, srv.port, ssl_context=cert.client, timeout=5) as imap,
    ):
        assert "AUTH=PLAIN" in imap.capabilities
    assert verbs(srv, imap=True) == [b"CAPABILITY", b"LOGOUT"]
    assert_clean(srv)
    with serve("pop3/benign-implicit", cert) as srv:
        pop = poplib.POP3_SSL(srv.host, srv.port, context=cert.client, timeout=5)
        try:
            assert "SASL" in pop.capa()
        finally:
            pop.quit()
    assert srv.received == [b"CAPA", b"QUIT"]
    assert srv.handshakes == 1
    assert_clean(srv)


@pytest.mark.parametrize(
    ("key", "code"),
    [
        ("smtp/starttls-not-advertised", None),
        ("smtp/starttls-454", 454),
        ("smtp/starttls-502", 502),
        ("smtp/starttls-554", 554),
    ],
)
def test_smtp_stripping_and_refusal(cert: Cert, key: str, code: int | None) -> None:
    with serve(key, cert) as srv, smtplib.SMTP(srv.host, srv.port, "c.test", timeout=5) as smtp:
        if code is None:
            with pytest.raises(smtplib.SMTPNotSupportedError):
                smtp.starttls(context=cert.client)
        else:
            with pytest.raises(smtplib.SMTPResponseException) as refusal:
                smtp.starttls(context=cert.client)
            assert refusal.value.smtp_code == code
    assert srv.handshakes == 0
    assert verbs(srv)[-1] == b"QUIT"
    assert_clean(srv)


@pytest.mark.parametrize(
    "key", ["imap/starttls-not-advertised", "imap/starttls-no", "imap/starttls-bad", "imap/preauth"]
)
def test_imap_stripping_refusal_preauth(cert: Cert, key: str) -> None:
    with serve(key, cert) as srv, imaplib.IMAP4(srv.host, srv.port, timeout=5) as imap:
        assert imap.state == ("AUTH" if key == "imap/preauth" else "NONAUTH")
        with pytest.raises(imaplib.IMAP4.error):
            imap.starttls(ssl_context=cert.client)
    assert srv.handshakes == 0
    assert_clean(srv)


def test_imap_starttls_continuation_then_dialogue_goes_on(cert: Cert) -> None:
    with serve("imap/starttls-continuation", cert) as srv, connect(srv) as sock:
        readline(sock)
        sock.sendall(b"a1 STARTTLS\r\n")
        assert readline(sock) == b"+ go ahead\r\n"
        sock.sendall(b"a2 LOGOUT\r\n")
        assert readline(sock) == b"* BYE logging out\r\n"
    assert srv.handshakes == 0
    assert_clean(srv)


@pytest.mark.parametrize("key", ["pop3/starttls-not-advertised", "pop3/stls-err"])
def test_pop3_stripping_and_refusal(cert: Cert, key: str) -> None:
    with serve(key, cert) as srv:
        pop = poplib.POP3(srv.host, srv.port, timeout=5)
        try:
            with pytest.raises(poplib.error_proto):
                pop.stls(context=cert.client)
        finally:
            pop.quit()
    assert srv.handshakes == 0
    assert_clean(srv)


@pytest.mark.parametrize(
    ("key", "starttls", "reply", "after"),
    [
        ("smtp/inject-after-220", b"STARTTLS", b"220 go ahead\r\n250 injected\r\n", b"QUIT"),
        ("imap/inject-after-ok", b"t1 STARTTLS", b"t1 OK Begin TLS negotiation now\r\n* 1 EXISTS\r\n", b"t2 LOGOUT"),
        ("pop3/inject-after-ok", b"STLS", b"+OK Begin TLS negotiation\r\n+OK injected\r\n", b"QUIT"),
        (
            "imap/untagged-before-ok",
            b"t1 STARTTLS",
            b"* 5 EXISTS\r\n* OK [ALERT] Your mailbox is full, log in at http://hostile.test\r\n"
            b"t1 OK Begin TLS negotiation now\r\n",
            b"t2 LOGOUT",
        ),
    ],
)
def test_injected_lines_arrive_with_the_go_ahead(
    cert: Cert, key: str, starttls: bytes, reply: bytes, after: bytes
) -> None:
    with serve(key, cert) as srv, connect(srv) as sock:
        readline(sock)
        sock.sendall(starttls + b"\r\n")
        time.sleep(0.3)
        assert sock.recv(65536) == reply  # one send, one segment: a buffering client would keep it
        with cert.client.wrap_socket(sock, server_hostname="localhost") as tls:
            tls.sendall(after + b"\r\n")
            assert readline(tls)[:1] in (b"2", b"*", b"+")
    assert srv.received == [starttls, after]
    assert srv.handshakes == 1
    assert_clean(srv)


@pytest.mark.parametrize(
    ("key", "starttls"),
    [
        ("smtp/accept-then-silent", b"STARTTLS"),
        ("imap/accept-then-silent", b"s STARTTLS"),
        ("pop3/accept-then-silent", b"STLS"),
    ],
)
def test_accept_then_silent_never_handshakes(cert: Cert, key: str, starttls: bytes) -> None:
    with serve(key, cert) as srv, connect(srv) as sock:
        readline(sock)
        sock.sendall(starttls + b"\r\n")
        assert readline(sock)[:1] in (b"2", b"s", b"+")
        sock.settimeout(0.3)
        with cert.client.wrap_socket(sock, server_hostname="localhost", do_handshake_on_connect=False) as tls:
            with pytest.raises(TimeoutError):
                tls.do_handshake()
            started = time.monotonic()
            srv.stop()
            assert time.monotonic() - started < 1.0
    assert srv.handshakes == 0
    assert_clean(srv)


def test_drip_sends_one_byte_per_second_and_stops_fast(cert: Cert) -> None:
    with connect_later() as sock:
        with serve("smtp/drip", cert) as srv:
            sock.connect((srv.host, srv.port))
            assert sock.recv(64) == b"2"
            with pytest.raises(TimeoutError):
                sock.recv(64)  # the next byte is due a second later
            started = time.monotonic()
        assert time.monotonic() - started < 1.0
    assert_clean(srv)


@pytest.mark.parametrize(("key", "prefix"), [("smtp/endless-line", b"220 "), ("imap/endless-line", b"* OK ")])
def test_endless_line_stops_fast_while_client_stalls(cert: Cert, key: str, prefix: bytes) -> None:
    with connect_later() as sock:
        with serve(key, cert) as srv:
            sock.connect((srv.host, srv.port))
            data = b""
            while len(data) < 65536:
                data += sock.recv(65536)
            assert data.startswith(prefix + b"AAAA")
            assert b"\n" not in data
            time.sleep(0.3)  # stop reading: the server's send() now blocks on a full buffer
            started = time.monotonic()
        assert time.monotonic() - started < 1.0
    assert_clean(srv)


def connect_later() -> socket.socket:
    """A client socket with a small receive buffer, to be connected once the server runs."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(0.5)
    return sock


def test_bad_greetings(cert: Cert) -> None:
    with serve("smtp/bye-554-greeting", cert) as srv:
        with pytest.raises(smtplib.SMTPConnectError) as refusal:
            smtplib.SMTP(srv.host, srv.port, timeout=5)
        assert refusal.value.smtp_code == 554
    assert_clean(srv)
    with serve("imap/bye-greeting", cert) as srv, pytest.raises(imaplib.IMAP4.error):
        imaplib.IMAP4(srv.host, srv.port, timeout=5)
    assert_clean(srv)
    with serve("pop3/err-greeting", cert) as srv, connect(srv) as sock:
        assert readline(sock) == b"-ERR go away\r\n"
        assert sock.recv(1) == b""  # the server hung up
    assert_clean(srv)


@pytest.mark.parametrize("proto", ["smtp", "imap", "pop3"])
def test_plaintext_on_implicit_and_silent_greeting(cert: Cert, proto: str) -> None:
    with serve(f"{proto}/plaintext-on-implicit", cert) as srv, connect(srv) as sock, pytest.raises(ssl.SSLError):
        cert.client.wrap_socket(sock, server_hostname="localhost")
    assert_clean(srv)
    with (
        serve(f"{proto}/silent-greeting", cert) as srv,
        connect(srv, timeout=0.2) as sock,
        pytest.raises(TimeoutError),
    ):
        sock.recv(1)
    assert_clean(srv)
    assert EXPECTED[f"{proto}/silent-greeting"] == "timeout"


def test_lines_are_bounded_recorded_and_script_errors_reported() -> None:
    seen: list[bytes | None] = []

    def script(peer: Peer) -> None:
        seen.extend([peer.line(), peer.line(), peer.line()])
        raise ValueError("script bug")

    with HostileServer(script) as srv, connect(srv) as sock:
        sock.sendall(b"one\r\ntwo\n" + b"C" * 9000 + b"\r\n")
        time.sleep(0.3)
    assert seen == [b"one", b"two", None]
    assert srv.received == [b"one", b"two"]
    assert [type(e) for e in srv.errors] == [ValueError]


def test_stop_interrupts_waiting_scripts_and_client_loss_is_no_error(cert: Cert) -> None:
    def script(peer: Peer) -> None:
        assert peer.line(timeout=30) is None
        peer.sleep(30)
        peer.send(b"never\r\n")  # raises PeerGone: the server is stopping

    with HostileServer(script) as srv, connect(srv), connect(srv):
        time.sleep(0.2)
        started = time.monotonic()
        srv.stop()
        assert time.monotonic() - started < 1.0
    assert_clean(srv, connections=2)
    with serve("smtp/benign-implicit", cert) as srv, connect(srv):
        pass  # the client leaves during the handshake
    untrusting = ssl.create_default_context()  # does not trust the rig's certificate
    with serve("pop3/benign-implicit", cert) as srv2, connect(srv2) as sock, pytest.raises(ssl.SSLError):
        untrusting.wrap_socket(sock, server_hostname="localhost")
    for server in (srv, srv2):
        assert server.handshakes == 0
        assert server.errors == []
    assert len(srv2.tls_failures) == 1
    with pytest.raises(ValueError, match="chain_pem"):
        HostileServer(SCENARIOS["smtp/benign"], implicit_tls=True)
