"""Connect to one endpoint the way the user's tool would, and observe what really happened."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable
from datetime import datetime, timezone

from mailpin import certs
from mailpin.errors import ProbeError
from mailpin.model import Endpoint, Mode, Observation
from mailpin.net.channel import Channel, Deadline
from mailpin.net.starttls import dialogue_for
from mailpin.net.tlsctx import observing_context, served_chain

DEFAULT_TIMEOUT = 10.0


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _connect(endpoint: Endpoint, deadline: Deadline) -> socket.socket:
    try:
        return socket.create_connection((endpoint.host, endpoint.port), timeout=deadline.next_step("connect"))
    except TimeoutError:
        raise ProbeError("timeout", "connection timed out") from None
    except socket.gaierror as exc:
        raise ProbeError("unreachable", f"cannot resolve {endpoint.host}: {exc.strerror}") from None
    except OSError as exc:
        raise ProbeError("unreachable", f"cannot connect: {exc.strerror or exc}") from None


def probe(
    endpoint: Endpoint,
    trust: certs.Trust,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    step: float | None = None,
    now: Callable[[], datetime] = _utcnow,
) -> Observation:
    """Run the protocol dialogue and TLS handshake, then judge the chain that was served.

    Raises `ProbeError` (with the endpoint named) when the server's behaviour is an attack, a
    downgrade, a protocol violation, or when it cannot be reached in time.
    """
    deadline = Deadline(timeout, step)
    dialogue = dialogue_for(endpoint.protocol)
    chan: Channel | None = None
    try:
        chan = Channel(_connect(endpoint, deadline), deadline)
        if endpoint.mode is Mode.STARTTLS:
            greeting = dialogue.upgrade(chan)
            chan.start_tls(observing_context(), endpoint.sni, "TLS handshake after STARTTLS")
        else:
            chan.start_tls(observing_context(), endpoint.sni, "TLS handshake")
            greeting = dialogue.greet(chan)
        capabilities = dialogue.capabilities(chan)
        tls = chan.sock
        assert isinstance(tls, ssl.SSLSocket)
        version, cipher = tls.version() or "unknown", (tls.cipher() or ("unknown",))[0]
        chain_der = served_chain(tls)
        try:
            dialogue.quit(chan)
        except ProbeError:
            pass  # the observation is complete; a server that hangs up first is not our concern
    except ProbeError as exc:
        raise exc.at(str(endpoint)) from None
    finally:
        if chan is not None:
            chan.close()
    if not chain_der:
        raise ProbeError("protocol-error", "server presented no certificate").at(str(endpoint))
    try:
        chain = certs.parse_chain(chain_der)
    except ValueError as exc:
        raise ProbeError("protocol-error", f"unparseable certificate: {exc}").at(str(endpoint)) from None
    verdict = certs.validate(chain, endpoint.name_to_check, trust, now())
    return Observation(
        endpoint=endpoint,
        tls_version=version,
        cipher=cipher,
        leaf=certs.facts(chain[0]),
        served_chain=tuple(certs.facts(cert) for cert in chain),
        chain=verdict,
        greeting=greeting,
        capabilities=capabilities,
        elapsed_ms=deadline.elapsed_ms(),
    )
