"""msmtp's configuration, read exactly as msmtp 1.8.23 reads it, and the account an invocation uses.

Semantics from msmtp's source (conf.c `read_conffile`, msmtp.c `main`) and measured against
`msmtp --pretend` (tests/test_configs_msmtp.py, tests/test_msmtp_oracle.py). Line syntax is
`msmtp_syntax`. `defaults` sets values for the accounts that follow it in the same file (not for
those before it); `account NAME : A,B` starts from those defaults and takes every setting A, then B,
set explicitly or inherited (msmtp's `mask`), not their defaults. Accounts of the user file replace
system accounts of the same name; the system's come first when `from` is matched. Lines before the
first `account`/`defaults` line make an account named "default". `eval` and `passwordeval` are
never run: an account that may get its host or port from `eval` has an unknown endpoint (host
None) and says so in its notes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType

from mailpin.configs import msmtp_argv
from mailpin.configs.msmtp_match import LocaleDependentError, from_matches
from mailpin.configs.msmtp_syntax import LineTooLong, check_argument, lines, port_number
from mailpin.env import Env
from mailpin.errors import ConfigError
from mailpin.model import Account, Mode, Protocol, Tool

SYSTEM_CONFIG = Path("/etc/msmtprc")  # SYSCONFDIR/msmtprc, as `msmtp --version` says on Debian
# Commands msmtp stores in the field of another (same `mask` bit): that command, and its value.
_ON_AUTO = {"": "auto", "on": "auto", "off": "off"}
_ALIASES: dict[str, tuple[str, Mapping[str, str]]] = {
    "tls_nocertcheck": ("tls_certcheck", {"": "off"}),
    "tls_nostarttls": ("tls_starttls", {"": "off"}),
    "connect_timeout": ("timeout", {}),  # "accepted as an alias for timeout"
    "add_missing_from_header": ("set_from_header", _ON_AUTO),  # "compatibility with < 1.8.8"
    "add_missing_date_header": ("set_date_header", _ON_AUTO),
    "keepbcc": ("remove_bcc_headers", {"": "off", "on": "off", "off": "on"}),  # "compatibility with 1.4.x"
}
_NO_MASK = frozenset({"allow_from_override"})  # "no mask value": copied from defaults, never inherited
_PINS = ("tls_fingerprint", "tls_trust_file", "tls_certcheck")


@dataclass(frozen=True)
class Settings:
    """One account as msmtp holds it: config command -> argument (quotes removed, `~` not expanded)."""

    name: str
    file: str
    line: int
    values: Mapping[str, str]
    explicit: frozenset[str] = frozenset()  # set by the account itself or inherited: what `: NAME` copies
    evals: tuple[int, ...] = ()  # eval lines (its own, its defaults', its parents') mailpin did not run
    implicit: bool = False  # made of the lines before the first `account` line

    @property
    def source(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file


@dataclass(frozen=True)
class MsmtpConfig:
    accounts: tuple[Account, ...] = ()
    settings: tuple[Settings, ...] = ()  # parallel to `accounts`: what command-line options override
    files: tuple[str, ...] = ()
    home: str = ""  # $HOME, for `~` in command-line file names
    email: str | None = None  # $EMAIL and $SMTPSERVER: msmtp's last resort when no "default" exists
    smtpserver: str | None = None
    # The user file exactly as read (path, bytes): what `mailpin run` hands to msmtp as `-C`, so that
    # msmtp reads the very bytes that were verified (issue 17: one read).
    user_file: tuple[str, bytes] | None = field(default=None, repr=False, compare=False)
    posix: bool = False  # POSIXLY_CORRECT is set: getopt stops at the first recipient
    collation: str = "C"  # msmtp's LC_COLLATE (LC_ALL, else LC_COLLATE, else LANG): `from` ranges

    @property
    def default(self) -> Account | None:
        """msmtp's default is the account literally named "default" (often `account default : NAME`)."""
        return self.account("default")

    def account(self, name: str) -> Account | None:
        return next((acc for acc in self.accounts if acc.name == name), None)

    def merged_with(self, user: MsmtpConfig) -> MsmtpConfig:
        """System config + user config: user accounts replace system accounts of the same name."""
        names = {s.name for s in user.settings}
        keep = [i for i, s in enumerate(self.settings) if s.name not in names]
        return replace(
            user,
            accounts=tuple(self.accounts[i] for i in keep) + user.accounts,
            settings=tuple(self.settings[i] for i in keep) + user.settings,
            files=self.files + user.files,
        )


