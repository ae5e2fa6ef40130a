"""Tests of the test rig itself (tests/lab): if these fail, no other real-server test means anything.

Only the standard library's TLS clients (plus the ``openssl`` CLI to see the whole chain a server
sends) look at the servers here, so a bug in mailpin cannot hide a bug in the rig.
"""

from __future__ import annotations

import imaplib
import os
import poplib
import re
import smtplib
import socket
import ssl
import subprocess
from email.message import EmailMessage
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from conftest import need
from tests.lab.dovecot import Dovecot
from tests.lab.pki import VARIANTS, TestPKI, served_leaf
from tests.lab.smtpd import SmtpServer

# Expected outcome of verifying each variant against the trust file for "localhost":
# None = valid, otherwise the OpenSSL verify code (X509_V_ERR_*).
VERIFY_CODE = {
    "good": None,
    "renewed": None,
    "new-key": None,
    "foreign-ca": 20,  # unable to get local issuer certificate
    "expired": 10,  # certificate has expired
    "not-yet-valid": 9,  # certificate is not yet valid
    "wrong-name": 62,  # hostname mismatch
    "self-signed": 18,  # self-signed certificate
}
PEM_BLOCK = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)


def trusting(pki: TestPKI) -> ssl.SSLContext:
    """What a correctly configured client uses: the test root as the only trust anchor."""
    return ssl.create_default_context(cafile=pki.ca_pem)


def sent_chain(port: int) -> tuple[bytes, ...]:
    """DER of every certificate an Implicit TLS server on 127.0.0.1:port sends, via openssl."""
    need("openssl")
    result = subprocess.run(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername", "localhost", "-showcerts"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=10,
        check=False,
    )
    blocks = PEM_BLOCK.findall(result.stdout)
    return tuple(x509.load_pem_x509_certificate(b).public_bytes(Encoding.DER) for b in blocks)


