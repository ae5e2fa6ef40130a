"""offlineimap (offlineimap3): its config and command line, read the way offlineimap reads them.

offlineimap reads its config with `configparser` (`offlineimap/CustomConfig.py`: `SafeConfigParser`,
i.e. `[DEFAULT]` and `%(name)s` BasicInterpolation), so this module does too, replays the edits
`offlineimap/init.py` makes from the command line (`-k`, `--dry-run`, `-o`, `-q`, `-f`), and then
resolves each account with the rules of `repository/IMAP.py`, `repository/Gmail.py` and
`imapserver.py` (Debian 12: offlineimap3 0.0~git20211018). What the config asks offlineimap to
evaluate as Python (`pythonfile`, `remotehosteval`, `remoteporteval`) is never executed here.
"""

from __future__ import annotations

import configparser
import io
import optparse
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from mailpin.env import Env
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
UIS = ("ttyui", "basic", "quiet", "syslog", "machineui", "blinkenlights")  # ui/__init__.py UI_LIST
_VAR = re.compile(r"\$(\w+|\{[^}]*\})", re.ASCII)  # posixpath.expandvars


@dataclass(frozen=True)
class OfflineimapConfig:
    accounts: tuple[Account, ...]  # every [Account X] whose remote IMAP/Gmail repository resolves, file order
    source: str  # the file read (when none was found: the one offlineimap would have complained about)
    general_accounts: str | None = None  # `[general] accounts` as offlineimap reads it
    problems: tuple[tuple[str, ConfigError], ...] = ()  # (account, why offlineimap would fail on it)
    found: bool = True  # False: no config file at all (offlineimap itself would abort)
    text: str = ""  # select() replays the command line on a fresh parser of this text, as offlineimap does
    home: str = ""
    environ: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}), compare=False)
    cwd: str | None = None  # relative sslcacertfile paths are relative to offlineimap's working directory


# --- reading: configparser, plus the line each section and option came from -------------------------


class _Parsed:
    """A `configparser.ConfigParser` as offlineimap builds it, and where each value was written."""

    def __init__(self, text: str, source: str) -> None:
        self.source = source
        self.lines: dict[tuple[str, str], int] = {}
        self._now = 0
        self._reading = True
        self.parser = configparser.ConfigParser(dict_type=self._recording_dict())
        try:
            self.parser.read_file(self._numbered(text), source)
        except configparser.DuplicateSectionError as exc:
            raise ConfigError(source, exc.lineno, f"section [{exc.section}] appears twice") from None
        except configparser.DuplicateOptionError as exc:
            problem = f"option {exc.option!r} appears twice in [{exc.section}]"
            raise ConfigError(source, exc.lineno, problem) from None
        except configparser.MissingSectionHeaderError as exc:
            problem = f"{exc.line.strip()!r} comes before any [section] header"
            raise ConfigError(source, exc.lineno, problem) from None
        except configparser.ParsingError as exc:
            line, text_ = exc.errors[0]
            problem = f"cannot read {text_}: expected `option = value`, a [section] header or a # comment"
            raise ConfigError(source, line, problem) from None
        except configparser.Error as exc:  # any other complaint concerns the file as a whole
            raise ConfigError(source, None, exc.message) from None
        self._reading = False

    def _numbered(self, text: str) -> Iterator[str]:
        # io.StringIO(newline=None) splits lines as offlineimap's open() of the file does.
        for number, line in enumerate(io.StringIO(text, newline=None), 1):
            self._now = number
            yield line

    def _recording_dict(self) -> type[dict[str, Any]]:
        """configparser stores sections and `[value]` lists in its dict_type while reading: note the line."""
        owner = self

        class Recording(dict[str, Any]):
            section = configparser.DEFAULTSECT

            def __setitem__(self, key: str, value: Any) -> None:
                if owner._reading and isinstance(value, Recording):
                    value.section = key
                    owner.lines.setdefault((key, ""), owner._now)
                elif owner._reading and isinstance(value, list):
                    owner.lines.setdefault((self.section, key), owner._now)
                super().__setitem__(key, value)

        return Recording

    def line(self, section: str, option: str = "") -> int | None:
        found = self.lines.get((section, option))
        return found if found is not None or not option else self.lines.get((configparser.DEFAULTSECT, option))

    def error(self, section: str, option: str, problem: str) -> ConfigError:
        line = self.line(section, option) if self.parser.has_option(section, option) else self.line(section)
        return ConfigError(self.source, line, problem)

    def has(self, section: str, option: str) -> bool:
        return self.parser.has_option(section, option)

    def get(self, section: str, option: str, default: str | None = None) -> str | None:
        """CustomConfig.getdefault: the interpolated value, or `default` when the option is absent."""
        if not self.parser.has_option(section, option):
            return default
        try:
            return self.parser.get(section, option)
        except configparser.InterpolationError as exc:
            raise self.error(section, option, f"[{section}] {option}: {_interpolation(exc)}") from None

    def boolean(self, section: str, option: str, default: bool) -> bool:
        value = self.get(section, option)
        if value is None:
            return default
        if value.lower() not in self.parser.BOOLEAN_STATES:  # exactly getboolean's rule (yes/no/on/off/1/0/…)
            problem = f"[{section}] {option} = {value!r} is not a boolean (use yes or no)"
            raise self.error(section, option, problem)
        return self.parser.BOOLEAN_STATES[value.lower()]

    def integer(self, section: str, option: str) -> int | None:
        value = self.get(section, option)
        try:
            return None if value is None else int(value)  # configparser getint
        except ValueError:
            raise self.error(section, option, f"[{section}] {option} = {value!r} is not a number") from None


