"""The attack-scenario matrix of docs/SECURITY.md (issue 9): one frozen :class:`Scenario` per row.

Each scenario names a protocol and mode (``smtp/starttls/stripped``), a class from the STARTTLS
literature (anchors.md §1.13) or of hostile-server abuse, how the server behaves *after* the
account was pinned against the benign behaviour of the same server on the same port, and the
outcome DESIGN §3/§4 requires — written here by hand, never taken from a run.

Servers: the real ones (aiosmtpd for SMTP, Dovecot for IMAP and POP3) play what they can —
certificate variants, TLS version caps, renewals; the hostile rig (tests/lab/hostile.py) plays the
dialogue attacks, stalls and abuse.

Targets: SMTP rows run against ``mailpin check`` and ``mailpin run msmtp``; IMAP rows against
``mailpin check``, ``mailpin run mbsync`` and ``mailpin run offlineimap``; POP3 rows against
``mailpin probe``, whose contract is to *report* (a certificate finding is exit 0 with its reason
listed), and ``mailpin run mpop``, ``mailpin run fetchmail`` and, for Implicit TLS, ``mailpin run
getmail`` (getmail has no STARTTLS), which block what the probe reports (`Scenario.tools`).
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field

from tests.lab import hostile
from tests.lab.hostile import Script

CHECK, MSMTP, MBSYNC, OFFLINEIMAP, PROBE = "check", "run msmtp", "run mbsync", "run offlineimap", "probe"
MPOP, FETCHMAIL, GETMAIL = "run mpop", "run fetchmail", "run getmail"
ALL_TARGETS = (CHECK, MSMTP, MBSYNC, OFFLINEIMAP, PROBE, MPOP, FETCHMAIL, GETMAIL)
TARGETS = {"smtp": (CHECK, MSMTP), "imap": (CHECK, MBSYNC, OFFLINEIMAP), "pop3": (PROBE, MPOP, FETCHMAIL)}
CLASSES = (
    "stripping", "refusal", "preauth", "injection", "tampering", "ui-spoofing", "stall", "mode-swap",
    "downgrade", "certificate", "hostile", "benign",
)  # fmt: skip

# The UI-spoofing text: a server [ALERT] in plaintext that a client must never show as if it were true.
ALERT = "Your password has expired: re-enter it at http://hostile.test/login"
TLS12 = ssl.TLSVersion.TLSv1_2


@dataclass(frozen=True)
class Expected:
    """Exit status and reason codes (DESIGN §4), in the order mailpin reports them."""

    status: int
    reasons: tuple[str, ...] = ()

    def __str__(self) -> str:
        return " ".join([str(self.status), ", ".join(self.reasons)]).strip()

    @property
    def clean(self) -> bool:
        """Nothing to report: a benign control (or an attack neutralised without a block)."""
        return self.status == 0 and not self.reasons


def blocked(*reasons: str) -> Expected:
    return Expected(69, reasons)


def unverified(reason: str) -> Expected:
    return Expected(75, (reason,))


def reported(*reasons: str) -> Expected:
    """`mailpin probe` pins nothing: a certificate finding is a fact it reports, with exit 0."""
    return Expected(0, reasons)


VERIFIED = Expected(0)


@dataclass(frozen=True)
class Server:
    """The server's behaviour after the pin (the pin is taken from the benign behaviour first)."""

    real: bool = False  # played by the real server (aiosmtpd / Dovecot), else by the hostile rig
    script: Script | None = None  # rig: the dialogue after the pin (None: the benign one)
    variant: str = "good"  # certificate variant served after the pin (tests/lab/pki.py)
    tls_max: ssl.TLSVersion | None = None  # the TLS stack after the pin negotiates at most this
    pin_tls_max: ssl.TLSVersion | None = None  # ... and at pin time (a later TLS 1.3 is an upgrade)
    tls_on_connect: bool | None = None  # rig: TLS on connect after the pin (None: as the mode says)

    @property
    def played_by(self) -> str:
        return "real server" if self.real else "hostile rig"


