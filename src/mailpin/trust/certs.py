"""Certificates: the hashes users compare, chain validation, host name matching.

Validation uses `cryptography`'s X.509 path builder over the chain the server sent, against
the anchors the user's tool would use (a trust file, `SSL_CERT_FILE`, or the system store).
Its web-PKI extension profile is relaxed to what OpenSSL and GnuTLS — the libraries inside
mbsync and msmtp — accept for a private mail CA: CA certificates need basicConstraints, a chain
ends at a self-signed trusted certificate, and the leaf's own fitness for a TLS server (extended
key usage, key usage, key size, a common name within name constraints) is checked below, at least
as strictly as either library (tests/test_chain_matrix.py holds the differential). Validity
period and host name are always checked (msmtp's fingerprint match skips both; mailpin must not —
DESIGN §3).
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509 import verification
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from mailpin.errors import ConfigError
from mailpin.model import CertFacts, ChainVerdict, is_ip_address
from mailpin.net.replies import printable
from mailpin.trust import anchors
from mailpin.trust.anchors import TrustSource


def sha256_hex(der: bytes) -> str:
    return hashlib.sha256(der).hexdigest()


def spki_sha256(cert: x509.Certificate) -> str:
    """RFC 7469 §2.4 pin: base64 of SHA-256 over the DER SubjectPublicKeyInfo."""
    spki = cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(spki).digest()).decode("ascii")


def _san(cert: x509.Certificate) -> x509.SubjectAlternativeName | None:
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None


def _sans(cert: x509.Certificate) -> tuple[str, ...]:
    san = _san(cert)
    if san is None:
        return ()
    names = [f"DNS:{name}" for name in san.get_values_for_type(x509.DNSName)]
    names += [f"IP:{addr}" for addr in san.get_values_for_type(x509.IPAddress)]
    return tuple(printable(name) for name in names)  # IA5String allows ESC, BEL, CR: server text


def facts(cert: x509.Certificate) -> CertFacts:
    # Names come from the server: control characters escaped before anyone prints them (a hostile
    # subject must not draw fake lines next to a [y/N] prompt or in a notification).
    return CertFacts(
        subject=printable(cert.subject.rfc4514_string(), limit=400),
        issuer=printable(cert.issuer.rfc4514_string(), limit=400),
        sans=_sans(cert),
        serial=format(cert.serial_number, "x"),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        sha256=sha256_hex(cert.public_bytes(Encoding.DER)),
        spki_sha256=spki_sha256(cert),
        self_issued=cert.subject == cert.issuer,
    )


# What cryptography raises for a malformed certificate besides ValueError (bench/results-fuzz.md).
_MALFORMED = (UnsupportedAlgorithm, x509.InvalidVersion, x509.DuplicateExtension, x509.UnsupportedGeneralNameType)


def _load_pems(data: bytes) -> list[x509.Certificate]:
    # cryptography warns about legacy encodings (negative serials) in some old system roots;
    # they are not mailpin's findings and must not reach the user's stderr.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return x509.load_pem_x509_certificates(data)
        except _MALFORMED as exc:
            raise ValueError(str(exc)) from None


def parse_chain(chain_der: Sequence[bytes]) -> list[x509.Certificate]:
    """Certificates from a server, parsed completely now: cryptography parses extensions and keys
    lazily, and a malformed one must fail here (ValueError), not later in a report or a verdict."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            chain = [x509.load_der_x509_certificate(der) for der in chain_der]
            for cert in chain:
                _ = cert.extensions, cert.public_key(), cert.not_valid_after_utc
        except _MALFORMED as exc:
            raise ValueError(str(exc)) from None
    return chain


# --- trust anchors --------------------------------------------------------------------------


@dataclass(frozen=True)
class Trust:
    description: str
    anchors: tuple[x509.Certificate, ...]


def parse_trust(source: TrustSource) -> Trust:
    """The anchors of `source`, parsed. A named trust file without a certificate is a config
    error; a directory's unparseable files are skipped, as OpenSSL skips them."""
    anchors: list[x509.Certificate] = []
    from_dirs: dict[bytes, x509.Certificate] = {}
    for pem in source.files:
        try:
            certs = _load_pems(pem.data)
        except ValueError:
            if pem.strict:
                raise ConfigError(pem.path, None, "no PEM certificates in this trust file") from None
            continue
        if pem.strict:
            anchors += certs
        else:
            from_dirs.update((cert.fingerprint(hashes.SHA256()), cert) for cert in certs)
    return Trust(source.description, (*anchors, *from_dirs.values()))


