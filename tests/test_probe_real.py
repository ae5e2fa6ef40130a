"""`mailpin probe` against the real Dovecot (IMAP, POP3) and a real SMTP server, both modes,
for each certificate the lab can serve. Fingerprints are checked against `openssl`'s own."""

from __future__ import annotations

import base64
import json
import subprocess

import pytest

from mailpin.cli import main
from tests.lab.verdicts import EXPECTED

# (protocol, mode, server fixture, port attribute)
ENDPOINTS = [
    ("imap", "implicit", "dovecot_server", "imaps_port"),
    ("imap", "starttls", "dovecot_server", "imap_port"),
    ("pop3", "implicit", "dovecot_server", "pop3s_port"),
    ("pop3", "starttls", "dovecot_server", "pop3_port"),
    ("smtp", "implicit", "smtp_server", "smtps_port"),
    ("smtp", "starttls", "smtp_server", "submission_port"),
]


def openssl_facts(der: bytes) -> tuple[str, str]:
    """SHA-256 of the certificate (openssl's colon form) and of its SPKI (base64), by openssl."""
    pem = subprocess.run(["openssl", "x509", "-inform", "DER"], input=der, capture_output=True, check=True).stdout
    out = subprocess.run(
        ["openssl", "x509", "-noout", "-fingerprint", "-sha256"], input=pem, capture_output=True, check=True
    ).stdout.decode()
    fingerprint = out.strip().split("=", 1)[1]
    pubkey = subprocess.run(["openssl", "x509", "-noout", "-pubkey"], input=pem, capture_output=True, check=True)
    spki_der = subprocess.run(
        ["openssl", "pkey", "-pubin", "-outform", "DER"], input=pubkey.stdout, capture_output=True, check=True
    ).stdout
    digest = subprocess.run(["openssl", "dgst", "-sha256", "-binary"], input=spki_der, capture_output=True, check=True)
    return fingerprint, base64.b64encode(digest.stdout).decode()


def probe_json(capsys, port: int, protocol: str, mode: str, *extra: str) -> tuple[int, dict]:
    status = main(["probe", f"127.0.0.1:{port}", "--protocol", protocol, "--mode", mode, "--json", *extra])
    out = capsys.readouterr().out
    return status, json.loads(out)


@pytest.mark.parametrize("variant", sorted(EXPECTED))
@pytest.mark.parametrize(("protocol", "mode", "server", "port_attr"), ENDPOINTS)
def test_probe_reports_the_served_certificate_exactly(
    request, capsys, pki, variant: str, protocol: str, mode: str, server: str, port_attr: str
) -> None:
    lab = request.getfixturevalue(server)
    if lab.variant != variant:
        lab.serve(variant)
    served = pki.cert(variant)
    status, data = probe_json(
        capsys, getattr(lab, port_attr), protocol, mode, "--servername", "localhost", "--trust-file", str(pki.ca_pem)
    )
    # A certificate that does not validate is a fact, not a failed probe: exit 0.
    assert status == 0, data
    assert (data["mode"], data["port"], data["protocol"]) == (mode, getattr(lab, port_attr), protocol)
    colon, spki = openssl_facts(served.leaf_der)
    assert data["cert_sha256_colon"] == colon
    assert data["cert_sha256"] == colon.replace(":", "").lower()
    assert data["spki_sha256"] == spki
    assert data["tls_version"] in ("TLSv1.2", "TLSv1.3")
    chain_valid, hostname_valid, reasons = EXPECTED[variant]
    assert (data["chain_valid"], data["hostname_valid"], tuple(data["reasons"])) == (
        chain_valid,
        hostname_valid,
        reasons,
    )
    if chain_valid:
        assert data["ca_spki_sha256"] == [openssl_facts(pki.intermediate_der)[1], openssl_facts(pki.root_der)[1]]
    else:
        assert data["ca_spki_sha256"] == []


def test_probe_without_the_trust_file_uses_system_trust(capsys, dovecot_server) -> None:
    status, data = probe_json(capsys, dovecot_server.imaps_port, "imap", "implicit", "--servername", "localhost")
    assert status == 0
    assert data["trust"].startswith("system")
    assert data["chain_valid"] is False
    assert data["reasons"] == ["untrusted-chain"]


def test_ssl_cert_file_is_honoured(capsys, monkeypatch, pki, smtp_server) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(pki.ca_pem))
    status, data = probe_json(capsys, smtp_server.submission_port, "smtp", "starttls", "--servername", "localhost")
    assert status == 0
    assert data["chain_valid"] is True
    assert data["trust"].startswith("SSL_CERT_FILE")


def test_ip_address_without_servername_checks_the_ip_san(capsys, pki, dovecot_server) -> None:
    # No SNI is sent for an IP literal (RFC 6066 §3); the lab certificate carries IP:127.0.0.1.
    status, data = probe_json(capsys, dovecot_server.imaps_port, "imap", "implicit", "--trust-file", str(pki.ca_pem))
    assert status == 0
    assert data["hostname_valid"] is True
    assert data["servername"] == "127.0.0.1"


def test_wrong_servername_is_a_hostname_mismatch(capsys, pki, dovecot_server) -> None:
    status, data = probe_json(
        capsys, dovecot_server.imap_port, "imap", "starttls", "--servername", "imap.example.org",
        "--trust-file", str(pki.ca_pem),
    )  # fmt: skip
    assert status == 0
    assert data["chain_valid"] is True
    assert data["reasons"] == ["hostname-mismatch"]


@pytest.mark.parametrize(("protocol", "port_attr"), [("imap", "imaps_port"), ("pop3", "pop3s_port")])
def test_starttls_against_an_implicit_tls_port_is_blocked(capsys, dovecot_server, protocol, port_attr) -> None:
    # The user's config says STARTTLS but the port speaks TLS at once: no plaintext dialogue.
    status, data = probe_json(capsys, getattr(dovecot_server, port_attr), protocol, "starttls", "--timeout", "1")
    assert status in (69, 75)
    assert data["reasons"] in (["protocol-error"], ["timeout"])


@pytest.mark.parametrize(("protocol", "port_attr"), [("imap", "imap_port"), ("smtp", "submission_port")])
def test_implicit_tls_against_a_plaintext_port_is_blocked(request, capsys, protocol, port_attr) -> None:
    lab = request.getfixturevalue("dovecot_server" if protocol == "imap" else "smtp_server")
    status, data = probe_json(capsys, getattr(lab, port_attr), protocol, "implicit", "--timeout", "3")
    assert (status, data["reasons"]) == (69, ["mode-changed"])  # a plaintext server where TLS was due
    assert "plaintext" in data["error"]


def test_text_output_shows_msmtp_fingerprint_and_verdicts(capsys, pki, smtp_server) -> None:
    status = main(["probe", f"localhost:{smtp_server.smtps_port}", "--protocol", "smtp", "--mode", "implicit",
                   "--trust-file", str(pki.ca_pem)])  # fmt: skip
    out = capsys.readouterr().out
    colon, spki = openssl_facts(pki.cert("good").leaf_der)
    assert status == 0
    assert colon in out
    assert spki in out
    assert "chain        valid" in out
    assert "matches localhost" in out