@dataclass(frozen=True)
class Scenario:
    id: str  # PROTOCOL/MODE/NAME
    attack: str  # one of CLASSES
    description: str  # one line
    server: Server
    expected: Expected
    level: str | None = None  # pin level asked of `mailpin init` (None: mailpin's choice, ca here)
    stall: bool = False  # the server stalls: mailpin's `timeout` is set to STALL_TIMEOUT
    targets: tuple[str, ...] = field(default=())
    tools: Expected | None = None  # what `mailpin run TOOL` must show when it differs from the probe's report

    def expected_for(self, target: str) -> Expected:
        return self.tools if self.tools is not None and target not in (CHECK, PROBE) else self.expected

    def __post_init__(self) -> None:
        protocol, mode, _ = self.id.split("/")
        assert protocol in TARGETS and mode in ("implicit", "starttls"), self.id
        assert self.attack in CLASSES, self.attack
        if not self.targets:
            # getmail has no STARTTLS: it runs the POP3 rows of Implicit TLS only
            extra = (GETMAIL,) if (protocol, mode) == ("pop3", "implicit") else ()
            object.__setattr__(self, "targets", (*TARGETS[protocol], *extra))

    @property
    def protocol(self) -> str:
        return self.id.split("/")[0]

    @property
    def mode(self) -> str:
        return self.id.split("/")[1]


STALL_TIMEOUT = 1.0  # mailpin's `timeout` (seconds) in the stall scenarios


def _rig(script: Script, **options: object) -> Server:
    return Server(script=script, **options)  # type: ignore[arg-type]


def _real(variant: str = "good", **options: object) -> Server:
    return Server(real=True, variant=variant, **options)  # type: ignore[arg-type]


# (variant, what it is, reasons at level ca: the chain validates against the account's trust file)
_CERTIFICATES = (
    ("foreign-ca", "a valid-looking chain from a CA the account does not trust", ("untrusted-chain", "ca-changed")),
    ("self-signed", "a self-signed certificate for the right name", ("untrusted-chain", "ca-changed")),
    ("expired", "the pinned key, from the pinned CA, in an expired certificate", ("expired",)),
    ("not-yet-valid", "the pinned key, from the pinned CA, valid only from next month", ("not-yet-valid",)),
    ("wrong-name", "the pinned key and CA, in a certificate for wrong.example", ("hostname-mismatch",)),
)
_SMTP_INJECT = b"220 2.0.0 Ready to start TLS\r\n250 injected\r\n"
_SMTP_FAKE_EHLO = b"220 2.0.0 Ready to start TLS\r\n250-hostile.test\r\n250 AUTH PLAIN LOGIN\r\n"
_IMAP_OK = b"{tag} OK Begin TLS negotiation now\r\n"
# Verification reads an Implicit TLS greeting but asks for no capabilities (one round trip less):
# the bound on what it reads is shown on the greeting itself.
_HUGE_CAPABILITY_GREETING = (
    b"* OK [CAPABILITY IMAP4rev1 " + b" ".join(b"X-CAP-%05d" % n for n in range(5000)) + b"] ready\r\n"
)
_MULTILINE = b"220-hostile.test ESMTP\r\n220-No UCE, no relaying\r\n220 ready\r\n"


def _implicit_common(im: str) -> list[Scenario]:
    """What every Implicit TLS endpoint of a wrapped tool (SMTP, IMAP) meets alike: a reset, a silent
    server after the handshake, and the renewals a pin must survive."""
    return [
        Scenario(f"{im}/reset-mid-handshake", "hostile", "a TCP RST on the ClientHello",
                 _rig(hostile.reset_on_hello, tls_on_connect=False), unverified("unreachable")),
        Scenario(f"{im}/silent-after-handshake", "stall", "TLS completes, no greeting ever comes",
                 _rig(hostile.silent), unverified("timeout"), stall=True),
        Scenario(f"{im}/renewed-same-key-level-key", "benign", "a renewed certificate with the pinned key (level key)",
                 _real("renewed"), VERIFIED, level="key"),
        Scenario(f"{im}/renewed-same-key-level-ca", "benign", "a renewed certificate with the pinned key (level ca)",
                 _real("renewed"), VERIFIED, level="ca"),
        Scenario(f"{im}/new-key-same-ca", "benign", "a new key from the pinned CA (level ca)",
                 _real("new-key"), VERIFIED, level="ca"),
    ]  # fmt: skip


def _certificates(prefix: str) -> list[Scenario]:
    return [
        Scenario(f"{prefix}/{variant}", "certificate", what, _real(variant), blocked(*reasons))
        for variant, what, reasons in _CERTIFICATES
    ]


