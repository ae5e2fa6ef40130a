"""A throw-away test PKI built with ``cryptography``.

Hierarchy::

    "mailpin test root"  (ca.pem: the ONLY thing in the trust file)
      `-- "mailpin test intermediate"
            |-- good, renewed, new-key, expired, not-yet-valid, wrong-name
    "mailpin foreign root"  (never trusted)
      `-- "mailpin foreign intermediate"
            `-- foreign-ca
    self-signed  (signs itself, no chain)

Keys: ``good``, ``renewed``, ``expired``, ``not-yet-valid`` and ``wrong-name`` share ONE leaf key
(so a pin on the key alone matches them -- useful to show that expiry and host-name checks still
apply); ``new-key``, ``foreign-ca`` and ``self-signed`` each have their own key.

Invariant (tests rely on it): verified against the trust file :attr:`TestPKI.ca_pem` with the
server name ``localhost`` (or the IP 127.0.0.1),

* ``good``, ``renewed`` and ``new-key`` validate;
* ``expired`` and ``not-yet-valid`` validate except for the time check;
* ``wrong-name`` validates except for the host-name check;
* nothing validates ``foreign-ca`` or ``self-signed``.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VARIANTS = (
    "good",
    "renewed",
    "new-key",
    "foreign-ca",
    "expired",
    "not-yet-valid",
    "wrong-name",
    "self-signed",
)

PrivateKey = ec.EllipticCurvePrivateKey


@dataclass(frozen=True)
class ServedCert:
    """What a server presents for one variant, as files (for servers) and DER (for comparisons)."""

    variant: str
    chain_pem: Path  # leaf first, then the intermediate; self-signed: leaf only
    key_pem: Path  # unencrypted PKCS#8 private key of the leaf
    leaf_der: bytes
    chain_der: tuple[bytes, ...]  # DER of what the server sends, leaf first


def _new_key() -> PrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _aki(issuer_key: PrivateKey) -> x509.AuthorityKeyIdentifier:
    return x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key())


def _ski(key: PrivateKey) -> x509.SubjectKeyIdentifier:
    return x509.SubjectKeyIdentifier.from_public_key(key.public_key())


class _Issuer:
    """A certificate together with the key that signs its children."""

    def __init__(self, cert: x509.Certificate, key: PrivateKey) -> None:
        self.cert = cert
        self.key = key

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)


class TestPKI:
    """Writes a root CA, an intermediate, a foreign root/intermediate and all leaf variants.

    Everything is generated in ``__init__`` (EC P-256, a few milliseconds) and written below
    ``directory``:  ``ca.pem``, ``foreign-ca.pem`` and ``<variant>/{chain,key}.pem``.
    """

    __test__ = False  # not a pytest test class despite the name

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
        self._serials: set[int] = set()

        root = self._ca("mailpin test root", None)
        intermediate = self._ca("mailpin test intermediate", root)
        foreign_root = self._ca("mailpin foreign root", None)
        foreign_intermediate = self._ca("mailpin foreign intermediate", foreign_root)
        self.root_der: bytes = root.der
        self.intermediate_der: bytes = intermediate.der
        self.foreign_root_der: bytes = foreign_root.der

        # The trust file a user would configure as tls_trust_file: the test root only.
        self.ca_pem: Path = self.directory / "ca.pem"
        self.ca_pem.write_bytes(root.cert.public_bytes(serialization.Encoding.PEM))
        # The foreign root, for tests that want to trust "the wrong CA" on purpose.
        self.foreign_ca_pem: Path = self.directory / "foreign-ca.pem"
        self.foreign_ca_pem.write_bytes(foreign_root.cert.public_bytes(serialization.Encoding.PEM))

        leaf_key = _new_key()
        day = dt.timedelta(days=1)
        now = self._now
        # variant -> (issuer or None for self-signed, key, host name, not_before, not_after)
        plan: dict[str, tuple[_Issuer | None, PrivateKey, str, dt.datetime, dt.datetime]] = {
            "good": (intermediate, leaf_key, "localhost", now - day, now + 365 * day),
            "renewed": (intermediate, leaf_key, "localhost", now - dt.timedelta(hours=1), now + 730 * day),
            "new-key": (intermediate, _new_key(), "localhost", now - day, now + 365 * day),
            "foreign-ca": (foreign_intermediate, _new_key(), "localhost", now - day, now + 365 * day),
            "expired": (intermediate, leaf_key, "localhost", now - 400 * day, now - 30 * day),
            "not-yet-valid": (intermediate, leaf_key, "localhost", now + 30 * day, now + 400 * day),
            "wrong-name": (intermediate, leaf_key, "wrong.example", now - day, now + 365 * day),
            "self-signed": (None, _new_key(), "localhost", now - day, now + 365 * day),
        }
        assert tuple(plan) == VARIANTS
        self._certs: dict[str, ServedCert] = {}
        for variant, (issuer, key, host, not_before, not_after) in plan.items():
            self._certs[variant] = self._leaf(variant, issuer, key, host, not_before, not_after)

    # -- public API ---------------------------------------------------------------------------

    def cert(self, variant: str) -> ServedCert:
        """The served certificate for ``variant``; raises KeyError for unknown variants."""
        if variant not in self._certs:
            raise KeyError(f"unknown certificate variant {variant!r}; known: {', '.join(VARIANTS)}")
        return self._certs[variant]

    # -- construction helpers -----------------------------------------------------------------

    def _serial(self) -> int:
        """A random serial number, distinct from every other one in this PKI."""
        while True:
            serial = x509.random_serial_number()
            if serial not in self._serials:
                self._serials.add(serial)
                return serial

    def _ca(self, common_name: str, parent: _Issuer | None) -> _Issuer:
        """A CA certificate: self-signed root when ``parent`` is None, else an intermediate."""
        key = _new_key()
        issuer_name = parent.cert.subject if parent else _name(common_name)
        signing_key = parent.key if parent else key
        ten_years = dt.timedelta(days=3650)
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(issuer_name)
            .public_key(key.public_key())
            .serial_number(self._serial())
            .not_valid_before(self._now - ten_years)
            .not_valid_after(self._now + ten_years)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None if parent is None else 0), True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(_ski(key), critical=False)
            .add_extension(_aki(signing_key), critical=False)
        )
        return _Issuer(builder.sign(signing_key, hashes.SHA256()), key)

    def _leaf(
        self,
        variant: str,
        issuer: _Issuer | None,
        key: PrivateKey,
        host: str,
        not_before: dt.datetime,
        not_after: dt.datetime,
    ) -> ServedCert:
        """Build, sign and write one server certificate."""
        signing_key = issuer.key if issuer else key
        san: list[x509.GeneralName] = [x509.DNSName(host)]
        if host == "localhost":
            san.append(x509.IPAddress(ipaddress.IPv4Address("127.0.0.1")))
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(host))
            .issuer_name(issuer.cert.subject if issuer else _name(host))
            .public_key(key.public_key())
            .serial_number(self._serial())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectAlternativeName(san), critical=False)
            .add_extension(_ski(key), critical=False)
            .add_extension(_aki(signing_key), critical=False)
        )
        leaf = builder.sign(signing_key, hashes.SHA256())
        chain = [leaf] if issuer is None else [leaf, issuer.cert]

        out = self.directory / variant
        out.mkdir(exist_ok=True)
        chain_pem = out / "chain.pem"
        chain_pem.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain))
        key_pem = out / "key.pem"
        key_pem.touch(mode=0o600)
        key_pem.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        return ServedCert(
            variant=variant,
            chain_pem=chain_pem,
            key_pem=key_pem,
            leaf_der=leaf.public_bytes(serialization.Encoding.DER),
            chain_der=tuple(c.public_bytes(serialization.Encoding.DER) for c in chain),
        )


# -- observing servers ------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def served_leaf(port: int, timeout: float = 2.0) -> bytes:
    """DER of the leaf certificate presented by an Implicit TLS server on 127.0.0.1:port.

    No verification: this is how tests look at *what* is served, not whether it is trusted.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection(("127.0.0.1", port), timeout=timeout) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    if not der:
        raise ssl.SSLError(f"no certificate from 127.0.0.1:{port}")
    return der