def load_trust(trust_file: str | None, environ: Mapping[str, str]) -> Trust:
    """The anchors an OpenSSL-based tool would use (see `anchors.locate`), parsed."""
    return parse_trust(anchors.locate(trust_file, environ))


def trust_for(trust_file: str | None, system: bool, environ: Mapping[str, str]) -> Trust:
    """The anchors of one account (see `anchors.locate_for`), parsed."""
    return parse_trust(anchors.locate_for(trust_file, system, environ))


# --- validation -----------------------------------------------------------------------------


def _ca_key_usage(policy: verification.Policy, cert: x509.Certificate, usage: x509.KeyUsage | None) -> None:
    """RFC 5280 §4.2.1.3: a CA key that signs certificates must have keyCertSign when keyUsage is present
    (OpenSSL and GnuTLS refuse such an issuer too)."""
    if usage is not None and not usage.key_cert_sign:
        raise ValueError(f"{printable(cert.subject.rfc4514_string())}: keyUsage does not allow signing certificates")


def _ca_server_purpose(_: verification.Policy, cert: x509.Certificate, usage: x509.ExtendedKeyUsage | None) -> None:
    """A CA whose extendedKeyUsage is present must allow TLS server authentication: OpenSSL's
    purpose check (mbsync, offlineimap: "unsuitable certificate purpose") rejects a chain through a
    sub-CA restricted to, say, emailProtection, and anyExtendedKeyUsage alone does not satisfy it."""
    if usage is not None and ExtendedKeyUsageOID.SERVER_AUTH not in usage:
        raise ValueError(f"{printable(cert.subject.rfc4514_string())}: extendedKeyUsage does not allow TLS servers")


def _build_verifier(anchors: Sequence[x509.Certificate], at: datetime) -> verification.ClientVerifier:
    agnostic = verification.Criticality.AGNOSTIC
    ca_policy = (
        verification.ExtensionPolicy.permit_all()
        .require_present(x509.BasicConstraints, agnostic, None)
        .may_be_present(x509.KeyUsage, agnostic, _ca_key_usage)
        .may_be_present(x509.ExtendedKeyUsage, agnostic, _ca_server_purpose)
        # RFC 5280 §4.2.1.14: inhibitAnyPolicy (critical, as it MUST be) only narrows the policies a
        # path may assert; mailpin, like OpenSSL and GnuTLS without a policy set, asks for none.
        .may_be_present(x509.InhibitAnyPolicy, agnostic, None)
    )
    builder = (
        verification.PolicyBuilder()
        .store(verification.Store(list(anchors)))
        .time(at)
        .extension_policies(ca_policy=ca_policy, ee_policy=verification.ExtensionPolicy.permit_all())
    )
    # The "client" verifier builds and checks the path without a subject name: mailpin checks
    # the host name itself (below) so that chain and name are reported as separate facts.
    return builder.build_client_verifier()


def _path(
    leaf: x509.Certificate,
    rest: Sequence[x509.Certificate],
    anchors: Sequence[x509.Certificate],
    at: datetime,
    any_ca: bool = False,
) -> list[x509.Certificate]:
    if any_ca:
        # GnuTLS (msmtp) ends a chain at any trusted CA certificate — an intermediate alone in
        # tls_trust_file is an anchor (RFC 5280 §6.1.1 (d): the trust anchor need not be a root) —
        # but not at the server's own CA-issued certificate, which is no CA.
        cas = [cert for cert in anchors if cert.subject == cert.issuer or _is_ca(cert)]
        if not cas:
            raise verification.VerificationError("no CA certificate among the trusted ones")
        return list(_build_verifier(cas, at).verify(leaf, list(rest)).chain)
    # OpenSSL (mbsync, offlineimap; no X509_V_FLAG_PARTIAL_CHAIN) ends a chain only at a
    # self-signed trusted certificate; a trusted intermediate, or the server's own CA-issued
    # certificate, merely helps to build the path to one (RFC 5280 §6.1: the anchor is the root).
    roots = [cert for cert in anchors if cert.subject == cert.issuer]
    if not roots:
        raise verification.VerificationError(_NO_ROOT if anchors else "no trust anchors")
    helpers = [cert for cert in anchors if cert.subject != cert.issuer]
    return list(_build_verifier(roots, at).verify(leaf, [*rest, *helpers]).chain)


