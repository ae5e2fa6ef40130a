"""The data mailpin reasons about: frozen values, no I/O."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum


class Protocol(str, Enum):
    IMAP = "imap"
    SMTP = "smtp"
    POP3 = "pop3"


class Mode(str, Enum):
    IMPLICIT = "implicit"  # RFC 8314 §3: TLS from the first byte
    STARTTLS = "starttls"  # RFC 3207 / RFC 3501 §6.2.1 / RFC 2595 §4: upgrade in band
    NONE = "none"  # cleartext: what a tool config may ask for, never something mailpin probes


# RFC 8314 §7.3 / IANA: submissions 465, imaps 993, pop3s 995; RFC 6409 submission 587.
DEFAULT_PORTS: dict[tuple[Protocol, Mode], int] = {
    (Protocol.IMAP, Mode.IMPLICIT): 993,
    (Protocol.IMAP, Mode.STARTTLS): 143,
    (Protocol.SMTP, Mode.IMPLICIT): 465,
    (Protocol.SMTP, Mode.STARTTLS): 587,
    (Protocol.POP3, Mode.IMPLICIT): 995,
    (Protocol.POP3, Mode.STARTTLS): 110,
}


@dataclass(frozen=True)
class Endpoint:
    """Where and how to connect: the way the user's tool connects."""

    host: str
    port: int
    protocol: Protocol
    mode: Mode
    servername: str | None = None  # the name to send as SNI and to check; defaults to host

    @property
    def name_to_check(self) -> str:
        return self.servername or self.host

    @property
    def sni(self) -> str | None:
        """RFC 6066 §3: a literal IP address is not permitted in SNI."""
        name = self.name_to_check
        return None if is_ip_address(name) else name

    def __str__(self) -> str:
        return host_port(self.host, self.port)


def host_port(host: str, port: int | None) -> str:
    """HOST:PORT, with an IPv6 address in brackets (RFC 3986 §3.2.2)."""
    shown = f"[{host}]" if ":" in host else host
    return f"{shown}:{port}"


def is_ip_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class CertFacts:
    """What one certificate is, in the forms users compare with other tools."""

    subject: str
    issuer: str
    sans: tuple[str, ...]  # "DNS:name" / "IP:addr"
    serial: str  # hex
    not_before: datetime
    not_after: datetime
    sha256: str  # lower-case hex of the DER (what `openssl x509 -fingerprint -sha256` shows, in hex)
    spki_sha256: str  # base64 of SHA-256 over SubjectPublicKeyInfo (RFC 7469 pin-sha256 form)
    self_issued: bool

    @property
    def sha256_colon(self) -> str:
        """Colon hex, upper case: msmtp's `tls_fingerprint` and openssl's display form."""
        return ":".join(self.sha256[i : i + 2] for i in range(0, len(self.sha256), 2)).upper()


@dataclass(frozen=True)
class ChainVerdict:
    """Does the served chain validate against the trust the tool would use, for this name, now?"""

    trust: str  # where the anchors came from: "system (/etc/ssl/...)", "trust file PATH"
    chain_valid: bool
    hostname_valid: bool
    error: str | None  # why the chain did not validate, in the verifier's words
    ca_certs: tuple[CertFacts, ...] = ()  # CA certificates of the validated chain, leaf excluded
    ca_der: tuple[bytes, ...] = ()  # the same certificates, DER (a trust file for the tool's own session)
    reasons: tuple[str, ...] = ()  # untrusted-chain / expired / not-yet-valid / hostname-mismatch


@dataclass(frozen=True)
class Observation:
    """What one connection really did, as a careful client saw it."""

    endpoint: Endpoint
    tls_version: str
    cipher: str
    leaf: CertFacts
    served_chain: tuple[CertFacts, ...]  # as sent by the server, leaf first
    chain: ChainVerdict
    greeting: str
    capabilities: tuple[str, ...] = field(default=())  # as announced over TLS
    elapsed_ms: float = 0.0
    leaf_der: bytes = b""  # the leaf as served: the tools' own fingerprints are of these bytes