@dataclass
class _Draft:
    values: dict[str, str] = field(default_factory=dict)
    explicit: set[str] = field(default_factory=set)
    evals: list[int] = field(default_factory=list)
    implicit: bool = False  # the "default" account msmtp makes of lines before any `account` line


def parse(text: str, source: str, home: str) -> MsmtpConfig:
    """Read one msmtp config file; raise ConfigError(source, line, problem) where msmtp refuses it."""
    settings = read_settings(text, source, check_argument, implicit_default=True)
    return MsmtpConfig(tuple(to_account(s, home) for s in settings), settings, (source,), home)


def read_settings(
    text: str, source: str, check: Callable[[str, str], str | None], implicit_default: bool
) -> tuple[Settings, ...]:
    """conf.c read_conffile: every account of one file, `defaults` and `account NAME : A,B` applied.
    msmtp and mpop share this grammar (mpop's conf.c is msmtp's, with its own commands: `check`).
    `implicit_default`: msmtp makes the lines before the first `account` an account named "default";
    mpop refuses them ("first command must be account or defaults")."""
    defaults = _Draft()
    current: _Draft | None = None
    drafts: dict[str, tuple[int, _Draft]] = {}
    try:
        for number, command, arg in lines(_raw(text)):
            if current is None and command not in ("account", "defaults"):
                if not implicit_default:
                    raise ConfigError(source, number, "first command must be account or defaults")
                # "compatibility with 1.2.x: if no account command is given, the first account will
                # be named "default"" — made of whatever command comes first, even one msmtp refuses.
                current = _Draft(dict(defaults.values), set(), list(defaults.evals), implicit=True)
                drafts["default"] = (number, current)
            if command == "defaults":
                if arg:
                    raise ConfigError(source, number, "command defaults does not take an argument")
                current = defaults
            elif command == "account":
                name, current = _new_account(arg, defaults, drafts, source, number)
                drafts[name] = (number, current)
            elif command == "eval":
                if not arg:
                    raise ConfigError(source, number, "command eval needs an argument")
                assert current is not None
                current.evals.append(number)
            else:
                problem = check(command, arg)
                if problem:
                    raise ConfigError(source, number, problem)
                assert current is not None
                _set(current, command, arg)
    except LineTooLong as error:
        raise ConfigError(source, error.number, str(error)) from None
    return tuple(
        Settings(name, source, line, MappingProxyType(d.values), frozenset(d.explicit), tuple(d.evals), d.implicit)
        for name, (line, d) in drafts.items()
    )


def _raw(text: str) -> bytes:
    """The file's bytes again (`load` decodes with surrogateescape; other text is taken as given)."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")


def _set(draft: _Draft, command: str, arg: str) -> None:
    if command == "tls_force_sslv3":
        return  # "compatibility with versions <= 1.4.32: silently ignore"
    if command in _ALIASES:
        command, values = _ALIASES[command]
        arg = values.get(arg, arg)
    draft.values[command] = arg
    if command not in _NO_MASK:
        draft.explicit.add(command)


def _trim(text: str) -> str:
    """conf.c trim_string on text already read."""
    text = text.strip(" \t")
    return text[1:-1] if len(text) >= 2 and text[0] == text[-1] == '"' else text


def _new_account(
    arg: str, defaults: _Draft, drafts: Mapping[str, tuple[int, _Draft]], source: str, number: int
) -> tuple[str, _Draft]:
    """conf.c, the `account` command: `NAME` or `NAME : PARENT, PARENT…` (the parents are read first)."""
    name, colon, parent_list = arg.partition(":")
    parents: list[_Draft] = []
    if colon:
        for parent_name in map(_trim, parent_list.split(",")):
            if not parent_name:
                raise ConfigError(source, number, "missing account name")
            if parent_name not in drafts:
                raise ConfigError(source, number, f"account {parent_name} not (yet) defined")
            parents.append(drafts[parent_name][1])
        name = _trim(name)
    if not name:
        raise ConfigError(source, number, "missing account name")
    if ":" in name or "," in name:
        raise ConfigError(source, number, "an account name must not contain colons or commas")
    if name in drafts:
        raise ConfigError(source, number, f"account {name} was already defined")
    draft = _Draft(dict(defaults.values), set(), list(defaults.evals))
    for parent in parents:  # override_account: what the parent set itself or inherited (its mask)
        draft.values.update({key: parent.values[key] for key in parent.explicit})
        draft.explicit |= parent.explicit
        draft.evals.extend(n for n in parent.evals if n not in draft.evals)
    return name, draft


def _expand(value: str, home: str) -> str:
    # msmtp replaces a leading "~" by $HOME and nothing else ("~user/x" becomes "$HOMEuser/x").
    return home + value[1:] if value.startswith("~") else value


def trust_of(s: Settings) -> str | None:
    """The trust file msmtp uses: the account's, else "system" — unless the account itself (or a
    parent, or the command line) set it empty: msmtp.c sets "system" only without ACC_TLS_TRUST_FILE
    in the account's mask, and an empty value from `defaults` is not in it."""
    value = s.values.get("tls_trust_file", "")
    return value or (None if "tls_trust_file" in s.explicit else "system")


