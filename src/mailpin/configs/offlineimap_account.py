"""One offlineimap account, resolved to the server offlineimap connects to.

The rules of `repository/IMAP.py`, `repository/Gmail.py` and `imapserver.py` (Debian 12:
offlineimap3 0.0~git20211018), applied to a config that `configs.offlineimap` has read (and, for
`select`, edited the way offlineimap's command line does). What the config asks offlineimap to
evaluate as Python (`remotehosteval`, `remoteporteval`) is never executed here.
"""

from __future__ import annotations

import configparser
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from mailpin.configs.offlineimap_parsed import Parsed
from mailpin.errors import ConfigError
from mailpin.model import Account, Mode, Protocol, Tool

# imapserver.py: auth mechanisms tried in this order; all but GSSAPI start TLS first ("tryTLS").
AUTH_MECHANISMS = ("GSSAPI", "XOAUTH2", "CRAM-MD5", "PLAIN", "LOGIN")
# imaplib2.ssl_wrap_socket TLS_MAP: the ssl_version values each tls_level accepts (ssl3 is gone
# from current OpenSSL builds of Python, so it fails there too).
SSL_VERSIONS = {
    "tls_secure": ("tls1_2", "tls1_1"),
    "tls_no_ssl": ("tls1_2", "tls1_1", "tls1"),
    "tls_compat": ("tls1_2", "tls1_1", "tls1", "ssl23", None),
}
_VAR = re.compile(r"\$(\w+|\{[^}]*\})", re.ASCII)  # posixpath.expandvars


# --- resolving one account the way imapserver.IMAPServer.__init__ does ------------------------------


@dataclass(frozen=True)
class Context:
    home: str
    environ: Mapping[str, str]
    cwd: str | None
    overrides: tuple[tuple[str, str], ...] = ()  # (section, "-k ARG") from the command line
    files: bool = False  # check the files offlineimap opens (this machine's config, not a sample)


