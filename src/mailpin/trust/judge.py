"""Judging the chain a server served, and remembering the chains already judged valid.

`certs.validate` needs `cryptography`, whose import alone is about a third of what mailpin costs
in front of every send and sync. Its verdict is a pure function of the served certificates (DER),
the name checked, the trust anchors and the time — and the time enters only through each
certificate's validity period. So a chain judged valid — for this name, under these exact anchor
bytes, by this mailpin and this cryptography — is remembered with the stretch of time around the
judgement in which no served certificate and no anchor enters or leaves its validity period: the
path builder sees the same candidates there, and gives the same path. Within that stretch the
same inputs get the same verdict back without cryptography; outside it, or on any other input,
the chain is judged afresh.

Only a verdict without any finding is remembered: a chain that is wrong in any way is judged in
full every time. The memo lives in the user's cache directory; it is used only when that directory
and its entries are the user's own and writable by nobody else (as the pin store is), entries are
written atomically, and one that cannot be read, is not a small regular file, or makes no sense is
a miss — never an error, never a wait. One that cannot be written costs only time.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import os
import stat
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta, timezone
from functools import cache
from pathlib import Path
from threading import Lock

from mailpin import __version__
from mailpin.model import CertFacts, ChainVerdict
from mailpin.state.durable import make_private_dirs, write_atomically
from mailpin.trust.anchors import TrustSource

TYPE_CHECKING = False  # typing's own, without importing typing on every run (STYLE §10)
if TYPE_CHECKING:
    from typing import Any

    from mailpin.trust.certs import Trust

# The memo's own format; the rules themselves are keyed by the source of certs.py and this module.
_RULES = b"mailpin-chain-memo 2"
_KEEP = 256  # memo files kept; the oldest go first
_MAX_ENTRY = 256 * 1024  # bytes: a served chain's facts and its path's DER fit many times over
_MARGIN = timedelta(seconds=1)  # cryptography's verifier counts whole seconds
_ALWAYS = (datetime.min.replace(tzinfo=timezone.utc), datetime.max.replace(tzinfo=timezone.utc))

Judged = tuple[tuple[CertFacts, ...], ChainVerdict]  # the served chain's facts (leaf first), the verdict


class Judge:
    """Judges the chains served under one trust source; `memo`: the directory that remembers valid
    ones (None: judge every chain in full, as `mailpin probe` does); `any_ca`: the tool's TLS library
    ends a chain at any trusted CA (GnuTLS, msmtp), not only at a self-signed one (OpenSSL)."""

    def __init__(self, source: TrustSource, memo: Path | None, any_ca: bool = False) -> None:
        self.source = source
        self.memo = memo
        self.any_ca = any_ca  # GnuTLS's anchors (msmtp): any trusted CA ends a chain (certs.validate)
        self._fingerprint: bytes | None = None
        self._trust: Trust | None = None  # parsed on the first chain that needs cryptography
        self._anchors: frozenset[str] | None = None
        self._lock = Lock()

    def load(self) -> Trust:
        """The anchors, parsed (a trust file without a certificate: ConfigError)."""
        from mailpin.trust import certs

        with self._lock:
            if self._trust is None:
                self._trust = certs.parse_trust(self.source)
            return self._trust

    def __call__(self, chain_der: Sequence[bytes], name: str, now: datetime) -> Judged:
        """Raises ValueError for a certificate that cannot be parsed."""
        key = self._key(chain_der, name) if self.memo is not None else None
        if key is not None:
            remembered = self._recall(key, chain_der, now)
            if remembered is not None:
                return remembered
        from mailpin.trust import certs

        trust = self.load()
        chain = certs.parse_chain(chain_der)
        served = tuple(certs.facts(cert) for cert in chain)
        verdict = certs.validate(chain, name, trust, now, self.any_ca)
        if key is not None and verdict.chain_valid and verdict.hostname_valid and not verdict.reasons:
            # Every certificate the path builder could pick from, not only the path it picked: a
            # candidate that becomes valid later could make it pick another path (other CA pins).
            candidates = (*chain, *trust.anchors)
            window = steady(((c.not_valid_before_utc, c.not_valid_after_utc) for c in candidates), now)
            if window is not None:
                self._remember(key, served, verdict, window)
        return served, verdict

    # -- the memo -------------------------------------------------------------------------------

    def _key(self, chain_der: Sequence[bytes], name: str) -> str:
        if self._fingerprint is None:
            self._fingerprint = self.source.fingerprint.encode()
        digest = hashlib.sha256()
        rules = _RULES + (b" any-ca" if self.any_ca else b"")
        for part in (rules, _judges(), name.encode(), self._fingerprint, *chain_der):
            digest.update(len(part).to_bytes(8, "big"))
            digest.update(part)
        return digest.hexdigest()

    def _recall(self, key: str, chain_der: Sequence[bytes], now: datetime) -> Judged | None:
        assert self.memo is not None
        raw = _read_own(self.memo, f"{key}.json")
        if raw is None:
            return None
        try:
            entry = json.loads(raw)
            if entry["key"] != key:
                return None
            if not datetime.fromisoformat(entry["valid_from"]) <= now <= datetime.fromisoformat(entry["valid_until"]):
                return None  # a certificate may have entered or left its validity period: judge in full
            served = tuple(_facts(item) for item in entry["served"])
            path = tuple(_facts(item) for item in entry["path"])
            path_der = tuple(base64.b64decode(item, validate=True) for item in entry["path_der"])
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
            return None
        # The facts must be those of these very certificates, and the path must end at an anchor
        # (an empty path: the leaf is one itself, a self-signed certificate in the trust file).
        if [c.sha256 for c in served] != [_sha256(der) for der in chain_der]:
            return None
        if [c.sha256 for c in path] != [_sha256(der) for der in path_der]:
            return None
        if _sha256(path_der[-1] if path_der else chain_der[0]) not in self._anchor_hashes():
            return None
        verdict = ChainVerdict(self.source.description, True, True, None, ca_certs=path, ca_der=path_der)
        return served, verdict

    def _anchor_hashes(self) -> frozenset[str]:
        """SHA-256 of every anchor's DER, read from the PEM text (no cryptography needed)."""
        if self._anchors is None:
            self._anchors = frozenset(_sha256(der) for pem in self.source.files for der in _pem_ders(pem.data))
        return self._anchors

    def _remember(
        self, key: str, served: tuple[CertFacts, ...], verdict: ChainVerdict, window: tuple[datetime, datetime]
    ) -> None:
        assert self.memo is not None
        entry = {
            "key": key,
            "valid_from": window[0].isoformat(),
            "valid_until": window[1].isoformat(),
            "served": [_plain(c) for c in served],
            "path": [_plain(c) for c in verdict.ca_certs],
            "path_der": [base64.b64encode(der).decode("ascii") for der in verdict.ca_der],
        }
        with contextlib.suppress(OSError):  # a cache that cannot be written costs time, nothing else
            make_private_dirs(self.memo)
            if _own_directory(self.memo):
                write_atomically(self.memo / f"{key}.json", json.dumps(entry).encode())
                self._prune()

    def _prune(self) -> None:
        assert self.memo is not None
        entries = [entry for entry in os.scandir(self.memo) if entry.name.endswith(".json")]
        if len(entries) <= _KEEP:
            return
        entries.sort(key=lambda entry: entry.stat().st_mtime)
        for entry in entries[: len(entries) - _KEEP]:
            with contextlib.suppress(OSError):
                os.unlink(entry.path)