_NO_ROOT = "no root (self-signed) certificate among the trusted ones, where OpenSSL ends every chain"


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


def _eku_allows_server(leaf: x509.Certificate) -> bool:
    """RFC 5280 §4.2.1.12: when present, the EKU must admit TLS server authentication — by name:
    OpenSSL's sslserver purpose (mbsync, offlineimap) refuses a leaf whose only EKU is
    anyExtendedKeyUsage, and mailpin is never weaker than the tool."""
    try:
        usages = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return True
    return ExtendedKeyUsageOID.SERVER_AUTH in usages


def _ku_allows_signing(leaf: x509.Certificate) -> bool:
    """RFC 8446 §4.4.2.2 (TLS 1.3) and RFC 8422 §5.3 / RFC 5246 §7.4.2 (ECDHE): the server's key
    signs the handshake, so a present keyUsage must assert digitalSignature (RFC 5280 §4.2.1.3).
    GnuTLS (msmtp) refuses anything less ("Key usage violation"); OpenSSL's sslserver purpose
    (mbsync, offlineimap) refuses a leaf with none of digitalSignature, keyEncipherment and
    keyAgreement ("unsuitable certificate purpose"). mailpin's own handshake never uses static RSA
    key exchange, so keyEncipherment alone never covers what the key did."""
    try:
        usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return True
    return usage.digital_signature


def _key_strong_enough(leaf: x509.Certificate) -> bool:
    """OpenSSL's default security level 2 on Debian (mbsync, offlineimap: "EE certificate key too
    weak") asks 112-bit security of the server's key: RSA and DSA of 2048 bits, elliptic curves of
    224. The path builder checks the CAs' keys (RSA from 2048 bits, P-256/384/521), not the leaf's;
    Ed25519 and Ed448 pass, as they do in both libraries."""
    key = leaf.public_key()
    if isinstance(key, ec.EllipticCurvePublicKey):
        return key.curve.key_size >= 224
    if isinstance(key, (rsa.RSAPublicKey, dsa.DSAPublicKey)):
        return key.key_size >= 2048
    return True


def _dns_within(name: str, subtree: str) -> bool:
    """RFC 5280 §4.2.1.10: a DNS name is within a subtree when it is the subtree's name with zero or
    more labels added on the left ("" is every name; ".example.org" only names below it)."""
    name, subtree = name.lower().rstrip("."), subtree.lower().rstrip(".")
    if subtree.startswith("."):
        return name.endswith(subtree)
    return not subtree or name == subtree or name.endswith("." + subtree)


