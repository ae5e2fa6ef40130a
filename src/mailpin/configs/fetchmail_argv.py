"""fetchmail's command line, read as fetchmail 6.4 reads it (options.c `parsecmdline`).

fetchmail hands argv to glibc's `getopt_long` (Debian 12: glibc 2.36) with the option string and
the table of long options below: clustered short options, an argument attached (`-d0`, `-fRC`) or
in the next word, long options by exact name or unique prefix (`--prot`, where `protocol` and
`proto` are the same option), `--opt=value`, `--` ending the options, and server names anywhere
(permuted) unless POSIXLY_CORRECT is set. Then `parsecmdline` acts on each option in order and
stops at the first bad number or name; `-?`/`--help` and every getopt complaint make fetchmail print
its usage and exit 0, a bad value (or two of -S/-m/--bsmtp) exit 5 — nothing is polled either way.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from mailpin.configs.fetchmail_syntax import Setting, interface_problem

CLI = "fetchmail command line"  # the `source` of errors about argv, and the `where` of its settings

_NONE, _REQUIRED = 0, 1
_SHORT_OPTIONS = "?Vcsvd:NqL:f:i:p:UP:t:E:Q:u:akKFnl:r:S:Z:b:B:e:m:I:M:yw:D:"  # options.c shortoptions
_SHORT = {c: (_REQUIRED if _SHORT_OPTIONS[i + 1 : i + 2] == ":" else _NONE)
          for i, c in enumerate(_SHORT_OPTIONS) if c != ":"}  # fmt: skip


def _long(spec: str) -> list[tuple[str, int, str]]:
    """`name[:]=key ...`: a trailing ':' takes an argument; key is the short letter or the name."""
    table = []
    for word in spec.split():
        name, _, key = word.partition("=")
        required = name.endswith(":")
        name = name.rstrip(":")
        table.append((name, _REQUIRED if required else _NONE, key or name))
    return table


# options.c `longoptions`, in its order (getopt names the ambiguous candidates in this order).
_LONG = _long(
    "help=? version=V check=c silent=s verbose=v daemon:=d nodetach=N quit=q logfile:=L invisible showdots syslog "
    "nosyslog fetchmailrc:=f idfile:=i pidfile: postmaster: nobounce nosoftbounce softbounce protocol:=p proto:=p "
    "uidl=U idle port:=P service:=P auth: timeout:=t envelope:=E qvirtual:=Q bad-header: user:=u username:=u "
    "all=a fetchall=a nokeep=K keep=k flush=F limitflush norewrite=n limit:=l warnings:=w folder:=r smtphost:=S "
    "fetchdomains: smtpaddress:=D smtpname: antispam:=Z batchlimit:=b fetchlimit:=B fetchsizelimit: fastuidl: "
    "expunge:=e mda:=m bsmtp: lmtp ssl sslkey: sslcert: sslproto: sslcertck nosslcertck sslcertfile: sslcertpath: "
    "sslcommonname: sslfingerprint: principal: interface:=I monitor:=M plugin: plugout: configdump yydebug=y "
    "tracepolls"
)

_PROTOCOLS = ("auto", "pop2", "sdps", "pop3", "apop", "rpop", "kpop", "imap", "etrn", "odmr")
_AUTHS = {"password": "password", "kerberos": "kerberos_v5", "kerberos_v5": "kerberos_v5",
          "kerberos_v4": "kerberos_v4", "ssh": "ssh", "otp": "otp", "opie": "otp", "ntlm": "ntlm",
          "cram": "cram-md5", "cram-md5": "cram-md5", "gssapi": "gssapi", "any": "any", "msn": "msn"}  # fmt: skip
# Options that set a struct query member: the member, and how the argument becomes its value.
_STRINGS = {"P": "service", "E": "envelope", "Q": "qvirtual", "u": "remotename", "D": "smtpaddress",
            "smtpname": "smtpname", "m": "mda", "M": "monitor", "plugin": "plugin", "plugout": "plugout",
            "sslproto": "sslproto", "sslcommonname": "sslcommonname", "sslfingerprint": "sslfingerprint",
            "principal": "principal", "bsmtp": "bsmtp", "sslkey": "sslkey", "sslcert": "sslcert",
            "sslcertfile": "sslcertfile", "sslcertpath": "sslcertpath"}  # fmt: skip
# Relative to fetchmail's working directory (prependdir(optarg, currentwd)): resolved by the caller.
PATH_FIELDS = frozenset({"bsmtp", "sslkey", "sslcert", "sslcertfile", "sslcertpath"})
_FLAGS: dict[str, tuple[str, bool | str]] = {
          "U": ("uidl", True), "idle": ("idle", True), "a": ("fetchall", True), "K": ("keep", False),
          "k": ("keep", True), "F": ("flush", True), "limitflush": ("limitflush", True), "n": ("rewrite", False),
          "ssl": ("use_ssl", True), "sslcertck": ("sslcertck", True), "nosslcertck": ("sslcertck", False),
          "tracepolls": ("tracepolls", True), "lmtp": ("listener", "lmtp")}  # fmt: skip
_NUMBERS = {"l": "limit", "w": "warnings", "b": "batchlimit", "B": "fetchlimit", "fetchsizelimit": "fetchsizelimit",
            "fastuidl": "fastuidl", "e": "expunge"}  # fmt: skip
_LISTS = {"r": "mailboxes", "S": "smtphunt", "fetchdomains": "domainlist"}


@dataclass(frozen=True)
class CommandLine:
    """What one fetchmail command line asks for (options.c, then fetchmail.c main)."""

    rcfile: str | None = None  # -f/--fetchmailrc as given, the last one ("-": standard input); None: default
    servers: tuple[str, ...] = ()  # server names: polled instead of the rc file's non-skip entries
    # cmd_opts: the struct query members the options set; fetchmail forces them on every server it
    # polls in this run (optmerge(ctl, &cmd_opts, TRUE)). Paths are as given (see PATH_FIELDS).
    overrides: Mapping[str, Setting] = field(default_factory=lambda: MappingProxyType({}))
    poll_interval: int | None = None  # -d/--daemon N; None: not given, or N < 0 (which leaves `set daemon`)
    check: bool = False  # -c/--check: polls, but fetches nothing (and never as a daemon)
    version: bool = False  # -V/--version: prints, dumps the settings, polls nothing
    configdump: bool = False  # --configdump: prints the settings as Python, polls nothing
    quit: bool = False  # -q/--quit: stops a running daemon first
    quit_only: bool = False  # ... and nothing else (the quit option ends argv: fetchmail.c quitind == argc)
    help: bool = False  # -?/--help, or a getopt complaint: usage printed, exit 0, nothing polled
    getopt_error: str | None = None  # getopt's complaint (an unknown option, a missing argument)
    error: str | None = None  # what fetchmail says as it refuses the command line (exit 5)
    posix: bool = False  # read with POSIXLY_CORRECT (the first server name ends the options)
    options_end: int = 0  # where getopt stopped: an option placed here comes after all of the caller's

    @property
    def stops(self) -> bool:
        """fetchmail polls nothing because of the options alone."""
        return (
            self.help or self.getopt_error is not None or self.error is not None or self.version or self.configdump
            or self.quit_only
        )  # fmt: skip


class _GetoptError(Exception):
    pass


def _getopt(argv: Sequence[str], posix: bool) -> tuple[list[tuple[str, str | None, int]], list[str], int]:
    """glibc getopt_long: (key, argument, optind after it) per option, in order, the operands, and
    where the options end (the `--`, or with POSIXLY_CORRECT the first operand; else len(argv)).
    A complaint is ('?', message, optind): fetchmail takes it as -? (help) and carries on."""
    found: list[tuple[str, str | None, int]] = []
    operands: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            return found, [*operands, *argv[i + 1 :]], i
        if not arg.startswith("-") or arg == "-":
            if posix:  # REQUIRE_ORDER
                return found, [*operands, *argv[i:]], i
            operands.append(arg)  # PERMUTE: scanned past, handed back at the end
            i += 1
            continue
        if arg.startswith("--"):
            i = _long_option(argv, i, found)
            continue
        j = 1
        while j < len(arg):
            letter, j = arg[j], j + 1
            kind = _SHORT.get(letter)
            if kind is None:
                found.append(("?", f"invalid option -- '{letter}'", i + 1))
            elif kind == _NONE:
                found.append((letter, None, i + 2 if j == len(arg) else i + 1))  # optind moves past a finished word
            elif j < len(arg):
                found.append((letter, arg[j:], i + 2))
                j = len(arg)
            elif i + 1 < len(argv):
                found.append((letter, argv[i + 1], i + 3))
                i += 1
            else:
                found.append(("?", f"option requires an argument -- '{letter}'", i + 2))
        i += 1
    return found, operands, len(argv)


def _long_option(argv: Sequence[str], i: int, found: list[tuple[str, str | None, int]]) -> int:
    text = argv[i][2:]
    name, eq, value = text.partition("=")
    exact = [entry for entry in _LONG if entry[0] == name]
    matches = exact or [entry for entry in _LONG if entry[0].startswith(name)]
    if not matches:
        found.append(("?", f"unrecognized option '--{text}'", i + 2))
        return i + 1
    if len({(kind, key) for _, kind, key in matches}) > 1:  # the same option under two names is one
        possible = " ".join(f"'--{full}'" for full, _, _ in matches)
        found.append(("?", f"option '--{text}' is ambiguous; possibilities: {possible}", i + 2))
        return i + 1
    full, kind, key = matches[0]
    if eq and kind == _NONE:
        found.append(("?", f"option '--{full}' doesn't allow an argument", i + 2))
    elif eq:
        found.append((key, value, i + 2))
    elif kind == _NONE:
        found.append((key, None, i + 2))
    elif i + 1 < len(argv):
        found.append((key, argv[i + 1], i + 3))
        return i + 2
    else:
        found.append(("?", f"option '--{full}' requires an argument", i + 2))
    return i + 1


def _strtol(text: str) -> int | None:
    """strtol(s, &end, 0) that must consume all of `s` (options.c xatoi); None: not a number."""
    rest = text.lstrip(" \t\n\v\f\r")
    sign = -1 if rest.startswith("-") else 1
    rest = rest[1:] if rest[:1] in ("+", "-") else rest
    base, digits = 10, rest
    if rest[:2].lower() == "0x" and rest[2:3] and rest[2:3] in "0123456789abcdefABCDEF":
        base, digits = 16, rest[2:]
    elif rest.startswith("0") and len(rest) > 1:
        base, digits = 8, rest[1:]
    valid = "0123456789abcdefABCDEF"[: base + (6 if base == 16 else 0)]
    if not digits or any(char not in valid for char in digits):
        return None
    return sign * int(digits, base)


class _Options:
    """parsecmdline's switch, option by option."""

    def __init__(self) -> None:
        self.overrides: dict[str, Setting] = {}
        self.values: dict[str, object] = {}
        self.error: str | None = None
        self.fatal = False  # interface_parse exits at once, even after -?
        self.outputs = 0  # ocount: -S, -m, --bsmtp

    def set(self, member: str, value: str | int | bool | tuple[str | None, ...], text: str) -> None:
        self.overrides[member] = Setting(value, CLI, text)

    def number(self, text: str) -> int | None:
        """xatoi: a number within an int, else fetchmail's complaint (and it stops reading options)."""
        value = _strtol(text)
        if value is None:
            self.error = f"String '{text}' is not a valid number string."
        elif not -(2**31) <= value < 2**31:
            bigger = "smaller" if value < 0 else "larger"
            self.error = f"Value of string '{text}' is {bigger} than {-(2**31) if value < 0 else 2**31 - 1}."
        else:
            return value
        return None

    def act(self, key: str, arg: str | None) -> None:
        shown = _shown(key, arg)
        if arg is None:
            if key in _FLAGS:
                self.set(*_FLAGS[key], shown)
            else:
                self.values[key] = True
        elif key in _STRINGS:
            if key in ("m", "bsmtp"):
                self.outputs += 1
            self.set(_STRINGS[key], arg, shown)
        elif key in _NUMBERS:
            value = self.number(arg)
            if value is not None:
                self.set(_NUMBERS[key], value, shown)
        elif key in _LISTS:
            if key == "S":
                self.outputs += 1
            items = [item for item in arg.split(",") if item]  # strtok: empty items vanish
            self.set(_LISTS[key], tuple(items) or (None,), shown)
        elif key == "Z":
            numbers = [self.number(item) for item in arg.split(",") if item] or [self.number("")]
            if self.error is None:
                self.set("antispam", tuple(str(n) for n in numbers), shown)
        else:
            self.argument(key, arg, shown)

    def argument(self, key: str, arg: str, shown: str) -> None:
        if key == "p":
            self.protocol(arg, shown)
        elif key == "auth":
            # strcmp, except "external" (strcasecmp); `any` is A_ANY, 0: it forces nothing
            name = "external" if arg.lower() == "external" else _AUTHS.get(arg)
            if name is None:
                self.error = f"Invalid authentication `{arg}' specified."
            elif name != "any":
                self.set("authenticate", name, shown)
        elif key == "t":
            value = self.number(arg)
            if value is not None:
                self.set("timeout", value or -1, shown)
        elif key == "bad-header":
            if arg.lower() not in ("accept", "reject"):
                self.error = f"Invalid bad-header policy `{arg}' specified."
            else:
                self.set("badheader", arg.lower(), shown)
        elif key == "I":
            problem = interface_problem(arg)
            if problem is not None:
                self.error, self.fatal = problem, True
            else:
                self.set("interface", arg, shown)
        elif key == "d":
            value = self.number(arg)
            if value is not None:
                self.values["d"] = value
        else:  # -f, -L, -i, --pidfile, --postmaster: run controls, the last one wins
            self.values[key] = arg

    def protocol(self, arg: str, shown: str) -> None:
        name = arg.lower()
        if name not in _PROTOCOLS:
            self.error = f"Invalid protocol `{arg}' specified."
        elif name == "kpop":
            self.set("protocol", "pop3", shown)
            self.set("service", "kpop", shown)
            self.set("authenticate", "kerberos_v5", shown)
        elif name == "sdps":
            self.set("protocol", "pop3", shown)
            self.set("sdps", True, shown)
        else:
            self.set("protocol", name, shown)


