"""msmtp's command line, the message header and the `from` patterns that choose its account.

Pure helpers for `configs.msmtp`: `parse_argv` reads argv the way msmtp 1.8.23 does (GNU
`getopt_long`: bundled short options, abbreviated long options, arguments permuted, `--` ends
options); `envelope_from` extracts the address `--read-envelope-from` takes from the message;
`from_matches` is msmtp's `from` matching; `check_argument` is what msmtp accepts as the argument
of a config command (and of the command-line option that overrides it). All were checked against
the real msmtp (`tests/test_configs_msmtp.py`).
"""

from __future__ import annotations

import fnmatch
import re
import string
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from mailpin.errors import ConfigError

CLI = "msmtp command line"


def _words(text: str) -> list[str]:
    return text.split()


# the `source` of errors about argv

# Short options (msmtp.c `getopt_long` string, measured): True = takes an argument.
_SHORT = {**dict.fromkeys("PdvStiGmn", False), **dict.fromkeys("CafFNRXobhABLO", True)}
_SHORT_NAMES = {"P": "pretend", "d": "debug", "v": "debug", "S": "serverinfo", "t": "read-recipients", "C": "file"}
_SHORT_NAMES |= {"a": "account", "f": "from", "N": "dsn-notify", "R": "dsn-return", "X": "logfile"}

_NONE, _REQUIRED, _OPTIONAL = 0, 1, 2
_LONG = {
    **dict.fromkeys(
        _words("pretend debug serverinfo read-recipients read-envelope-from version help"),
        _NONE,
    ),
    **dict.fromkeys(
        _words(
            "file account host port source-ip proxy-host proxy-port socket timeout protocol domain user passwordeval "
            "password tls-trust-file tls-crl-file tls-fingerprint tls-key-file tls-cert-file tls-priorities "
            "tls-host-override tls-min-dh-prime-bits from maildomain dsn-notify dsn-return logfile "
            "logfile-time-format aliases rmqs configure"
        ),
        _REQUIRED,
    ),
    # `--tls[=(on|off)]`: an optional argument must be attached with `=`; alone it means "on".
    **dict.fromkeys(
        _words(
            "auth tls tls-starttls tls-certcheck auto-from syslog set-from-header set-date-header set-msgid-header "
            "remove-bcc-headers undisclosed-recipients keepbcc add-missing-from-header add-missing-date-header "
            "tls-force-sslv3"
        ),
        _OPTIONAL,
    ),
}

# Options that change how the chosen account connects (man msmtp: "Options override configuration
# file settings"), as the config command they override.
ENDPOINT_OPTIONS = {
    opt: opt.replace("-", "_")
    for opt in _words(
        "port tls tls-starttls tls-trust-file tls-fingerprint tls-certcheck tls-host-override socket "
        "proxy-host proxy-port protocol tls-key-file tls-cert-file"
    )
}


@dataclass(frozen=True)
class Invocation:
    """What one msmtp command line asks for, as far as choosing the account goes."""

    mode: str = "sendmail"  # sendmail | serverinfo | rmqs | configure | info (--version/--help)
    account: str | None = None  # -a/--account (the last one wins)
    host: str | None = None  # --host: command-line settings only, no config file
    envelope_from: str | None = None  # -f/--from
    read_envelope_from: bool = False
    read_recipients: bool = False  # -t: recipients from To, Cc and Bcc as well
    file: str | None = None  # -C/--file
    overrides: tuple[tuple[str, str], ...] = ()  # (config command, value) in command-line order
    operands: tuple[str, ...] = ()  # recipients


def options_end(argv: Sequence[str], posix: bool) -> int:
    """Where msmtp stops reading options: the index of `--`, or — with POSIXLY_CORRECT, where GNU
    getopt stops at the first operand — of the first recipient; else the end (options may follow
    recipients). An option placed there comes after every option of the caller's."""
    end = next((i for i, (key, _) in _indexed(argv, posix) if key == ""), len(argv)) if posix else len(argv)
    return argv.index("--") if "--" in argv[:end] else end


def _options(argv: Sequence[str], posix: bool = False) -> Iterator[tuple[str, str | None]]:
    """Yield (long name or short letter, value) like GNU getopt_long; operands as ("", value)."""
    for _, option in _indexed(argv, posix):
        yield option


