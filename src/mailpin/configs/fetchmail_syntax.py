"""fetchmail's run-control file, scanned the way fetchmail 6.4 scans it (Debian 12: 6.4.37).

`tokens` is the flex scanner of `rcfile_l.l`: the longest match wins, the earlier rule on a tie,
with its three start conditions (INITIAL; NAME after `user`/`is`/`to`/`=`/`password`, where the
next bare word is a name even if it is a keyword; AUTH after `auth`, where `password` is an
authentication type); quoted strings have no escaped quote and may span lines, `#` starts a
comment only where a token starts, and `escapes()` decodes C-style escapes in every string.
The grammar is `fetchmail_grammar`; `Setting` (an option's value, where and how it was written)
is shared with the command line (`fetchmail_argv`).
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

_DELIMITERS = frozenset("=;:, \t\r\n")  # what ends a bare word: [^=;:, \t\r\n]+
EOF = "EOF"


def names(spelled: str) -> frozenset[str]:
    return frozenset(spelled.split())


def _words(kind: str, spelled: str, value: str | None = None) -> dict[str, tuple[str, str | None]]:
    return {word: (kind, value) for word in spelled.split()}


_SAME = (  # keywords whose token is the word itself
    "set logfile idfile pidfile daemon syslog invisible showdots postmaster bouncemail spambounce softbounce warnings "
    "tracepolls defaults skip via aka service port interval timeout envelope qvirtual principal esmtpname "
    "esmtppassword accept here there fetchdomains smtpaddress smtpname mda bsmtp lmtp interface monitor plugin "
    "plugout batchlimit fetchlimit fetchsizelimit fastuidl expunge properties is to no keep flush limitflush "
    "fetchall rewrite forcecr stripcr dropstatus dropdelivered idle dns uidl ssl sslkey sslcert sslproto sslcertck "
    "sslcertfile sslcertpath sslcommonname sslfingerprint checkalias limit"
)
_PROTOS = ("auto", "pop2", "pop3", "imap", "apop", "rpop", "etrn", "odmr")


# rcfile_l.l, word by word: spelling -> (token, value). A keyword matches only a whole bare word
# (the STRING rule would match a longer one), so a dictionary is flex's rule table here.
KEYWORDS: dict[str, tuple[str, str | None]] = {
    **{word: (word.upper(), None) for word in _SAME.split()},
    **_words("POLL", "poll server"),
    **_words("LOCALDOMAINS", "local localdomains"),
    **_words("PROTOCOL", "proto protocol"),
    **_words("AUTHENTICATE", "auth authenticate preauth preauthenticate"),
    **_words("BADHEADER", "bad-header"),
    **_words("REJECT", "reject"),
    **_words("USERNAME", "user username"),
    **_words("PASSWORD", "pass password"),
    **_words("FOLDER", "folder folders"),
    **_words("SMTPHOST", "smtp smtphost"),
    **_words("SPAMRESPONSE", "antispam"),
    **_words("PRECONNECT", "pre preconnect"),
    **_words("POSTCONNECT", "post postconnect"),
    **_words("PASS8BITS", "pass8 pass8bits"),
    **_words("MIMEDECODE", "mimedec mimedecode"),
    **_words("NOISE", "with and has wants options"),  # {/* EMPTY */}: no token at all
    **_words("AUTHTYPE", "any", "any"),
    **_words("AUTHTYPE", "gssapi", "gssapi"),
    **_words("AUTHTYPE", "kerberos kerberos4 kerberos_v4", "kerberos_v4"),
    **_words("AUTHTYPE", "kerberos5 kerberos_v5", "kerberos_v5"),
    **_words("AUTHTYPE", "ssh", "ssh"),
    **_words("AUTHTYPE", "external", "external"),
    **_words("AUTHTYPE", "otp opie", "otp"),
    **_words("AUTHTYPE", "cram cram-md5", "cram-md5"),
    **_words("AUTHTYPE", "msn", "msn"),
    **_words("AUTHTYPE", "ntlm", "ntlm"),
    **{name: ("PROTO", name) for name in _PROTOS},
    **{name.upper(): ("PROTO", name) for name in _PROTOS},
    **_words("SDPS", "sdps SDPS"),
    **_words("KPOP", "kpop KPOP"),
}
# `nokeep` and friends: flex `yyless(2)` hands back NO and scans the rest again.
_NO_WORDS = names(
    "nobouncemail nouidl nocheckalias nodns noenvelope nokeep noflush nolimitflush nofetchall norewrite "
    "noforcecr nostripcr nopass8 nopass8bits nodropstatus nodropdelivered nomimedec nomimedecode "
    "nospambounce noidle"
)
_TO_NAME = frozenset({"USERNAME", "PASSWORD", "IS", "TO", "MAP"})  # SETSTATE(NAME)


@dataclass(frozen=True)
class Token:
    kind: str
    value: str | int | None  # STRING: the decoded text; NUMBER: atoi; PROTO/AUTHTYPE: the name
    text: str  # yytext: what bison's messages quote
    line: int
    start: int  # offsets into the text
    end: int
    index: int = 0  # position in the token list


def escapes(raw: str) -> str:
    """rcfile_l.l `escapes()`: \\ddd decimal (!), \\0oo octal, \\xhh hex, \\n \\t \\b \\r, backslash-newline
    joins, any other escaped character stands for itself; the C string ends at a NUL."""
    out: list[str] = []
    i, n = 0, len(raw)
    while i < n:
        char = raw[i]
        if char == "\\" and i + 1 < n and raw[i + 1] in "0123456789xX":
            i += 1
            value, count = 0, 0
            if raw[i] in "xX":
                i += 1
                while i < n and raw[i] in "0123456789abcdefABCDEF" and count < 2:
                    value, i, count = value * 16 + int(raw[i], 16), i + 1, count + 1
            else:
                digits, base = ("01234567", 8) if raw[i] == "0" else ("0123456789", 10)
                while i < n and raw[i] in digits and count < 3:
                    value, i, count = value * base + int(raw[i]), i + 1, count + 1
            out.append(_char(value & 0xFF))
        elif char == "\\":
            if i + 1 >= n:
                break  # a backslash at the end is dropped
            i += 1
            escaped = raw[i]
            i += 1
            if escaped == "\n":
                continue
            out.append({"n": "\n", "t": "\t", "b": "\b", "r": "\r"}.get(escaped, escaped))
        else:
            out.append(char)
            i += 1
    return "".join(out).split("\0", 1)[0]


def _char(byte: int) -> str:
    """A byte as the text holds it: the file is decoded as UTF-8 with surrogateescape."""
    return chr(byte) if byte < 0x80 else chr(0xDC00 + byte)


def _atoi(text: str) -> int:
    """glibc atoi: strtol clamped to a long, then truncated to a 32-bit int."""
    value = max(min(int(text), 2**63 - 1), -(2**63))
    return (value + 2**31) % 2**32 - 2**31


def _is_number(word: str) -> bool:  # -?[0-9]+
    digits = word[1:] if word.startswith("-") else word
    return digits.isascii() and digits.isdigit()


def tokens(text: str) -> list[Token]:
    """The scanner, over the whole file (its start conditions depend on the tokens alone, not on the
    parser, so scanning ahead changes nothing). Ends with an EOF token whose text is ""."""
    out: list[Token] = []
    state, line, i, n = "INITIAL", 1, 0, len(text)
    while i < n:
        char = text[i]
        if char in " \t\r":
            i += 1
            continue
        if char == "\n" or (char == "\\" and text.startswith("\\\n", i)):  # (#.*)?\\?\n
            i += 1 if char == "\n" else 2
            line += 1
            continue
        if char in ";:,":
            i += 1
            continue
        if char == "=":
            out.append(Token("MAP", None, "=", line, i, i + 1))
            state, i = "NAME", i + 1
            continue
        end = i
        while end < n and text[end] not in _DELIMITERS:
            end += 1
        word = text[i:end]
        quoted = text.find(char, i + 1) + 1 if char in "\"'" else 0  # \"[^\"]*\" | \'[^\']*\'
        if quoted and quoted - i >= len(word):  # the quoted-string rule comes first: it wins ties
            out.append(Token("STRING", escapes(text[i + 1 : quoted - 1]), text[i:quoted], line, i, quoted))
            line += text.count("\n", i, quoted)  # real lines (fetchmail's own count skips these)
            state, i = "INITIAL", quoted
            continue
        if char == "#":
            newline = text.find("\n", i)
            if newline >= 0:  # a comment is longer than any word it starts
                i, line = newline + 1, line + 1
                continue
        if state == "NAME":  # <NAME>[^=;:, \t\r\n]+ precedes every keyword rule
            out.append(Token("STRING", escapes(word), word, line, i, end))
            state, i = "INITIAL", end
            continue
        if word in _NO_WORDS:
            out.append(Token("NO", None, "no", line, i, i + 2))
            i += 2
            continue
        kind, value = KEYWORDS.get(word, ("", None))
        if state == "AUTH" and word == "password":
            kind, value = "AUTHTYPE", "password"  # <AUTH>password
        elif state == "AUTH" and kind == "PASSWORD" and word == "pass":
            kind = ""  # <INITIAL,NAME>pass(word)? is not active in AUTH
        if kind == "NOISE":
            i = end
            continue
        if kind:
            out.append(Token(kind, value, word, line, i, end))
            if kind in _TO_NAME:
                state = "NAME"
            elif kind == "AUTHENTICATE":
                state = "AUTH"
            elif kind == "AUTHTYPE":
                state = "INITIAL"
        elif _is_number(word):
            out.append(Token("NUMBER", _atoi(word), word, line, i, end))
        else:
            out.append(Token("STRING", escapes(word), word, line, i, end))
        i = end
    out.append(Token(EOF, None, "", line, n, n))
    return [Token(t.kind, t.value, t.text, t.line, t.start, t.end, index) for index, t in enumerate(out)]


# --- shared with the grammar and the command line -----------------------------------------------------


@dataclass(frozen=True)
class Setting:
    """One option's value, where it was set and how it was written."""

    value: str | int | bool | tuple[str | None, ...]
    where: str  # FILE:LINE, or the command line
    text: str  # as written: `sslproto ''`, `no sslcertck`, `--ssl`


def prependdir(file: str, directory: str) -> str:
    """rcfile_y.y `prependdir`: a relative file name is taken relative to the rc file's directory."""
    if not file or file.startswith("/") or file == "-" or not directory:
        return file
    return directory + file if directory.endswith("/") else f"{directory}/{file}"


def rc_directory(rcfile: str) -> str:
    """fetchmail.c load_params: the rc file's directory ("/" for /.fetchmailrc, "" for a bare name)."""
    slash = rcfile.rfind("/")
    return "" if slash < 0 else rcfile[:slash] or "/"


def interface_problem(spec: str) -> str | None:
    """interface.c `interface_parse`: IFACE/ADDRESS[/MASK], each address as inet_aton reads it; fetchmail
    exits with these words otherwise."""
    parts = spec.split("/")
    if len(parts) < 2:
        return "missing IP interface address"
    for part, what in ((parts[1], "address"), ("/".join(parts[2:]) or "255.255.255.255", "mask")):
        try:
            socket.inet_aton(part)
        except OSError:
            return f"invalid IP interface {what}"
    return None
