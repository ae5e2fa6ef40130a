"""SRV records for the mail services (RFC 6186, RFC 8314 §5.1), read through a real resolver (dnspython).

What an SRV answer is worth here: a hint where to look, nothing more. It is not authenticated (no
DNSSEC is asked for or trusted), so it may suggest a port or a host to try, and never changes what
is checked: the certificate found there must validate for the name the user configured, or for one
the user confirms (RFC 7817 §3, RFC 6186 §6). The order is RFC 2782's: lower priority first; within
a priority, heavier weight first (the random weighting is for spreading load, which one client
looking for a port does not need). A lone record whose target is "." says the service is decidedly
not offered at the domain (RFC 2782, RFC 6186 §3.4).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mailpin.model import Protocol

TYPE_CHECKING = False  # typing's own, without importing typing on every run (STYLE §10)
if TYPE_CHECKING:
    import dns.resolver

# The Implicit TLS service labels (RFC 8314 §5.1: `submissions`; RFC 6186: `imaps`, `pop3s`).
IMPLICIT_SERVICES = {Protocol.SMTP: "_submissions._tcp", Protocol.IMAP: "_imaps._tcp", Protocol.POP3: "_pop3s._tcp"}
DNS_PORT = 53


@dataclass(frozen=True)
class Record:
    priority: int
    weight: int
    port: int
    target: str  # without the trailing dot, lower case


@dataclass(frozen=True)
class Answer:
    """One SRV question and what came of it: records (in the order to try), or why none."""

    name: str  # the owner name asked, e.g. _submissions._tcp.example.org
    records: tuple[Record, ...] = ()
    not_offered: bool = False  # the "." record: the domain says it has no such service
    problem: str | None = None  # no such name, no record, no answer in time, ...

    @property
    def said(self) -> str:
        if self.not_offered:
            return f'{self.name}: the domain says it is not offered (target ".")'
        if self.problem:
            return f"{self.name}: {self.problem}"
        return f"{self.name}: " + ", ".join(f"{r.target}:{r.port} (priority {r.priority})" for r in self.records)


def parse_nameserver(text: str) -> tuple[str, int]:
    """`ADDRESS` or `ADDRESS@PORT` (unbound's way, which leaves an IPv6 address's colons alone)."""
    import ipaddress

    address, at, port = text.strip().partition("@")
    try:
        ipaddress.ip_address(address)
    except ValueError:
        raise ValueError(f"not an IP address: {address!r} (a nameserver is ADDRESS or ADDRESS@PORT)") from None
    if at and not (port.isdigit() and 0 < int(port) < 65536):
        raise ValueError(f"not a port number: {port!r}")
    return address, int(port) if at else DNS_PORT


def _resolver(nameservers: Sequence[str]) -> dns.resolver.Resolver:
    """dnspython's resolver: NAMESERVERS (`ADDRESS[@PORT]`), or none: the system's configuration."""
    import dns.resolver

    resolver = dns.resolver.Resolver(configure=not nameservers)
    if nameservers:
        servers = [parse_nameserver(server) for server in nameservers]
        resolver.nameservers = [address for address, _ in servers]
        resolver.nameserver_ports = dict(servers)
    return resolver


def exists(name: str, nameservers: Sequence[str], timeout: float) -> bool:
    """Does NAME have an address (A or AAAA) in the DNS that NAMESERVERS serve? Asked before a
    well-known name is tried, so that only names the domain has are connected to."""
    import dns.exception
    import dns.resolver

    try:
        resolver = _resolver(nameservers)
        for kind in ("A", "AAAA"):
            answer = resolver.resolve(name, kind, lifetime=timeout, search=False, raise_on_no_answer=False)
            if answer.rrset:
                return True
    except dns.exception.DNSException:
        return False
    return False


def lookup(name: str, nameservers: Sequence[str], timeout: float) -> Answer:
    """The SRV records at NAME. NAMESERVERS: `ADDRESS[@PORT]` each; none: the system's resolver
    configuration (/etc/resolv.conf). TIMEOUT bounds the whole question, every server and retry."""
    import dns.exception
    import dns.name
    import dns.resolver

    try:
        resolver = _resolver(nameservers)
    except dns.exception.DNSException as exc:  # no /etc/resolv.conf, or nothing usable in it
        return Answer(name, problem=f"no resolver configured ({exc})")
    try:
        answer = resolver.resolve(name, "SRV", lifetime=timeout, search=False, raise_on_no_answer=False)
    except dns.resolver.NXDOMAIN:
        return Answer(name, problem="no such name")
    except dns.resolver.NoNameservers as exc:
        return Answer(name, problem=f"no server answered ({_first_line(exc)})")
    except dns.exception.Timeout:
        return Answer(name, problem=f"no answer within {timeout:g} s")
    except dns.exception.DNSException as exc:
        return Answer(name, problem=_first_line(exc))
    found = [
        Record(rr.priority, rr.weight, rr.port, "." if rr.target == dns.name.root else rr.target.to_text(True).lower())
        for rr in (answer.rrset or ())
    ]
    if not found:
        return Answer(name, problem="no SRV record")
    if len(found) == 1 and found[0].target in ("", "."):
        return Answer(name, not_offered=True)
    usable = [record for record in found if record.target not in ("", ".") and record.port]
    return Answer(name, tuple(sorted(usable, key=lambda r: (r.priority, -r.weight, r.target, r.port))))


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