def looking() -> ssl.SSLContext:
    """A context that accepts anything: for looking at what is served, not judging it."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def imaps(server: Dovecot, pki: TestPKI) -> imaplib.IMAP4_SSL:
    """An IMAPS connection to the lab Dovecot that verifies against the trust file, as localhost."""
    return imaplib.IMAP4_SSL("localhost", server.imaps_port, ssl_context=trusting(pki), timeout=5)


# -- the PKI ------------------------------------------------------------------------------------


def test_pki_variants_are_distinct_and_shaped_as_documented(pki: TestPKI) -> None:
    certs = {v: x509.load_der_x509_certificate(pki.cert(v).leaf_der) for v in VARIANTS}
    serials = [c.serial_number for c in certs.values()]
    assert len(set(serials)) == len(serials)
    spki = (Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    key = {v: c.public_key().public_bytes(*spki) for v, c in certs.items()}
    assert key["renewed"] == key["good"]
    assert len({key["good"], key["new-key"], key["foreign-ca"], key["self-signed"]}) == 4
    assert certs["renewed"].not_valid_after_utc > certs["good"].not_valid_after_utc
    assert pki.cert("good").chain_der == (pki.cert("good").leaf_der, pki.intermediate_der)
    assert pki.cert("self-signed").chain_der == (pki.cert("self-signed").leaf_der,)
    assert pki.cert("foreign-ca").chain_der[1] != pki.intermediate_der
    assert pki.cert("good") is pki.cert("good")  # cached
    trust = x509.load_pem_x509_certificates(pki.ca_pem.read_bytes())
    assert [c.public_bytes(Encoding.DER) for c in trust] == [pki.root_der]
    with pytest.raises(KeyError):
        pki.cert("nonsense")


# -- the trust file against served certificates (SMTPS switches fastest) ------------------------


@pytest.mark.parametrize("variant", VARIANTS)
def test_trust_file_verdict_per_variant(smtp_server: SmtpServer, pki: TestPKI, variant: str) -> None:
    smtp_server.serve(variant)
    assert served_leaf(smtp_server.smtps_port) == pki.cert(variant).leaf_der
    with socket.create_connection(("127.0.0.1", smtp_server.smtps_port), timeout=5) as raw:
        if VERIFY_CODE[variant] is None:
            with trusting(pki).wrap_socket(raw, server_hostname="localhost") as tls:
                assert tls.getpeercert(binary_form=True) == pki.cert(variant).leaf_der
        else:
            with pytest.raises(ssl.SSLCertVerificationError) as failure:
                trusting(pki).wrap_socket(raw, server_hostname="localhost")
            assert failure.value.verify_code == VERIFY_CODE[variant]


@pytest.mark.parametrize("variant", ["good", "self-signed", "foreign-ca"])
def test_servers_send_leaf_then_intermediate(
    smtp_server: SmtpServer, dovecot_server: Dovecot, pki: TestPKI, variant: str
) -> None:
    smtp_server.serve(variant)
    dovecot_server.serve(variant)
    assert sent_chain(smtp_server.smtps_port) == pki.cert(variant).chain_der
    assert sent_chain(dovecot_server.imaps_port) == pki.cert(variant).chain_der


# -- Dovecot ------------------------------------------------------------------------------------


def test_dovecot_implicit_tls_listeners_greet(dovecot_server: Dovecot, pki: TestPKI) -> None:
    with imaps(dovecot_server, pki) as imap:
        assert "IMAP4REV1" in imap.capabilities
        assert imap.sock.getpeercert(binary_form=True) == pki.cert("good").leaf_der
    pop = poplib.POP3_SSL("localhost", dovecot_server.pop3s_port, context=trusting(pki), timeout=5)
    try:
        assert pop.getwelcome().startswith(b"+OK")
    finally:
        pop.quit()


def test_dovecot_starttls_and_stls(dovecot_server: Dovecot, pki: TestPKI) -> None:
    with imaplib.IMAP4("localhost", dovecot_server.imap_port, timeout=5) as imap:
        assert "STARTTLS" in imap.capabilities
        imap.starttls(ssl_context=trusting(pki))
        assert imap.sock.getpeercert(binary_form=True) == pki.cert("good").leaf_der
        imap.login(dovecot_server.user, dovecot_server.password)
    pop = poplib.POP3("localhost", dovecot_server.pop3_port, timeout=5)
    try:
        assert "STLS" in pop.capa()
        pop.stls(context=trusting(pki))
        assert pop.sock.getpeercert(binary_form=True) == pki.cert("good").leaf_der  # type: ignore[union-attr]
        pop.user(dovecot_server.user)
        pop.pass_(dovecot_server.password)
    finally:
        pop.quit()


@pytest.mark.parametrize("variant", VARIANTS)
def test_dovecot_serves_each_variant_everywhere(dovecot_server: Dovecot, pki: TestPKI, variant: str) -> None:
    dovecot_server.serve(variant)
    assert dovecot_server.variant == variant
    wanted = pki.cert(variant).leaf_der
    assert served_leaf(dovecot_server.imaps_port) == wanted
    assert served_leaf(dovecot_server.pop3s_port) == wanted
    with imaplib.IMAP4("127.0.0.1", dovecot_server.imap_port, timeout=5) as imap:
        imap.starttls(ssl_context=looking())
        assert imap.sock.getpeercert(binary_form=True) == wanted
    pop = poplib.POP3("127.0.0.1", dovecot_server.pop3_port, timeout=5)
    try:
        pop.stls(context=looking())
        assert pop.sock.getpeercert(binary_form=True) == wanted  # type: ignore[union-attr]
    finally:
        pop.quit()


def test_dovecot_user_sees_delivered_mail(dovecot_server: Dovecot, pki: TestPKI) -> None:
    subject = f"lab delivery {os.urandom(4).hex()}"
    dovecot_server.deliver("INBOX", f"From: a@example.org\r\nSubject: {subject}\r\n\r\nhello\r\n".encode())
    dovecot_server.deliver("Archive", b"Subject: archived\r\n\r\nold\r\n")
    with imaps(dovecot_server, pki) as imap:
        imap.login(dovecot_server.user, dovecot_server.password)
        status, folders = imap.list()
        assert status == "OK"
        assert any(line.endswith(b" Archive") for line in folders if isinstance(line, bytes))
        imap.select("INBOX", readonly=True)
        status, found = imap.search(None, "SUBJECT", f'"{subject}"')
        assert status == "OK"
        assert len(found[0].split()) == 1
    pop = poplib.POP3_SSL("localhost", dovecot_server.pop3s_port, context=trusting(pki), timeout=5)
    try:
        pop.user(dovecot_server.user)
        pop.pass_(dovecot_server.password)
        assert pop.stat()[0] >= 1
    finally:
        pop.quit()


def test_dovecot_rejects_wrong_password(dovecot_server: Dovecot, pki: TestPKI) -> None:
    with imaps(dovecot_server, pki) as imap, pytest.raises(imaplib.IMAP4.error):
        imap.login(dovecot_server.user, "not the password")


# -- SMTP ---------------------------------------------------------------------------------------


def _message(subject: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "sender@example.org"
    message["To"] = "rcpt@example.org"
    message["Subject"] = subject
    message.set_content("hello\n")
    return message


def test_smtp_receives_over_implicit_tls_and_starttls(smtp_server: SmtpServer, pki: TestPKI) -> None:
    before = len(smtp_server.received())
    with smtplib.SMTP_SSL("localhost", smtp_server.smtps_port, context=trusting(pki), timeout=5) as smtp:
        smtp.login(smtp_server.user, smtp_server.password)
        smtp.send_message(_message("implicit"))
    with smtplib.SMTP("localhost", smtp_server.submission_port, timeout=5) as smtp:
        assert smtp.ehlo()[0] == 250
        assert smtp.has_extn("starttls")
        assert smtp.mail("early@example.org")[0] == 530  # STARTTLS is required first
        smtp.starttls(context=trusting(pki))
        smtp.login(smtp_server.user, smtp_server.password)
        smtp.send_message(_message("starttls"), to_addrs=["one@example.org", "two@example.org"])
    received = smtp_server.received()[before:]
    assert [(m[0], m[1]) for m in received] == [
        ("sender@example.org", ["rcpt@example.org"]),
        ("sender@example.org", ["one@example.org", "two@example.org"]),
    ]
    assert b"Subject: implicit" in received[0][2]
    assert b"Subject: starttls" in received[1][2]


def test_smtp_switch_applies_to_starttls_port(smtp_server: SmtpServer, pki: TestPKI) -> None:
    smtp_server.serve("new-key")
    with smtplib.SMTP("127.0.0.1", smtp_server.submission_port, timeout=5) as smtp:
        smtp.starttls(context=looking())
        assert smtp.sock.getpeercert(binary_form=True) == pki.cert("new-key").leaf_der


# -- conftest helpers ---------------------------------------------------------------------------


def test_environment_is_isolated(isolated_env: Path, tmp_path: Path) -> None:
    assert Path(os.environ["HOME"]) == isolated_env
    assert isolated_env.is_relative_to(tmp_path)
    for name in ("XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME"):
        assert Path(os.environ[name]).is_relative_to(tmp_path)
    assert "SSL_CERT_FILE" not in os.environ
    assert "SSL_CERT_DIR" not in os.environ


def test_need_skips_locally_and_fails_on_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    missing = "mailpin-no-such-component"
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception):
        need(missing)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception):
        need(missing)
    assert need("ssl") == "ssl"  # modules count as components too


def test_smtp_server_can_be_capped_at_tls_1_2(smtp_server) -> None:
    """The lab's "downgraded server": new handshakes stop at TLS 1.2, and uncapping restores 1.3."""
    import socket
    import ssl

    def negotiated() -> str | None:
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        raw = socket.create_connection(("127.0.0.1", smtp_server.smtps_port), timeout=5)
        with raw, context.wrap_socket(raw, server_hostname="localhost") as tls:
            return tls.version()

    assert negotiated() == "TLSv1.3"
    smtp_server.cap_tls(ssl.TLSVersion.TLSv1_2)
    assert negotiated() == "TLSv1.2"
    smtp_server.cap_tls()
    assert negotiated() == "TLSv1.3"
