"""A real SMTP server (aiosmtpd) on 127.0.0.1 for tests: Implicit TLS and STARTTLS.

Two ``aiosmtpd.controller.Controller`` instances run in their own threads:

* ``smtps_port`` -- Implicit TLS (RFC 8314): TLS starts on connect (``ssl_context=``);
* ``submission_port`` -- plain SMTP that requires STARTTLS before anything else
  (``tls_context=``, ``require_starttls=True``).

Both use ONE front ``SSLContext`` whose ``sni_callback`` swaps in the context of the currently
selected variant (one pre-built context per variant), so :meth:`SmtpServer.serve` switches the
certificate for every new handshake without restarting anything.  OpenSSL calls the callback for
every ClientHello, with or without SNI (clients that connect to an IP address send none).

Every message is recorded in :attr:`SmtpServer.messages`.  AUTH PLAIN/LOGIN is offered after TLS
and accepts ``test`` / ``secret``; it is optional (``auth_required=False``).
"""

from __future__ import annotations

import asyncio
import ssl
import threading
import time
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from .pki import VARIANTS, TestPKI, free_port, served_leaf

Message = tuple[str, list[str], bytes]  # (MAIL FROM, RCPT TOs, raw content as received)


class _Recorder:
    """aiosmtpd handler: accept every sender and recipient, record each message and each EHLO name."""

    def __init__(self, messages: list[Message], ehlos: list[str], lock: threading.Lock) -> None:
        self._messages = messages
        self._ehlos = ehlos
        self._lock = lock

    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname  # what aiosmtpd does without a handler hook
        with self._lock:
            self._ehlos.append(hostname)
        return responses

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        with self._lock:  # the two controllers run in two threads
            self._messages.append((envelope.mail_from or "", list(envelope.rcpt_tos), content))
        return "250 OK: queued"


class _Authenticator:
    """Accepts exactly the lab credentials; aiosmtpd offers AUTH only after TLS."""

    def __init__(self, user: str, password: str) -> None:
        self._login = (user.encode(), password.encode())

    def __call__(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == self._login
        return AuthResult(success=ok, handled=False)


def _quiet_loop() -> asyncio.AbstractEventLoop:
    """An event loop for one controller that does not log failed TLS handshakes.

    Tests make clients reject certificates on purpose; asyncio would log every aborted
    handshake with a traceback.  Everything else still reaches the default handler.
    """

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if not isinstance(context.get("exception"), (ssl.SSLError, ConnectionError)):
            loop.default_exception_handler(context)

    loop = asyncio.new_event_loop()
    loop.set_exception_handler(handler)
    return loop


def _server_context(pki: TestPKI, variant: str) -> ssl.SSLContext:
    """A server context (TLS 1.2 and 1.3) presenting ``variant``'s chain."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    served = pki.cert(variant)
    context.load_cert_chain(served.chain_pem, served.key_pem)
    return context


class SmtpServer:
    """Two aiosmtpd controllers sharing one switchable certificate; see the module docstring."""

    user: str = "test"
    password: str = "secret"

    def __init__(self, pki: TestPKI) -> None:
        self.pki = pki
        self.variant = "good"
        self.tls_cap = ssl.TLSVersion.MAXIMUM_SUPPORTED
        self.smtps_port = 0
        self.submission_port = 0
        self.messages: list[Message] = []
        self.ehlos: list[str] = []  # every EHLO name, in order: tells a client's session from mailpin's probe
        self._lock = threading.Lock()
        self._controllers: list[Controller] = []
        # One context per variant, built once; the front context only dispatches.
        self._contexts = {variant: _server_context(pki, variant) for variant in VARIANTS}
        self._front = _server_context(pki, "good")  # used only if the callback were skipped
        self._front.sni_callback = self._select

    def _select(self, sock: ssl.SSLObject | ssl.SSLSocket, name: str | None, _: ssl.SSLContext) -> None:
        """sni_callback: hand the handshake over to the context of the current variant."""
        sock.context = self._contexts[self.variant]

    def start(self, variant: str = "good") -> None:
        """Start both listeners on free ports, serving ``variant``."""
        if self._controllers:
            raise RuntimeError("SMTP server already started")
        self.pki.cert(variant)  # KeyError for unknown variants
        self.variant = variant
        handler = _Recorder(self.messages, self.ehlos, self._lock)
        common: dict[str, Any] = {
            "hostname": "127.0.0.1",
            "server_hostname": "localhost",  # the name in the greeting and the EHLO reply
            "authenticator": _Authenticator(self.user, self.password),
            "auth_required": False,  # (auth_required without auth_require_tls would warn)
        }
        self.smtps_port = free_port()
        self.submission_port = free_port()
        while self.submission_port == self.smtps_port:
            self.submission_port = free_port()
        # aiosmtpd only knows about TLS it started itself (STARTTLS): on the Implicit TLS port
        # auth_require_tls must be False or AUTH is never offered, although the session is TLS.
        listeners: list[dict[str, Any]] = [
            {"port": self.smtps_port, "ssl_context": self._front, "auth_require_tls": False},
            {
                "port": self.submission_port,
                "tls_context": self._front,
                "require_starttls": True,
                "auth_require_tls": True,
            },
        ]
        try:
            for listener in listeners:
                loop = _quiet_loop()
                controller = Controller(handler, loop=loop, **listener, **common)
                try:
                    controller.start()
                except BaseException:
                    controller.stop(no_assert=True)  # stops the thread; its loop is closed below
                    if not loop.is_closed():
                        loop.close()
                    raise
                self._controllers.append(controller)
        except BaseException:
            self.stop()
            raise

    def serve(self, variant: str, timeout: float = 5.0) -> None:
        """Serve ``variant`` for new handshakes on both ports; block until SMTPS shows it."""
        wanted = self.pki.cert(variant).leaf_der
        self.variant = variant  # a single attribute store: atomic for the server threads
        deadline = time.monotonic() + timeout
        while served_leaf(self.smtps_port) != wanted:
            if time.monotonic() > deadline:
                raise TimeoutError(f"SMTP server did not serve {variant!r} within {timeout} s")
            time.sleep(0.01)

    def cap_tls(self, maximum: ssl.TLSVersion = ssl.TLSVersion.MAXIMUM_SUPPORTED) -> None:
        """Negotiate at most ``maximum`` on new handshakes (a server "downgraded" to TLS 1.2).

        Set on the front context: OpenSSL copies the version limits into each connection when it
        is created, and a context swapped in by the SNI callback brings only its certificate."""
        self._front.maximum_version = maximum
        self.tls_cap = maximum

    def stop(self) -> None:
        """Stop both controllers (joins their threads, closes their loops); idempotent."""
        controllers, self._controllers = self._controllers, []
        for controller in controllers:
            controller.stop()

    def received(self) -> list[Message]:
        """A snapshot of :attr:`messages` taken under the lock."""
        with self._lock:
            return list(self.messages)

    def greeted_by(self, name: str) -> int:
        """How many sessions said EHLO ``name`` (msmtp says its `domain`, mailpin's probe "localhost")."""
        with self._lock:
            return self.ehlos.count(name)
