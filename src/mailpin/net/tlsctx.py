"""The one place mailpin makes an `ssl.SSLContext` (STYLE §4: never let a library choose).

Python's `smtplib`/`imaplib` fall back to an unverified context when given none; mailpin never
passes control to such a default. Its probe deliberately completes the handshake *without*
letting OpenSSL decide trust, and then validates the chain it was served itself
(`mailpin.certs`), so that one connection yields every fact — including the facts about a
certificate that does not validate, which a verifying handshake would abort before showing.
The probe sends no credentials and no mail: nothing is exposed before that decision is made.
"""

from __future__ import annotations

import ssl


def observing_context() -> ssl.SSLContext:
    """A client context that records what the server presents; trust is decided afterwards."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False  # checked by mailpin.certs against the pinned/asked name
    context.verify_mode = ssl.CERT_NONE  # chain validated by mailpin.certs, see module docstring
    # RFC 8997 §3 / RFC 8314 §4.1: TLS 1.2 is the floor for mail; never offer less.
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def served_chain(sock: ssl.SSLSocket) -> list[bytes]:
    """The certificates the server sent, DER, leaf first (before any validation)."""
    public = getattr(sock, "get_unverified_chain", None)  # Python >= 3.13
    if public is not None:
        return [bytes(cert) for cert in public()]
    private = getattr(getattr(sock, "_sslobj", None), "get_unverified_chain", None)  # 3.10 - 3.12
    if private is not None:
        chain = private() or []
        return [cert.public_bytes(ssl._ssl.ENCODING_DER) for cert in chain]  # type: ignore[attr-defined]
    leaf = sock.getpeercert(binary_form=True)
    return [leaf] if leaf else []
