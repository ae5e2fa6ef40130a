"""One fetchmail poll (a `struct query`, its options merged) as the connection fetchmail 6.4 makes.

The rules, from fetchmail 6.4.37's sources:
- where: driver.c `do_session` connects to `via`, else the poll name (`realhost`), at `service`/`port`,
  else the protocol's service (pop3/imap, pop3s/imaps with `ssl`); with `plugin` it runs that command
  instead (socket.c `handle_plugin`) and speaks over its stdin/stdout.
- how: `ssl` is TLS from the first byte. Otherwise starttls.c: `maybe_starttls` unless `sslproto ''`,
  and `must_starttls` when `sslcertck` (the default since 6.4.0), `sslfingerprint` or a non-empty
  `sslproto` is set; without any of them the upgrade is opportunistic (only if offered; a failed one
  goes on in cleartext). STLS is sent for `proto pop3` only (pop3.c), never for apop/rpop.
- checks: socket.c `SSLOpen` verifies against `sslcertfile`/`sslcertpath` instead of the default store
  (unless FETCHMAIL_INCLUDE_DEFAULT_X509_CA_CERTS is set), the name is `sslcommonname` else
  `realhost` (also sent as SNI), `sslcertck` off accepts any chain, `sslfingerprint` is the MD5 of
  the certificate's DER as colon hex (XX:XX:…, compared case-blind), and `sslproto` bounds the
  versions (OSSL110_proto_version_logic; this OpenSSL has no SSLv3).
"""

from __future__ import annotations

import re
import socket
from collections.abc import Mapping

from mailpin.configs.fetchmail_syntax import Setting
from mailpin.errors import ConfigError
from mailpin.model import DEFAULT_PORTS, Account, Mode, Protocol, Tool

PROTOCOLS = {"pop3": Protocol.POP3, "apop": Protocol.POP3, "rpop": Protocol.POP3, "imap": Protocol.IMAP}
_SERVICES = {Protocol.POP3: ("pop3", "pop3s"), Protocol.IMAP: ("imap", "imaps")}  # pop3.c / imap.c method tables
_FINGERPRINT = re.compile(r"[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){15}")  # MD5, as socket.c prints it
_NUMERIC = re.compile(r"[ \t\n\v\f\r]*[+-]?[0-9]+")
# OSSL110_proto_version_logic: the floor is always TLSv1 (SSLv3 is not built into Debian's OpenSSL 3).
_VERSIONS = {
    "tls1": ("TLSv1",), "tls1.1": ("TLSv1.1",), "tls1.1+": ("TLSv1.1", "TLSv1.2", "TLSv1.3"),
    "tls1.2": ("TLSv1.2",), "tls1.2+": ("TLSv1.2", "TLSv1.3"), "tls1.3": ("TLSv1.3",), "tls1.3+": ("TLSv1.3",),
    "ssl3": ("none",),  # "Your OpenSSL version does not support SSLv3.": every handshake fails
}  # fmt: skip
_AUTO = frozenset({"auto", "ssl23", "tls1+", "ssl3+"})  # TLSv1 or newer: fetchmail's default
TLS_MEMBERS = (
    ("use_ssl", "ssl"), ("sslproto", "sslproto"), ("sslcertck", "sslcertck"), ("sslcertfile", "sslcertfile"),
    ("sslcertpath", "sslcertpath"), ("sslcommonname", "sslcommonname"), ("sslfingerprint", "sslfingerprint"),
    ("sslcert", "sslcert"), ("sslkey", "sslkey"),
)  # fmt: skip


def split_where(where: str) -> tuple[str, int | None]:
    """FILE:LINE -> (FILE, LINE); the command line has no line."""
    source, _, line = where.rpartition(":")
    return (source, int(line)) if source and line.isdigit() else (where, None)


def servport(service: str) -> int:
    """servport.c: a decimal port 1-65535 (trailing white space allowed), `kpop` (1109), or a service
    name; -1 when fetchmail refuses it ("specify positive port number for service or port")."""
    text = service.strip(" \t\n\v\f\r") if _NUMERIC.fullmatch(service.rstrip(" \t\n\v\f\r")) else None
    if text is not None:
        number = int(text)
        return number if 0 < number <= 65535 else -1
    if service == "kpop":
        return 1109
    try:
        return socket.getservbyname(service, "tcp")
    except OSError:
        return -1


def connect_port(service: str) -> int | None:
    """The port getaddrinfo(host, service) gives SockOpen: all of it a number, else a service name."""
    if _NUMERIC.fullmatch(service):
        number = int(service.strip(" \t\n\v\f\r"))
        return number if 0 <= number <= 65535 else None
    try:
        return socket.getservbyname(service, "tcp")
    except OSError:
        return None


