"""Connect to one endpoint the way the user's tool would, and observe what really happened."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable
from datetime import datetime

from mailpin.errors import ProbeError
from mailpin.model import Account, Endpoint, Mode, Observation
from mailpin.net.channel import Channel, Deadline
from mailpin.net.starttls import dialogue_for
from mailpin.net.tlsctx import narrowed_by, observing_context, served_chain
from mailpin.trust.judge import Judge

TYPE_CHECKING = False  # typing's own, without importing typing on every run (STYLE §10)
if TYPE_CHECKING:
    from mailpin.net.starttls import Dialogue

DEFAULT_TIMEOUT = 10.0


def _connect(endpoint: Endpoint, deadline: Deadline) -> socket.socket:
    """TCP to each resolved address in turn, every attempt under the one overall deadline
    (`socket.create_connection` would give each address the full timeout)."""
    try:
        infos = socket.getaddrinfo(endpoint.host, endpoint.port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ProbeError("unreachable", f"cannot resolve {endpoint.host}: {exc.strerror}") from None
    except UnicodeError:  # IDNA refuses the name (an empty or over-long label)
        raise ProbeError("unreachable", f"not a valid host name: {endpoint.host!r}") from None
    failure = "no address"
    for family, kind, proto, _, address in infos:
        sock = socket.socket(family, kind, proto)
        try:
            sock.settimeout(deadline.next_step("connect"))
            sock.connect(address)
            return sock
        except TimeoutError:
            sock.close()
            failure = "timeout"
        except ProbeError:
            sock.close()
            raise
        except OSError as exc:
            sock.close()
            failure = exc.strerror or str(exc)
    if failure == "timeout":
        raise ProbeError("timeout", "connection timed out")
    raise ProbeError("unreachable", f"cannot connect: {failure}")


def probe(
    endpoint: Endpoint,
    judge: Judge,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    step: float | None = None,
    now: Callable[[], datetime],
    capabilities: bool = True,
    tool: Account | None = None,
) -> Observation:
    """Run the protocol dialogue and TLS handshake, then judge the chain that was served.

    Raises `ProbeError` (with the endpoint named) when the server's behaviour is an attack, a
    downgrade, a protocol violation, or when it cannot be reached in time. `capabilities=False`
    (verification before a tool runs) skips asking for the capabilities over TLS: one round trip
    less, and nothing a verdict depends on — the session is already authenticated by then.
    `tool`: the account whose TLS settings the handshake honours (see `tlsctx.observing_context`).
    """
    # One dialogue for the whole connection: IMAP tags must be unique in it (RFC 3501 §2.2.1),
    # so LOGOUT takes the next tag after STARTTLS and CAPABILITY, not a fresh "m1".
    dialogue = dialogue_for(endpoint.protocol)
    chan, observation = open_session(
        endpoint,
        judge,
        timeout=timeout,
        step=step,
        now=now,
        greet=True,
        capabilities=capabilities,
        dialogue=dialogue,
        tool=tool,
    )
    try:
        dialogue.quit(chan)
    except ProbeError:
        pass  # the observation is complete; a server that hangs up first is not our concern
    finally:
        chan.close()
    return observation


def open_session(
    endpoint: Endpoint,
    judge: Judge,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    step: float | None = None,
    now: Callable[[], datetime],
    greet: bool,
    capabilities: bool = True,
    dialogue: Dialogue | None = None,
    tool: Account | None = None,
    relay: bool = False,
    sock: socket.socket | None = None,
) -> tuple[Channel, Observation]:
    """Connect, upgrade or handshake, and judge the chain — leaving the session open.

    `greet=False` (the tunnel): after an Implicit TLS handshake nothing is read, so the server's
    greeting is still there for the client the session is handed to; after STARTTLS the session
    stands where a client expects to be after its own handshake (RFC 3501 §6.2.1: it asks again).
    `dialogue` is the caller's when it goes on speaking on the session (see `probe`).
    `tool`: the account whose own TLS settings hold on this session too; one that cannot be honoured
    raises `ConfigError` before anything is connected to. `relay` (with `greet`): the greeting is
    read and judged here, and kept as sent (`Channel.unread_for_tool`) for the tool the session is
    handed to — the session has proved it works before the tool starts. `sock`: a TCP connection to
    this very endpoint already open (net/early.py), used instead of connecting.
    """
    context = observing_context(tool)
    deadline = Deadline(timeout, step)
    if dialogue is None:
        dialogue = dialogue_for(endpoint.protocol)
    chan: Channel | None = None
    try:
        chan = Channel(sock if sock is not None else _connect(endpoint, deadline), deadline)
        greeting = ""
        if endpoint.mode is Mode.STARTTLS:
            greeting = dialogue.upgrade(chan)
            # Plaintext where the server's handshake was due, after its "go ahead": injected bytes
            # that arrived too late for _require_drained to see (RFC 3207 §4.2, response injection).
            chan.start_tls(
                context,
                endpoint.sni,
                "TLS handshake after STARTTLS",
                plaintext_reason="plaintext-injection",
            )
        else:
            chan.start_tls(context, endpoint.sni, "TLS handshake", plaintext_reason="mode-changed")
            if greet:
                if relay:
                    chan.heard = bytearray()
                greeting = dialogue.greet(chan)
        announced = dialogue.capabilities(chan) if greet and capabilities else ()
        tls = chan.sock
        assert isinstance(tls, ssl.SSLSocket)
        version, cipher = tls.version() or "unknown", (tls.cipher() or ("unknown",))[0]
        chain_der = served_chain(tls)
        if not chain_der:
            raise ProbeError("protocol-error", "server presented no certificate")
        try:
            served, verdict = judge(chain_der, endpoint.name_to_check, now())
        except ValueError as exc:  # a malformed certificate is the server's fault, never a crash
            raise ProbeError("protocol-error", f"unreadable certificate from the server: {exc}") from None
    except ProbeError as exc:
        if chan is not None:
            chan.close()
        if exc.detail.startswith("TLS handshake failed") and (narrowed := narrowed_by(tool)):
            exc.detail += f"; mailpin's session keeps to the tool's own {narrowed}"
        raise exc.at(str(endpoint)) from None
    except BaseException:
        if chan is not None:
            chan.close()
        raise
    observation = Observation(
        endpoint=endpoint,
        tls_version=version,
        cipher=cipher,
        leaf=served[0],
        served_chain=served,
        chain=verdict,
        greeting=greeting,
        capabilities=announced,
        elapsed_ms=deadline.elapsed_ms(),
        leaf_der=chain_der[0],
    )
    return chan, observation