def _interpolation(exc: configparser.InterpolationError) -> str:
    if isinstance(exc, configparser.InterpolationMissingOptionError):
        return f"%({exc.reference})s refers to no option of this section or [DEFAULT]"
    if isinstance(exc, configparser.InterpolationDepthError):
        return "%(…)s references nest too deep (a loop?)"
    return f"bad % syntax (write %% for a literal %): {exc.message.splitlines()[0]}"


# --- resolving one account the way imapserver.IMAPServer.__init__ does ------------------------------


@dataclass(frozen=True)
class _Context:
    home: str
    environ: Mapping[str, str]
    cwd: str | None
    overrides: tuple[tuple[str, str], ...] = ()  # (section, "-k ARG") from the command line


def _account_names(parser: configparser.ConfigParser) -> list[str]:
    # accounts.getaccountlist + CustomConfig.getsectionlist: "Account X" sections, names lstripped.
    return [section[len("Account ") :].lstrip() for section in parser.sections() if section.startswith("Account ")]


def _resolve(cfg: _Parsed, name: str, ctx: _Context) -> Account:
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
    fingerprints = tuple(
        f.strip().lower().replace(":", "") for f in (cfg.get(repo, "cert_fingerprint") or "").split(",") if f
    )
    transport = _proxy(cfg, section, notes)
    if preauth or tunnel_cmd:
        # imapserver.acquireconnection: a tunnel carries IMAP as is (no TLS of offlineimap's own); only
        # STARTTLS may follow, and not on a preauth tunnel, which skips authentication and STARTTLS with it.
        host, port, transport = None, None, f"tunnel {preauth or tunnel_cmd}"
    if usessl:
        _check_tls(cfg, name, repo, trust_file, system_trust, fingerprints, notes, tunnel=transport)
    certcheck = True
    if usessl and not (preauth or tunnel_cmd):
        mode = Mode.IMPLICIT
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
        opportunistic=mode is Mode.STARTTLS,
        pin_options=pins,
        notes=tuple(notes),
    )