def _indexed(argv: Sequence[str], posix: bool) -> Iterator[tuple[int, tuple[str, str | None]]]:
    """`_options`, each with the index of the argument it starts at."""
    i = 0
    while i < len(argv):
        start, arg = i, argv[i]
        i += 1
        if arg == "--":
            yield from ((n, ("", rest)) for n, rest in enumerate(argv[i:], i))
            return
        if arg.startswith("--"):
            name, eq, value = arg[2:].partition("=")
            full = _long_name(name)
            kind = _LONG[full]
            if kind == _NONE and eq:
                raise ConfigError(CLI, None, f"option '--{full}' doesn't allow an argument")
            if kind == _REQUIRED and not eq:
                if i >= len(argv):
                    raise ConfigError(CLI, None, f"option '--{full}' requires an argument")
                value, eq, i = argv[i], "=", i + 1
            yield start, (full, (value if eq else None))
        elif arg.startswith("-") and arg != "-":
            j = 1
            while j < len(arg):
                letter = arg[j]
                j += 1
                if letter not in _SHORT:
                    raise ConfigError(CLI, None, f"invalid option -- '{letter}'")
                if not _SHORT[letter]:
                    yield start, (letter, None)
                    continue
                if j < len(arg):
                    yield start, (letter, arg[j:])
                elif i < len(argv):
                    yield start, (letter, argv[i])
                    i += 1
                else:
                    raise ConfigError(CLI, None, f"option requires an argument -- '{letter}'")
                break
        elif posix:  # POSIXLY_CORRECT: getopt stops at the first operand; the rest are recipients
            yield from ((n, ("", rest)) for n, rest in enumerate(argv[start:], start))
            return
        else:
            yield start, ("", arg)  # getopt_long permutes: options may follow recipients