def steady(periods: Iterable[tuple[datetime, datetime]], now: datetime) -> tuple[datetime, datetime] | None:
    """The stretch of time around `now` in which none of these validity periods (not_before,
    not_after) begins or ends, less a second at each end; None when one does within a second of now.
    Inside it every certificate is valid, or not, exactly as at `now` — to the verifier too."""
    edges = [edge for period in periods for edge in period]
    before, after = [e for e in edges if e <= now], [e for e in edges if e > now]
    earliest = max(before) + _MARGIN if before else _ALWAYS[0]
    latest = min(after) - _MARGIN if after else _ALWAYS[1]
    return (earliest, latest) if earliest <= now <= latest else None


def _own_directory(directory: Path) -> bool:
    """The user's own directory, not a symlink, writable by nobody else: or the memo is not used."""
    try:
        info = os.lstat(directory)
    except OSError:
        return False
    return stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid() and not info.st_mode & 0o022


def _read_own(directory: Path, name: str) -> bytes | None:
    """A memo entry: a small regular file of the user's, writable by nobody else, in such a directory.
    Never follows a symlink, never waits on a FIFO, never reads without bound."""
    if not _own_directory(directory):
        return None
    try:
        fd = os.open(directory / name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o022:
            return None
        if info.st_size > _MAX_ENTRY:
            return None
        return os.read(fd, _MAX_ENTRY + 1)
    except OSError:
        return None
    finally:
        os.close(fd)


def _sha256(der: bytes) -> str:
    return hashlib.sha256(der).hexdigest()


def _pem_ders(data: bytes) -> list[bytes]:
    """The DER inside each PEM certificate block (RFC 7468 §2); a block that does not decode is skipped."""
    ders = []
    for block in data.split(b"-----BEGIN CERTIFICATE-----")[1:]:
        body, end, _ = block.partition(b"-----END CERTIFICATE-----")
        if end:
            with contextlib.suppress(binascii.Error):
                ders.append(binascii.a2b_base64(body))  # line breaks and other whitespace are skipped
    return ders


@cache
def _judges() -> bytes:
    """Who judged: this mailpin (its version, and the source of the code that judges), and this
    cryptography (an upgrade may judge differently)."""
    from importlib.util import find_spec

    parts = [__version__.encode()]
    here = Path(__file__).parent
    spec = find_spec("cryptography")
    about = Path(spec.origin).parent / "__about__.py" if spec is not None and spec.origin else None
    for path in (here / "certs.py", here / "judge.py", about):
        data = b""
        if path is not None:
            with contextlib.suppress(OSError):
                data = path.read_bytes()
        parts.append(hashlib.sha256(data).digest())
    return b"\0".join(parts)


def _plain(cert: CertFacts) -> dict[str, Any]:
    return {
        "subject": cert.subject,
        "issuer": cert.issuer,
        "sans": list(cert.sans),
        "serial": cert.serial,
        "not_before": cert.not_before.isoformat(),
        "not_after": cert.not_after.isoformat(),
        "sha256": cert.sha256,
        "spki_sha256": cert.spki_sha256,
        "self_issued": cert.self_issued,
    }


def _facts(item: dict[str, Any]) -> CertFacts:
    facts = CertFacts(
        subject=item["subject"],
        issuer=item["issuer"],
        sans=tuple(item["sans"]),
        serial=item["serial"],
        not_before=datetime.fromisoformat(item["not_before"]),
        not_after=datetime.fromisoformat(item["not_after"]),
        sha256=item["sha256"],
        spki_sha256=item["spki_sha256"],
        self_issued=item["self_issued"],
    )
    texts = (facts.subject, facts.issuer, facts.serial, facts.sha256, facts.spki_sha256, *facts.sans)
    if not all(isinstance(text, str) for text in texts) or not isinstance(facts.self_issued, bool):
        raise TypeError("not a memo entry")
    if facts.not_before.tzinfo is None or facts.not_after.tzinfo is None:
        raise TypeError("not a memo entry")
    return facts
