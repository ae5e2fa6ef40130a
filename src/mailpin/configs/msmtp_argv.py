"""msmtp's command line, read exactly as msmtp 1.8.23 reads it (msmtp.c `msmtp_cmdline`).

msmtp hands argv to glibc's `getopt_long` with the option string below and its table of long
options; `_getopt` is that function: clustered short options (`-tiab`), an optional argument only
attached (`-d0.1`, so `-dalocal` is `-d` with "alocal", never `-a local`), long options by exact
name or unique prefix (`--acc`), `--opt=value` or `--opt value` for a required argument but only
`--opt=value` for an optional one, `--` ends the options, and arguments are permuted (options may
follow recipients) unless POSIXLY_CORRECT is set, where the first recipient ends the options.
`parse_argv` then does what msmtp_cmdline does with each option, refusing what it refuses.

The message header (`--read-envelope-from`) is `msmtp_header`, the `from` matching `msmtp_match`;
both are re-exported here for their callers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mailpin.configs.msmtp_header import addresses, envelope_from, from_header, read_headers
from mailpin.configs.msmtp_match import from_matches
from mailpin.configs.msmtp_syntax import (
    AUTH_MECHANISMS,
    SYSLOG_FACILITIES,
    check_argument,
    dsn_notify_ok,
    fingerprint_ok,
    port_number,
    pos_int,
    words,
)
from mailpin.errors import ToolUsageError

__all__ = [
    "CLI",
    "ENDPOINT_OPTIONS",
    "Invocation",
    "addresses",
    "check_argument",
    "envelope_from",
    "from_header",
    "from_matches",
    "options_end",
    "parse_argv",
    "port_number",
]

CLI = "msmtp command line"  # the `source` of errors about argv

NONE, REQUIRED, OPTIONAL = 0, 1, 2
_OPTSTRING = "Pd::SC:a:f:N:R:X:tA:B:b:F:Gh:iL:mnO:o:v"  # msmtp.c, the getopt_long call


def short_table(optstring: str) -> dict[str, int]:
    table: dict[str, int] = {}
    for i, char in enumerate(optstring):
        if char != ":":
            colons = len(optstring[i + 1 : i + 3]) - len(optstring[i + 1 : i + 3].lstrip(":"))
            table[char] = (NONE, REQUIRED, OPTIONAL)[colons]
    return table


_SHORT = short_table(_OPTSTRING)


def long_table(kind: int, names: str) -> dict[str, tuple[int, str]]:
    """name -> (has_arg, what msmtp does with it: a short letter or the long name itself)."""
    out: dict[str, tuple[int, str]] = {}
    for word in words(names):
        name, _, letter = word.partition("=")
        out[name] = (kind, letter or name)
    return out


# msmtp.c `options[]`, in its order (getopt lists ambiguous candidates in this order).
_LONG: dict[str, tuple[int, str]] = {
    **long_table(NONE, "version help"),
    **long_table(REQUIRED, "configure"),
    **long_table(NONE, "pretend=P"),
    **long_table(OPTIONAL, "debug=d"),  # "accept an optional argument for sendmail compatibility"
    **long_table(NONE, "serverinfo=S"),
    **long_table(REQUIRED, "rmqs file=C account=a host port timeout connect-timeout=timeout"),
    **long_table(OPTIONAL, "auto-from"),
    **long_table(REQUIRED, "from=f maildomain"),
    **long_table(OPTIONAL, "auth"),
    **long_table(REQUIRED, "user passwordeval"),
    **long_table(OPTIONAL, "tls tls-starttls"),
    **long_table(REQUIRED, "tls-trust-file tls-crl-file tls-fingerprint tls-key-file tls-cert-file"),
    **long_table(OPTIONAL, "tls-certcheck tls-force-sslv3"),
    **long_table(REQUIRED, "tls-min-dh-prime-bits tls-priorities tls-host-override dsn-notify=N dsn-return=R"),
    **long_table(REQUIRED, "protocol domain logfile=X logfile-time-format"),
    **long_table(OPTIONAL, "syslog"),
    **long_table(REQUIRED, "aliases proxy-host proxy-port"),
    **long_table(OPTIONAL, "add-missing-from-header add-missing-date-header set-from-header set-date-header"),
    **long_table(OPTIONAL, "set-msgid-header remove-bcc-headers undisclosed-recipients"),
    **long_table(REQUIRED, "source-ip socket"),
    **long_table(OPTIONAL, "keepbcc"),
    **long_table(NONE, "read-recipients=t read-envelope-from"),
}

# Options that change how the chosen account connects or whether msmtp accepts it (man msmtp:
# "Options override configuration file settings"), as the config command they override.
ENDPOINT_OPTIONS = {
    opt: opt.replace("-", "_")
    for opt in words(
        "port tls tls-starttls tls-trust-file tls-crl-file tls-fingerprint tls-certcheck tls-host-override "
        "tls-priorities tls-min-dh-prime-bits socket proxy-host proxy-port protocol tls-key-file tls-cert-file "
        "auto-from"
    )
}


@dataclass(frozen=True)
class Invocation:
    """What one msmtp command line asks for, as far as choosing the account goes."""

    mode: str = "sendmail"  # sendmail | serverinfo | rmqs | configure | info (--version/--help/-d0.1)
    account: str | None = None  # -a/--account (the last one wins)
    host: str | None = None  # --host: command-line settings only, no config file
    envelope_from: str | None = None  # -f/--from ("<>" is ""); None: not given
    read_envelope_from: bool = False
    read_recipients: bool = False  # -t: recipients from To, Cc and Bcc as well
    file: str | None = None  # -C/--file
    overrides: tuple[tuple[str, str], ...] = ()  # (config command, value) in command-line order
    operands: tuple[str, ...] = ()  # recipients
    pretend: bool = False  # -P/--pretend: msmtp then skips the envelope-from check of a send
    posix: bool = False  # read with POSIXLY_CORRECT (the first recipient ends the options)
    options_end: int = 0  # where msmtp stopped reading options (see `options_end`)
    recipients: tuple[str, ...] = ()  # the addresses msmtp reads in the operands (as "To: OPERAND" lines)


@dataclass(frozen=True)
class _Parsed:
    options: tuple[tuple[str, str | None], ...]  # (short letter or long name, optarg) in order
    operands: tuple[str, ...]
    end: int  # index of the `--` that ended the options, else of the first operand (POSIX), else len


def _getopt(argv: Sequence[str], posix: bool) -> _Parsed:
    return getopt_long(argv, posix, _SHORT, _LONG, CLI)


def getopt_long(
    argv: Sequence[str], posix: bool, short: dict[str, int], long: dict[str, tuple[int, str]], source: str
) -> _Parsed:
    """glibc getopt_long (2.36) over argv without argv[0], with a tool's option tables (msmtp's here,
    mpop's in configs/mpop.py: the same getopt); ToolUsageError(source, …) with its message on '?'."""
    options: list[tuple[str, str | None]] = []
    skipped: list[str] = []  # non-options permuted to the end, in order
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            return _Parsed(tuple(options), (*skipped, *argv[i + 1 :]), i)
        if not arg.startswith("-") or arg == "-":
            if posix:  # REQUIRE_ORDER: the first non-option ends the scan
                return _Parsed(tuple(options), tuple(argv[i:]), i)
            skipped.append(arg)  # PERMUTE
            i += 1
            continue
        if arg.startswith("--"):
            i = _long_option(argv, i, options, long, source)
        else:
            i = _short_options(argv, i, options, short, source)
    return _Parsed(tuple(options), tuple(skipped), len(argv))