def _hostile_starttls(proto: str, prefix: str, endless: bytes, drip: bytes) -> list[Scenario]:
    return [
        Scenario(f"{prefix}/endless-line", "hostile", "a greeting line that never ends",
                 _rig(hostile.endless_line(endless)), blocked("protocol-error")),
        Scenario(f"{prefix}/one-byte-a-second", "hostile", "the greeting dripped one byte a second, forever",
                 _rig(hostile.drip(drip)), unverified("timeout"), stall=True),
        Scenario(f"{prefix}/huge-capabilities", "hostile", "5000 extra capabilities in the pre-TLS answer",
                 _rig(hostile.many_capabilities(proto, 5000)), blocked("protocol-error")),
        Scenario(f"{prefix}/reset-mid-handshake", "hostile", "STARTTLS accepted, then a TCP RST on the ClientHello",
                 _rig(hostile.reset_after_starttls(proto)), unverified("unreachable")),
        Scenario(f"{prefix}/accepted-then-silent", "stall", "STARTTLS accepted, then no handshake, no close",
                 _rig(hostile.accept_then_silent(proto)), unverified("timeout"), stall=True),
    ]  # fmt: skip


def _smtp() -> list[Scenario]:
    st, im = "smtp/starttls", "smtp/implicit"
    refusals = [(421, "4.7.0 Try again later"), (454, "4.7.0 TLS not available now"), (501, "5.5.4 Syntax error"),
                (502, "5.5.1 Command not implemented"), (554, "5.7.3 Unable to initialize TLS")]  # fmt: skip
    return [
        Scenario(f"{st}/stripped", "stripping", "STARTTLS no longer in the EHLO reply; AUTH offered in plaintext",
                 _rig(hostile.stripped("smtp")), blocked("starttls-missing")),
        *[Scenario(f"{st}/refused-{code}", "refusal", f"STARTTLS answered {code} {text}",
                   _rig(hostile.refused("smtp", f"{code} {text}\r\n".encode())), blocked("starttls-refused"))
          for code, text in refusals],
        Scenario(f"{st}/injection", "injection", "a plaintext 250 line in the same packet as the 220 go-ahead",
                 _rig(hostile.injected("smtp", _SMTP_INJECT)), blocked("plaintext-injection")),
        Scenario(f"{st}/injection-fake-ehlo", "injection", "a forged post-TLS EHLO reply (AUTH PLAIN) after the 220",
                 _rig(hostile.injected("smtp", _SMTP_FAKE_EHLO)), blocked("plaintext-injection")),
        Scenario(f"{st}/injection-late", "injection",
                 "the 220 alone, then a plaintext 250 line once the ClientHello is in (a second packet)",
                 _rig(hostile.injected_late("smtp", b"250 injected\r\n")), blocked("plaintext-injection")),
        Scenario(f"{st}/now-implicit", "mode-swap", "the STARTTLS port now waits for a ClientHello (Implicit TLS)",
                 _rig(hostile.benign("smtp"), tls_on_connect=True), unverified("timeout"), stall=True),
        Scenario(f"{st}/tls-downgrade", "downgrade", "TLS 1.3 when pinned; the server now stops at TLS 1.2",
                 _real(tls_max=TLS12), blocked("tls-version-downgrade")),
        *_certificates(st),
        *_hostile_starttls("smtp", st, b"220 ", b"220-tarpit\r\n"),
        Scenario(f"{st}/silent-greeting", "stall", "the connection is accepted, no greeting ever comes",
                 _rig(hostile.silent), unverified("timeout"), stall=True),
        Scenario(f"{st}/multiline-greeting", "benign", "a three-line 220 greeting",
                 _rig(hostile.benign("smtp", greeting=_MULTILINE)), VERIFIED),
        Scenario(f"{st}/reordered-capabilities", "benign", "the EHLO keywords in reverse order",
                 _rig(hostile.reordered("smtp")), VERIFIED),
        Scenario(f"{st}/long-capabilities", "benign", "200 extra EHLO keywords (long, within bounds)",
                 _rig(hostile.many_capabilities("smtp", 200)), VERIFIED),
        Scenario(f"{st}/new-key-same-ca", "benign", "a new key from the pinned CA (level ca)",
                 _real("new-key"), VERIFIED, level="ca"),
        Scenario(f"{st}/tls13-after-tls12-pin", "benign", "pinned at TLS 1.2; the server now negotiates TLS 1.3",
                 _real(pin_tls_max=TLS12), VERIFIED),
        Scenario(f"{im}/now-plaintext", "mode-swap", "the Implicit TLS port now greets in plaintext, offering STARTTLS",
                 _rig(hostile.benign("smtp"), tls_on_connect=False), blocked("mode-changed")),
        Scenario(f"{im}/tls-downgrade", "downgrade", "TLS 1.3 when pinned; the server now stops at TLS 1.2",
                 _real(tls_max=TLS12), blocked("tls-version-downgrade")),
        *_certificates(im),
        Scenario(f"{im}/endless-line", "hostile", "over TLS, a greeting line that never ends",
                 _rig(hostile.endless_line(b"220 ")), blocked("protocol-error")),
        *_implicit_common(im),
        Scenario(f"{im}/tls13-after-tls12-pin", "benign", "pinned at TLS 1.2; the server now negotiates TLS 1.3",
                 _real(pin_tls_max=TLS12), VERIFIED),
    ]  # fmt: skip


