"""msmtp's config file syntax, line by line, as msmtp 1.8.23 reads it (conf.c).

`lines` is `read_conffile`'s loop up to the command: `fgets` into 501 bytes (a line of 500 bytes
or more is refused, and a NUL ends what msmtp sees of a line), `get_cmd` (the newline goes, then
one CR right before it, so CRLF files read like LF ones; blanks are only space and tab; `#` starts
a comment only as the first non-blank) and `trim_string` (blanks around the argument go, then one
pair of double quotes around it — there are no escapes: `"a\\"b"` is `a\\"b`). `check_argument` is
what each command accepts, with the words msmtp uses to refuse.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

LINEBUFSIZE = 501  # conf.c: `char linebuf[LINEBUFSIZE]` read with fgets


def words(text: str) -> list[str]:
    return text.split()


class LineTooLong(Exception):
    """conf.c: "line longer than 500 characters" (CONF_EPARSE; msmtp names no line number, mailpin does)."""

    def __init__(self, number: int) -> None:
        super().__init__(f"line longer than {LINEBUFSIZE - 1} characters")
        self.number = number


def lines(data: bytes) -> Iterator[tuple[int, str, str]]:
    """(line number, command, argument) of each command line, as read_conffile counts lines."""
    start, number = 0, 0
    while start < len(data):
        number += 1
        newline = data.find(b"\n", start, start + LINEBUFSIZE - 1)
        end = newline + 1 if newline != -1 else min(len(data), start + LINEBUFSIZE - 1)
        buf = data[start:end].split(b"\0", 1)[0]  # what strlen and strchr see of what fgets read
        start = end
        if len(buf) == LINEBUFSIZE - 1 and not buf.endswith(b"\n"):
            raise LineTooLong(number)
        split = get_cmd(buf)
        if split is not None:
            yield number, *split


def get_cmd(line: bytes) -> tuple[str, str] | None:
    """conf.c get_cmd: (command, argument), or None for an empty or comment line."""
    newline = line.find(b"\n")
    if newline != -1:
        line = line[:newline]
        if line.endswith(b"\r"):  # "Kill '\r' (if CRLF line endings are used)": one, right before LF
            line = line[:-1]
    rest = line.lstrip(b" \t")
    if not rest or rest.startswith(b"#"):
        return None
    length = next((i for i, byte in enumerate(rest) if byte in b" \t"), len(rest))
    return _text(rest[:length]), _text(trim_string(rest[length:]))


def trim_string(s: bytes) -> bytes:
    """conf.c trim_string: blanks off both ends, then one pair of enclosing double quotes."""
    s = s.strip(b" \t")
    return s[1:-1] if len(s) >= 2 and s.startswith(b'"') and s.endswith(b'"') else s


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


# --- arguments ----------------------------------------------------------------------------------

_STRTOL = re.compile(r"[ \t\n\v\f\r]*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)")
_INT_MAX = 2**31 - 1


def pos_int(text: str) -> int:
    """conf.c get_pos_int: C strtol base 0 (0x1d is 29, 010 is 8) over the whole text; -1 unless 1..INT_MAX."""
    match = _STRTOL.fullmatch(text)
    if match is None:
        return -1
    sign, digits = match.groups()
    base = 16 if digits[:2] in ("0x", "0X") else (8 if digits.startswith("0") else 10)
    value = int(digits, base) * (-1 if sign == "-" else 1)
    return value if 0 < value <= _INT_MAX else -1


def port_number(text: str) -> int:
    """A port as msmtp reads it (already checked by `check_argument`)."""
    return pos_int(text)


def fingerprint_ok(text: str) -> bool:
    """conf.c get_fingerprint, chosen by length: SHA256, SHA1 or MD5 as hex pairs joined by ":" or " "."""
    return any(
        len(text) == 3 * size - 1
        and all(re.fullmatch(r"[0-9A-Fa-f]{2}", text[3 * i : 3 * i + 2]) for i in range(size))
        and all(text[3 * i + 2] in ": " for i in range(size - 1))
        for size in (32, 20, 16)
    )


def dsn_notify_ok(arg: str) -> bool:
    """conf.c check_dsn_notify_arg, its strstr counting and all ("failuredelay," passes)."""
    if arg == "never":
        return True
    words = [word for word in ("failure", "delay", "success") if word in arg]
    count, length = len(words), sum(len(word) for word in words)
    return not (
        count == 0
        or len(arg) != length + count - 1
        or (count == 2 and "," not in arg)
        or (count == 3 and arg.count(",") < 2)
    )


AUTH_MECHANISMS = tuple(words("plain cram-md5 digest-md5 scram-sha-1 scram-sha-256 gssapi external login ntlm"))
SYSLOG_FACILITIES = ("LOG_USER", "LOG_MAIL", *(f"LOG_LOCAL{n}" for n in range(8)))
_ON_OFF = ("", "on", "off")  # an empty argument is "on" for these (conf.c: `*arg == '\0' || is_on(arg)`)
_CHOICES: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(
        words(
            "tls tls_starttls tls_certcheck remove_bcc_headers undisclosed_recipients add_missing_from_header "
            "add_missing_date_header auto_from keepbcc"
        ),
        _ON_OFF,
    ),
    "allow_from_override": ("on", "off"),  # no empty "on" here
    "protocol": ("smtp", "lmtp"),
    "dsn_return": ("off", "headers", "full"),
    "set_from_header": ("", "auto", "on", "off"),
    "set_date_header": ("", "auto", "off"),
    "set_msgid_header": ("", "auto", "off"),
    "syslog": (*_ON_OFF, *SYSLOG_FACILITIES),
    "auth": (*_ON_OFF, *AUTH_MECHANISMS, "oauthbearer", "xoauth2"),
}
_FREE = frozenset(
    words(
        "host domain from user password passwordeval ntlmdomain tls_key_file tls_cert_file tls_trust_file "
        "tls_crl_file tls_priorities tls_host_override logfile logfile_time_format aliases proxy_host source_ip "
        "socket maildomain tls_force_sslv3"
    )
)
_NEEDS_ARG = frozenset(words("host port timeout connect_timeout protocol dsn_notify dsn_return"))


def check_argument(command: str, arg: str) -> str | None:
    """Why msmtp refuses `command arg` (its words, without "line N: "), or None when it accepts it."""
    if command in _NEEDS_ARG and not arg:
        return f"command {command} needs an argument"
    if command in ("tls_nocertcheck", "tls_nostarttls"):
        return f"command {command} does not take an argument" if arg else None
    if command in _CHOICES:
        ok = arg in _CHOICES[command]
    elif command in ("port", "proxy_port"):
        ok = (command == "proxy_port" and not arg) or 0 < pos_int(arg) <= 65535
    elif command in ("timeout", "connect_timeout"):
        ok = arg == "off" or pos_int(arg) > 0
    elif command == "tls_min_dh_prime_bits":
        ok = not arg or pos_int(arg) > 0
    elif command == "dsn_notify":
        ok = arg == "off" or dsn_notify_ok(arg)
    elif command == "tls_fingerprint":
        ok = not arg or fingerprint_ok(arg)
    elif command in _FREE:
        ok = True
    else:
        return f"unknown command {command}"
    return None if ok else f"invalid argument {arg} for command {command}"