def _long_option(
    argv: Sequence[str], i: int, options: list[tuple[str, str | None]], long: dict[str, tuple[int, str]], source: str
) -> int:
    text = argv[i][2:]
    name, eq, value = text.partition("=")
    kind, key, full = _long_match(name, text, long, source)
    if eq and kind == NONE:
        raise ToolUsageError(source, None, f"option '--{full}' doesn't allow an argument")
    if not eq and kind == REQUIRED:
        if i + 1 >= len(argv):
            raise ToolUsageError(source, None, f"option '--{full}' requires an argument")
        options.append((key, argv[i + 1]))
        return i + 2
    options.append((key, value if eq else None))
    return i + 1


def _long_match(name: str, text: str, long: dict[str, tuple[int, str]], source: str) -> tuple[int, str, str]:
    """An exact name, else the prefix's one option (candidates that are the same option count once)."""
    if name in long:
        return (*long[name], name)
    found = [full for full in long if full.startswith(name)]
    if not found:
        raise ToolUsageError(source, None, f"unrecognized option '--{text}'")
    if len({long[full] for full in found}) > 1:
        possible = " ".join(f"'--{full}'" for full in found)
        raise ToolUsageError(source, None, f"option '--{text}' is ambiguous; possibilities: {possible}")
    return (*long[found[0]], found[0])