def to_account(s: Settings, home: str) -> Account:
    """The account msmtp would use: its defaults applied (tls off, tls_starttls on, port 25 or 465)."""

    def default_port(mode: Mode) -> int | None:
        if s.values.get("protocol", "smtp") != "smtp":
            return None  # lmtp: msmtp refuses an account without a port
        return 465 if mode is Mode.IMPLICIT else 25  # man msmtp `port`: 587 is never implied

    unusable = _problem(s, sendmail=False)  # a base for others (no host): refused only when used
    return account_of(s, home, Tool.MSMTP, Protocol.SMTP, default_port, unusable)


def account_of(
    s: Settings,
    home: str,
    tool: Tool,
    protocol: Protocol,
    default_port: Callable[[Mode], int | None],
    unusable: str | None,
) -> Account:
    """The Account of one account as msmtp or mpop hold it (the two share conf.c's TLS, socket, proxy
    and trust settings): `default_port` is the tool's port for the mode when the account names none."""
    v = s.values
    tls = v.get("tls", "off") != "off"  # an empty argument means "on" (man msmtp)
    starttls = v.get("tls_starttls", "on") != "off"
    mode = Mode.NONE if not tls else (Mode.STARTTLS if starttls else Mode.IMPLICIT)
    notes: list[str] = [f"eval line {n} not executed" for n in s.evals]
    if s.implicit:
        notes.append("msmtp makes the settings before the first `account` line an account named default")
    port: int | None = port_number(v["port"]) if v.get("port") else default_port(mode)
    host = v.get("host") or None
    socket, proxy = v.get("socket") or None, v.get("proxy_host") or None
    transport = f"socket {socket}" if socket else (f"proxy {proxy}:{v.get('proxy_port') or 1080}" if proxy else None)
    if socket:  # man msmtp `socket`: "overrides both host/port and proxy_host/proxy_port"
        host, port = None, None
    elif s.evals and not {"host", "port"} <= s.explicit:
        notes.append("endpoint unknown: host or port may come from eval, which mailpin does not run")
        host, port = None, None
    trust = trust_of(s)
    fingerprint = v.get("tls_fingerprint", "")
    return Account(
        tool=tool,
        name=s.name,
        protocol=protocol,
        host=host,
        port=port,
        mode=mode,
        source=s.source,
        servername=v.get("tls_host_override") or (v.get("host") or None if socket else None),
        trust_file=_expand(trust, home) if trust not in ("system", None) else None,
        system_trust=trust == "system",
        certcheck=v.get("tls_certcheck", "on") != "off",
        fingerprints=(fingerprint.replace(" ", ":").upper(),) if fingerprint else (),
        transport=transport,
        froms=(v["from"],) if "from" in v else (),
        user=v.get("user") or None,
        pin_options=tuple((key, v[key]) for key in _PINS if key in s.explicit),
        notes=tuple(notes),
        tls_priorities=v.get("tls_priorities") or None,  # empty: GnuTLS's default, as unset
        # The client certificate msmtp presents: its own TLS must (the relay's local session cannot).
        client_cert=_expand(v["tls_cert_file"], home) if v.get("tls_cert_file") else None,
        client_key=_expand(v["tls_key_file"], home) if v.get("tls_key_file") else None,
        unusable=unusable,
    )


def config_paths(argv: Sequence[str], env: Env, system: Path = SYSTEM_CONFIG) -> list[Path]:
    """System file, then the user file (-C, else ~/.msmtprc, else $XDG_CONFIG_HOME/msmtp/config)."""
    return _paths(msmtp_argv.parse_argv(argv, _posix(env)), env, system)