def crafted(
    common_name: str,
    key: PrivateKey,
    *extensions: tuple[x509.ExtensionType, bool],
    issuer: tuple[x509.Name, PrivateKey] | None = None,
    valid: tuple[dt.timedelta, dt.timedelta] = (dt.timedelta(days=1), dt.timedelta(days=1)),
    now: dt.datetime | None = None,
) -> x509.Certificate:
    """One certificate a test builds by hand: subject CN, the (extension, critical) pairs in order,
    signed by ISSUER (its name and key) or self-signed, valid from `now - valid[0]` to
    `now + valid[1]` — `now` being the clock the suite runs at unless given."""
    at = now or dt.datetime.now(dt.timezone.utc)
    subject = _name(common_name)
    issuer_name, signing_key = issuer if issuer is not None else (subject, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(at - valid[0])
        .not_valid_after(at + valid[1])
    )
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    return builder.sign(signing_key, hashes.SHA256())


def key_usage(*usages: str) -> x509.KeyUsage:
    """A keyUsage extension asserting exactly USAGES, by `x509.KeyUsage`'s argument names."""
    flags = dict.fromkeys(
        ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment", "key_agreement"), False
    )
    flags.update(key_cert_sign=False, crl_sign=False, encipher_only=False, decipher_only=False)
    return x509.KeyUsage(**{**flags, **dict.fromkeys(usages, True)})


