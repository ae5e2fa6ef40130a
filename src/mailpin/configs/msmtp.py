"""msmtp's configuration, read exactly as msmtp 1.8.23 reads it, and the account an invocation uses.

Semantics (man msmtp "CONFIGURATION FILES", "USAGE"; measured against `msmtp --pretend`, see
tests/test_configs_msmtp.py): one `command argument` a line, `#` comments, a line of at most 499
bytes; the argument loses one pair of surrounding double quotes (no escapes: `"a\\"b"` stays
`a\\"b`); a leading `~` in file names is replaced by $HOME. `defaults` sets values for the accounts
that follow in the same file; `account NAME : A,B` starts from those defaults and takes every
setting A, then B, set explicitly (not their defaults). Accounts of the user file replace system
accounts of the same name; the system's come first when `from` is matched. Lines before the
first `account`/`defaults` line make an account named "default" (measured; the man page is
silent). `eval` and `passwordeval` are never run: an account that may get its host or port from
`eval` has an unknown endpoint (host None) and says so in its notes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType

from mailpin.configs import msmtp_argv
from mailpin.configs.msmtp_argv import check_argument, from_matches, port_number
from mailpin.env import Env
from mailpin.errors import ConfigError
from mailpin.model import Account, Mode, Protocol, Tool

SYSTEM_CONFIG = Path("/etc/msmtprc")  # SYSCONFDIR/msmtprc, as `msmtp --version` says on Debian
_MAX_LINE = 499  # msmtp reads lines with fgets into 501 bytes: "line longer than 500 characters"
_ALIASES = {"tls_nocertcheck": ("tls_certcheck", "off"), "tls_nostarttls": ("tls_starttls", "off")}
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


_LINE = re.compile(r"[ \t]*([^ \t]*)[ \t]*(.*?)[ \t\r]*", re.DOTALL)  # only these are blanks: "\vhost" is a command


def _split(line: str) -> tuple[str, str] | None:
    """(command, argument) of one line, or None for blank and comment lines."""
    match = _LINE.fullmatch(line)
    assert match is not None  # the pattern matches any text
    command, arg = match.groups()
    if not command or command.startswith("#"):
        return None
    if len(arg) >= 2 and arg[0] == arg[-1] == '"':
        arg = arg[1:-1]
    return command, arg


def parse(text: str, source: str, home: str) -> MsmtpConfig:
    """Read one msmtp config file; raise ConfigError(source, line, problem) where msmtp refuses it."""
    defaults = _Draft()
    # Measured, not documented: commands before the first `account`/`defaults` line make an account
    # named "default" (inheritable, matched by `from` like any other).
    current: _Draft | None = None
    drafts: dict[str, tuple[int, _Draft]] = {}
    for number, raw in enumerate(text.split("\n"), start=1):
        if len(raw.encode("utf-8", "surrogateescape")) > _MAX_LINE:
            raise ConfigError(source, number, "line longer than 500 characters")
        split = _split(raw.split("\0", 1)[0])
        if split is None:
            continue
        command, arg = split
        if command == "defaults":
            if arg:
                raise ConfigError(source, number, "command defaults does not take an argument")
            current = defaults
        elif command == "account":
            name, draft = _new_account(arg, defaults, drafts, source, number)
            drafts[name] = (number, draft)
            current = draft
        elif command == "eval":
            if not arg:
                raise ConfigError(source, number, "command eval needs an argument")
            if current is None:
                current = drafts.setdefault("default", (number, _Draft(implicit=True)))[1]
            current.evals.append(number)
        else:
            problem = check_argument(command, arg)
            if problem:
                raise ConfigError(source, number, problem)
            if current is None:
                current = drafts.setdefault("default", (number, _Draft(implicit=True)))[1]
            command, arg = _ALIASES.get(command, (command, arg))
            current.values[command] = arg
            current.explicit.add(command)
    settings = tuple(
        Settings(name, source, line, MappingProxyType(d.values), frozenset(d.explicit), tuple(d.evals), d.implicit)
        for name, (line, d) in drafts.items()
    )
    return MsmtpConfig(tuple(to_account(s, home) for s in settings), settings, (source,), home)


def _new_account(
    arg: str, defaults: _Draft, drafts: Mapping[str, tuple[int, _Draft]], source: str, number: int
) -> tuple[str, _Draft]:
    name, colon, parent_list = arg.partition(":")
    name = name.strip(" \t")
    parents = [p.strip(" \t") for p in parent_list.split(",")] if colon else []
    if not name or "" in parents:
        raise ConfigError(source, number, "missing account name")
    if name in drafts:
        raise ConfigError(source, number, f"account {name} was already defined")
    draft = _Draft(dict(defaults.values), set(), list(defaults.evals))
    for parent_name in parents:
        if parent_name not in drafts:
            raise ConfigError(source, number, f"account {parent_name} not (yet) defined")
        parent = drafts[parent_name][1]
        draft.values.update({key: parent.values[key] for key in parent.explicit})
        draft.explicit |= parent.explicit
        draft.evals.extend(n for n in parent.evals if n not in draft.evals)
    return name, draft


def _expand(value: str, home: str) -> str:
    # msmtp replaces a leading "~" by $HOME and nothing else ("~user/x" becomes "$HOMEuser/x").
    return home + value[1:] if value.startswith("~") else value


def to_account(s: Settings, home: str) -> Account:
    """The account msmtp would use: its defaults applied (tls off, tls_starttls on, port 25 or 465)."""
    v = s.values
    tls = v.get("tls", "off") != "off"  # an empty argument means "on" (man msmtp)
    starttls = v.get("tls_starttls", "on") != "off"
    mode = Mode.NONE if not tls else (Mode.STARTTLS if starttls else Mode.IMPLICIT)
    notes: list[str] = [f"eval line {n} not executed" for n in s.evals]
    if s.implicit:
        notes.append("msmtp makes the settings before the first `account` line an account named default")
    port: int | None = port_number(v["port"]) if v.get("port") else None
    if port is None and v.get("protocol", "smtp") == "smtp":
        port = 465 if mode is Mode.IMPLICIT else 25  # man msmtp `port`: 587 is never implied
    host = v.get("host") or None
    socket, proxy = v.get("socket") or None, v.get("proxy_host") or None
    transport = f"socket {socket}" if socket else (f"proxy {proxy}:{v.get('proxy_port') or 1080}" if proxy else None)
    if socket:  # man msmtp `socket`: "overrides both host/port and proxy_host/proxy_port"
        host, port = None, None
    elif s.evals and not {"host", "port"} <= s.explicit:
        notes.append("endpoint unknown: host or port may come from eval, which mailpin does not run")
        host, port = None, None
    trust = v.get("tls_trust_file", "system")
    fingerprint = v.get("tls_fingerprint", "")
    return Account(
        tool=Tool.MSMTP,
        name=s.name,
        protocol=Protocol.SMTP,
        host=host,
        port=port,
        mode=mode,
        source=s.source,
        servername=v.get("tls_host_override") or (v.get("host") or None if socket else None),
        trust_file=_expand(trust, home) if trust not in ("system", "") else None,
        system_trust=trust == "system",
        certcheck=v.get("tls_certcheck", "on") != "off",
        fingerprints=(fingerprint.replace(" ", ":").upper(),) if fingerprint else (),
        transport=transport,
        froms=(v["from"],) if v.get("from") else (),
        pin_options=tuple((key, v[key]) for key in _PINS if key in s.explicit),
        notes=tuple(notes),
        tls_priorities=v.get("tls_priorities") or None,  # empty: GnuTLS's default, as unset
    )


def config_paths(argv: Sequence[str], env: Env, system: Path = SYSTEM_CONFIG) -> list[Path]:
    """System file, then the user file (-C, else ~/.msmtprc, else $XDG_CONFIG_HOME/msmtp/config)."""
    invocation = msmtp_argv.parse_argv(argv)
    if invocation.host is not None:
        return []  # man msmtp --host: "do not use any configuration file data" (none is even read)
    paths = [system] if system.is_file() else []
    if invocation.file is not None:
        return [*paths, Path(invocation.file)]
    # tools.c get_userconfig: $XDG_CONFIG_HOME as set (even relative), else ~/.config; and the XDG
    # file only when ~/.msmtprc does not exist.
    xdg = Path(env.environ.get("XDG_CONFIG_HOME") or env.home / ".config")
    for user in (env.home / ".msmtprc", xdg / "msmtp" / "config"):
        if user.exists():
            return [*paths, user]
    return paths


def load(argv: Sequence[str], env: Env, system: Path = SYSTEM_CONFIG) -> MsmtpConfig:
    explicit = msmtp_argv.parse_argv(argv).file
    config = MsmtpConfig(home=str(env.home))
    user: tuple[str, bytes] | None = None
    for path in config_paths(argv, env, system):
        try:
            data = path.read_bytes()
        except OSError as error:
            if explicit is not None and path == Path(explicit):
                raise ConfigError(str(path), None, f"cannot read msmtp's config: {error.strerror}") from None
            continue  # msmtp skips a system or user file it cannot read
        config = config.merged_with(parse(data.decode("utf-8", "surrogateescape"), str(path), str(env.home)))
        if path != system:
            user = (str(path), data)
    return replace(
        config, home=str(env.home), email=env.environ.get("EMAIL"), smtpserver=env.environ.get("SMTPSERVER"),
        user_file=user,
    )  # fmt: skip


def needs_message(argv: Sequence[str]) -> bool:
    """True when the From header of the message on stdin decides the account (--read-envelope-from)."""
    try:
        inv = msmtp_argv.parse_argv(argv)
    except ConfigError:
        return False
    return inv.read_envelope_from and inv.mode == "sendmail" and inv.account is None and inv.host is None


def select(config: MsmtpConfig, argv: Sequence[str], message: bytes | None = None) -> list[Account]:
    """The account this msmtp invocation uses (msmtp.c: -a, else --host, else -f/From match, else default)."""
    inv = msmtp_argv.parse_argv(argv)
    if inv.mode in ("info", "configure"):
        return []  # --version, --help, --configure connect nowhere
    if inv.host is not None:
        chosen = Settings("--host", msmtp_argv.CLI, 0, {"host": inv.host})
    elif inv.account is not None:
        found = next((s for s in config.settings if s.name == inv.account), None)
        if found is None:
            raise ConfigError(_where(config), None, f"account {inv.account} not found{_in(config)}")
        chosen = found
    else:
        chosen = _by_envelope(config, inv, message)
    values = dict(chosen.values)
    for command, value in inv.overrides:
        problem = check_argument(command, value)
        if problem or (command == "port" and not value):
            raise ConfigError(msmtp_argv.CLI, None, f"invalid argument {value} for --{command.replace('_', '-')}")
        values[command] = value
    final = replace(chosen, values=MappingProxyType(values), explicit=chosen.explicit | {c for c, _ in inv.overrides})
    _check(final)
    return [to_account(final, config.home)]


def _by_envelope(config: MsmtpConfig, inv: msmtp_argv.Invocation, message: bytes | None) -> Settings:
    address = inv.envelope_from
    if address is None and inv.read_envelope_from and inv.mode == "sendmail":
        if message is None:
            raise ConfigError(msmtp_argv.CLI, None, "--read-envelope-from: the message is needed to choose the account")
        address = msmtp_argv.envelope_from(message)
    if address:
        for s in config.settings:
            if s.values.get("from") and from_matches(s.values["from"], address):
                return s
    default = next((s for s in config.settings if s.name == "default"), None)
    if default is not None:
        return default
    if config.smtpserver and (config.email or address):  # man msmtp ENVIRONMENT: EMAIL, SMTPSERVER
        return Settings("SMTPSERVER", "environment", 0, {"host": config.smtpserver})
    raise ConfigError(_where(config), None, f"account default not found{_in(config)}")


def _where(config: MsmtpConfig) -> str:
    return config.files[-1] if config.files else "msmtp"


def _in(config: MsmtpConfig) -> str:
    return f" in {', '.join(config.files)}" if config.files else ": no configuration file available"


def _check(s: Settings) -> None:
    """conf.c check_account: what msmtp refuses about the account it is about to use."""
    v = s.values
    problem = None
    tls = v.get("tls", "off") != "off"
    # A socket replaces host, except that TLS still needs a name to check (tls_host_override or host).
    if not v.get("host") and not s.evals and (not v.get("socket") or (tls and not v.get("tls_host_override"))):
        problem = "host not set"
    elif not v.get("port") and v.get("protocol") == "lmtp" and not v.get("socket"):
        problem = "port not set"
    elif bool(v.get("tls_key_file")) != bool(v.get("tls_cert_file")):
        problem = (
            "tls_key_file requires tls_cert_file" if v.get("tls_key_file") else "tls_cert_file requires tls_key_file"
        )
    elif (
        tls
        and v.get("tls_certcheck", "on") != "off"
        and v.get("tls_trust_file", "system") == ""
        and not v.get("tls_fingerprint")
    ):
        problem = (
            "tls requires either tls_trust_file (highly recommended) or tls_fingerprint or a disabled tls_certcheck"
        )
    if problem:
        raise ConfigError(s.source, s.line or None, f"account {s.name}: {problem}")