def resolve(cfg: Parsed, name: str, ctx: Context) -> Account:
    section = "Account " + name
    if not cfg.parser.has_section(section):
        raise ConfigError(cfg.source, None, f"account {name!r}: offlineimap looks for [{section}], which is missing")
    where = f"{cfg.source}:{cfg.line(section)}"
    remote = cfg.get(section, "remoterepository")
    if remote is None:
        raise cfg.error(section, "", f"account {name!r}: [{section}] has no remoterepository")
    repo = "Repository " + remote
    if not cfg.parser.has_section(repo):
        raise cfg.error(section, "remoterepository", f"account {name!r}: remoterepository {remote}: no [{repo}]")
    kind = (cfg.get(repo, "type") or "").strip()
    if kind not in ("IMAP", "Gmail"):  # repository/__init__.py: the only remote types
        problem = f"account {name!r}: [{repo}] type {kind!r}: offlineimap needs IMAP or Gmail for a remote repository"
        raise cfg.error(repo, "type", problem)
    gmail = kind == "Gmail"
    if cfg.has(section, "status_backend"):
        # repository/LocalStatus.py (offlineimap3 8.0): the option is gone, and an account that still
        # sets it (or inherits it from [DEFAULT]) is not synced at all.
        raise cfg.error(
            section, "status_backend", f"account {name!r}: status_backend is not supported by offlineimap 8, which "
            "refuses the account (\"the 'status_backend' configuration option is not supported anymore\"): "
            "remove the line",
        )  # fmt: skip
    notes: list[str] = [
        f"{arg} applied (command line)"
        for sec, arg in ctx.overrides
        if sec in (section, repo, configparser.DEFAULTSECT)
    ]
    pythonfile = cfg.get("general", "pythonfile")
    if pythonfile is not None:
        notes.append(f"pythonfile {pythonfile} is run by offlineimap; mailpin did not run it")
    # imapserver.py: a preauth and a transport tunnel exclude each other (Gmail ignores preauthtunnel).
    preauth = None if gmail else cfg.get(repo, "preauthtunnel")
    tunnel_cmd = cfg.get(repo, "transporttunnel")
    if preauth and tunnel_cmd:
        raise cfg.error(
            repo, "transporttunnel", f"account {name!r}: [{repo}] sets both preauthtunnel and transporttunnel"
        )
    usessl = cfg.boolean(repo, "ssl", True)
    starttls = cfg.boolean(repo, "starttls", True)
    mechs = re.split(r",\s*", (cfg.get(repo, "auth_mechanisms") or ", ".join(AUTH_MECHANISMS)).strip())
    unknown = [m for m in mechs if m not in AUTH_MECHANISMS]
    if unknown:
        raise cfg.error(repo, "auth_mechanisms", f"account {name!r}: unknown auth_mechanisms {unknown[0]!r}")
    tries_tls = any(m != "GSSAPI" for m in mechs)  # imapserver.__authn_helper: STARTTLS before any but GSSAPI
    host, port = _host_port(cfg, name, repo, gmail, usessl, notes, tunnel=bool(preauth or tunnel_cmd))
    trust_file, system_trust, pins = _trust(cfg, repo, ctx, notes)
    if ctx.files and trust_file is not None and not os.path.isfile(trust_file):
        # IMAP.getsslcacertfile, called for every IMAP repository (ssl or not): a named file that is
        # not there stops the account before it connects.
        raise cfg.error(
            repo, "sslcacertfile", f"account {name!r}: sslcacertfile {trust_file}: no such file; offlineimap "
            f"refuses the account (\"CA certfile for repository '{remote}' couldn't be found\")",
        )  # fmt: skip
    fingerprints = tuple(
        f.strip().lower().replace(":", "") for f in (cfg.get(repo, "cert_fingerprint") or "").split(",") if f
    )
    transport = _proxy(cfg, section, notes)
    if preauth or tunnel_cmd:
        # imapserver.acquireconnection: a tunnel carries IMAP as is (no TLS of offlineimap's own); only
        # STARTTLS may follow, and not on a preauth tunnel, which skips authentication and STARTTLS with it.
        # A preauth tunnel hands over a session that is logged in already: never mailpin's tunnel.
        host, port, transport = None, None, f"preauth tunnel {preauth}" if preauth else f"tunnel {tunnel_cmd}"
    if usessl:
        _check_tls(cfg, name, repo, trust_file, system_trust, fingerprints, notes, tunnel=transport)
    certcheck = True
    own = _OwnTLS()
    if usessl and not (preauth or tunnel_cmd):
        mode = Mode.IMPLICIT
        own = _own_tls(cfg, repo, ctx)
        if cfg.has(repo, "starttls") and starttls:
            notes.append("starttls = yes is ignored: ssl is on, so offlineimap uses Implicit TLS")
    elif not usessl and starttls and tries_tls and not preauth:
        mode, certcheck, fingerprints = Mode.STARTTLS, False, ()
        notes.append(
            "ssl is off: offlineimap uses STARTTLS only if the server offers it, and then checks neither the"
            " certificate nor cert_fingerprint"
        )
    else:
        mode = Mode.NONE
    local = cfg.get(section, "localrepository")
    if local and (cfg.get("Repository " + local, "type") or "").strip() == "IMAP":
        notes.append(f"local repository {local} is IMAP too: mailpin checks only the remote one")
    return Account(
        tool=Tool.OFFLINEIMAP,
        name=name,
        protocol=Protocol.IMAP,
        host=host,
        port=port,
        mode=mode,
        source=where,
        trust_file=trust_file,
        system_trust=system_trust,
        certcheck=certcheck,
        fingerprints=fingerprints,
        transport=transport,
        remote=remote,
        user=cfg.get(repo, "remoteuser") or None,
        opportunistic=mode is Mode.STARTTLS,
        pin_options=pins,
        notes=tuple(notes),
        tls_versions=own.versions,
        client_cert=own.cert,
        client_key=own.key,
        tls_sources=own.sources,
    )


# imaplib2.ssl_wrap_socket: ssl.SSLContext(PROTOCOL_TLSv1_2) and the like speak that one version
# only; ssl23 (or no ssl_version) is PROTOCOL_SSLv23, Python's default range.
_PROTOCOLS = {"tls1_2": ("TLSv1.2",), "tls1_1": ("TLSv1.1",), "tls1": ("TLSv1",)}


@dataclass(frozen=True)
class _OwnTLS:
    versions: tuple[str, ...] = ()
    cert: str | None = None
    key: str | None = None
    sources: tuple[tuple[str, str, str], ...] = ()