def _short_options(
    argv: Sequence[str], i: int, options: list[tuple[str, str | None]], short: dict[str, int], source: str
) -> int:
    arg = argv[i]
    j = 1
    while j < len(arg):
        letter = arg[j]
        j += 1
        kind = short.get(letter)
        if kind is None or letter in ":;":
            raise ToolUsageError(source, None, f"invalid option -- '{letter}'")
        if kind == NONE:
            options.append((letter, None))
            continue
        if j < len(arg):  # the rest of this argument is the argument, required or optional
            options.append((letter, arg[j:]))
        elif kind == OPTIONAL:
            options.append((letter, None))
        elif i + 1 < len(argv):
            options.append((letter, argv[i + 1]))
            return i + 2
        else:
            raise ToolUsageError(source, None, f"option requires an argument -- '{letter}'")
        break
    return i + 1


def options_end(argv: Sequence[str], posix: bool) -> int:
    """Where msmtp stops reading options: the index of the `--` that ends them, or — with
    POSIXLY_CORRECT, where getopt stops at the first operand — of the first recipient; else the
    end (options may follow recipients). An option placed there comes after every option of the
    caller's. A `--` that is the argument of an option (`-f --`) does not end them."""
    return _getopt(argv, posix).end


_ON_OFF = (None, "on", "off")  # an optional on/off argument: alone it means "on"; `--tls=` is invalid
_CHOICES: dict[str, tuple[str | None, ...]] = {
    **dict.fromkeys(
        words(
            "tls tls-starttls tls-certcheck auto-from remove-bcc-headers keepbcc undisclosed-recipients "
            "add-missing-from-header add-missing-date-header"
        ),
        _ON_OFF,
    ),
    "set-from-header": (None, "auto", "on", "off"),
    "set-date-header": (None, "auto", "off"),
    "set-msgid-header": (None, "auto", "off"),
    "auth": (*_ON_OFF, "", *AUTH_MECHANISMS, "oauthbearer", "xoauth2"),  # check_auth_arg("") accepts ""
    "syslog": (*_ON_OFF, *SYSLOG_FACILITIES),  # but check_syslog_arg("") does not
    "R": ("off", "hdrs", "headers", "full"),  # "be compatible to both sendmail and the dsn_notify command"
    "protocol": ("smtp", "lmtp"),
}
_NAMES = {"N": "dsn-notify", "R": "dsn-return"}


def _check_option(key: str, value: str | None) -> None:
    """What msmtp_cmdline refuses about one option's argument ("invalid argument X for --opt")."""
    text = value or ""
    if key in _CHOICES:
        ok = value in _CHOICES[key]
    elif key in ("port", "proxy-port"):
        ok = (key == "proxy-port" and text == "") or 0 < pos_int(text) <= 65535
    elif key == "timeout":
        ok = text == "off" or pos_int(text) > 0
    elif key == "tls-min-dh-prime-bits":
        ok = text == "" or pos_int(text) > 0
    elif key == "N":
        ok = text == "off" or dsn_notify_ok(text)
    elif key == "tls-fingerprint":
        ok = text == "" or fingerprint_ok(text)
    else:
        return
    if not ok:
        raise ToolUsageError(CLI, None, f"invalid argument {value} for --{_NAMES.get(key, key)}")


