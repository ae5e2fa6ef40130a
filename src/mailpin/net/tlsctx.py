"""The one place mailpin makes an `ssl.SSLContext` (STYLE §4: never let a library choose).

Python's `smtplib`/`imaplib` fall back to an unverified context when given none; mailpin never
passes control to such a default. Its probe deliberately completes the handshake *without*
letting OpenSSL decide trust, and then validates the chain it was served itself
(`mailpin.trust.certs`), so that one connection yields every fact — including the facts about a
certificate that does not validate, which a verifying handshake would abort before showing.
The probe sends no credentials and no mail: nothing is exposed before that decision is made.

The tool's own TLS settings are applied here too (DESIGN §3: a setting of the tool's that mailpin's
enforcement replaces is applied, or the account refused — never dropped). Inside `mailpin tunnel`
the tool's TLS is off, so the session that carries its login is this one; the probe keeps to the
same rules, so that `check` and `run` agree. Applied: the TLS versions the tool's library would
offer (mbsync `SSLVersions`/`TLSVersions` as OpenSSL resolves them, offlineimap `ssl_version`),
its cipher list for TLS 1.2 (mbsync `CipherString`, intersected with mailpin's own), its client
certificate (mbsync `ClientCertificate`/`ClientKey`, offlineimap `sslclientcert`/`sslclientkey`:
presented, as by the tool). Refused (`ConfigError` naming the setting and its line, exit 78): TLS
below 1.2 only, no version or no usable cipher left, a client key behind a passphrase (nobody is
there to type it), and a trust that holds nothing (mbsync `SystemCertificates no` without a
`CertificateFile`, which accepts no certificate at all).
"""

from __future__ import annotations

import os
import ssl

from mailpin.errors import ConfigError

TYPE_CHECKING = False  # typing's own, without importing typing on every run (STYLE §10)
if TYPE_CHECKING:
    from mailpin.model import Account

_FLOOR = ssl.TLSVersion.TLSv1_2
_VERSIONS = {
    "TLSv1": ssl.TLSVersion.TLSv1,
    "TLSv1.1": ssl.TLSVersion.TLSv1_1,
    "TLSv1.2": ssl.TLSVersion.TLSv1_2,
    "TLSv1.3": ssl.TLSVersion.TLSv1_3,
}


def observing_context(tool: Account | None = None) -> ssl.SSLContext:
    """A client context that records what the server presents; trust is decided afterwards.

    `tool`: the account whose own TLS session mailpin's stands in for (the pre-flight probe, and
    `mailpin tunnel`, where the tool's TLS is off): its version, cipher and client certificate
    settings hold here too — DESIGN §3, never weaker than the tool alone. A setting that cannot be
    honoured raises `ConfigError` naming it, before any connection is made.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False  # checked by mailpin.trust.certs against the pinned/asked name
    context.verify_mode = ssl.CERT_NONE  # chain validated by mailpin.trust.certs, see module docstring
    # RFC 8997 §3 / RFC 8314 §4.1: TLS 1.2 is the floor for mail; never offer less.
    context.minimum_version = _FLOOR
    if tool is not None:
        _anchors(tool)
        _versions(context, tool)
        _ciphers(context, tool)
        _client_certificate(context, tool)
    return context


def narrowed_by(tool: Account | None) -> str:
    """The tool's settings that narrow the handshake, where they are written ("" when none): what a
    failed handshake's message names, so the user knows it was the tool's own rule that held."""
    if tool is None:
        return ""
    used = {"versions": bool(tool.tls_versions), "ciphers": tool.ciphers is not None, "client": bool(tool.client_cert)}
    return ", ".join(f"{setting} ({where})" for role, setting, where in tool.tls_sources if used.get(role))


def _refuse(tool: Account, what: str, problem: str) -> ConfigError:
    """The error that names the tool's setting (`what` it is about) where it was written."""
    found = tool.tls_source(what)
    if found is None:
        return ConfigError(tool.source, None, problem)
    setting, where = found
    source, _, line = where.rpartition(":")
    if not line.isdigit():  # no line: set on the tool's command line (offlineimap -k)
        return ConfigError(where, None, f"{setting}: {problem}")
    return ConfigError(source, int(line), f"{setting}: {problem}")