def _imap() -> list[Scenario]:
    st, im = "imap/starttls", "imap/implicit"
    alert = ALERT.encode()
    return [
        Scenario(f"{st}/stripped", "stripping", "STARTTLS no longer a capability; AUTH=PLAIN offered in plaintext",
                 _rig(hostile.stripped("imap")), blocked("starttls-missing")),
        Scenario(f"{st}/refused-no", "refusal", "STARTTLS answered with a tagged NO",
                 _rig(hostile.refused("imap", b"{tag} NO STARTTLS unavailable\r\n")), blocked("starttls-refused")),
        Scenario(f"{st}/refused-bad", "refusal", "STARTTLS answered with a tagged BAD",
                 _rig(hostile.refused("imap", b"{tag} BAD STARTTLS unknown\r\n")), blocked("starttls-refused")),
        Scenario(f"{st}/refused-continuation", "refusal", "STARTTLS answered with a '+' continuation request",
                 _rig(hostile.refused("imap", b"+ go ahead\r\n")), blocked("protocol-error")),
        Scenario(f"{st}/preauth", "preauth", "a PREAUTH greeting: already authenticated, STARTTLS impossible",
                 _rig(hostile.preauth()), blocked("preauth")),
        Scenario(f"{st}/injection", "injection", "plaintext '* 1 EXISTS' after the tagged OK, in the same packet",
                 _rig(hostile.injected("imap", _IMAP_OK + b"* 1 EXISTS\r\n")), blocked("plaintext-injection")),
        Scenario(f"{st}/injection-late", "injection",
                 "the tagged OK alone, then '* 1 EXISTS' once the ClientHello is in (a second packet)",
                 _rig(hostile.injected_late("imap", b"* 1 EXISTS\r\n")), blocked("plaintext-injection")),
        Scenario(f"{st}/tampering", "tampering",
                 "untagged EXISTS / RECENT between STARTTLS and its tagged OK (plaintext, discarded: RFC 3501 §7)",
                 _rig(hostile.tampered(b"* 5 EXISTS\r\n* 3 RECENT\r\n" + _IMAP_OK)), VERIFIED),
        Scenario(f"{st}/alert-before-ok", "ui-spoofing", "an untagged '* OK [ALERT] …' before the tagged OK",
                 _rig(hostile.tampered(b"* OK [ALERT] " + alert + b"\r\n" + _IMAP_OK)), VERIFIED),
        Scenario(f"{st}/alert-in-greeting", "ui-spoofing", "an [ALERT] text in the plaintext greeting (never shown)",
                 _rig(hostile.benign("imap", greeting=b"* OK [ALERT] " + alert + b"\r\n")), VERIFIED),
        Scenario(f"{st}/alert-in-starttls-ok", "ui-spoofing", "an [ALERT] in the tagged OK to STARTTLS (never shown)",
                 _rig(hostile.tampered(b"{tag} OK [ALERT] " + alert + b"\r\n")), VERIFIED),
        Scenario(f"{st}/now-implicit", "mode-swap", "the STARTTLS port now waits for a ClientHello (Implicit TLS)",
                 _rig(hostile.benign("imap"), tls_on_connect=True), unverified("timeout"), stall=True),
        Scenario(f"{st}/tls-downgrade", "downgrade", "TLS 1.3 when pinned; the server now stops at TLS 1.2",
                 _rig(hostile.benign("imap"), tls_max=TLS12), blocked("tls-version-downgrade")),
        *_certificates(st),
        *_hostile_starttls("imap", st, b"* OK ", b"* OK tarpit\r\n"),
        Scenario(f"{st}/reordered-capabilities", "benign", "the capabilities in reverse order",
                 _rig(hostile.reordered("imap")), VERIFIED),
        Scenario(f"{st}/long-capabilities", "benign", "400 extra capabilities on the CAPABILITY line (long, legit)",
                 _rig(hostile.many_capabilities("imap", 400)), VERIFIED),
        Scenario(f"{st}/capability-in-greeting", "benign", "capabilities in the greeting, no CAPABILITY command needed",
                 _rig(hostile.benign("imap", greeting=b"* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] ready\r\n")),
                 VERIFIED),
        Scenario(f"{st}/new-key-same-ca", "benign", "a new key from the pinned CA (level ca)",
                 _real("new-key"), VERIFIED, level="ca"),
        Scenario(f"{st}/tls13-after-tls12-pin", "benign", "pinned at TLS 1.2; the server now negotiates TLS 1.3",
                 _rig(hostile.benign("imap"), pin_tls_max=TLS12), VERIFIED),
        Scenario(f"{im}/now-plaintext", "mode-swap", "the Implicit TLS port now greets in plaintext, offering STARTTLS",
                 _rig(hostile.benign("imap"), tls_on_connect=False), blocked("mode-changed")),
        Scenario(f"{im}/tls-downgrade", "downgrade", "TLS 1.3 when pinned; the server now stops at TLS 1.2",
                 _rig(hostile.benign("imap"), tls_max=TLS12), blocked("tls-version-downgrade")),
        *_certificates(im),
        Scenario(f"{im}/huge-capabilities", "hostile", "over TLS, a greeting carrying 5000 capabilities (a 60 KB line)",
                 _rig(hostile.benign("imap", greeting=_HUGE_CAPABILITY_GREETING)), blocked("protocol-error")),
        *_implicit_common(im),
    ]  # fmt: skip