def _host_port(
    cfg: _Parsed, name: str, repo: str, gmail: bool, usessl: bool, notes: list[str], tunnel: bool
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
    cfg: _Parsed, repo: str, ctx: _Context, notes: list[str]
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
        notes.append("sslcacertfile OS-DEFAULT: offlineimap uses the system CA bundle")
        return None, True, tuple(pins)
    # IMAP.getsslcacertfile: expanduser, expandvars, abspath.
    path = raw if not (raw == "~" or raw.startswith("~/")) else ctx.home + raw[1:]
    path = _VAR.sub(lambda m: ctx.environ.get(m.group(1).strip("{}"), m.group(0)), path)
    if ctx.cwd is not None:
        path = os.path.normpath(os.path.join(ctx.cwd, path))
    return path, False, tuple(pins)


def _check_tls(
    cfg: _Parsed,
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


def _proxy(cfg: _Parsed, section: str, notes: list[str]) -> str | None:
    value = cfg.get(section, "proxy")  # imapserver._get_proxy: TYPE:HOST:PORT, needs PySocks
    parts = (value or "").split(":")
    if len(parts) != 3 or not parts[2].strip().isdigit():
        return None
    notes.append("proxy is used only when PySocks is installed; otherwise offlineimap connects directly")
    return f"proxy {parts[1]}:{int(parts[2])}"


# --- the command line, parsed by the same optparse table as offlineimap/init.py ---------------------


class _Stop(Exception):
    """--help / --version: offlineimap prints and exits before reading any config."""


class _ArgvError(Exception):
    pass


class _OptionParser(optparse.OptionParser):
    def error(self, msg: str) -> Any:  # optparse would print usage and exit 2
        raise _ArgvError(msg)

    def exit(self, status: int = 0, msg: str | None = None) -> Any:
        raise _Stop

    def print_help(self, file: Any = None) -> None:
        pass

    def print_version(self, file: Any = None) -> None:
        pass


def _options(argv: Sequence[str]) -> optparse.Values:
    """offlineimap's options (init.py `__parse_cmd_options`), with optparse's own abbreviation rules."""
    parser = _OptionParser(version="offlineimap")
    for flag, dest in (
        ("-V", "version"), ("--dry-run", "dryrun"), ("--info", "diagnostics"), ("-1", "singlethreading"),
        ("-s", "syslog"), ("-o", "runonce"), ("-q", "quick"), ("--migrate-fmd5-using-nametrans", "migrate_fmd5"),
        ("--mbnames-prune", "mbnames_prune"),
    ):  # fmt: skip
        parser.add_option(flag, action="store_true", dest=dest, default=False)
    for flag, dest in (
        ("-P", "profiledir"), ("-a", "accounts"), ("-c", "configfile"), ("-d", "debugtype"), ("-l", "logfile"),
        ("-f", "folders"), ("-u", "interface"), ("--delete-folder", "deletefolder"),
    ):  # fmt: skip
        parser.add_option(flag, dest=dest)
    parser.add_option("-k", dest="configoverride", action="append")
    options, _ = parser.parse_args(list(argv))
    return options


def _replay(cfg: _Parsed, opts: optparse.Values) -> tuple[tuple[str, str], ...]:
    """What init.py does to the config before any account runs; returns the -k edits by section."""
    parser, edits = cfg.parser, []
    for arg in opts.configoverride or ():
        if "=" not in arg:
            raise ValueError(f"-k {arg}: expected [section:]option=value")
        key, value = arg.split("=", 1)
        section = "general"
        if ":" in key:
            name, key = key.split(":", 1)
            section = name.replace("_", " ")  # init.py: -k Repository_work:… means [Repository work]
        try:
            parser.set(section, key, value)
        except configparser.NoSectionError:
            raise ValueError(f"-k {arg}: there is no [{section}] section") from None
        edits.append((section, f"-k {arg}"))
    ui = cfg.get("general", "ui", "ttyui") or ""
    ui = (ui if opts.interface is None else opts.interface).split(".")[-1]
    if not opts.diagnostics and ui.lower() not in UIS:
        raise ValueError(f"UI {ui!r} does not exist, choose one of: {', '.join(UIS)}")
    if not parser.has_section("general"):
        raise ValueError("there is no [general] section")
    if opts.dryrun:
        parser.set("general", "dry-run", "True")
    if not parser.has_option("general", "dry-run"):
        parser.set("general", "dry-run", "False")
    names = _account_names(parser)
    if opts.runonce:
        for name in names:
            parser.remove_option("Account " + name, "autorefresh")
    if opts.quick:
        for name in names:
            parser.set("Account " + name, "quick", "-1")
    if opts.folders:
        for name in names:
            remote = "Repository " + parser.get("Account " + name, "remoterepository")
            parser.set(remote, "folderfilter", f"lambda f: f in {opts.folders.split(',')}")
            parser.set(remote, "folderincludes", "[]")
    for option in ("socktimeout", "maxsyncaccounts"):
        cfg.integer("general", option)
    debug = "imap,maildir,thread" if (opts.debugtype or "").lower() == "all" else opts.debugtype
    single = opts.singlethreading or bool(opts.profiledir)
    single = single or bool(debug and not ("thread" in debug.split(",") and not single))
    if not single:  # init.py sizes each repository's thread pool from maxconnections
        for section in parser.sections():
            if section.startswith("Repository "):
                cfg.integer(section, "maxconnections")
    return tuple(edits)


def _active(cfg: _Parsed, opts: optparse.Values) -> list[str]:
    """init.py `_get_activeaccounts`: -a overrides [general] accounts (which must exist all the same)."""
    listed = cfg.get("general", "accounts")
    if listed is None:
        raise cfg.error("general", "", "[general] has no accounts option (offlineimap requires it, even with -a)")
    names = [name.lstrip() for name in (opts.accounts or listed).split(",")]
    known = _account_names(cfg.parser)
    for name in names:
        if name not in known:
            problem = f"account {name!r} does not exist; valid accounts: {', '.join(known) or 'none'}"
            if opts.accounts:
                raise ConfigError(cfg.source, None, f"offlineimap -a {opts.accounts}: {problem}")
            raise cfg.error("general", "accounts", f"[general] accounts: {problem}")
    return list(dict.fromkeys(names))


# --- the module contract ----------------------------------------------------------------------------


def parse(
    text: str, source: str, home: str, *, environ: Mapping[str, str] | None = None, cwd: str | None = None
) -> OfflineimapConfig:
    """Every account of an offlineimap config, as offlineimap would resolve it without command-line edits."""
    cfg = _Parsed(text, source)
    ctx = _Context(home, MappingProxyType(dict(environ or {})), cwd)
    accounts, problems = _resolve_all(cfg, _account_names(cfg.parser), ctx)
    try:
        general = cfg.get("general", "accounts")
    except ConfigError as exc:
        general, problems = None, (*problems, ("[general]", exc))
    return OfflineimapConfig(tuple(accounts), source, general, problems, True, text, home, ctx.environ, cwd)


def _resolve_all(
    cfg: _Parsed, names: Sequence[str], ctx: _Context
) -> tuple[list[Account], tuple[tuple[str, ConfigError], ...]]:
    accounts, problems = [], []
    for name in names:
        try:
            accounts.append(_resolve(cfg, name, ctx))
        except ConfigError as exc:
            problems.append((name, exc))
    return accounts, tuple(problems)


def config_paths(argv: Sequence[str], env: Env) -> list[Path]:
    """init.py: -c FILE; else $XDG_CONFIG_HOME/offlineimap/config if it exists; else ~/.offlineimaprc."""
    try:
        explicit = _options(argv).configfile
    except (_ArgvError, _Stop):
        explicit = None
    if explicit:  # `-c ''` counts as absent, like offlineimap's `if not options.configfile`
        return [Path(_expanduser(explicit, env))]
    # offlineimap takes any non-empty XDG_CONFIG_HOME as it is (no absolute-path rule).
    xdg = env.environ.get("XDG_CONFIG_HOME") or str(env.home / ".config")
    candidates = [Path(xdg, "offlineimap", "config"), env.home / ".offlineimaprc"]
    return [path for path in candidates if path.exists()][:1]


def _expanduser(path: str, env: Env) -> str:
    if path == "~" or path.startswith("~/"):
        return str(env.home) + path[1:]
    return os.path.expanduser(path)


def load(argv: Sequence[str], env: Env) -> OfflineimapConfig:
    paths = config_paths(argv, env)
    if not paths:
        return OfflineimapConfig((), str(env.home / ".offlineimaprc"), found=False, home=str(env.home))
    path = paths[0]
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(str(path), None, "no such file (offlineimap would abort)") from None
    except OSError as exc:
        raise ConfigError(str(path), None, f"cannot read: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(str(path), line, f"not UTF-8 text (byte {data[exc.start]:#04x})") from None
    return parse(text, str(path), str(env.home), environ=env.environ, cwd=os.getcwd())


def needs_message(argv: Sequence[str]) -> bool:
    return False  # offlineimap's accounts come from its config and -a, never from a message


def select(config: OfflineimapConfig, argv: Sequence[str], message: bytes | None = None) -> list[Account]:
    """The accounts `offlineimap ARGV` connects to, resolved after its command line edited the config."""
    try:
        opts = _options(argv)
    except _Stop:
        return []
    except _ArgvError as exc:
        raise ConfigError(config.source, None, f"offlineimap would reject its command line: {exc}") from None
    if opts.version:
        return []  # -V prints the version before reading the config
    if not config.found:
        raise ConfigError(config.source, None, "no offlineimap config file: offlineimap would abort")
    cfg = _Parsed(config.text, config.source)
    try:
        edits = _replay(cfg, opts)
    except (configparser.Error, ValueError) as exc:
        message_ = exc.message if isinstance(exc, configparser.Error) else str(exc)
        raise ConfigError(config.source, None, f"offlineimap would fail before syncing: {message_}") from None
    if not opts.diagnostics and (opts.migrate_fmd5 or opts.mbnames_prune):
        return []  # init.run: these read only local state
    names = _active(cfg, opts)
    if not opts.diagnostics and opts.deletefolder:
        if len(names) != 1:
            raise ConfigError(config.source, None, "--delete-folder needs exactly one account (offlineimap -a NAME)")
        if cfg.boolean("general", "dry-run", False):
            return []  # accounts.deletefolder: a dry run only says what it would delete
    ctx = _Context(config.home, config.environ, config.cwd, edits)
    accounts, problems = _resolve_all(cfg, names, ctx)
    if problems:
        raise problems[0][1]
    return accounts
