"""Judging the chain a server served, and remembering the chains already judged valid.

`certs.validate` needs `cryptography`, whose import alone is about a third of what mailpin costs
in front of every send and sync. Its verdict is a pure function of the served certificates (DER),
the name checked, the trust anchors and the time. So a chain judged valid — for this name, under
these exact anchor bytes, by this mailpin and this cryptography — is remembered, together with
the window in which every certificate of its validated path is within its validity period.
Within that window the same inputs get the same verdict back without cryptography; outside it,
or on any other input, the chain is judged afresh.

Only a verdict without any finding is remembered: a chain that is wrong in any way is judged in
full every time. The memo lives in the user's cache directory (mode 0700, written atomically),
trusted as much as the pin store beside it; one that cannot be read or makes no sense is a miss,
never an error, and one that cannot be written costs only time.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
from collections.abc import Sequence
from datetime import datetime
from functools import cache
from pathlib import Path
from threading import Lock
from typing import TYPE_CHECKING, Any

from mailpin import __version__
from mailpin.anchors import TrustSource
from mailpin.durable import make_private_dirs, write_atomically
from mailpin.model import CertFacts, ChainVerdict

if TYPE_CHECKING:
    from mailpin.certs import Trust

# Bump with any change to what certs.validate or certs.facts decide: earlier memos must not outlive it.
_RULES = b"mailpin-chain-memo 1"
_KEEP = 256  # memo files kept; the oldest go first

Judged = tuple[tuple[CertFacts, ...], ChainVerdict]  # the served chain's facts (leaf first), the verdict


class Judge:
    """Judges the chains served under one trust source; `memo`: the directory that remembers valid
    ones (None: judge every chain in full, as `mailpin probe` does)."""

    def __init__(self, source: TrustSource, memo: Path | None) -> None:
        self.source = source
        self.memo = memo
        self._fingerprint: bytes | None = None
        self._trust: Trust | None = None  # parsed on the first chain that needs cryptography
        self._lock = Lock()

    def load(self) -> Trust:
        """The anchors, parsed (a trust file without a certificate: ConfigError)."""
        from mailpin import certs

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
        from mailpin import certs

        trust = self.load()
        chain = certs.parse_chain(chain_der)
        served = tuple(certs.facts(cert) for cert in chain)
        verdict = certs.validate(chain, name, trust, now)
        if key is not None and verdict.chain_valid and verdict.hostname_valid and not verdict.reasons:
            self._remember(key, served, verdict, now)
        return served, verdict

    # -- the memo -------------------------------------------------------------------------------

    def _key(self, chain_der: Sequence[bytes], name: str) -> str:
        if self._fingerprint is None:
            self._fingerprint = self.source.fingerprint.encode()
        digest = hashlib.sha256()
        for part in (_RULES, _judges(), name.encode(), self._fingerprint, *chain_der):
            digest.update(len(part).to_bytes(8, "big"))
            digest.update(part)
        return digest.hexdigest()

    def _recall(self, key: str, chain_der: Sequence[bytes], now: datetime) -> Judged | None:
        assert self.memo is not None
        try:
            entry = json.loads((self.memo / f"{key}.json").read_bytes())
            if entry["key"] != key:
                return None
            if not datetime.fromisoformat(entry["valid_from"]) <= now <= datetime.fromisoformat(entry["valid_until"]):
                return None  # a certificate of the path is outside its validity period: judge it in full
            served = tuple(_facts(item) for item in entry["served"])
            path = tuple(_facts(item) for item in entry["path"])
            path_der = tuple(base64.b64decode(item, validate=True) for item in entry["path_der"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError):
            return None
        if [c.sha256 for c in served] != [hashlib.sha256(der).hexdigest() for der in chain_der]:
            return None  # not the facts of these very certificates
        if len(path) != len(path_der):
            return None
        verdict = ChainVerdict(self.source.description, True, True, None, ca_certs=path, ca_der=path_der)
        return served, verdict

    def _remember(self, key: str, served: tuple[CertFacts, ...], verdict: ChainVerdict, now: datetime) -> None:
        assert self.memo is not None
        path = (served[0], *verdict.ca_certs)
        valid_from, valid_until = max(c.not_before for c in path), min(c.not_after for c in path)
        if not valid_from <= now <= valid_until:
            return  # valid now by the verifier, but not by every date in its path: never a shortcut
        entry = {
            "key": key,
            "valid_from": valid_from.isoformat(),
            "valid_until": valid_until.isoformat(),
            "served": [_plain(c) for c in served],
            "path": [_plain(c) for c in verdict.ca_certs],
            "path_der": [base64.b64encode(der).decode("ascii") for der in verdict.ca_der],
        }
        with contextlib.suppress(OSError):  # a cache that cannot be written costs time, nothing else
            make_private_dirs(self.memo)
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


@cache
def _judges() -> bytes:
    """Who judged: this mailpin, and this cryptography (an upgrade may judge differently)."""
    from importlib.util import find_spec

    spec = find_spec("cryptography")
    about = b""
    if spec is not None and spec.origin:
        with contextlib.suppress(OSError):
            about = (Path(spec.origin).parent / "__about__.py").read_bytes()
    return __version__.encode() + b"\0" + about


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