class Tool(str, Enum):
    MSMTP = "msmtp"
    MBSYNC = "mbsync"
    OFFLINEIMAP = "offlineimap"
    MPOP = "mpop"
    FETCHMAIL = "fetchmail"
    GETMAIL = "getmail"  # getmail6: accounts are its rc files (getmail:RCFILE)


@dataclass(frozen=True)
class Account:
    """One account as the tool itself would resolve it from its config (and command line).

    `host`/`port`/`mode` are what the tool will connect to, defaults applied the tool's way.
    `host` is None when the tool does not connect by host name (mbsync `Tunnel`, msmtp account
    without `host`); then `transport` says how it connects instead.
    """

    tool: Tool
    name: str
    protocol: Protocol
    host: str | None
    port: int | None
    mode: Mode
    source: str  # "FILE:LINE" where the account is defined
    servername: str | None = None  # name checked in the certificate when not host (msmtp tls_host_override)
    trust_file: str | None = None  # the account's own CA / certificate file (expanded path)
    system_trust: bool = True  # whether the system store is trusted too (mbsync SystemCertificates)
    certcheck: bool = True  # False when the tool skips certificate checks (msmtp tls_certcheck off)
    fingerprints: tuple[str, ...] = ()  # pins already in the tool's config (msmtp / offlineimap)
    transport: str | None = None  # "tunnel CMD", "socket PATH", "proxy HOST:PORT" when not plain TCP
    opportunistic: bool = False  # STARTTLS only if offered (offlineimap's behaviour): a downgrade risk
    froms: tuple[str, ...] = ()  # msmtp `from` (may hold wildcards): decides the account for -f
    user: str | None = None  # the login as written (msmtp user, mbsync User, offlineimap remoteuser)
    pin_options: tuple[tuple[str, str], ...] = ()  # pin-relevant options as written: (option, value)
    notes: tuple[str, ...] = ()  # things mailpin saw but did not do (e.g. `eval` not executed)
    remote: str | None = None  # the tool's own name for the server side (offlineimap's remote repository)
    tls_priorities: str | None = None  # msmtp `tls_priorities` (a GnuTLS priority string), as written
    # Why the tool refuses to connect with this account at all (msmtp "host not set": a base that other
    # accounts inherit from); nothing to verify, and a run that uses it is refused as the tool refuses it.
    unusable: str | None = None
    # The tool's own TLS settings that mailpin's session must honour when it stands in for the tool's
    # (the pre-flight probe and `mailpin tunnel`; applied in `net.tlsctx`, refused there if it cannot be).
    tls_versions: tuple[str, ...] = ()  # versions the tool's TLS may negotiate (TLS_VERSIONS names); (): its default,
    # ("none",): the config turns every version off
    ciphers: str | None = None  # OpenSSL cipher list the tool sets for TLS <= 1.2 (mbsync CipherString)
    client_cert: str | None = None  # certificate (chain) the tool presents to the server, expanded path
    client_key: str | None = None  # its private key (None: in client_cert, or none presented)
    tls_sources: tuple[tuple[str, str, str], ...] = ()  # (versions/ciphers/client/trust, setting as written, FILE:LINE)

    def tls_source(self, role: str) -> tuple[str, str] | None:
        """(setting as written, FILE:LINE) of the tool's own TLS setting about `role`
        (versions/ciphers/client/trust); None when the config has none."""
        return next(((setting, where) for found, setting, where in self.tls_sources if found == role), None)

    @property
    def key(self) -> str:
        """`TOOL:NAME`, the name mailpin uses for this account everywhere (DESIGN §4)."""
        return f"{self.tool.value}:{self.name}"

    @property
    def trust(self) -> str:
        """Where the tool's trust comes from, in words."""
        if not self.certcheck:
            return "none (certificate checks off)"
        if self.fingerprints:
            return "pinned fingerprint"
        if self.trust_file and self.system_trust:
            return f"system + {self.trust_file}"
        if self.trust_file:
            return self.trust_file
        return "system"