def parse_argv(argv: Sequence[str], posix: bool = False) -> Invocation:
    """Read argv (without argv[0]) as msmtp does; raise ConfigError where msmtp refuses it (EX_USAGE).

    `posix`: POSIXLY_CORRECT is set in msmtp's environment (any value, even empty)."""
    parsed = _getopt(argv, posix)
    account = host = from_ = file = None
    overrides: list[tuple[str, str]] = []
    info = configure = serverinfo = rmqs = pretend = read_envelope_from = read_recipients = False
    for key, value in parsed.options:
        _check_option(key, value)
        if key in ("version", "help", "configure"):
            info, configure = info or key != "configure", configure or key == "configure"
            serverinfo = False  # as msmtp_cmdline does: a later --rmqs is then no conflict
        elif key in ("d", "v"):
            # "only care about the optional argument if it's 0.1 [...]: it prints version information"
            info = info or value == "0.1"
        elif key == "P":
            pretend = True
        elif key in ("S", "rmqs"):
            if (key == "S" and rmqs) or (key == "rmqs" and serverinfo):
                raise ToolUsageError(CLI, None, "cannot use both --serverinfo and --rmqs")
            serverinfo, rmqs = key == "S", key == "rmqs"
        elif key == "C":
            file = value
        elif key in ("a", "host"):
            if (key == "a" and host is not None) or (key == "host" and account is not None):
                raise ToolUsageError(CLI, None, "cannot use both --host and --account")
            account, host = (value, host) if key == "a" else (account, value)
        elif key in ("f", "read-envelope-from"):
            if (key == "f" and read_envelope_from) or (key != "f" and from_ is not None):
                raise ToolUsageError(CLI, None, "cannot use both --from and --read-envelope-from")
            if key == "f":
                from_ = "" if value == "<>" else value  # "Accept '<>' to mean an empty from address"
            read_envelope_from = read_envelope_from or key != "f"
        elif key == "t":
            read_recipients = True
        elif key == "b" and value != "m":  # sendmail -bm (deliver) is the only operation mode msmtp knows
            raise ToolUsageError(CLI, None, f"unsupported operation mode b{value}")
        elif key in ENDPOINT_OPTIONS:
            overrides.append((ENDPOINT_OPTIONS[key], "on" if value is None else value))
    # main(): --configure runs (after --version/--help print), else msmtp exits after printing
    # unless it was asked to send, to query a server (-S) or to start a queue run (--rmqs).
    mode = "serverinfo" if serverinfo else "rmqs" if rmqs else "sendmail"
    mode = "configure" if configure else "info" if info else mode
    recipients = _recipients(parsed.operands)
    if mode in ("serverinfo", "rmqs") and recipients:  # operands that hold no address do not count
        raise ToolUsageError(CLI, None, "too many arguments")
    return Invocation(
        mode=mode,
        account=account,
        host=host,
        envelope_from=from_,
        read_envelope_from=read_envelope_from,
        read_recipients=read_recipients,
        file=file,
        overrides=tuple(overrides),
        operands=parsed.operands,
        recipients=recipients,
        pretend=pretend,
        posix=posix,
        options_end=parsed.end,
    )


def _recipients(operands: Sequence[str]) -> tuple[str, ...]:
    """msmtp_cmdline writes each operand as a "To: " line and reads them as a message header."""
    if not operands:
        return ()
    header = b"".join(b"To: " + op.encode("utf-8", "surrogateescape") + b"\n" for op in operands) + b"\n"
    return tuple(r.decode("utf-8", "surrogateescape") for r in read_headers(header, True, envelope=False)[1])