def _pop3() -> list[Scenario]:
    st, im = "pop3/starttls", "pop3/implicit"
    return [
        Scenario(f"{st}/stripped", "stripping", "STLS no longer in the CAPA listing; USER offered in plaintext",
                 _rig(hostile.stripped("pop3")), blocked("starttls-missing")),
        Scenario(f"{st}/refused-err", "refusal", "STLS answered -ERR",
                 _rig(hostile.refused("pop3", b"-ERR STLS not available\r\n")), blocked("starttls-refused")),
        Scenario(f"{st}/injection", "injection", "a plaintext '+OK injected' in the same packet as the go-ahead",
                 _rig(hostile.injected("pop3", b"+OK Begin TLS negotiation\r\n+OK injected\r\n")),
                 blocked("plaintext-injection")),
        Scenario(f"{st}/injection-late", "injection",
                 "the go-ahead alone, then '+OK injected' once the ClientHello is in (a second packet)",
                 _rig(hostile.injected_late("pop3", b"+OK injected\r\n")), blocked("plaintext-injection")),
        *_hostile_starttls("pop3", st, b"+OK ", b"+OK tarpit\r\n"),
        Scenario(f"{st}/expired", "certificate", "an expired certificate (probe reports, pins nothing)",
                 _real("expired"), reported("expired"), tools=blocked("expired")),
        Scenario(f"{st}/reordered-capabilities", "benign", "the CAPA listing in reverse order",
                 _rig(hostile.reordered("pop3")), VERIFIED),
        Scenario(f"{st}/long-capabilities", "benign", "200 extra CAPA lines (long, within bounds)",
                 _rig(hostile.many_capabilities("pop3", 200)), VERIFIED),
        Scenario(f"{st}/renewed", "benign", "a renewed certificate from the same CA", _real("renewed"), VERIFIED),
        Scenario(f"{im}/now-plaintext", "mode-swap", "the Implicit TLS port now greets in plaintext, offering STLS",
                 _rig(hostile.benign("pop3"), tls_on_connect=False), blocked("mode-changed")),
        Scenario(f"{im}/reset-mid-handshake", "hostile", "a TCP RST on the ClientHello",
                 _rig(hostile.reset_on_hello, tls_on_connect=False), unverified("unreachable")),
        Scenario(f"{im}/foreign-ca", "certificate", "a chain from a CA nobody trusts (probe reports, pins nothing)",
                 _real("foreign-ca"), reported("untrusted-chain"), tools=blocked("untrusted-chain", "ca-changed")),
        Scenario(f"{im}/wrong-name", "certificate", "a certificate for wrong.example (probe reports, pins nothing)",
                 _real("wrong-name"), reported("hostname-mismatch"), tools=blocked("hostname-mismatch")),
        Scenario(f"{im}/new-key-same-ca", "benign", "a new key from the same CA", _real("new-key"), VERIFIED),
    ]  # fmt: skip


SCENARIOS: tuple[Scenario, ...] = (*_smtp(), *_imap(), *_pop3())
BY_ID: dict[str, Scenario] = {scenario.id: scenario for scenario in SCENARIOS}
assert len(BY_ID) == len(SCENARIOS), "scenario ids must be unique"