def _long_name(name: str) -> str:
    """GNU getopt_long: an exact name, else an unambiguous prefix of one."""
    if name in _LONG:
        return name
    matches = [full for full in _LONG if full.startswith(name)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise ConfigError(CLI, None, f"unrecognized option '--{name}'")
    raise ConfigError(CLI, None, f"option '--{name}' is ambiguous; possibilities: {' '.join(matches)}")


def parse_argv(argv: Sequence[str]) -> Invocation:
    """Read argv (without argv[0]); raise ConfigError where msmtp would refuse the command line."""
    fields: dict[str, str | None] = {}
    overrides: list[tuple[str, str]] = []
    operands: list[str] = []
    modes: list[str] = []
    read_envelope_from = read_recipients = False
    for key, value in _options(argv):
        name = _SHORT_NAMES.get(key, key)
        if name == "":
            operands.append(value or "")
        elif name == "b" and value != "m":  # sendmail -bm (deliver) is the only operation mode msmtp knows
            raise ConfigError(CLI, None, f"unsupported operation mode b{value}")
        elif name in ("file", "account", "host", "from"):
            fields[name] = value
        elif name == "read-envelope-from":
            read_envelope_from = True
        elif name == "read-recipients":
            read_recipients = True
        elif name in ("serverinfo", "rmqs", "configure"):
            modes.append(name)
        elif name in ("version", "help"):
            modes.append("info")
        elif name in ENDPOINT_OPTIONS:
            if _LONG[name] == _OPTIONAL and value == "":
                raise ConfigError(CLI, None, f"invalid argument  for --{name}")
            overrides.append((ENDPOINT_OPTIONS[name], "on" if value is None else value))
    if fields.get("host") is not None and fields.get("account") is not None:
        raise ConfigError(CLI, None, "cannot use both --host and --account")
    if fields.get("from") is not None and read_envelope_from:
        raise ConfigError(CLI, None, "cannot use both --from and --read-envelope-from")
    mode = "info" if "info" in modes else (modes[-1] if modes else "sendmail")
    if mode in ("serverinfo", "rmqs") and operands:
        raise ConfigError(CLI, None, "too many arguments")
    return Invocation(
        mode=mode,
        account=fields.get("account"),
        host=fields.get("host"),
        envelope_from=fields.get("from"),
        read_envelope_from=read_envelope_from,
        read_recipients=read_recipients,
        file=fields.get("file"),
        overrides=tuple(overrides),
        operands=tuple(operands),
    )


# --- --read-envelope-from: the first address of the first From header ----------------------------


def from_header(message: bytes) -> str | None:
    """The (unfolded) value of the first From header, or None; headers end at the first empty line."""
    text = message.decode("utf-8", "surrogateescape")
    value: list[str] | None = None
    for line in text.split("\n"):
        line = line.removesuffix("\r")
        if value is not None:
            if line[:1] in (" ", "\t"):
                value.append("\n" + line)  # RFC 5322 §2.2.3 folding; "\n" marks where it was
                continue
            break
        if not line:
            break
        if line[:5].lower() == "from:":
            value = [line[5:]]
    return None if value is None else "".join(value)


def envelope_from(message: bytes) -> str | None:
    """The envelope-from msmtp takes from the message with --read-envelope-from (None: no From).

    msmtp 1.8.23 uses the From header only (not Resent-From, whatever comes first), and the first
    non-empty address of its list (msmtp.c `parse_address_list`, measured).
    """
    value = from_header(message)
    return None if value is None else next(addresses(value), None)


def _skip_comment(text: str, i: int) -> int | None:
    """Index after the (nested) comment starting at text[i] == "(", or None if unterminated."""
    depth = 0
    while i < len(text):
        char = text[i]
        if char == "\\":
            i += 2
            continue
        depth += {"(": 1, ")": -1}.get(char, 0)
        i += 1
        if depth == 0:
            return i
    return None


def _bracket(text: str, i: int) -> tuple[str, int]:
    """The address inside <...> starting after text[i] == "<", and the index after it."""
    out: list[str] = []
    i += 1
    while i < len(text):
        char = text[i]
        if char == "\\":
            out.append(text[i + 1 : i + 2])
            i += 2
        elif char == "(":
            end = _skip_comment(text, i)
            if end is None:
                return "".join(out), len(text)
            i = end
        elif char == ">":
            return "".join(out), i + 1
        elif char == "\n":  # a fold inside brackets vanishes with its leading white space (measured)
            i += 1
            while i < len(text) and text[i] in " \t":
                i += 1
        else:
            out.append(char)
            i += 1
    return "".join(out), i


def addresses(value: str) -> Iterator[str]:
    """The non-empty addresses of a header value, in order, msmtp-style (white space becomes "_")."""
    found: list[str] = []
    current: list[str] = []
    bracket: str | None = None
    ended = False  # white space ends a word; the next word replaces it ("Joe joe@example.com")
    i = 0
    while i < len(value):
        char = value[i]
        if char == "(":
            end = _skip_comment(value, i)
            if end is None:
                break
            i = end
            continue
        if char == '"':
            end = i + 1
            while end < len(value) and value[end] != '"':
                end += 2 if value[end] == "\\" else 1
            if end >= len(value):  # an unterminated quoted string loses the address it is in
                yield from _non_empty(found)
                return
            current, ended, i = [], False, end + 1
            continue
        if char == "<":
            address, i = _bracket(value, i)
            bracket = address if bracket is None else bracket
            continue
        if char in ",;":
            found.append(bracket if bracket is not None else "".join(current))
            current, bracket, ended = [], None, False
        elif char in " \t\n":
            ended = True
        elif char == ":":  # "group: a@x, b@y;"
            current, ended = [], False
        else:
            if char == "\\":
                i += 1
                char = value[i : i + 1]
            if ended:
                current, ended = [], False
            current.append(char)
        i += 1
    found.append(bracket if bracket is not None else "".join(current))
    yield from _non_empty(found)


def _non_empty(found: list[str]) -> Iterator[str]:
    for address in found:
        if address:
            yield address.replace(" ", "_").replace("\t", "_")


# --- `from` matching (man msmtp USAGE, measured) ------------------------------------------------

_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def from_matches(pattern: str, address: str) -> bool:
    """Does an envelope-from address choose the account whose `from` is `pattern`?

    msmtp 1.8.23: a `from` holding `?`, `*` or `[` is a shell pattern, matched case-sensitively
    against the whole address (fnmatch without flags; no subaddress stripping). Otherwise the
    comparison ignores ASCII case, and `user+detail@example.com` also matches `user@example.com`.
    """
    if any(char in pattern for char in "?*["):
        return fnmatch.fnmatchcase(address, pattern.replace("[^", "[!"))
    wanted = pattern.translate(_ASCII_LOWER)
    return wanted in (address.translate(_ASCII_LOWER), _without_subaddress(address).translate(_ASCII_LOWER))


def _without_subaddress(address: str) -> str:
    plus = address.find("+")
    at = address.find("@", plus + 1) if plus != -1 else -1
    return address[:plus] + address[at:] if at != -1 else address


# --- arguments of config commands and their command-line options ---------------------------------

# What msmtp accepts as an argument (conf.c, measured): empty means "on" where on/off is expected.
_ON_OFF = ("", "on", "off")
_CHOICES: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(
        _words(
            "tls tls_starttls tls_certcheck remove_bcc_headers undisclosed_recipients auto_from "
            "add_missing_from_header add_missing_date_header keepbcc"
        ),
        _ON_OFF,
    ),
    "allow_from_override": ("on", "off"),
    "protocol": ("smtp", "lmtp"),
    "dsn_return": ("off", "headers", "full"),
    "set_from_header": ("", "auto", "on", "off"),
    "set_date_header": ("", "auto", "off"),
    "set_msgid_header": ("", "auto", "off"),
    "syslog": (*_ON_OFF, "LOG_USER", "LOG_MAIL", *(f"LOG_LOCAL{n}" for n in range(8))),
    "auth": (
        *_ON_OFF,
        *_words("plain scram-sha-1 scram-sha-256 external gssapi cram-md5 digest-md5 login ntlm"),
        "oauthbearer",
        "xoauth2",
    ),
}
_FREE = frozenset(
    _words(
        "host source_ip proxy_host socket domain user password passwordeval ntlmdomain tls_trust_file tls_crl_file "
        "tls_key_file tls_cert_file tls_priorities tls_host_override from logfile logfile_time_format aliases "
        "maildomain tls_force_sslv3"
    )
)
_NEEDS_ARG = frozenset({"host", "port", "timeout", "protocol", "dsn_notify", "dsn_return"})


