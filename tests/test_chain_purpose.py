"""Chain rules at least as strict as the tools' TLS library (issue 17 item 1, extendedKeyUsage).

mbsync and offlineimap verify with OpenSSL and its "sslserver" purpose: a CA in the path whose
extendedKeyUsage leaves out serverAuth makes the chain "unsuitable". A differential: each chain of
the matrix goes to `openssl verify -purpose sslserver` (the library the tools use, at the same
clock) and to mailpin's validation; whatever OpenSSL refuses, mailpin refuses — and the chains it
accepts, mailpin accepts (no false blocks). Then the leaf's own fitness (keyUsage, key size): the
findings and their words, the tools' verdicts on the same kinds of chain being test_chain_matrix.py's.
"""

from __future__ import annotations

import datetime
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from mailpin.trust import certs
from tests.conftest import need
from tests.lab.pki import crafted, key_usage

SERVER, CLIENT, EMAIL = (
    ExtendedKeyUsageOID.SERVER_AUTH,
    ExtendedKeyUsageOID.CLIENT_AUTH,
    ExtendedKeyUsageOID.EMAIL_PROTECTION,
)
ANY = ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE
NOW = datetime.datetime.now(datetime.timezone.utc)  # certificates and both verifiers at this clock


def _issue(name: str, key, issuer: tuple[x509.Name, object] | None, ca: bool, eku) -> x509.Certificate:  # type: ignore[no-untyped-def]
    extensions = [
        (x509.BasicConstraints(ca=ca, path_length=None), True),
        (x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False),
    ]
    if issuer is not None:
        extensions.append((x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer[1].public_key()), False))  # type: ignore[attr-defined]
    if ca:
        extensions.append((x509.KeyUsage(False, False, False, False, False, True, True, False, False), True))
    else:
        extensions.append((x509.SubjectAlternativeName([x509.DNSName("localhost")]), False))
    if eku is not None:
        extensions.append((x509.ExtendedKeyUsage(eku), False))
    valid = (datetime.timedelta(days=1), datetime.timedelta(days=30))
    return crafted(name, key, *extensions, issuer=issuer, valid=valid, now=NOW)  # type: ignore[arg-type]


