"""`mailpin probe HOST[:PORT]`: observe one endpoint, pin nothing."""

from __future__ import annotations

from dataclasses import dataclass

from mailpin.env import Env
from mailpin.errors import ExitStatus, ProbeError, UsageError
from mailpin.model import DEFAULT_PORTS, Endpoint, Mode, Observation, Protocol, is_ip_address
from mailpin.net.probe import probe
from mailpin.trust import anchors
from mailpin.trust.judge import Judge


@dataclass(frozen=True)
class ProbeResult:
    endpoint: Endpoint
    observation: Observation | None
    error: ProbeError | None

    @property
    def reasons(self) -> tuple[str, ...]:
        if self.error is not None:
            return (self.error.reason,)
        assert self.observation is not None
        return self.observation.chain.reasons

    @property
    def exit_status(self) -> ExitStatus:
        # A certificate that does not validate is a fact to report, not a failed probe.
        return self.error.exit_status if self.error is not None else ExitStatus.OK


def split_host_port(target: str) -> tuple[str, int | None]:
    """HOST, HOST:PORT, [V6], [V6]:PORT, or a bare IPv6 address."""
    if target.startswith("["):
        host, sep, rest = target[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise UsageError(f"cannot read {target!r}: use [ADDRESS]:PORT for IPv6")
        port_text = rest[1:] if rest else None
    elif target.count(":") == 1:
        host, port_text = target.split(":")
    else:
        host, port_text = target, None
    if not host:
        raise UsageError(f"no host in {target!r}")
    if port_text is None:
        return host, None
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise UsageError(f"not a port number: {port_text!r}")
    return host, int(port_text)


def _check_name(name: str, what: str) -> None:
    if is_ip_address(name):
        return
    try:
        name.encode("idna")  # what the resolver and SNI will need; refuses empty or over-long labels
    except UnicodeError:
        raise UsageError(f"not a valid {what}: {name!r}") from None


def make_endpoint(target: str, protocol: str, mode: str, servername: str | None) -> Endpoint:
    host, port = split_host_port(target)
    _check_name(host, "host name")
    if servername is not None:
        _check_name(servername, "server name")
    proto, how = Protocol(protocol), Mode(mode)
    return Endpoint(host, port or DEFAULT_PORTS[(proto, how)], proto, how, servername)


def run(
    env: Env,
    target: str,
    protocol: str,
    mode: str,
    *,
    trust_file: str | None,
    servername: str | None,
    timeout: float,
) -> ProbeResult:
    endpoint = make_endpoint(target, protocol, mode, servername)
    judge = Judge(anchors.locate(trust_file, env.environ), memo=None)  # a look, not a verification: no shortcut
    judge.load()  # a trust file without certificates is a config error before any connection
    try:
        observation = probe(endpoint, judge, timeout=timeout, now=env.now)
    except ProbeError as exc:
        return ProbeResult(endpoint, None, exc)
    return ProbeResult(endpoint, observation, None)