class Level(str, Enum):
    """How much of the certificate a profile pins (DESIGN §3)."""

    LEAF = "leaf"  # the exact certificate: SHA-256 of the DER
    KEY = "key"  # the leaf's public key: SHA-256 of the SPKI (survives renewals that keep the key)
    CA = "ca"  # a valid chain for the name through one of the pinned CA keys
    PKIX = "pkix"  # a valid chain for the name, nothing more (the mode is still pinned)


# Versions as Python's ssl reports them, weakest first: a profile's floor is never lowered.
TLS_VERSIONS = ("SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")


def tls_rank(version: str) -> int:
    """Position in TLS_VERSIONS; unknown names rank lowest (they can never satisfy a floor)."""
    return TLS_VERSIONS.index(version) if version in TLS_VERSIONS else -1


@dataclass(frozen=True)
class Profile:
    """What was established when the account was pinned: RFC 8314 §5.2's remembered minimum."""

    account: str  # TOOL:NAME
    protocol: Protocol
    host: str
    port: int
    mode: Mode
    tls_version: str  # the floor: the version negotiated at pin time
    level: Level
    cert_sha256: tuple[str, ...]  # hex SHA-256 of each accepted leaf certificate
    spki_sha256: tuple[str, ...]  # base64 SHA-256 of each accepted leaf SPKI
    ca_spki_sha256: tuple[str, ...]  # base64 SHA-256 of the CA keys of the validated chain at pin time
    subject: str  # the most recently accepted leaf, for review
    issuer: str
    not_before: datetime
    not_after: datetime
    pinned_at: datetime
    trust: str  # the anchors the chain was judged against, in words
    servername: str | None = None
    accepted: tuple[str, ...] = ()  # findings the user confirmed at pin time (untrusted-chain, hostname-mismatch)
    certcheck: bool = True  # the tool's config checked certificates when pinned (turning it off is a downgrade)

    @property
    def endpoint(self) -> Endpoint:
        return Endpoint(self.host, self.port, self.protocol, self.mode, self.servername)


class Status(str, Enum):
    VERIFIED = "verified"  # the live connection meets the profile
    PINNED = "pinned"  # no profile yet: pinned now, on first use, because the chain validates
    UNPINNED = "unpinned"  # no profile; would be pinned on first use (check only)
    BLOCKED = "blocked"  # does not meet the profile, or an attack: the tool must not run
    UNVERIFIED = "unverified"  # could not verify (unreachable, timeout): the tool must not run
    SKIPPED = "skipped"  # nothing mailpin can verify (the tool connects through a tunnel or socket)
    CONFIG_ERROR = "config-error"  # the account's own files cannot be used (an unreadable trust file)


@dataclass(frozen=True)
class Finding:
    reason: str  # a DESIGN §4 reason code
    text: str  # what it means here, for people


@dataclass(frozen=True)
class Verdict:
    """The decision for one account, with the reasons in the order they matter."""

    account: str
    status: Status
    findings: tuple[Finding, ...] = ()
    warnings: tuple[str, ...] = ()  # things to know that do not block (a certificate expiring soon)

    @property
    def reasons(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(finding.reason for finding in self.findings))

    @property
    def detail(self) -> str:
        return "; ".join(finding.text for finding in self.findings)

    @property
    def why(self) -> str:
        """The findings in words, or the warnings when there is none (a config error, a skip)."""
        return self.detail or "; ".join(self.warnings)

    @property
    def why_and_reasons(self) -> str:
        """`why`, then the reason codes in brackets: what a block line says."""
        return f"{self.why} [{', '.join(self.reasons)}]" if self.reasons else self.why