def _own_tls(cfg: Parsed, repo: str, ctx: Context) -> _OwnTLS:
    """The TLS settings offlineimap applies to its own Implicit TLS session (imaplib2.ssl_wrap_socket):
    `ssl_version`, and `sslclientcert`/`sslclientkey` (ctx.load_cert_chain when either is set). Its
    STARTTLS path (imaplib2.starttls with no arguments) applies none of them."""
    sources: list[tuple[str, str, str]] = []
    for role, option in (("versions", "ssl_version"), ("client", "sslclientcert"), ("client", "sslclientkey")):
        if cfg.has(repo, option):
            line = cfg.line(repo, option)
            where = f"{cfg.source}:{line}" if line else cfg.source
            sources.append((role, option if line else f"{option} (offlineimap -k)", where))
    cert, key = cfg.get(repo, "sslclientcert"), cfg.get(repo, "sslclientkey")
    return _OwnTLS(
        versions=_PROTOCOLS.get(cfg.get(repo, "ssl_version") or "", ()),
        cert=None if cert is None else _path(cert, ctx),
        key=None if key is None else _path(key, ctx),
        sources=tuple(sources),
    )


def _path(raw: str, ctx: Context) -> str:
    """IMAP.getconf_xform(…, [expanduser, expandvars, abspath]), as offlineimap reads its file options."""
    path = raw if not (raw == "~" or raw.startswith("~/")) else ctx.home + raw[1:]
    path = _VAR.sub(lambda m: ctx.environ.get(m.group(1).strip("{}"), m.group(0)), path)
    if ctx.cwd is not None:
        path = os.path.normpath(os.path.join(ctx.cwd, path))
    return path


def _host_port(
    cfg: Parsed, name: str, repo: str, gmail: bool, usessl: bool, notes: list[str], tunnel: bool
) -> tuple[str | None, int | None]:
    host: str | None = None  # imapserver.IMAPServer: no host name with a tunnel (the port is still read)
    if tunnel:
        pass
    elif cfg.has(repo, "remotehosteval"):  # IMAP.gethost: the eval wins over remotehost
        notes.append(f"remotehosteval (line {cfg.line(repo, 'remotehosteval')}) decides the host: not executed")
    else:
        host = cfg.get(repo, "remotehost", "imap.gmail.com" if gmail else None)
        if not host:
            raise cfg.error(repo, "remotehost", f"account {name!r}: [{repo}] has no remotehost")
    port: int | None
    if cfg.has(repo, "remoteporteval"):  # IMAP.getport: the eval wins over remoteport
        port = None
        notes.append(f"remoteporteval (line {cfg.line(repo, 'remoteporteval')}) decides the port: not executed")
    else:
        # Gmail.getport falls back to 993 whatever `ssl` says; IMAPServer to 993 with ssl, else 143.
        port = cfg.integer(repo, "remoteport")
        port = port if port is not None else 993 if gmail or usessl else 143
        if not 0 < port < 65536:
            raise cfg.error(repo, "remoteport", f"account {name!r}: remoteport {port} is not a TCP port")
    return host, port


def _trust(
    cfg: Parsed, repo: str, ctx: Context, notes: list[str]
) -> tuple[str | None, bool, tuple[tuple[str, str], ...]]:
    pins: list[tuple[str, str]] = []
    raw = cfg.get(repo, "sslcacertfile")
    fingerprint = cfg.get(repo, "cert_fingerprint")
    if fingerprint is not None:
        pins.append(("cert_fingerprint", fingerprint))
    if raw is None:
        return None, False, tuple(pins)
    pins.insert(0, ("sslcacertfile", raw))
    if raw == "OS-DEFAULT":  # IMAP.getsslcacertfile: exactly this spelling means the system bundle
        # offlineimap loads this one file (ctx.load_verify_locations), never SSL_CERT_FILE/SSL_CERT_DIR:
        # mailpin must not trust a CA from there that offlineimap would not.
        bundle = next((path for path in _OS_BUNDLES.get(_os_name(), ()) if os.path.isfile(path)), None)
        if bundle is None:
            raise cfg.error(repo, "sslcacertfile", "sslcacertfile OS-DEFAULT: offlineimap knows no CA bundle here")
        notes.append(f"sslcacertfile OS-DEFAULT: offlineimap uses {bundle}")
        return bundle, False, tuple(pins)
    return _path(raw, ctx), False, tuple(pins)  # IMAP.getsslcacertfile: expanduser, expandvars, abspath