def _cn_outside_constraints(leaf: x509.Certificate, cas: Sequence[x509.Certificate]) -> x509.Certificate | None:
    """The CA whose nameConstraints the leaf's common name breaks, when the CN names the server
    (no DNS name in the subjectAltName: RFC 6125 §6.4.4, `hostname_matches`). The path builder
    checks constraints on the subjectAltName only; GnuTLS (msmtp) applies them to such a CN too."""
    san = _san(leaf)
    if san is not None and san.get_values_for_type(x509.DNSName):
        return None
    names = [str(attr.value) for attr in leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    for ca in cas:
        try:
            constraints = ca.extensions.get_extension_for_class(x509.NameConstraints).value
        except x509.ExtensionNotFound:
            continue
        permitted = [n.value for n in constraints.permitted_subtrees or () if isinstance(n, x509.DNSName)]
        excluded = [n.value for n in constraints.excluded_subtrees or () if isinstance(n, x509.DNSName)]
        for name in names:
            if permitted and not any(_dns_within(name, tree) for tree in permitted):
                return ca
            if any(_dns_within(name, tree) for tree in excluded):
                return ca
    return None


def _unsuitable_leaf(leaf: x509.Certificate, cas: Sequence[x509.Certificate]) -> str | None:
    """Why the leaf itself may not serve TLS under the CAS of its validated path: None when it may."""
    constraining = _cn_outside_constraints(leaf, cas)
    if constraining is not None:
        return f"certificate name outside the name constraints of {printable(constraining.subject.rfc4514_string())}"
    if not _eku_allows_server(leaf):
        return "certificate is not valid for TLS server authentication (extendedKeyUsage)"
    if not _ku_allows_signing(leaf):
        return "certificate key may not sign the TLS handshake (keyUsage lacks digitalSignature)"
    if not _key_strong_enough(leaf):
        return "certificate key too weak (RSA under 2048 bits or an elliptic curve under 224)"
    return None


def validate(
    chain: Sequence[x509.Certificate], name: str, trust: Trust, now: datetime, any_ca: bool = False
) -> ChainVerdict:
    """Is `chain` (leaf first, as served) valid for `name` at `now` under `trust`? `any_ca`: GnuTLS's
    rule (msmtp), where any trusted CA certificate ends a chain; else OpenSSL's, where only a
    self-signed one does (mbsync, offlineimap, and `mailpin probe`: the stricter of the two)."""
    leaf, rest = chain[0], chain[1:]
    reasons: list[str] = []
    if now < leaf.not_valid_before_utc:
        reasons.append("not-yet-valid")
    elif now > leaf.not_valid_after_utc:
        reasons.append("expired")
    error: str | None = None
    unsuitable: str | None = None
    ca_certs: tuple[CertFacts, ...] = ()
    ca_der: tuple[bytes, ...] = ()
    try:
        path = _path(leaf, rest, trust.anchors, now, any_ca)
        unsuitable = _unsuitable_leaf(leaf, path[1:])
        ca_certs = tuple(facts(cert) for cert in path[1:])
        ca_der = tuple(cert.public_bytes(Encoding.DER) for cert in path[1:])
    except verification.VerificationError as exc:
        if reasons:
            # Outside its validity period: would the chain validate within it? Then the
            # finding is "expired"/"not yet valid" alone, not also an untrusted issuer.
            midpoint = leaf.not_valid_before_utc + (leaf.not_valid_after_utc - leaf.not_valid_before_utc) / 2
            try:
                _path(leaf, rest, trust.anchors, midpoint, any_ca)
            except verification.VerificationError:
                reasons.append("untrusted-chain")
        else:
            reasons.append("untrusted-chain")
        error = _explain(exc, leaf, reasons)
    if error is None and unsuitable is not None:
        error = unsuitable
        reasons.append("untrusted-chain")
    hostname_valid = hostname_matches(leaf, name)
    if not hostname_valid:
        reasons.append("hostname-mismatch")
    return ChainVerdict(
        trust=trust.description,
        chain_valid=error is None,
        hostname_valid=hostname_valid,
        error=error,
        ca_certs=ca_certs,
        ca_der=ca_der,
        reasons=tuple(reasons),
    )


def _explain(exc: verification.VerificationError, leaf: x509.Certificate, reasons: list[str]) -> str:
    """The verifier's finding in the words a user acts on."""
    if "expired" in reasons:
        why = f"certificate expired on {leaf.not_valid_after_utc:%Y-%m-%d}"
    elif "not-yet-valid" in reasons:
        why = f"certificate not valid before {leaf.not_valid_before_utc:%Y-%m-%d}"
    else:
        why = ""
    if "untrusted-chain" in reasons:
        if leaf.subject == leaf.issuer:
            untrusted = "self-signed certificate that the trust store does not hold"
        elif "candidates exhausted" in str(exc):
            untrusted = f"issuer {printable(leaf.issuer.rfc4514_string())} does not chain to a trusted CA"
        else:  # keep the verifier's own words, without its object dump
            untrusted = str(exc).split(" (encountered processing", 1)[0]
        why = f"{why}; {untrusted}" if why else untrusted
    return why


# --- host names (RFC 6125 §6.4) -------------------------------------------------------------


def _dns_match(pattern: str, name: str) -> bool:
    pattern, name = pattern.lower().rstrip("."), name.lower().rstrip(".")
    if pattern == name:
        return True
    # RFC 6125 §6.4.3: a wildcard is only the complete left-most label and matches exactly
    # one label; never a public suffix-like "*.com" (require two labels after it).
    if pattern.startswith("*.") and pattern.count(".") >= 2:
        head, _, tail = name.partition(".")
        return bool(head) and tail == pattern[2:]
    return False


def hostname_matches(cert: x509.Certificate, name: str) -> bool:
    san = _san(cert)
    if is_ip_address(name):
        wanted = ipaddress.ip_address(name)
        return san is not None and any(addr == wanted for addr in san.get_values_for_type(x509.IPAddress))
    dns_names = san.get_values_for_type(x509.DNSName) if san is not None else []
    if not dns_names:
        # RFC 6125 §6.4.4: the CN only when there is no DNS-ID (as OpenSSL and GnuTLS do).
        dns_names = [str(attr.value) for attr in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    return any(_dns_match(pattern, name) for pattern in dns_names)