_NAMES = {key: full for full, _, key in reversed(_LONG)}  # the first long name of each option


def _shown(key: str, arg: str | None) -> str:
    """The option as a person would write it, for messages."""
    name = _NAMES.get(key, key)
    return f"--{name}" if arg is None else f"--{name} {shlex.quote(arg)}"


def parse_argv(argv: Sequence[str], posix: bool = False) -> CommandLine:
    """`fetchmail ARGV` (argv without the program name). `posix`: POSIXLY_CORRECT is set."""
    found, operands, end = _getopt(argv, posix)
    options = _Options()
    help_asked, complaint, quit_at = False, None, -1
    for key, arg, optind in found:  # while (!errflag && getopt_long(...) != -1)
        if key == "?":  # -?/--help, or getopt's complaint (its argument here): both are helpflag
            help_asked, complaint = True, complaint or arg
            continue
        if key == "q":
            quit_at = optind
        options.act(key, arg)
        if options.error is not None:
            break
    values = options.values
    interval = values.get("d")
    error = options.error
    if error is None and options.outputs > 1:
        error = "at most one of -S/--smtphost, -m/--mda and --bsmtp may be given"
    if help_asked and error is not None and not options.fatal:
        error = None  # exit(helpflag ? PS_SUCCESS : PS_SYNTAX): the usage, exit 0
    return CommandLine(
        rcfile=str(values["f"]) if "f" in values else None,
        servers=tuple(operands),
        overrides=MappingProxyType(options.overrides),
        poll_interval=interval if isinstance(interval, int) and interval >= 0 else None,
        check=bool(values.get("c")),
        version=bool(values.get("V")),
        configdump=bool(values.get("configdump")),
        quit=quit_at >= 0,
        quit_only=quit_at == len(argv) + 1,
        help=help_asked and error is None,
        getopt_error=complaint if error is None else None,
        error=error,
        posix=posix,
        options_end=end,
    )