def _paths(command: msmtp_argv.Invocation, env: Env, system: Path) -> list[Path]:
    if command.host is not None:
        return []  # man msmtp --host: "do not use any configuration file data" (none is even read)
    paths = [system] if system.is_file() else []
    if command.file is not None:
        return [*paths, Path(command.file)]
    # tools.c get_userconfig: $XDG_CONFIG_HOME as set (even relative; empty is "/"), else ~/.config;
    # and the XDG file only when ~/.msmtprc does not exist.
    xdg_home = env.environ.get("XDG_CONFIG_HOME")
    xdg = env.home / ".config" if xdg_home is None else Path(xdg_home or "/")
    for user in (env.home / ".msmtprc", xdg / "msmtp" / "config"):
        if user.exists():
            return [*paths, user]
    return paths


def _posix(env: Env) -> bool:
    return "POSIXLY_CORRECT" in env.environ  # glibc getopt: set at all, even empty


def load(argv: Sequence[str], env: Env, system: Path = SYSTEM_CONFIG) -> MsmtpConfig:
    return load_parsed(msmtp_argv.parse_argv(argv, _posix(env)), env, system)


def load_parsed(command: msmtp_argv.Invocation, env: Env, system: Path = SYSTEM_CONFIG) -> MsmtpConfig:
    """The config files `command` makes msmtp read, read (the command line as `msmtp_argv` read it)."""
    explicit = command.file
    config = MsmtpConfig(home=str(env.home))
    user: tuple[str, bytes] | None = None
    for path in _paths(command, env, system):
        try:
            data = path.read_bytes()
        except IsADirectoryError:
            # conf.c get_conf: fopen() opens a directory, the first read fails: CONF_EIO, and msmtp
            # stops with "input error" (EX_IOERR) — for the system file as for the user's.
            raise ConfigError(
                str(path), None, 'is a directory, not a config file: msmtp stops here ("input error", exit 74)'
            ) from None
        except OSError as error:
            if explicit is not None and path == Path(explicit):
                raise ConfigError(str(path), None, f"cannot read msmtp's config: {error.strerror}") from None
            continue  # msmtp skips a system or user file it cannot open
        config = config.merged_with(parse(data.decode("utf-8", "surrogateescape"), str(path), str(env.home)))
        if path != system:
            user = (str(path), data)
    environ = env.environ
    collation = environ.get("LC_ALL") or environ.get("LC_COLLATE") or environ.get("LANG") or "C"
    return replace(
        config,
        home=str(env.home),
        email=environ.get("EMAIL"),
        smtpserver=environ.get("SMTPSERVER"),
        posix=_posix(env),
        collation=collation,
        user_file=user,
    )


def needs_message(argv: Sequence[str]) -> bool:
    """True when the From header of the message on stdin may decide the account (--read-envelope-from),
    read with or without POSIXLY_CORRECT: reading it when msmtp would not costs nothing (msmtp reads
    stdin in sendmail mode anyway), not reading it when msmtp needs it would refuse a good send."""
    for posix in (False, True):
        try:
            command = msmtp_argv.parse_argv(argv, posix)
        except ConfigError:
            continue
        if message_decides(command):
            return True
    return False


def message_decides(command: msmtp_argv.Invocation) -> bool:
    """Does the From header of the message on stdin decide the account (--read-envelope-from)?"""
    return (
        command.read_envelope_from and command.mode == "sendmail" and command.account is None and command.host is None
    )


def select(config: MsmtpConfig, argv: Sequence[str], message: bytes | None = None) -> list[Account]:
    return select_parsed(config, msmtp_argv.parse_argv(argv, config.posix), message)


def select_parsed(config: MsmtpConfig, inv: msmtp_argv.Invocation, message: bytes | None = None) -> list[Account]:
    """The account this msmtp invocation uses (msmtp.c main: --host, else -a, else the envelope-from's
    account, else "default", else $SMTPSERVER), with the command line's settings over it."""
    if inv.mode in ("info", "configure"):
        return []  # --version, --help, --configure connect nowhere
    known, envelope = _envelope_from(inv, message)
    if inv.host is not None:
        chosen = Settings("--host", msmtp_argv.CLI, 0, {"host": inv.host})
    elif inv.account is not None:
        found = next((s for s in config.settings if s.name == inv.account), None)
        if found is None:
            raise ConfigError(_where(config), None, f"account {inv.account} not found{_in(config)}")
        chosen = found
    else:
        chosen = _by_envelope(config, inv, envelope)
    values = dict(chosen.values)
    explicit = set(chosen.explicit)
    for command, value in inv.overrides:  # override_account(account, cmdline_account)
        values[command] = value
        explicit.add(command)
    if inv.envelope_from is not None or inv.read_envelope_from:
        values.pop("from", None)  # ACC_FROM: the command line's (or the message's) address, even none
        if envelope is not None or not known:
            values["from"] = envelope or ""  # unknown: msmtp itself refuses a message without one
    final = replace(chosen, values=MappingProxyType(values), explicit=frozenset(explicit))
    _check(final, sendmail=inv.mode == "sendmail" and not inv.pretend)
    return [to_account(final, config.home)]