_STRTOL = re.compile(r"[ \t\n\v\f\r]*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)")


def _pos_int(text: str, limit: int = 2**31 - 1) -> bool:
    """conf.c get_pos_int: C strtol base 0 (0x1d is 29, 010 is 8) over the whole text, then 1..limit."""
    match = _STRTOL.fullmatch(text)
    if match is None:
        return False
    sign, digits = match.groups()
    base = 16 if digits[:2] in ("0x", "0X") else (8 if digits.startswith("0") else 10)
    value = int(digits, base) * (-1 if sign == "-" else 1)
    return 0 < value <= limit


def port_number(text: str) -> int:
    """A port as msmtp reads it (already checked by `check_argument`)."""
    match = _STRTOL.fullmatch(text)
    assert match is not None
    digits = match.group(2)
    return int(digits, 16 if digits[:2] in ("0x", "0X") else (8 if digits.startswith("0") else 10))


def check_argument(command: str, arg: str) -> str | None:
    """Why msmtp refuses `command arg` (its words), or None when it accepts it."""
    if command in _NEEDS_ARG and not arg:
        return f"command {command} needs an argument"
    if command in ("tls_nocertcheck", "tls_nostarttls"):
        return f"command {command} does not take an argument" if arg else None
    if command in _CHOICES:
        ok = arg in _CHOICES[command]
    elif command in ("port", "proxy_port"):
        ok = (command == "proxy_port" and not arg) or _pos_int(arg, 65535)
    elif command in ("timeout", "tls_min_dh_prime_bits"):
        ok = (arg == "off" if command == "timeout" else not arg) or _pos_int(arg)
    elif command == "dsn_notify":
        parts = arg.split(",")
        ok = arg in ("off", "never") or (
            len(set(parts)) == len(parts) and set(parts) <= {"failure", "delay", "success"}
        )
    elif command == "tls_fingerprint":
        ok = not arg or _fingerprint(arg)
    elif command in _FREE:
        ok = True
    else:
        return f"unknown command {command}"
    return None if ok else f"invalid argument {arg} for command {command}"


def _fingerprint(text: str) -> bool:
    """conf.c get_fingerprint: SHA256, SHA1 or MD5 as hex pairs separated by ":" or " "."""
    return bool(
        re.fullmatch(r"[0-9A-Fa-f]{2}([: ][0-9A-Fa-f]{2}){15}(([: ][0-9A-Fa-f]{2}){4}|([: ][0-9A-Fa-f]{2}){16})?", text)
    )
