"""Where an account's server offers Implicit TLS (RFC 8314 §5.1): SRV first, then the well-known port.

RFC 8314 prefers Implicit TLS to STARTTLS: a STARTTLS exchange can be stripped or injected before TLS
starts, an Implicit TLS connection cannot be downgraded to cleartext (§4.1). Many servers that a
config reaches on 587 or 143 also listen on 465 or 993, and nobody tells the user.

The candidates, in the order they are tried:
1. SRV records (`_submissions._tcp`, `_imaps._tcp`, `_pop3s._tcp`) of the domain of the account's
   address and of its host's domain whose target is the configured host: a port to try there;
2. the well-known Implicit TLS port (465, 993, 995) on the configured host.
An SRV target on another host is reported and never tried unless the user names that host
(`--host`): the answer is unauthenticated, and RFC 6186 §6 asks for the user's word when the target
leaves the queried domain. Every endpoint tried must present a certificate that validates, under the
trust the tool uses for the account, for the name the account checks today (its host, or its
`tls_host_override`) or for the host the user named — an SRV answer may suggest where to look, never
lower what is checked (RFC 7817 §3).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mailpin.commands.verify import Verifier
from mailpin.errors import ConfigError, ProbeError
from mailpin.model import DEFAULT_PORTS, Account, Endpoint, Mode, Observation, is_ip_address
from mailpin.net import srv


@dataclass(frozen=True)
class Candidate:
    host: str
    port: int
    why: str  # where the idea came from: "SRV _submissions._tcp.example.org", "the well-known port"


@dataclass(frozen=True)
class Tried:
    candidate: Candidate
    problem: str | None  # None: Implicit TLS works there, the certificate validates
    observation: Observation | None = None


@dataclass(frozen=True)
class Found:
    """What was looked up and tried for one account, and the endpoint to move it to (if any)."""

    account: Account
    answers: tuple[srv.Answer, ...]
    tried: tuple[Tried, ...]
    elsewhere: tuple[Candidate, ...]  # SRV targets on other hosts: not tried without the user's word

    @property
    def chosen(self) -> Tried | None:
        return next((tried for tried in self.tried if tried.problem is None), None)

    @property
    def why_not(self) -> str:
        """Why the account stays where it is, in one line."""
        said = [f"SRV {answer.said}" for answer in self.answers if not answer.records]
        said += [f"{t.candidate.host}:{t.candidate.port} ({t.candidate.why}): {t.problem}" for t in self.tried]
        said += [f"{c.host}:{c.port} ({c.why}) is on another host; `--host {c.host}` to try it" for c in self.elsewhere]
        return "; ".join(said) or "nothing to try"


def domains(account: Account) -> list[str]:
    """The domains to ask: of the account's addresses (msmtp `from` when a plain address, the login
    when it is one), and of its host (the host less its first label, when it has three or more)."""
    found = []
    for address in (*account.froms, *([account.user] if account.user else [])):
        local, at, domain = address.rpartition("@")
        if at and local and domain and not any(c in domain for c in "*?[]"):
            found.append(domain.lower().rstrip("."))
    host = (account.host or "").lower().rstrip(".")
    if host and not is_ip_address(host) and "." in host:
        labels = host.split(".")
        found.append(".".join(labels[1:]) if len(labels) >= 3 else host)
    return list(dict.fromkeys(found))


def find(
    verifier: Verifier,
    account: Account,
    nameservers: Sequence[str],
    host: str | None = None,
) -> Found:
    """Look up and try the Implicit TLS endpoints for ACCOUNT. HOST: a host the user names (and so
    confirms): tried instead of the configured one, its certificate checked for that name."""
    assert account.host is not None
    named = host or account.host
    target_host = named.lower().rstrip(".")
    service = srv.IMPLICIT_SERVICES[account.protocol]
    timeout = verifier.settings.timeout
    answers = tuple(srv.lookup(f"{service}.{domain}", nameservers, timeout) for domain in domains(account))
    here: list[Candidate] = []
    elsewhere: list[Candidate] = []
    for answer in answers:
        for record in answer.records:
            if record.target == target_host:  # the name as configured (or named), not as DNS spells it
                here.append(Candidate(named, record.port, f"SRV {answer.name}"))
            else:
                elsewhere.append(Candidate(record.target, record.port, f"SRV {answer.name}"))
    well_known = DEFAULT_PORTS[(account.protocol, Mode.IMPLICIT)]
    here.append(Candidate(named, well_known, "the well-known port"))
    tried: list[Tried] = []
    for candidate in _unique(here):
        tried.append(attempt(verifier, account, candidate, host))
        if tried[-1].problem is None:
            break
    return Found(account, answers, tuple(tried), tuple(_unique(elsewhere)))


def _unique(candidates: list[Candidate]) -> list[Candidate]:
    seen: dict[tuple[str, int], Candidate] = {}
    for candidate in candidates:
        seen.setdefault((candidate.host, candidate.port), candidate)
    return list(seen.values())


def attempt(
    verifier: Verifier, account: Account, candidate: Candidate, host: str | None, mode: Mode = Mode.IMPLICIT
) -> Tried:
    """MODE (Implicit TLS) at CANDIDATE, its certificate checked for the name the account checks (or HOST)."""
    # The name checked: the one the account checks today, unless the user named another host.
    servername = None if host else account.servername
    endpoint = Endpoint(candidate.host, candidate.port, account.protocol, mode, servername)
    try:
        observation = verifier.observe(endpoint, account)
    except ProbeError as exc:
        what = "Implicit TLS" if mode is Mode.IMPLICIT else "STARTTLS"
        return Tried(candidate, f"no {what} there ({exc.reason}: {exc.detail})")
    except ConfigError as exc:
        return Tried(candidate, str(exc))
    chain = observation.chain
    if not (chain.chain_valid and chain.hostname_valid):
        why = chain.error or ", ".join(chain.reasons) or "it does not validate"
        return Tried(candidate, f"its certificate does not validate for {endpoint.name_to_check}: {why}", observation)
    pinned = {f.replace(":", "").lower() for f in account.fingerprints}
    if pinned and observation.leaf.sha256 not in pinned:  # the tool checks its fingerprint, and only that
        return Tried(candidate, "its certificate is not the one the account's tls_fingerprint names", observation)
    return Tried(candidate, None, observation)