def write_served(
    directory: Path, cert: x509.Certificate, key: PrivateKey, *intermediates: x509.Certificate
) -> tuple[Path, Path]:
    """chain.pem (CERT, then any INTERMEDIATES in the order a server sends them) and key.pem in
    DIRECTORY, for a server of a test's own (HostileServer)."""
    chain, key_pem = directory / "chain.pem", directory / "key.pem"
    chain.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (cert, *intermediates)))
    key_pem.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return chain, key_pem


# DER of the signature AlgorithmIdentifier OIDs that `resigned` swaps (RFC 4055 §5, RFC 8017 App. A.2.4):
# the same length, so the certificate's structure and lengths stay as they are.
_SHA256_WITH_RSA = bytes.fromhex("06092a864886f70d01010b")
_LEGACY_WITH_RSA = {"sha1": bytes.fromhex("06092a864886f70d010105"), "md5": bytes.fromhex("06092a864886f70d010104")}


def resigned(cert: x509.Certificate, issuer_key: rsa.RSAPrivateKey, digest: str) -> x509.Certificate:
    """CERT (signed sha256WithRSAEncryption by ISSUER_KEY) signed again with a legacy DIGEST, "sha1"
    or "md5": `cryptography` no longer signs certificates with those, and the tools' libraries must
    be shown one. The algorithm appears twice (RFC 5280 §4.1.1.2 and §4.1.2.3); both are swapped."""
    der = cert.public_bytes(serialization.Encoding.DER)
    if der.count(_SHA256_WITH_RSA) != 2:
        raise ValueError("not a certificate signed sha256WithRSAEncryption")
    swapped = der.replace(_SHA256_WITH_RSA, _LEGACY_WITH_RSA[digest])
    tbs = x509.load_der_x509_certificate(swapped).tbs_certificate_bytes
    legacy = {"sha1": hashes.SHA1(), "md5": hashes.MD5()}[digest]
    signature = issuer_key.sign(tbs, padding.PKCS1v15(), legacy)
    # The signature BIT STRING ends the certificate; an RSA signature is as long as the modulus.
    assert len(signature) == len(cert.signature)
    return x509.load_der_x509_certificate(swapped[: -len(signature)] + signature)