def _envelope_from(inv: msmtp_argv.Invocation, message: bytes | None) -> tuple[bool, str | None]:
    """(known, address): -f's address, or the message's with --read-envelope-from (msmtp reads the
    message in sendmail mode only); not known when the message was not read and does not decide."""
    if not (inv.read_envelope_from and inv.mode == "sendmail"):
        return True, inv.envelope_from
    if message is not None:
        return True, msmtp_argv.envelope_from(message, inv.read_recipients)
    if inv.account is None and inv.host is None:
        raise ConfigError(msmtp_argv.CLI, None, "--read-envelope-from: the message is needed to choose the account")
    return False, None


def _by_envelope(config: MsmtpConfig, inv: msmtp_argv.Invocation, address: str | None) -> Settings:
    if address is not None:  # even "": `-f '<>'` is an address, and `from *` takes it
        for s in config.settings:
            try:
                if "from" in s.values and from_matches(s.values["from"], address, config.posix, config.collation):
                    return s
            except LocaleDependentError as error:
                raise ConfigError(s.file, s.line or None, f"account {s.name}: {error}") from None
    default = next((s for s in config.settings if s.name == "default"), None)
    if default is not None:
        return default
    # msmtp.c: "allow fallback to environment variables" — set at all counts, even empty.
    sendmail = inv.mode == "sendmail"
    if config.smtpserver is not None and (not sendmail or address is not None or config.email is not None):
        values = {"host": config.smtpserver}
        if sendmail and address is None and config.email is not None:
            values["from"] = config.email
        return Settings("SMTPSERVER", "environment", 0, values)
    raise ConfigError(_where(config), None, f"account default not found{_in(config)}")


def _where(config: MsmtpConfig) -> str:
    return config.files[-1] if len(config.files) == 1 else "msmtp"


def _in(config: MsmtpConfig) -> str:
    """msmtp's words after "account X not found" — the file once: when one file was read, it leads
    the line already (`_where`)."""
    if len(config.files) == 1:
        return ""
    return f" in {' and '.join(config.files)}" if config.files else ": no configuration file available"


def _check(s: Settings, sendmail: bool) -> None:
    problem = _problem(s, sendmail)
    if problem:
        raise ConfigError(s.file, s.line or None, f"account {s.name}: {problem}")


def _problem(s: Settings, sendmail: bool) -> str | None:
    """conf.c check_account: what msmtp refuses about the account it is about to use, in its order.
    `sendmail`: a real send (not --pretend), where an envelope-from is required."""
    v = s.values
    tls = v.get("tls", "off") != "off"
    unset = not s.evals  # an eval line may set anything: msmtp ran it, mailpin cannot know
    trust = trust_of(s)
    problems = (
        ("host" not in v and not v.get("socket") and unset, "host not set"),
        (not v.get("port") and v.get("protocol") == "lmtp", "port not set"),  # smtp: 25 or 465
        (
            sendmail and "from" not in v and v.get("auto_from", "off") == "off" and unset,
            "envelope-from address is missing",
        ),
        (tls and "host" not in v and not v.get("tls_host_override") and unset, "host not set"),
        (bool(v.get("tls_key_file")) and not v.get("tls_cert_file"), "tls_key_file requires tls_cert_file"),
        (not v.get("tls_key_file") and bool(v.get("tls_cert_file")), "tls_cert_file requires tls_key_file"),
        (
            tls and trust is None and not v.get("tls_fingerprint") and v.get("tls_certcheck", "on") != "off",
            "tls requires either tls_trust_file (highly recommended) or tls_fingerprint or a disabled tls_certcheck",
        ),
        (bool(v.get("tls_crl_file")) and trust is None, "tls_crl_file requires tls_trust_file"),
    )
    return next((text for failed, text in problems if failed), None)