def _anchors(tool: Account) -> None:
    """mbsync with `SystemCertificates no` and no `CertificateFile` has an empty store (socket.c:
    neither SSL_CTX_set_default_verify_paths nor a file): it accepts no certificate, ever. mailpin
    does not trust one in its place, not even one confirmed by hand."""
    if tool.certcheck and not (tool.trust_file or tool.system_trust or tool.fingerprints):
        raise _refuse(tool, "trust", "no trust file and the system store off: the tool trusts no certificate at all")


def _versions(context: ssl.SSLContext, tool: Account) -> None:
    """The versions the tool would negotiate, within mailpin's floor. `tool.tls_versions` is the
    range the tool's library really offers (for mbsync, OpenSSL's lowest contiguous run of the
    versions left enabled); what lies below TLS 1.2 is never offered (RFC 8996)."""
    if not tool.tls_versions:
        return
    if tool.tls_versions == ("none",):  # every version turned off: the tool's handshake fails too
        raise _refuse(tool, "versions", "no TLS version is left enabled, so no TLS session is possible")
    unknown = [name for name in tool.tls_versions if name not in _VERSIONS]
    if unknown:
        raise _refuse(tool, "versions", f"TLS version {unknown[0]} is not one mailpin can speak")
    offered = sorted(_VERSIONS[name] for name in tool.tls_versions)
    if offered[-1] < _FLOOR:
        shown = {"TLSv1": "TLS 1.0"}.get(tool.tls_versions[-1], tool.tls_versions[-1].replace("TLSv", "TLS "))
        raise _refuse(
            tool,
            "versions",
            f"the tool would speak {shown} at most; mailpin never speaks below TLS 1.2 (RFC 8996), so it"
            " cannot stand in for this session: allow TLS 1.2 or 1.3",
        )
    context.minimum_version = max(_FLOOR, offered[0])
    context.maximum_version = offered[-1]


def _ciphers(context: ssl.SSLContext, tool: Account) -> None:
    """mbsync's `CipherString` is `SSL_CTX_set_cipher_list` (TLS <= 1.2 only; TLS 1.3 suites stay
    OpenSSL's). mailpin keeps the ciphers both lists allow, in the tool's order of preference: never
    one the tool would not offer, never one mailpin's own list excludes."""
    if tool.ciphers is None:
        return
    theirs = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        theirs.set_ciphers(tool.ciphers)
    except ssl.SSLError:  # the tool's own SSL_CTX_set_cipher_list fails alike: it never connects
        raise _refuse(tool, "ciphers", f"OpenSSL selects no TLS 1.2 cipher from {tool.ciphers!r}") from None
    mine = {cipher["name"] for cipher in context.get_ciphers()}
    shared = [c["name"] for c in theirs.get_ciphers() if c["protocol"] != "TLSv1.3" and c["name"] in mine]
    if shared:
        context.set_ciphers(":".join(shared))
    elif context.maximum_version in (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.MAXIMUM_SUPPORTED):
        context.minimum_version = ssl.TLSVersion.TLSv1_3  # none of its TLS 1.2 ciphers is one mailpin offers
    else:
        raise _refuse(tool, "ciphers", f"{tool.ciphers!r} leaves no TLS 1.2 cipher mailpin offers, and TLS 1.3 is off")


def _no_passphrase(*_: object) -> bytes:
    raise ValueError("encrypted")


def _client_certificate(context: ssl.SSLContext, tool: Account) -> None:
    """The certificate the tool presents (mbsync ClientCertificate + ClientKey, offlineimap
    sslclientcert/sslclientkey) is presented by mailpin's session instead — a server that asks for
    it gets it, as from the tool. A key behind a passphrase is refused: nobody is there to type it."""
    if tool.client_cert is None and tool.client_key is None:
        return
    if tool.client_cert is None:
        raise _refuse(tool, "client", "a client key without its certificate cannot be presented")
    try:
        context.load_cert_chain(tool.client_cert, tool.client_key, password=_no_passphrase)
    except ValueError:
        raise _refuse(tool, "client", "the client key is encrypted: mailpin cannot ask for its passphrase") from None
    except (OSError, ssl.SSLError) as exc:
        why = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or str(exc)
        raise _refuse(tool, "client", f"cannot load the client certificate and key: {why}") from None


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


def relay_server_context(identity: os.PathLike[str] | str) -> ssl.SSLContext:
    """The relay's side of msmtp's local session (net/relay.py): mailpin's own certificate and key
    (state/local_cert.py), TLS 1.2 at least. msmtp checks only its fingerprint; nothing crosses the
    network on this session, so no client certificate is asked for."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = _FLOOR
    context.load_cert_chain(identity)
    return context
