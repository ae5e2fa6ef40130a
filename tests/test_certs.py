"""Chain validation and host names, on the lab PKI's certificates (no network)."""

from __future__ import annotations

import datetime
import ipaddress

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from mailpin.errors import ConfigError
from mailpin.trust import certs
from tests.lab.pki import crafted
from tests.lab.verdicts import EXPECTED

NOW = datetime.datetime.now(datetime.timezone.utc)


@pytest.mark.parametrize("variant", sorted(EXPECTED))
def test_each_lab_certificate_is_judged_right(pki, variant: str) -> None:
    served = pki.cert(variant)
    trust = certs.load_trust(str(pki.ca_pem), {})
    verdict = certs.validate(certs.parse_chain(served.chain_der), "localhost", trust, NOW)
    assert (verdict.chain_valid, verdict.hostname_valid, verdict.reasons) == EXPECTED[variant]
    if verdict.chain_valid:
        # The validated path: the intermediate, then the root — by SPKI, computed independently.
        want = [certs.spki_sha256(x509.load_der_x509_certificate(der)) for der in (pki.intermediate_der, pki.root_der)]
        assert [ca.spki_sha256 for ca in verdict.ca_certs] == want
    else:
        assert verdict.ca_certs == ()
        wanted = {"foreign-ca": "does not chain to a trusted CA", "self-signed": "self-signed certificate",
                  "expired": "certificate expired on", "not-yet-valid": "certificate not valid before"}  # fmt: skip
        assert verdict.error is not None and wanted[variant] in verdict.error


def test_expired_certificate_from_a_foreign_ca_is_both_expired_and_untrusted(pki) -> None:
    # Judge the good foreign-CA chain ten years on: outside its validity AND untrusted.
    served = pki.cert("foreign-ca")
    trust = certs.load_trust(str(pki.ca_pem), {})
    later = NOW + datetime.timedelta(days=3650)
    verdict = certs.validate(certs.parse_chain(served.chain_der), "localhost", trust, later)
    assert verdict.reasons == ("expired", "untrusted-chain")


def test_a_self_signed_certificate_in_the_trust_file_validates(pki, tmp_path) -> None:
    # msmtp users point tls_trust_file at the server's own self-signed certificate.
    served = pki.cert("self-signed")
    trust = certs.load_trust(str(served.chain_pem), {})
    verdict = certs.validate(certs.parse_chain(served.chain_der), "localhost", trust, NOW)
    assert verdict.chain_valid
    assert verdict.hostname_valid


def test_trust_comes_from_ssl_cert_file_when_no_trust_file_is_given(pki) -> None:
    trust = certs.load_trust(None, {"SSL_CERT_FILE": str(pki.ca_pem)})
    assert trust.description == f"SSL_CERT_FILE {pki.ca_pem}"
    assert len(trust.anchors) == 1


def test_system_trust_does_not_validate_the_lab_ca(pki) -> None:
    trust = certs.load_trust(None, {})
    assert trust.description.startswith("system")
    verdict = certs.validate(certs.parse_chain(pki.cert("good").chain_der), "localhost", trust, NOW)
    assert not verdict.chain_valid


@pytest.mark.parametrize("content", [None, b"", b"not a certificate\n"])
def test_unreadable_or_empty_trust_file_is_a_config_error(tmp_path, content: bytes | None) -> None:
    path = tmp_path / "ca.pem"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ConfigError, match=str(path)):
        certs.load_trust(str(path), {})


def _cert(sans: list[x509.GeneralName], cn: str = "ignored", eku: list[x509.ObjectIdentifier] | None = None):
    extensions = [(x509.SubjectAlternativeName(sans), False)] if sans else []
    if eku is not None:
        extensions.append((x509.ExtendedKeyUsage(eku), False))
    return crafted(cn, ec.generate_private_key(ec.SECP256R1()), *extensions, now=NOW)


@pytest.mark.parametrize(
    ("pattern", "name", "ok"),
    [
        ("imap.example.org", "imap.example.org", True),
        ("IMAP.Example.org", "imap.example.ORG.", True),
        ("*.example.org", "imap.example.org", True),
        ("*.example.org", "example.org", False),
        ("*.example.org", "a.b.example.org", False),
        ("*.org", "example.org", False),  # no wildcard over a single remaining label
        ("imap.example.org", "smtp.example.org", False),
        ("f*.example.org", "foo.example.org", False),  # only a whole left-most "*" label
    ],
)
def test_dns_names_match_as_rfc_6125_says(pattern: str, name: str, ok: bool) -> None:
    assert certs.hostname_matches(_cert([x509.DNSName(pattern)]), name) is ok