CASES = {
    "sub-ca-no-eku": (None, None, [SERVER]),
    "sub-ca-server": (None, [SERVER], [SERVER]),
    "sub-ca-server-and-client": (None, [CLIENT, SERVER], [SERVER]),
    "sub-ca-email-only": (None, [EMAIL], [SERVER]),
    "sub-ca-client-only": (None, [CLIENT], [SERVER]),
    "sub-ca-any-only": (None, [ANY], [SERVER]),
    "root-email-only": ([EMAIL], None, [SERVER]),
    "leaf-client-only": (None, None, [CLIENT]),
    "leaf-any-only": (None, None, [ANY]),
    "leaf-any-and-server": (None, None, [ANY, SERVER]),
    "leaf-no-eku": (None, None, None),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_whatever_openssl_refuses_mailpin_refuses(tmp_path: Path, case: str) -> None:
    openssl = need("openssl")
    root_eku, sub_eku, leaf_eku = CASES[case]
    keys = [ec.generate_private_key(ec.SECP256R1()) for _ in range(3)]
    root = _issue("purpose root", keys[0], None, True, root_eku)
    sub = _issue("purpose sub-CA", keys[1], (root.subject, keys[0]), True, sub_eku)
    leaf = _issue("localhost", keys[2], (sub.subject, keys[1]), False, leaf_eku)
    files = {}
    for name, cert in (("root", root), ("sub", sub), ("leaf", leaf)):
        files[name] = tmp_path / f"{name}.pem"
        files[name].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    command = [openssl, "verify", "-purpose", "sslserver", "-CAfile", files["root"], "-untrusted", files["sub"]]
    done = subprocess.run([*map(str, command), str(files["leaf"])], capture_output=True, text=True, check=False)
    openssl_ok = done.returncode == 0
    verdict = certs.validate([leaf, sub], "localhost", certs.Trust("test root", (root,)), NOW)
    assert verdict.chain_valid is openssl_ok, (case, done.stdout + done.stderr, verdict.error)


LEAVES = {  # (leaf key, leaf keyUsage or None) -> what mailpin says; test_chain_matrix.py has the tools' word
    "ec-signature": (lambda: ec.generate_private_key(ec.SECP256R1()), key_usage("digital_signature"), None),
    "ec-no-ku": (lambda: ec.generate_private_key(ec.SECP256R1()), None, None),
    "rsa-signature-encipherment": (
        lambda: rsa.generate_private_key(65537, 2048),
        key_usage("digital_signature", "key_encipherment"),
        None,
    ),
    "ed25519": (ed25519.Ed25519PrivateKey.generate, key_usage("digital_signature"), None),
    "rsa-encipherment-only": (lambda: rsa.generate_private_key(65537, 2048), key_usage("key_encipherment"), "keyUsage"),
    "ec-agreement-only": (lambda: ec.generate_private_key(ec.SECP256R1()), key_usage("key_agreement"), "keyUsage"),
    "ec-keycertsign-only": (lambda: ec.generate_private_key(ec.SECP256R1()), key_usage("key_cert_sign"), "keyUsage"),
    "rsa-1024": (lambda: rsa.generate_private_key(65537, 1024), key_usage("digital_signature"), "too weak"),
    "ec-p192": (lambda: ec.generate_private_key(ec.SECP192R1()), key_usage("digital_signature"), "too weak"),
}


@pytest.mark.parametrize("case", sorted(LEAVES))
def test_a_leaf_unfit_to_sign_the_handshake_is_an_untrusted_chain(case: str) -> None:
    make_key, usage, refused_for = LEAVES[case]
    root_key = ec.generate_private_key(ec.SECP256R1())
    root = _issue("purpose root", root_key, None, True, None)
    key = make_key()
    extensions = [
        (x509.BasicConstraints(ca=False, path_length=None), True),
        (x509.SubjectAlternativeName([x509.DNSName("localhost")]), False),
    ]
    if usage is not None:
        extensions.append((usage, True))
    valid = (datetime.timedelta(days=1), datetime.timedelta(days=30))
    leaf = crafted("localhost", key, *extensions, issuer=(root.subject, root_key), valid=valid, now=NOW)  # type: ignore[arg-type]
    verdict = certs.validate([leaf], "localhost", certs.Trust("test root", (root,)), NOW)
    if refused_for is None:
        assert (verdict.chain_valid, verdict.reasons, verdict.error) == (True, (), None)
    else:
        assert (verdict.chain_valid, verdict.reasons) == (False, ("untrusted-chain",))
        assert refused_for in (verdict.error or ""), verdict.error


CN_CONSTRAINTS = {  # (CN, SAN DNS names, permitted, excluded) -> valid? (the path builder checks SANs itself)
    "cn-below-permitted": ("mail.example.org", [], ["example.org"], [], True),
    "cn-is-permitted": ("example.org", [], ["example.org"], [], True),
    "cn-below-dotted-permitted": ("mail.example.org", [], [".example.org"], [], True),
    "cn-is-dotted-permitted": ("example.org", [], [".example.org"], [], False),
    "cn-outside-permitted": ("mail.example.com", [], ["example.org"], [], False),
    "cn-lookalike-of-permitted": ("mailexample.org", [], ["example.org"], [], False),
    "cn-below-excluded": ("mail.example.org", [], [], ["example.org"], False),
    "cn-beside-excluded": ("mail.example.com", [], [], ["example.org"], True),
    "cn-unused-when-san": ("mail.example.com", ["mail.example.org"], ["example.org"], [], True),
}


@pytest.mark.parametrize("case", sorted(CN_CONSTRAINTS))
def test_name_constraints_apply_to_a_common_name_that_names_the_server(case: str) -> None:
    cn, sans, permitted, excluded, valid = CN_CONSTRAINTS[case]
    keys = [ec.generate_private_key(ec.SECP256R1()) for _ in range(3)]
    root = _issue("purpose root", keys[0], None, True, None)
    constraints = x509.NameConstraints(
        [x509.DNSName(name) for name in permitted] or None, [x509.DNSName(name) for name in excluded] or None
    )
    days = (datetime.timedelta(days=1), datetime.timedelta(days=30))
    sub = crafted(
        "constrained sub-CA",
        keys[1],
        (x509.BasicConstraints(ca=True, path_length=None), True),
        (constraints, True),
        issuer=(root.subject, keys[0]),
        valid=days,
        now=NOW,
    )
    leaf_extensions = [(x509.BasicConstraints(ca=False, path_length=None), True)]
    if sans:
        leaf_extensions.append((x509.SubjectAlternativeName([x509.DNSName(name) for name in sans]), False))
    leaf = crafted(cn, keys[2], *leaf_extensions, issuer=(sub.subject, keys[1]), valid=days, now=NOW)
    verdict = certs.validate([leaf, sub], sans[0] if sans else cn, certs.Trust("test root", (root,)), NOW)
    assert verdict.chain_valid is valid, verdict.error
    if not valid:
        assert verdict.reasons == ("untrusted-chain",)
        assert "name constraints of CN=constrained sub-CA" in (verdict.error or "")