def run_problem(fields: Mapping[str, Setting], pollname: str, source: str) -> ConfigError | None:
    """load_params' checks of an active poll: fetchmail exits 5 before it polls anything."""
    auth = fields.get("authenticate")
    if auth is not None and auth.value == "kerberos_v4":
        return ConfigError(*split_where(auth.where), "KERBEROS v4 support is configured, but not compiled in.")
    service = fields.get("service")
    protocol = fields.get("protocol")
    if service is not None:
        port = servport(str(service.value))
        file, line = split_where(service.where)
        if port < 0:
            return ConfigError(file, line, f"fetchmail: {pollname} configuration invalid, specify positive port "
                               "number for service or port")  # fmt: skip
        if protocol is not None and protocol.value == "rpop" and port >= 1024:
            return ConfigError(file, line, f"fetchmail: {pollname} configuration invalid, RPOP requires a "
                               "privileged port")  # fmt: skip
    if fields.get("listener") is not None:
        hunt = fields.get("smtphunt")
        for host in hunt.value if hunt is not None and isinstance(hunt.value, tuple) else ("localhost",):
            tail = (host or "").rpartition("/")
            default = not tail[1] or tail[2] == "smtp" or servport(tail[2]) == 25
            if host and not host.startswith("/") and default:
                return ConfigError(source, None, f"{pollname} configuration invalid, LMTP can't use default SMTP port")
    return None


def _value(fields: Mapping[str, Setting], name: str) -> str | None:
    setting = fields.get(name)
    return None if setting is None else str(setting.value)


def _flag(fields: Mapping[str, Setting], name: str, default: bool) -> bool:
    """fetchmail.c DEFAULT(): FLAG_TRUE / FLAG_FALSE as written, else the default."""
    setting = fields.get(name)
    return default if setting is None else bool(setting.value)


def _at(fields: Mapping[str, Setting], member: str) -> str:
    """Where a member was set, for a note: `line N`, or the command line."""
    _, line = split_where(fields[member].where)
    return f"line {line}" if line is not None else "command line"


def _problem(fields: Mapping[str, Setting], member: str, source: str, problem: str) -> ConfigError:
    setting = fields.get(member)
    file, line = split_where(setting.where) if setting is not None else split_where(source)
    return ConfigError(file, line, problem)


def resolve(
    fields: Mapping[str, Setting], pollname: str, name: str, source: str, environ: Mapping[str, str]
) -> Account:
    """The Account of one poll; ConfigError for a poll mailpin cannot verify (fetchmail may still poll it)."""
    kind = _value(fields, "protocol") or "auto"
    where = f"poll {pollname}"
    if kind == "auto":
        said = "proto auto" if "protocol" in fields else "no proto (fetchmail's default is auto)"
        raise _problem(
            fields,
            "protocol",
            source,
            f"{where}: {said}: fetchmail tries IMAP, then POP3 on the "
            "same poll; mailpin verifies one protocol per account — name it: proto imap, or proto pop3",
        )
    if kind not in PROTOCOLS:
        why = (
            "POP2 support is not built into this fetchmail" if kind == "pop2" else "mailpin verifies POP3 and IMAP only"
        )
        raise _problem(fields, "protocol", source, f"{where}: proto {kind}: {why}")
    protocol = PROTOCOLS[kind]
    host = _value(fields, "via") if "via" in fields else pollname
    if not host:
        raise _problem(fields, "via", source, f"{where}: the host name is empty, so fetchmail connects nowhere")
    use_ssl, certck = _flag(fields, "use_ssl", False), _flag(fields, "sslcertck", True)
    sslproto, fingerprint = _value(fields, "sslproto"), _value(fields, "sslfingerprint")
    notes: list[str] = []
    mode, opportunistic = _mode(kind, use_ssl, sslproto, fingerprint, certck, fields, notes)
    service = _value(fields, "service")
    if service is None:
        port: int | None = DEFAULT_PORTS[(protocol, Mode.IMPLICIT if use_ssl else Mode.STARTTLS)]
        service = _SERVICES[protocol][use_ssl]
    else:
        port = connect_port(service)
        if port is None:
            raise _problem(fields, "service", source, f"{where}: fetchmail cannot resolve service {service!r} to a "
                           "port when it connects (getaddrinfo), so it never connects")  # fmt: skip
    plugin = _value(fields, "plugin")
    tls = mode is not Mode.NONE
    # SSLOpen checks (and sends as SNI) sslcommonname, else realhost: with a plugin that is the only
    # place the host name still matters.
    servername = _value(fields, "sslcommonname") if tls else None
    if plugin is not None:
        notes.append(
            f"{_at(fields, 'plugin')}: plugin: fetchmail runs {plugin!r} (split at white space, %h and %p "
            f"replaced by {host} and {service}, no shell) and speaks {kind.upper()} over it; it opens no "
            "connection itself"
        )
        servername = (servername or host) if tls else None
    if tls and fingerprint is not None and not _FINGERPRINT.fullmatch(fingerprint):
        raise _problem(fields, "sslfingerprint", source, f"{where}: sslfingerprint {fingerprint!r} can never match: "
                       "fetchmail compares it with the certificate's MD5 written as 16 colon-separated hex bytes "
                       "(XX:XX:…), so it never connects")  # fmt: skip
    trust_file, system_trust = _trust(fields, source, where, tls and certck, environ, notes)
    cert, key = _value(fields, "sslcert"), _value(fields, "sslkey")
    for member, words in (("preconnect", "before"), ("postconnect", "after")):
        if member in fields:
            notes.append(
                f"{_at(fields, member)}: {member}: fetchmail runs this shell command {words} each poll; "
                "mailpin did not run it"
            )
    for member in ("interface", "monitor", "plugout"):
        if member in fields:
            notes.append(f"{_at(fields, member)}: {member} {_value(fields, member)}: seen, not verified by mailpin")
    return Account(
        tool=Tool.FETCHMAIL,
        name=name,
        protocol=protocol,
        host=None if plugin is not None else host,
        port=None if plugin is not None else port,
        mode=mode,
        source=source,
        servername=servername,
        trust_file=trust_file,
        system_trust=system_trust,
        certcheck=certck,
        fingerprints=(fingerprint,) if tls and fingerprint is not None else (),
        transport=None if plugin is None else f"tunnel {plugin}",
        opportunistic=opportunistic,
        user=_value(fields, "remotename"),
        pin_options=_pin_options(fields),
        notes=tuple(notes),
        tls_versions=_versions(sslproto) if tls else (),
        client_cert=(cert or key) if tls else None,
        client_key=key if tls and cert and key and key != cert else None,
        tls_sources=_tls_sources(fields) if tls else (),
    )