# utils/distro_utils.py __DEF_OS_LOCATIONS: where `sslcacertfile = OS-DEFAULT` looks, the first file found.
_DEBIAN_LIKE = ("/etc/ssl/certs/ca-certificates.crt",)
_OS_BUNDLES = {
    "freebsd": ("/usr/local/share/certs/ca-root-nss.crt",),
    "openbsd": ("/etc/ssl/cert.pem",),
    "dragonfly": ("/etc/ssl/cert.pem",),
    "darwin": ("/opt/local/share/curl/curl-ca-bundle.crt", "/usr/local/etc/openssl/cert.pem"),
    "linux-ubuntu": _DEBIAN_LIKE,
    "linux-debian": _DEBIAN_LIKE,
    "linux-gentoo": _DEBIAN_LIKE,
    "linux-arch": _DEBIAN_LIKE,
    "linux-fedora": ("/etc/pki/tls/certs/ca-bundle.crt",),
    "linux-redhat": ("/etc/pki/tls/certs/ca-bundle.crt",),
    "linux-suse": ("/etc/ssl/ca-bundle.pem",),
    "linux-opensuse": ("/etc/ssl/ca-bundle.pem",),
}


def _os_name() -> str:
    """distro_utils.get_os_name: the system, and on Linux the first word of the distribution's name
    (`distro`: os-release NAME), lower case; `linux-arch` whenever /etc/arch-release exists."""
    import platform

    name = platform.system().lower()
    if name.startswith("linux"):
        distribution = _os_release_name()
        if distribution:
            name += "-" + distribution.split()[0].lower()
        if os.path.exists("/etc/arch-release"):
            name = "linux-arch"
    return name


def _os_release_name() -> str:
    import shlex

    for path in ("/etc/os-release", "/usr/lib/os-release"):
        try:
            with open(path, encoding="utf-8", errors="replace") as lines:
                for line in lines:
                    if line.startswith("NAME="):
                        words = shlex.split(line[5:].strip())
                        return words[0] if words else ""
        except (OSError, ValueError):
            continue
    return ""


def _check_tls(
    cfg: Parsed,
    name: str,
    repo: str,
    trust_file: str | None,
    system: bool,
    fps: tuple[str, ...],
    notes: list[str],
    tunnel: str | None,
) -> None:
    level = cfg.get(repo, "tls_level", "tls_compat") or ""
    version = cfg.get(repo, "ssl_version")
    if level != "tls_compat" and version is None:  # imapserver.IMAPServer.__init__
        raise cfg.error(repo, "tls_level", f"account {name!r}: tls_level {level} needs ssl_version set too")
    if tunnel is not None and tunnel.startswith("tunnel"):
        return  # the checks below run only when offlineimap wraps the socket in TLS itself
    if level not in SSL_VERSIONS or version not in SSL_VERSIONS[level]:  # imaplib2.ssl_wrap_socket
        raise cfg.error(
            repo, "ssl_version", f"account {name!r}: ssl_version {version} is not valid for tls_level {level}"
        )
    if version is not None:
        notes.append(f"ssl_version {version}: offlineimap speaks only that TLS version")
    if trust_file is None and not system and not fps:  # imaplibutil.WrappedIMAP4_SSL.open
        problem = f"account {name!r}: ssl is on but [{repo}] sets neither sslcacertfile nor cert_fingerprint"
        raise cfg.error(repo, "", problem)


def _proxy(cfg: Parsed, section: str, notes: list[str]) -> str | None:
    value = cfg.get(section, "proxy")  # imapserver._get_proxy: TYPE:HOST:PORT, needs PySocks
    parts = (value or "").split(":")
    if len(parts) != 3 or not parts[2].strip().isdigit():
        return None
    notes.append("proxy is used only when PySocks is installed; otherwise offlineimap connects directly")
    return f"proxy {parts[1]}:{int(parts[2])}"


def resolve_all(
    cfg: Parsed, names: Sequence[str], ctx: Context
) -> tuple[list[Account], tuple[tuple[str, ConfigError], ...]]:
    accounts, problems = [], []
    for name in names:
        try:
            accounts.append(resolve(cfg, name, ctx))
        except ConfigError as exc:
            problems.append((name, exc))
    return accounts, tuple(problems)
