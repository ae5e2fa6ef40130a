"""mbsync config syntax: lines, arguments and values, read the way isync's `src/config.c` reads them.

`mbsync` reads the sections that matter to TLS (IMAPAccount, IMAPStore, Channel, Group) with these;
the options mbsync checks but that decide nothing about a connection (global options, MaildirStore,
store options, Channel sync options) are checked here too, so a config mbsync refuses is refused.
TLS version lists (SSLVersions, 1.5 TLSVersions, the ≤ 1.4 UseTLSv1* flags) are counted, and
SSLType or the legacy UseIMAPS/RequireSSL flags resolved to a mode, as `drv_imap.c` does.
"""

from __future__ import annotations

import re
import string
from typing import NoReturn

from mailpin.errors import ConfigError
from mailpin.model import Mode

# --- lines and arguments: config.c get_arg() / getcline() ------------------------------------------

_SPACE = " \t\n\v\f\r"  # isspace() in the C locale
_FOLD = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
_LINE_BYTES = 1022  # config.c reads with fgets(buf, 1023): longer lines arrive as several lines


def _bytes(text: str) -> bytes:
    """The bytes mbsync reads (text from `load` carries undecodable bytes as surrogate escapes)."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate that no file could have produced
        return text.encode("utf-8", "surrogatepass")


def fold(word: str) -> str:
    """strcasecmp() folds ASCII only (str.lower() would make the Kelvin sign match 'k')."""
    return word.translate(_FOLD)


class Lines:
    """The config as `getcline()` hands it out: `cmd`/`value` of each line, blank lines as cmd None."""

    def __init__(self, text: str, source: str) -> None:
        self.source = source
        raw = _bytes(text)
        pieces = raw.split(b"\n")
        physical = [piece + b"\n" for piece in pieces[:-1]] + [pieces[-1]] * bool(pieces[-1])
        self._chunks = [  # what each fgets() call returns; C strings end at the first NUL
            line[at : at + _LINE_BYTES].removesuffix(b"\n").decode("utf-8", "surrogateescape").split("\0")[0]
            for line in physical
            for at in range(0, len(line), _LINE_BYTES)
        ]
        self.number = 0
        # What only isync >= 1.5 takes: (line, isync 1.4's own words refusing it); mbsync.load refuses
        # the config with them when the installed mbsync is older.
        self.newer: list[tuple[int, str]] = []
        self.cmd: str | None = None
        self.value = ""
        self._text = ""
        self._at = 0
        self._comment = False

    def fail(self, problem: str, line: int | None = None) -> NoReturn:
        raise ConfigError(self.source, self.number if line is None else line, problem)

    def arg(self) -> str | None:
        """The next argument: quotes group, backslash escapes, `#` starts a comment only at a word."""
        text, at = self._text, self._at
        while at < len(text) and text[at] in _SPACE:
            at += 1
        self._comment = text[at : at + 1] == "#"
        if at >= len(text) or self._comment:
            self._at = at
            return None
        word: list[str] = []
        escaped = quoted = False
        while at < len(text):
            char = text[at]
            at += 1
            if escaped and " " <= char <= "\x7f":  # `c >= 32` on a signed char: ASCII only
                escaped = False
                word.append(char)
            elif char == "\\":
                escaped = True
            elif char == '"':
                quoted = not quoted
            elif not quoted and char in _SPACE:
                break
            else:
                word.append(char)
        self._at = at
        if escaped:
            self.fail("unterminated escape sequence (a backslash must be followed by a character)")
        if quoted:
            self.fail('missing closing quote (")')
        return "".join(word)

    def rest(self) -> list[str]:
        words: list[str] = []
        while (word := self.arg()) is not None:
            words.append(word)
        return words

    def next(self) -> bool:
        """Advance to the next line that is blank or has a keyword; comment lines are skipped."""
        if self.number and (excess := self.arg()) is not None:
            self.fail(f"excess token '{excess}' (quote arguments that contain spaces)")
        while self.number < len(self._chunks):
            self._text, self._at = self._chunks[self.number], 0
            self.number += 1
            self.cmd = self.arg()
            if self.cmd is None and self._comment:
                continue
            if self.cmd is not None:
                value = self.arg()
                if value is None:
                    self.fail(f"parameter missing after '{self.cmd}'")
                self.value = value
            return True
        return False

    def section(self) -> bool:
        """The next line of the current section (sections end at a blank line or EOF)."""
        return self.next() and self.cmd is not None


# --- values: config.c parse_bool / parse_int / parse_size --------------------------------------------

_INT = re.compile(r"[ \t\n\v\f\r]*[+-]?[0-9]+")


def parse_bool(lines: Lines) -> bool:
    word = fold(lines.value)
    if word in ("yes", "true", "on", "1"):
        return True
    if word not in ("no", "false", "off", "0"):
        lines.fail(f"invalid boolean value '{lines.value}' (use yes or no)")
    return False


def parse_int(lines: Lines) -> int:
    """strtol() that must consume everything, stored in a C int (so it wraps like one)."""
    match = _INT.match(lines.value)
    if lines.value and (match is None or match.end() != len(lines.value)):
        lines.fail(f"invalid integer value '{lines.value}'")
    value = max(-(2**63), min(2**63 - 1, int(match.group()))) if match else 0
    return (value + 2**31) % 2**32 - 2**31


def parse_size(lines: Lines) -> int:
    match = re.fullmatch(r"([ \t\n\v\f\r]*[+-]?[0-9]+)?([kKmM]?)[bB]?", lines.value)
    if match is None:
        lines.fail(f"invalid size '{lines.value}' (a number, optionally followed by k or m)")
    factor = {"": 1, "k": 1024, "m": 1024 * 1024}[fold(match.group(2))]
    return int(match.group(1) or 0) * factor % 2**64 % 2**32


def _one_char(lines: Lines, what: str, punct: bool) -> None:
    if len(_bytes(lines.value)) != 1:  # strlen()
        lines.fail(f"{what} must be exactly one character long")
    if punct and lines.value not in string.punctuation:
        lines.fail(f"{what} must be a punctuation character")


def _choice(lines: Lines, label: str, allowed: frozenset[str], multi: bool = True) -> None:
    for word in [lines.value, *lines.rest()] if multi else [lines.value]:
        if fold(word) not in allowed:
            lines.fail(f"invalid {label} arg '{word}'")
        if label == "Sync" and any(op in fold(word) for op in _NEW_OPS):
            lines.newer.append((lines.number, f"invalid Sync arg '{word}'"))


def expand(path: str, home: str, what: str, notes: list[str]) -> str:
    """config.c expand_strdup(): `~` and `~/…` are $HOME; `~user/…` is looked up (not done here)."""
    if path == "~" or path.startswith("~/"):
        return home + path[1:]
    if path.startswith("~"):
        notes.append(f"{what}: '{path}' names another user's home; mailpin did not look it up")
    elif not path.startswith("/"):
        notes.append(f"{what}: relative path; isync 1.4 reads it from the working directory, 1.5 from the config's")
    return path


# --- options mbsync checks that decide nothing about a connection -------------------------------------

_SIDES = frozenset({"none", "far", "near", "both", "master", "slave"})
_OPS = frozenset({"new", "renew", "delete", "flags", "old", "upgrade", "gone"})  # 1.4 + 1.5 names
_NEW_OPS = ("old", "upgrade", "gone")  # 1.5
_SYNC = frozenset(
    {"pull", "push", "all", "full", "none", "noop"} | _OPS | {d + o for d in ("pull", "push") for o in _OPS}
)
_BOX_OPS = {"create": "Create", "remove": "Remove", "expunge": "Expunge", "expungesolo": "ExpungeSolo"}


def channel_option(lines: Lines, keyword: str) -> bool:
    """config.c getopt_helper(): options of a Channel, also allowed globally before any section."""
    if keyword == "sync":
        _choice(lines, "Sync", _SYNC)
    elif keyword in _BOX_OPS:
        if keyword == "expungesolo":  # 1.5
            lines.newer.append((lines.number, f"keyword '{lines.cmd}' is not recognized in Channel sections"))
        _choice(lines, _BOX_OPS[keyword], _SIDES)
    elif keyword in ("copyarrivaldate", "expireunread"):
        parse_bool(lines)
    elif keyword == "maxmessages":
        parse_int(lines)
    elif keyword == "expireside":  # 1.5
        lines.newer.append((lines.number, f"keyword '{lines.cmd}' is not recognized in Channel sections"))
        _choice(lines, "ExpireSide", frozenset({"far", "near"}), multi=False)
    return keyword in ("sync", "syncstate", "copyarrivaldate", "expireunread", "maxmessages", "expireside", *_BOX_OPS)


def _store_option(lines: Lines, keyword: str, kind: str) -> None:
    """driver.c parse_generic_store(): options every store type takes."""
    if keyword in ("trashremotenew", "trashnewonly"):
        parse_bool(lines)
    elif keyword == "maxsize":
        parse_size(lines)
    elif keyword == "flatten" and "/" in lines.value:
        lines.fail("flattened hierarchy delimiter cannot contain the canonical delimiter '/'")
    elif keyword not in ("trash", "mapinbox", "flatten"):
        lines.fail(f"keyword '{lines.cmd}' is not recognized in {kind} sections")


def imap_store_option(lines: Lines, keyword: str) -> None:
    """drv_imap.c imap_parse_store(): the options only an IMAPStore takes (besides `Account`)."""
    if keyword in ("usenamespace", "subscribedonly"):
        parse_bool(lines)
    elif keyword == "pathdelimiter":
        _one_char(lines, "Path delimiter", punct=False)
    elif keyword != "path":
        _store_option(lines, keyword, "IMAPStore")


def global_option(lines: Lines, keyword: str) -> None:
    if keyword == "fsync":
        parse_bool(lines)
    elif keyword == "fielddelimiter":
        _one_char(lines, "Field delimiter", punct=True)
    elif keyword == "bufferlimit":
        if parse_size(lines) == 0:
            lines.fail("BufferLimit cannot be zero")
    elif not channel_option(lines, keyword):
        lines.fail(f"'{lines.cmd}' is not a recognized section-starting or global keyword")


def check_maildir_store(lines: Lines) -> None:
    """drv_maildir.c maildir_parse_store(); nothing in it matters to TLS, but mbsync checks it."""
    while lines.section():
        keyword = fold(lines.cmd or "")
        if keyword == "altmap":
            parse_bool(lines)
        elif keyword == "infodelimiter":
            _one_char(lines, "Info delimiter", punct=True)
        elif keyword == "subfolders":
            if fold(lines.value) not in ("verbatim", "maildir++", "legacy"):
                lines.fail(f"unrecognized SubFolders style '{lines.value}' (Verbatim, Maildir++ or Legacy)")
        elif keyword not in ("inbox", "path"):
            _store_option(lines, keyword, "MaildirStore")


# --- TLS: drv_imap.c SSLType, SSLVersions, TLSVersions and the legacy UseIMAPS / RequireSSL / UseTLSv1* ---

V10, V11, V12, V13 = 1, 2, 4, 8  # TLS versions, as drv_imap.c counts them
_SSL_VERSIONS = {"tlsv1": V10, "tlsv1.1": V11, "tlsv1.2": V12, "tlsv1.3": V13}
_TLS_VERSIONS = {"1.0": V10, "1.1": V11, "1.2": V12, "1.3": V13}  # 1.5 TLSVersions {+|-}1.x
LEGACY_SSL = ("useimaps", "requiressl", "usetlsv1", "usetlsv1.1", "usetlsv1.2", "usetlsv1.3")  # ≤ 1.4 only


def ssl_versions(lines: Lines) -> int:
    """SSLVersions: the versions named are the ones enabled (SSLv2 and SSLv3 are accepted, and ignored)."""
    versions = 0
    for word in [lines.value, *lines.rest()]:
        if fold(word) not in ("sslv2", "sslv3") and fold(word) not in _SSL_VERSIONS:
            lines.fail(f"unrecognized SSL version '{word}' (TLSv1, TLSv1.1, TLSv1.2 or TLSv1.3)")
        versions |= _SSL_VERSIONS.get(fold(word), 0)
    return versions


def tls_versions(lines: Lines, versions: int | None) -> int:
    """isync 1.5 TLSVersions: `+1.x` / `-1.x` change the versions enabled so far."""
    versions = V12 | V13 if versions is None else versions  # 1.5 default: 1.2 and up
    for word in [lines.value, *lines.rest()]:
        if word[:1] not in ("+", "-") or word[1:] not in _TLS_VERSIONS:
            lines.fail(f"unrecognized TLS version '{word}' (+1.2, -1.0, …)")
        bit = _TLS_VERSIONS[word[1:]]
        versions = versions | bit if word[0] == "+" else versions & ~bit
    return versions


def legacy_versions(flags: dict[str, bool]) -> int:
    """drv_imap.c: the legacy options keep TLS 1.0 unless `UseTLSv1 no`; newer ones only when asked for."""
    return (V10 if flags.get("usetlsv1", True) else 0) | sum(
        bit for word, bit in (("usetlsv1.1", V11), ("usetlsv1.2", V12), ("usetlsv1.3", V13)) if flags.get(word)
    )


def old_tls_note(versions: int | None, flags: dict[str, bool], notes: list[str]) -> None:
    """OpenSSL uses the lowest contiguous run of the versions mbsync leaves enabled (SSL_OP_NO_*):
    measured with isync 1.4.4, `UseTLSv1.2 yes` alone (TLS 1.0 still on, 1.1 off) offers TLS 1.0 only."""
    versions = legacy_versions(flags) if versions is None else versions
    bits = [bit for bit in (V10, V11, V12, V13) if versions & bit]
    highest = bits[0] if bits else 0
    while highest * 2 in bits:
        highest *= 2
    if bits and highest < V12:
        offered = {V10: "1.0", V11: "1.1"}[highest]
        notes.append(
            f"the TLS versions configured leave mbsync offering TLS {offered} at most (OpenSSL stops at a gap)"
        )


def tls_mode(
    lines: Lines,
    what: str,
    start: int,
    tunnel: str | None,
    ssl_type: Mode | None,
    versions: int | None,
    flags: dict[str, bool],
    seen: dict[str, int],
    notes: list[str],
) -> Mode:
    """drv_imap.c: SSLType/TLSType, or ≤ 1.4's legacy UseIMAPS/RequireSSL/UseTLSv1* resolution."""
    legacy = sorted(seen[word] for word in LEGACY_SSL if word in flags)
    if not legacy:
        return ssl_type if ssl_type is not None else Mode.NONE if tunnel is not None else Mode.STARTTLS
    if ssl_type is not None or versions is not None:
        lines.fail(f"{what}: the legacy UseIMAPS/RequireSSL/UseTLS* options exclude SSLType and SSLVersions", start)
    notes.append(f"line {legacy[0]}: UseIMAPS/RequireSSL/UseTLS* are legacy: isync 1.4 reads them, 1.5 rejects them")
    versions = legacy_versions(flags)
    if flags.get("useimaps"):
        mode = Mode.IMPLICIT
    elif flags.get("requiressl", True):  # unset counts as yes, even with a Tunnel
        mode = Mode.STARTTLS
    elif not versions:
        mode = Mode.NONE
    else:
        line = seen["requiressl"]
        notes.append(f"line {line}: 'RequireSSL no' is ignored while a TLS version is enabled: mbsync uses STARTTLS")
        mode = Mode.STARTTLS
    if mode is not Mode.NONE and not versions:
        lines.fail(f"{what} requires SSL but no SSL versions are enabled", start)
    return mode