def _mode(
    kind: str,
    use_ssl: bool,
    sslproto: str | None,
    fingerprint: str | None,
    certck: bool,
    fields: Mapping[str, Setting],
    notes: list[str],
) -> tuple[Mode, bool]:
    if use_ssl:
        if sslproto == "":
            notes.append("ssl with sslproto '': fetchmail logs an error and negotiates as with sslproto auto")
        return Mode.IMPLICIT, False
    if kind in ("apop", "rpop"):
        notes.append(f"proto {kind}: fetchmail sends STLS for proto pop3 only (pop3.c), so without ssl this "
                     "session is cleartext whatever sslcertck or sslproto say")  # fmt: skip
        return Mode.NONE, False
    if sslproto == "":  # maybe_starttls() is false: no STARTTLS at all
        return Mode.NONE, False
    must = fingerprint is not None or certck or bool(sslproto)  # must_starttls()
    if not must:
        notes.append("no sslcertck without sslproto or sslfingerprint: fetchmail upgrades with STARTTLS only when "
                      "offered, and carries on in cleartext when the upgrade fails")  # fmt: skip
    return Mode.STARTTLS, not must


def _versions(sslproto: str | None) -> tuple[str, ...]:
    """sslproto's versions (strcasecmp); auto, tls1+, ssl23 and anything unknown are fetchmail's default."""
    if sslproto is None:
        return ()
    return _VERSIONS.get(sslproto.lower(), ())


def _trust(
    fields: Mapping[str, Setting],
    source: str,
    where: str,
    checked: bool,
    environ: Mapping[str, str],
    notes: list[str],
) -> tuple[str | None, bool]:
    """socket.c SSLOpen: sslcertfile/sslcertpath replace the default store, unless
    FETCHMAIL_INCLUDE_DEFAULT_X509_CA_CERTS is set (non-empty) in fetchmail's environment."""
    file, path = _value(fields, "sslcertfile"), _value(fields, "sslcertpath")
    include_default = bool(environ.get("FETCHMAIL_INCLUDE_DEFAULT_X509_CA_CERTS"))
    if checked and file == "":
        raise _problem(fields, "sslcertfile", source, f"{where}: sslcertfile is empty: fetchmail cannot load it "
                       "(\"Cannot load verify locations\") and never connects")  # fmt: skip
    if path is not None:
        if checked:
            raise _problem(fields, "sslcertpath", source, f"{where}: sslcertpath {path}: mailpin cannot take a "
                           "certificate directory as the account's trust; put its CA certificates in one file and "
                           "name that with sslcertfile")  # fmt: skip
        notes.append(f"{_at(fields, 'sslcertpath')}: sslcertpath {path}: unused, certificate checks are off")
    return file or None, include_default or (file is None and path is None)


def _pin_options(fields: Mapping[str, Setting]) -> tuple[tuple[str, str], ...]:
    out = []
    for member, option in TLS_MEMBERS:
        setting = fields.get(member)
        if setting is not None:
            value = setting.value
            out.append((option, ("yes" if value else "no") if isinstance(value, bool) else str(value)))
    return tuple(out)


def _tls_sources(fields: Mapping[str, Setting]) -> tuple[tuple[str, str, str], ...]:
    roles = (("versions", "sslproto"), ("trust", "sslcertfile"), ("trust", "sslcertpath"), ("client", "sslcert"),
             ("client", "sslkey"))  # fmt: skip
    found = [(role, fields[member]) for role, member in roles if member in fields]
    return tuple((role, setting.text, setting.where) for role, setting in found)
