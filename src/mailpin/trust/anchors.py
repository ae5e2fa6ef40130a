"""Where an account's trust anchors come from — located and read, not parsed.

The files are the ones an OpenSSL-based tool (msmtp, mbsync, offlineimap) would read: an
explicit trust file, else `SSL_CERT_FILE` / `SSL_CERT_DIR`, else the system store. Reading their
bytes is cheap; parsing them needs `cryptography` (`certs.parse_trust`), which a verification
that `mailpin.trust.judge` has already made does not. The fingerprint names exactly these bytes, so a
trust file edited in place, or a CA added to the system store, is a different trust.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from mailpin.errors import ConfigError


@dataclass(frozen=True)
class PemFile:
    path: str
    data: bytes
    strict: bool  # a named trust file must hold certificates; a directory's other files are skipped


@dataclass(frozen=True)
class TrustSource:
    description: str  # "system (/etc/ssl/...)", "trust file PATH", "… + …"
    files: tuple[PemFile, ...]  # in the order the anchors are taken

    @property
    def fingerprint(self) -> str:
        digest = hashlib.sha256()
        for part in (self.description.encode(), *(p for f in self.files for p in (f.path.encode(), f.data))):
            digest.update(len(part).to_bytes(8, "big"))
            digest.update(part)
        return digest.hexdigest()


def _read(path: Path) -> PemFile:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(str(path), None, f"cannot read trust file: {exc.strerror or exc}") from None
    if b"-----BEGIN CERTIFICATE-----" not in data:  # before any connection; a damaged block: when parsed
        raise ConfigError(str(path), None, "no PEM certificates in this trust file")
    return PemFile(str(path), data, strict=True)


_HASHED_NAME = re.compile(r"[0-9a-f]{8}\.\d+")  # c_rehash: HASH.N links to the certificates


def _read_dirs(value: str) -> tuple[PemFile, ...]:
    """Like OpenSSL's SSL_CERT_DIR: a list of directories (":"-separated); missing ones are skipped,
    and so are unreadable entries (such directories hold other files too; OpenSSL skips them alike)."""
    found = []
    for directory in filter(None, value.split(os.pathsep)):
        try:
            entries = sorted(Path(directory).iterdir())
        except OSError:
            continue
        for entry in entries:
            if entry.suffix in (".pem", ".crt") or _HASHED_NAME.fullmatch(entry.name):
                try:
                    found.append(PemFile(str(entry), entry.read_bytes(), strict=False))
                except OSError:
                    continue
    return tuple(found)


def locate(trust_file: str | None, environ: Mapping[str, str]) -> TrustSource:
    """The anchors' files, in the order OpenSSL-based tools pick them: an explicit trust file, then
    `SSL_CERT_FILE` / `SSL_CERT_DIR`, then the system store."""
    import ssl  # only for the system store's location

    if trust_file:
        path = Path(os.path.expanduser(trust_file))
        return TrustSource(f"trust file {path}", (_read(path),))
    # OpenSSL uses SSL_CERT_FILE and SSL_CERT_DIR together when both are set.
    cert_file, cert_dir = environ.get("SSL_CERT_FILE"), environ.get("SSL_CERT_DIR")
    if cert_file or cert_dir:
        files: tuple[PemFile, ...] = (_read(Path(cert_file)),) if cert_file else ()
        files += _read_dirs(cert_dir) if cert_dir else ()
        described = " + ".join(
            f"{name} {value}" for name, value in (("SSL_CERT_FILE", cert_file), ("SSL_CERT_DIR", cert_dir)) if value
        )
        return TrustSource(described, files)
    paths = ssl.get_default_verify_paths()
    for candidate in (paths.cafile, paths.openssl_cafile):
        if candidate and Path(candidate).is_file():
            return TrustSource(f"system ({candidate})", (_read(Path(candidate)),))
    for candidate in (paths.capath, paths.openssl_capath):
        if candidate and Path(candidate).is_dir():
            return TrustSource(f"system ({candidate})", _read_dirs(candidate))
    return TrustSource("system (no CA store found)", ())


def locate_for(trust_file: str | None, system: bool, environ: Mapping[str, str]) -> TrustSource:
    """The anchors of one account: its own trust file, and the system store too when the tool
    adds it (mbsync's `CertificateFile` with `SystemCertificates yes`, its default)."""
    if trust_file and system:
        own, store = locate(trust_file, environ), locate(None, environ)
        return TrustSource(f"{store.description} + {own.description}", own.files + store.files)
    return locate(trust_file, environ)