def test_ip_addresses_match_only_ip_sans() -> None:
    cert = _cert([x509.DNSName("127.0.0.1"), x509.IPAddress(ipaddress.ip_address("::1"))])
    assert certs.hostname_matches(cert, "::1")
    assert not certs.hostname_matches(cert, "127.0.0.1")  # a DNS SAN spelling an IP is no IP SAN


def test_common_name_counts_only_without_dns_sans() -> None:
    assert certs.hostname_matches(_cert([], cn="mail.example.org"), "mail.example.org")
    assert not certs.hostname_matches(_cert([x509.DNSName("other.example")], cn="mail.example.org"), "mail.example.org")


def test_a_certificate_only_for_client_auth_does_not_validate_for_a_server(tmp_path) -> None:
    cert = _cert([x509.DNSName("localhost")], eku=[ExtendedKeyUsageOID.CLIENT_AUTH])
    trust = certs.Trust("test", (cert,))
    verdict = certs.validate([cert], "localhost", trust, NOW)
    assert not verdict.chain_valid
    assert verdict.reasons == ("untrusted-chain",)
    server = _cert([x509.DNSName("localhost")], eku=[ExtendedKeyUsageOID.SERVER_AUTH])
    assert certs.validate([server], "localhost", certs.Trust("test", (server,)), NOW).chain_valid


def test_ssl_cert_dir_is_a_list_and_adds_to_ssl_cert_file(pki, tmp_path) -> None:
    # OpenSSL: SSL_CERT_DIR is ":"-separated, missing entries are skipped, c_rehash names are HASH.N,
    # and SSL_CERT_FILE and SSL_CERT_DIR are used together.
    hashed = tmp_path / "hashed"
    hashed.mkdir()
    (hashed / "0a1b2c3d.3").write_bytes(pki.ca_pem.read_bytes())
    (hashed / "README").write_text("not a certificate")
    foreign = x509.load_der_x509_certificate(pki.foreign_root_der).public_bytes(serialization.Encoding.PEM)
    (tmp_path / "foreign.pem").write_bytes(foreign)
    trust = certs.load_trust(None, {"SSL_CERT_DIR": f"{tmp_path / 'missing'}:{hashed}"})
    assert len(trust.anchors) == 1
    verdict = certs.validate(certs.parse_chain(pki.cert("good").chain_der), "localhost", trust, NOW)
    assert verdict.chain_valid
    both = certs.load_trust(None, {"SSL_CERT_FILE": str(tmp_path / "foreign.pem"), "SSL_CERT_DIR": str(hashed)})
    assert len(both.anchors) == 2 and "SSL_CERT_FILE" in both.description and "SSL_CERT_DIR" in both.description


def test_an_issuer_whose_key_usage_forbids_certificate_signing_is_not_a_ca() -> None:
    # RFC 5280 §4.2.1.3 (OpenSSL and GnuTLS refuse this issuer too).
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "a CA")])

    def ca(key_cert_sign: bool) -> x509.Certificate:
        usage = x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                              data_encipherment=False, key_agreement=False, key_cert_sign=key_cert_sign,
                              crl_sign=False, encipher_only=False, decipher_only=False)  # fmt: skip
        return (
            x509.CertificateBuilder()
            .subject_name(ca_name)
            .issuer_name(ca_name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(NOW - datetime.timedelta(days=1))
            .not_valid_after(NOW + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(usage, critical=True)
            .sign(ca_key, hashes.SHA256())
        )

    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - datetime.timedelta(days=1))
        .not_valid_after(NOW + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    verdict = certs.validate([leaf], "localhost", certs.Trust("test", (ca(key_cert_sign=False),)), NOW)
    assert not verdict.chain_valid and verdict.reasons == ("untrusted-chain",)
    # The same CA with keyCertSign validates: the refusal above is about keyUsage alone.
    assert certs.validate([leaf], "localhost", certs.Trust("test", (ca(key_cert_sign=True),)), NOW).chain_valid
