"""The relay's local identity: the certificate msmtp meets on mailpin's private socket.

Made once — an ECDSA P-256 key and a self-signed certificate, kept together in
`$XDG_STATE_HOME/mailpin/relay.pem` (mode 0600) — and never replaced: msmtp is told its exact
fingerprint on every run (`--tls-fingerprint`), and with a fingerprint msmtp checks nothing else
(mtls-gnutls.c: no date, no name), so it holds at any date. It protects nothing on the network (the
socket lives in a directory only the user can enter); it is what lets msmtp keep its own TLS-only
behaviour — choosing SASL mechanisms, sending a password only over TLS — on the relayed session.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

from mailpin.errors import ConfigError
from mailpin.state.durable import foreign, make_private_dirs, sync_dir

NAME = "relay.pem"


@dataclass(frozen=True)
class LocalIdentity:
    path: Path  # key and certificate, PEM
    fingerprint: str  # SHA-256 of the certificate's DER, colon hex: msmtp's --tls-fingerprint

    def server_context(self) -> ssl.SSLContext:
        from mailpin.net.tlsctx import relay_server_context

        return relay_server_context(self.path)


def local_identity(state_dir: Path) -> LocalIdentity:
    """The identity in `state_dir` (mailpin's state directory), made on first use."""
    path = state_dir / NAME
    problem = foreign(path, str(path))
    if problem is not None:
        raise ConfigError(str(path), None, problem)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        data = _create(path)
    except OSError as exc:
        raise ConfigError(str(path), None, f"cannot read the relay's local certificate: {exc.strerror}") from None
    start = data.find(b"-----BEGIN CERTIFICATE-----")
    try:
        der = ssl.PEM_cert_to_DER_cert(data[start:].decode("ascii"))
    except (ValueError, UnicodeDecodeError):
        raise ConfigError(str(path), None, f"not a certificate mailpin made: remove {path}; it is made again") from None
    digest = hashlib.sha256(der).hexdigest().upper()
    return LocalIdentity(path, ":".join(digest[i : i + 2] for i in range(0, len(digest), 2)))


def _create(path: Path) -> bytes:
    """Write a new identity unless another run has just written one (a link never replaces a file):
    every run uses the file that is there."""
    make_private_dirs(path.parent)
    temp = path.with_name(f".{NAME}.{os.urandom(6).hex()}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(_make())
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(temp, path)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(temp)
    sync_dir(path.parent)
    return path.read_bytes()


def _make() -> bytes:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mailpin relay (this machine only)")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        # RFC 5280 §4.1.2.5: 99991231235959Z, "no well-defined expiration date" — msmtp checks only
        # the fingerprint, and the identity is never renewed.
        .not_valid_after(datetime.datetime(9999, 12, 31, 23, 59, 59, tzinfo=datetime.timezone.utc))
        .sign(key, hashes.SHA256())
    )
    pem_key = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return pem_key + certificate.public_bytes(serialization.Encoding.PEM)
