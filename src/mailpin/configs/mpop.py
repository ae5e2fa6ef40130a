"""mpop (msmtp's sibling for POP3): its config and command line, read as mpop 1.4.18 reads them.

mpop's conf.c is msmtp's grammar (`defaults`, `account NAME : A,B` with the `mask` rules,
`msmtp.read_settings`) with its own commands and three differences: there is no system file and no
implicit account ("first command must be account or defaults"), the default port is 110, or 995
for `tls on` with `tls_starttls off` (mpop.c main, "fill in last defaults"), and a run without
account names uses the account named "default", `-a` all of them in file order. Command-line
settings override every account of the run (override_account). `eval` and `passwordeval` are never
run: an account whose host or port may come from `eval` has an unknown endpoint.
Checked against `mpop --pretend` (tests/test_configs_mpop.py).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType

from mailpin.configs.msmtp import Settings, account_of, read_settings, trust_of
from mailpin.configs.msmtp_argv import NONE, OPTIONAL, REQUIRED, getopt_long, long_table, short_table
from mailpin.configs.msmtp_syntax import fingerprint_ok, pos_int, words
from mailpin.env import Env
from mailpin.errors import ConfigError, ToolUsageError
from mailpin.model import Account, Mode, Protocol, Tool

CLI = "mpop command line"

# --- the config file: mpop's commands (conf.c read_conffile) -----------------------------------------

_ON_OFF = ("", "on", "off")  # an empty argument is "on" (`*arg == '\0' || is_on(arg)`)
_AUTH = tuple(words("user apop plain cram-md5 digest-md5 scram-sha-1 scram-sha-256 gssapi external login ntlm"))
_CHOICES: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(words("received_header tls tls_starttls tls_certcheck only_new keep"), _ON_OFF),
    "pipelining": (*_ON_OFF, "auto"),
    "auth": (*_ON_OFF, *_AUTH, "oauthbearer", "xoauth2"),
}
_FREE = frozenset(
    words(
        "user password passwordeval ntlmdomain tls_key_file tls_cert_file tls_trust_file tls_crl_file "
        "tls_priorities tls_host_override filter proxy_host source_ip socket tls_force_sslv3"
    )
)
_NEEDS_ARG = frozenset(words("host port timeout delivery uidls_file killsize skipsize"))
_DELIVERY = ("mda", "maildir", "mbox", "exchange")  # `delivery METHOD ARG`
_SIZE = re.compile(r"[ \t\n\v\f\r]*\+?(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)([km]?)")


def check_argument(command: str, arg: str) -> str | None:
    """Why mpop refuses `command arg` (its words, without "line N: "), or None when it accepts it."""
    if command in _NEEDS_ARG and not arg:
        return f"command {command} needs an argument"
    if command in _CHOICES:
        ok = arg in _CHOICES[command]
    elif command in ("port", "proxy_port"):
        ok = (command == "proxy_port" and not arg) or 0 < pos_int(arg) <= 65535
    elif command == "timeout":
        ok = arg == "off" or pos_int(arg) > 0
    elif command == "tls_min_dh_prime_bits":
        ok = not arg or pos_int(arg) > 0
    elif command == "tls_fingerprint":
        ok = not arg or fingerprint_ok(arg)
    elif command in ("killsize", "skipsize"):
        if arg != "off" and not size_ok(arg):
            return f"invalid size (not a number or out of range): {arg}"
        ok = True
    elif command == "delivery":
        ok = any(arg.startswith(method) and arg[len(method) : len(method) + 1] in (" ", "\t") for method in _DELIVERY)
    elif command in _FREE or command == "host" or command == "uidls_file":
        ok = True
    else:
        return f"unknown command {command}"
    return None if ok else f"invalid argument {arg} for command {command}"


def size_ok(text: str) -> bool:
    """conf.c get_size_arg: strtoll base 0, not negative, an optional "k" or "m" after the number."""
    return _SIZE.fullmatch(text) is not None


# --- accounts ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MpopConfig:
    accounts: tuple[Account, ...] = ()
    settings: tuple[Settings, ...] = ()  # parallel to `accounts`: what command-line options override
    source: str = ""  # the file read (when none was found: the one mpop would have complained about)
    home: str = ""
    found: bool = True  # False: no config file (mpop refuses every run that needs one)
    data: bytes = field(default=b"", repr=False, compare=False)  # the file as read: what mpop is handed

    def account(self, name: str) -> Account | None:
        return next((acc for acc in self.accounts if acc.name == name), None)


def parse(text: str, source: str, home: str) -> MpopConfig:
    """Read one mpop config file; raise ConfigError(source, line, problem) where mpop refuses it."""
    settings = read_settings(text, source, check_argument, implicit_default=False)
    return MpopConfig(tuple(to_account(s, home) for s in settings), settings, source, home)


def to_account(s: Settings, home: str) -> Account:
    """The account mpop would use, its last defaults filled in (mpop.c main): tls off, tls_starttls
    on, port 110 — 995 for TLS without STARTTLS — and the system trust."""

    def default_port(mode: Mode) -> int:
        return 995 if mode is Mode.IMPLICIT else 110

    return account_of(s, home, Tool.MPOP, Protocol.POP3, default_port, _problem(s, retrmail=False))


def _problem(s: Settings, retrmail: bool) -> str | None:
    """conf.c check_account, in its order. `retrmail`: a run that retrieves mail (not -S), which
    needs a delivery method."""
    v = s.values
    tls = v.get("tls", "off") != "off"
    unset = not s.evals  # an eval line may set anything: mpop ran it, mailpin cannot know
    problems = (
        (not v.get("host") and not v.get("socket") and unset, "host not set"),
        (tls and not v.get("host") and not v.get("tls_host_override") and unset, "host not set"),
        (bool(v.get("tls_key_file")) and not v.get("tls_cert_file"), "tls_key_file requires tls_cert_file"),
        (not v.get("tls_key_file") and bool(v.get("tls_cert_file")), "tls_cert_file requires tls_key_file"),
        (
            tls and trust_of(s) is None and not v.get("tls_fingerprint") and v.get("tls_certcheck", "on") != "off",
            "tls requires either tls_trust_file (highly recommended) or tls_fingerprint or a disabled tls_certcheck",
        ),
        (bool(v.get("tls_crl_file")) and trust_of(s) is None, "tls_crl_file requires tls_trust_file"),
        (retrmail and "delivery" not in v and unset, "no delivery information"),
    )
    return next((text for failed, text in problems if failed), None)


# --- the command line (mpop.c main) -----------------------------------------------------------------

_SHORT = short_table("qQPdSC:aAsn::k::")
_LONG: dict[str, tuple[int, str]] = {  # mpop.c `options[]`, in its order
    **long_table(NONE, "version help"),
    **long_table(REQUIRED, "configure"),
    **long_table(NONE, "quiet=q half-quiet=Q pretend=P debug=d serverinfo=S"),
    **long_table(REQUIRED, "file=C"),
    **long_table(NONE, "auth-only=A all-accounts=a status-only=s"),
    **long_table(REQUIRED, "delivery uidls-file"),
    **long_table(OPTIONAL, "only-new=n keep=k"),
    **long_table(REQUIRED, "killsize skipsize filter host port timeout pipelining"),
    **long_table(OPTIONAL, "received-header auth"),
    **long_table(REQUIRED, "user passwordeval proxy-host proxy-port source-ip socket"),
    **long_table(OPTIONAL, "tls tls-starttls"),
    **long_table(REQUIRED, "tls-trust-file tls-crl-file tls-fingerprint tls-key-file tls-cert-file"),
    **long_table(OPTIONAL, "tls-certcheck tls-force-sslv3"),
    **long_table(REQUIRED, "tls-min-dh-prime-bits tls-priorities tls-host-override"),
}
# Options that set an account setting for every account of the run, as the config command they set.
_OVERRIDES = {
    **{
        name: name.replace("-", "_")
        for name in words(
            "delivery uidls-file killsize skipsize filter port timeout pipelining received-header auth user "
            "passwordeval proxy-host proxy-port source-ip socket tls tls-starttls tls-trust-file tls-crl-file "
            "tls-fingerprint tls-key-file tls-cert-file tls-certcheck tls-force-sslv3 tls-min-dh-prime-bits "
            "tls-priorities tls-host-override"
        )
    },
    "n": "only_new",
    "k": "keep",
}
_OPTIONAL_ON = frozenset(words("n k received_header tls tls_starttls tls_certcheck tls_force_sslv3"))


@dataclass(frozen=True)
class CommandLine:
    """What one mpop command line asks for, as far as the accounts and their connections go."""

    mode: str = "retrmail"  # retrmail | serverinfo | configure | info (--version/--help)
    all_accounts: bool = False  # -a
    names: tuple[str, ...] = ()  # the accounts named, in order (repeats are polled again)
    host: str | None = None  # --host: command-line settings only, no config file
    file: str | None = None  # -C/--file (the last one wins)
    overrides: tuple[tuple[str, str], ...] = ()  # (config command, value) in command-line order
    pretend: bool = False  # -P: print the accounts' settings and stop
    options_end: int = 0  # where getopt stopped (a `--`): options added before it come after the user's


def parse_argv(argv: Sequence[str], posix: bool = False) -> CommandLine:
    """Read argv (without argv[0]) as mpop does; ToolUsageError where mpop refuses it (EX_USAGE)."""
    parsed = getopt_long(argv, posix, _SHORT, _LONG, CLI)
    mode, host, file, all_accounts, pretend = "retrmail", None, None, False, False
    overrides: list[tuple[str, str]] = []
    for key, value in parsed.options:
        if key in ("version", "help"):
            mode = "info" if mode != "configure" else mode
        elif key == "configure":
            mode = "configure"
        elif key == "S":
            mode = "serverinfo" if mode == "retrmail" else mode
        elif key == "P":
            pretend = True
        elif key == "a":
            all_accounts = True
        elif key == "C":
            file = value
        elif key == "host":
            host = value
        elif key in _OVERRIDES:
            command = _OVERRIDES[key]
            setting = _option_value(key, command, value)
            overrides.append((command, setting))
    # main(): --configure runs; --version/--help print and stop; nothing else reads a config.
    names = parsed.operands
    if mode in ("retrmail", "serverinfo"):
        if host is not None and (names or all_accounts):
            raise ToolUsageError(CLI, None, "cannot use both --host and accounts")
        if all_accounts and names:
            raise ToolUsageError(CLI, None, "cannot use both --all-accounts and a list of accounts")
    return CommandLine(mode, all_accounts, tuple(names), host, file, tuple(overrides), pretend, parsed.end)


def _option_value(key: str, command: str, value: str | None) -> str:
    """The option's value as the config command's argument, refused where mpop refuses it."""
    flag = {"n": "only-new", "k": "keep"}.get(key, key)
    if command in _OPTIONAL_ON:
        # `--tls` alone is on; `--tls=` is neither on nor off (is_on/is_off of ""): refused.
        if value is not None and value not in ("on", "off"):
            raise ToolUsageError(CLI, None, f"invalid argument {value} for --{flag}")
        return value or "on"
    text = value or ""
    if command == "auth":
        if value is not None and value != "on" and value not in (*_AUTH, "oauthbearer", "xoauth2", ""):
            raise ToolUsageError(CLI, None, f"invalid argument {value} for --{flag}")
        return text
    if command == "delivery":
        # mpop.c: --delivery=METHOD,ARG
        method, comma, arg = text.partition(",")
        if not comma or method not in _DELIVERY:
            raise ToolUsageError(CLI, None, f"invalid argument {value} for --{flag}")
        return f"{method} {arg}"
    if command in ("killsize", "skipsize") and text != "off" and not size_ok(text):
        raise ToolUsageError(CLI, None, f"invalid size (not a number or out of range): {text}")
    if command in ("port", "timeout", "pipelining", "proxy_port", "tls_fingerprint", "tls_min_dh_prime_bits"):
        problem = check_argument(command, text)
        if problem is not None or (command == "pipelining" and not text):
            raise ToolUsageError(CLI, None, f"invalid argument {value} for --{flag}")
    return text


# --- files ------------------------------------------------------------------------------------------


def config_paths(argv: Sequence[str], env: Env) -> list[Path]:
    """-C FILE; else ~/.mpoprc, else $XDG_CONFIG_HOME/mpop/config (tools.c get_userconfig)."""
    return _paths(parse_argv(argv), env)


def _paths(command: CommandLine, env: Env) -> list[Path]:
    if command.host is not None:
        return []  # --host: "do not use any configuration file data"
    if command.file is not None:
        return [Path(command.file)]
    xdg_home = env.environ.get("XDG_CONFIG_HOME")
    xdg = env.home / ".config" if xdg_home is None else Path(xdg_home or "/")
    for path in (env.home / ".mpoprc", xdg / "mpop" / "config"):
        if path.exists():
            return [path]
    return []


def load(argv: Sequence[str], env: Env) -> MpopConfig:
    return load_parsed(parse_argv(argv), env)


def load_parsed(command: CommandLine, env: Env) -> MpopConfig:
    """The config file `command` makes mpop read, read (the command line as `parse_argv` read it)."""
    home = str(env.home)
    paths = _paths(command, env)
    if not paths:
        return MpopConfig(source=command.file or str(env.home / ".mpoprc"), home=home, found=False)
    path = paths[0]
    try:
        data = path.read_bytes()
    except IsADirectoryError:
        raise ConfigError(str(path), None, "is a directory, not a config file (mpop: input error)") from None
    except OSError as error:
        raise ConfigError(str(path), None, f"cannot read mpop's config: {error.strerror}") from None
    config = parse(data.decode("utf-8", "surrogateescape"), str(path), home)
    return replace(config, data=data)


def needs_message(argv: Sequence[str]) -> bool:
    return False  # mpop's accounts come from its config and command line, never from a message


def select(config: MpopConfig, argv: Sequence[str], message: bytes | None = None) -> list[Account]:
    return select_parsed(config, parse_argv(argv), message)


def select_parsed(config: MpopConfig, command: CommandLine, message: bytes | None = None) -> list[Account]:
    """The accounts this mpop run connects to, in its order (mpop.c main, get_account_list): --host
    alone; else -a: every account; names: those; neither: the account named "default" — each with
    the command line's settings over it, and refused where check_account refuses it."""
    if command.mode in ("info", "configure"):
        return []  # --version, --help print; --configure asks DNS and prints, it logs in nowhere
    if command.host is not None:
        chosen = [Settings("--host", CLI, 0, MappingProxyType({"host": command.host}))]
    else:
        if not config.found:
            raise ConfigError(config.source, None, "cannot read mpop's config: No such file or directory")
        if command.all_accounts:
            if not config.settings:
                raise ConfigError(config.source, None, f"{config.source}: no accounts defined")
            chosen = list(config.settings)
        else:
            chosen = []
            for name in command.names or ("default",):
                found = next((s for s in config.settings if s.name == name), None)
                if found is None:
                    raise ConfigError(config.source, None, f"no account {name}")
                chosen.append(found)
    accounts = []
    for settings in chosen:
        values, explicit = dict(settings.values), set(settings.explicit)
        for key, value in command.overrides:  # override_account(account, cmdline_account)
            values[key] = value
            explicit.add(key)
        final = replace(settings, values=MappingProxyType(values), explicit=frozenset(explicit))
        problem = _problem(final, retrmail=command.mode == "retrmail")
        if problem:
            where = f"account {final.name} from {final.file}: " if final.line else ""
            raise ConfigError(final.file, final.line or None, f"{where}{problem}")
        accounts.append(to_account(final, config.home))
    return [] if command.pretend else accounts
