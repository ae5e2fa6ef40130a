"""A throwaway PKI for the demo: our own CA (a root and an issuing intermediate, as real providers
have), a foreign CA that nobody configured, and a leaf for localhost / 127.0.0.1 from each.

Written as PEM files below one directory; EC P-256, so it takes milliseconds. Nothing here is ever
trusted outside the demo's temporary directory.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

OURS = "mailpin demo CA"
FOREIGN = "Someone Else's CA"
_PEM = serialization.Encoding.PEM


@dataclass(frozen=True)
class Served:
    """What a server presents: its chain (leaf first) and the leaf's private key, as files."""

    chain_pem: Path
    key_pem: Path


@dataclass(frozen=True)
class DemoPKI:
    trust_file: Path  # our root only: what the demo's msmtp and mbsync configs trust
    good: Served  # leaf from our CA, through the intermediate
    foreign: Served  # leaf from the foreign CA: right name, valid dates, wrong issuer


class _Issuer:
    def __init__(self, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> None:
        self.cert, self.key = cert, key


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not ca,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def _builder(
    subject: str, key: ec.EllipticCurvePrivateKey, issuer: _Issuer | None, days: int
) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    signer_key = issuer.key if issuer else key
    return (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer.cert.subject if issuer else _name(subject))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(signer_key.public_key()), critical=False)
    )


def _authority(subject: str, parent: _Issuer | None) -> _Issuer:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        _builder(subject, key, parent, 3650)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None if parent is None else 0), critical=True)
        .add_extension(_usage(ca=True), critical=True)
    )
    return _Issuer(builder.sign(parent.key if parent else key, hashes.SHA256()), key)


def _leaf(issuer: _Issuer, directory: Path, extra: tuple[x509.Certificate, ...] = ()) -> Served:
    key = ec.generate_private_key(ec.SECP256R1())
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.IPv4Address("127.0.0.1"))]
    builder = (
        _builder("localhost", key, issuer, 90)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_usage(ca=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
    )
    leaf = builder.sign(issuer.key, hashes.SHA256())
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    served = Served(directory / "chain.pem", directory / "key.pem")
    served.chain_pem.write_bytes(b"".join(cert.public_bytes(_PEM) for cert in (leaf, *extra)))
    served.key_pem.touch(mode=0o600)
    private = key.private_bytes(_PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    served.key_pem.write_bytes(private)
    return served


def make(directory: Path) -> DemoPKI:
    """Generate and write both CAs and both leaves below `directory`."""
    root = _authority(OURS, None)
    issuing = _authority(f"{OURS} (issuing)", root)
    foreign = _authority(FOREIGN, None)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    trust_file = directory / "ca.pem"
    trust_file.write_bytes(root.cert.public_bytes(_PEM))
    return DemoPKI(
        trust_file=trust_file,
        good=_leaf(issuing, directory / "good", (issuing.cert,)),
        foreign=_leaf(foreign, directory / "foreign"),
    )
