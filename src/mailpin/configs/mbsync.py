"""mbsync (isync): its config, read the way mbsync reads it; the command line is `mbsync_argv`.

The grammar is isync 1.4's (`src/config.c` `get_arg`/`getcline`/`load_config`, `src/drv_imap.c`
`imap_parse_store`, `src/drv_maildir.c`, `src/driver.c` `parse_generic_store`; Debian 12 ships
1.4.4), widened to what isync 1.5 also accepts (`TLSType`, `TLSVersions`, `ExpungeSolo`,
`ExpireSide`, the Old/Upgrade/Gone operations; 1.5 `man mbsync`).  A config only one version takes
is read, and its account carries a note saying which version refuses it.  Nothing the config asks
mbsync to run (`PassCmd`, `UserCmd`, `Tunnel`) is run here.
"""

from __future__ import annotations

import os
import re
import string
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from mailpin.configs import mbsync_argv
from mailpin.env import Env
from mailpin.errors import ConfigError
from mailpin.model import Account, Mode, Protocol, Tool


@dataclass(frozen=True)
class Store:
    name: str
    line: int
    account: Account | None  # the IMAP account the store connects with; None for a MaildirStore


@dataclass(frozen=True)
class Channel:
    name: str
    line: int
    far: Store
    near: Store
    patterns: bool  # only a channel with Patterns may have its boxes named by a group or argv


@dataclass(frozen=True)
class Group:
    name: str
    line: int
    members: tuple[str, ...]  # "channel" or "channel:box[,box…]", as written


@dataclass(frozen=True)
class MbsyncConfig:
    accounts: tuple[Account, ...]  # every IMAPAccount and every IMAPStore with inline options, file order
    source: str  # the file read (none found: the legacy ~/.mbsyncrc, which both versions fall back to)
    stores: tuple[Store, ...] = ()  # store names are unique here: mbsync uses the first definition
    channels: tuple[Channel, ...] = ()  # file order, duplicates kept: `mbsync -a` runs every one
    groups: tuple[Group, ...] = ()
    # Files mbsync opens while reading the config (CertificateFile, ClientCertificate, ClientKey);
    # it refuses the config when one is unreadable. (keyword, line, expanded path), checked by load().
    local_files: tuple[tuple[str, int, str], ...] = ()
    found: bool = True  # False: no config file at all (mbsync itself would refuse to run)


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


class _Lines:
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


def _bool(lines: _Lines) -> bool:
    word = fold(lines.value)
    if word in ("yes", "true", "on", "1"):
        return True
    if word not in ("no", "false", "off", "0"):
        lines.fail(f"invalid boolean value '{lines.value}' (use yes or no)")
    return False


def _int(lines: _Lines) -> int:
    """strtol() that must consume everything, stored in a C int (so it wraps like one)."""
    match = _INT.match(lines.value)
    if lines.value and (match is None or match.end() != len(lines.value)):
        lines.fail(f"invalid integer value '{lines.value}'")
    value = max(-(2**63), min(2**63 - 1, int(match.group()))) if match else 0
    return (value + 2**31) % 2**32 - 2**31


def _size(lines: _Lines) -> int:
    match = re.fullmatch(r"([ \t\n\v\f\r]*[+-]?[0-9]+)?([kKmM]?)[bB]?", lines.value)
    if match is None:
        lines.fail(f"invalid size '{lines.value}' (a number, optionally followed by k or m)")
    factor = {"": 1, "k": 1024, "m": 1024 * 1024}[fold(match.group(2))]
    return int(match.group(1) or 0) * factor % 2**64 % 2**32


def _one_char(lines: _Lines, what: str, punct: bool) -> None:
    if len(_bytes(lines.value)) != 1:  # strlen()
        lines.fail(f"{what} must be exactly one character long")
    if punct and lines.value not in string.punctuation:
        lines.fail(f"{what} must be a punctuation character")


def _choice(lines: _Lines, label: str, allowed: frozenset[str], multi: bool = True) -> None:
    for word in [lines.value, *lines.rest()] if multi else [lines.value]:
        if fold(word) not in allowed:
            lines.fail(f"invalid {label} arg '{word}'")


_SIDES = frozenset({"none", "far", "near", "both", "master", "slave"})
_OPS = frozenset({"new", "renew", "delete", "flags", "old", "upgrade", "gone"})  # 1.4 + 1.5 names
_SYNC = frozenset(
    {"pull", "push", "all", "full", "none", "noop"} | _OPS | {d + o for d in ("pull", "push") for o in _OPS}
)
_BOX_OPS = {"create": "Create", "remove": "Remove", "expunge": "Expunge", "expungesolo": "ExpungeSolo"}


def _channel_option(lines: _Lines, keyword: str) -> bool:
    """config.c getopt_helper(): options of a Channel, also allowed globally before any section."""
    if keyword == "sync":
        _choice(lines, "Sync", _SYNC)
    elif keyword in _BOX_OPS:
        _choice(lines, _BOX_OPS[keyword], _SIDES)
    elif keyword in ("copyarrivaldate", "expireunread"):
        _bool(lines)
    elif keyword == "maxmessages":
        _int(lines)
    elif keyword == "expireside":  # 1.5
        _choice(lines, "ExpireSide", frozenset({"far", "near"}), multi=False)
    return keyword in ("sync", "syncstate", "copyarrivaldate", "expireunread", "maxmessages", "expireside", *_BOX_OPS)


def _store_option(lines: _Lines, keyword: str, kind: str) -> None:
    """driver.c parse_generic_store(): options every store type takes."""
    if keyword in ("trashremotenew", "trashnewonly"):
        _bool(lines)
    elif keyword == "maxsize":
        _size(lines)
    elif keyword == "flatten" and "/" in lines.value:
        lines.fail("flattened hierarchy delimiter cannot contain the canonical delimiter '/'")
    elif keyword not in ("trash", "mapinbox", "flatten"):
        lines.fail(f"keyword '{lines.cmd}' is not recognized in {kind} sections")


# --- IMAPAccount and IMAPStore: drv_imap.c imap_parse_store() --------------------------------------------

_V10, _V11, _V12, _V13 = 1, 2, 4, 8  # TLS versions, as drv_imap.c counts them
_SSL_VERSIONS = {"tlsv1": _V10, "tlsv1.1": _V11, "tlsv1.2": _V12, "tlsv1.3": _V13}
_TLS_VERSIONS = {"1.0": _V10, "1.1": _V11, "1.2": _V12, "1.3": _V13}  # 1.5 TLSVersions {+|-}1.x
_SSL_TYPES = {"none": Mode.NONE, "starttls": Mode.STARTTLS, "imaps": Mode.IMPLICIT}
_EXTENSIONS = frozenset(
    {"logindisabled", "sasl-ir", "uidplus", "literal+", "move", "namespace", "starttls", "compress=deflate"}
)
_LEGACY_SSL = ("useimaps", "requiressl", "usetlsv1", "usetlsv1.1", "usetlsv1.2", "usetlsv1.3")  # ≤ 1.4 only
_ACCOUNT_WORDS = frozenset(
    {"host", "port", "timeout", "pipelinedepth", "disableextension", "disableextensions", "certificatefile"}
    | {"systemcertificates", "clientcertificate", "clientkey", "cipherstring", "ssltype", "tlstype", "sslversion"}
    | {"sslversions", "tlsversions", "usesslv2", "usesslv3", "authmech", "authmechs", "requirecram", "tunnel"}
    | {"user", "usercmd", "pass", "passcmd", "usekeychain", *_LEGACY_SSL}
)

_FILE_WORDS = {"certificatefile": "CertificateFile", "clientcertificate": "ClientCertificate", "clientkey": "ClientKey"}
_Files = list[tuple[str, int, str]]


def _imap(
    lines: _Lines, home: str, servers: dict[str, Account], is_store: bool
) -> tuple[Account | None, Account | None, _Files]:
    """An IMAPAccount, or an IMAPStore (with `Account NAME` or the account options inline).

    Returns the account this section defines itself (None for a store with `Account`), the account
    its store connects with, and the local files mbsync would open while reading it.
    """
    kind = "IMAP store" if is_store else "IMAP account"
    name, start = lines.value, lines.number
    seen: dict[str, int] = {}  # account keyword -> last line it was on
    host = tunnel = trust_file = None
    port, ssl_type, versions = 0, None, None
    flags: dict[str, bool] = {}  # yes/no account options that decide how TLS is set up
    system_trust = True
    pins: list[tuple[str, str]] = []
    notes: list[str] = []
    files: _Files = []
    referenced: Account | None = None
    while lines.section():
        keyword, value, line = fold(lines.cmd or ""), lines.value, lines.number
        if keyword not in _ACCOUNT_WORDS:
            if not is_store:
                lines.fail(f"keyword '{lines.cmd}' is not recognized in IMAPAccount sections")
            if keyword == "account":
                if (referenced := servers.get(value)) is None:
                    lines.fail(f"unknown IMAP account '{value}' (an account must be defined above the store)")
            elif keyword in ("usenamespace", "subscribedonly"):
                _bool(lines)
            elif keyword == "pathdelimiter":
                _one_char(lines, "Path delimiter", punct=False)
            elif keyword != "path":
                _store_option(lines, keyword, "IMAPStore")
            continue
        seen[keyword] = line
        if keyword == "host":
            # drv_imap.c: "imap:" / "imaps:" URL prefixes are a deprecated compatibility hack.
            host = value.removeprefix("imap:")
            if value.startswith("imaps:"):
                host, ssl_type = value[len("imaps:") :], Mode.IMPLICIT
                versions = _V10 | _V11 | _V12 | _V13 if versions is None else versions
            host = host.removeprefix("//")
            if host != value:
                notes.append(f"Host on line {line} uses the deprecated URL notation; mbsync reads it as {host}")
        elif keyword == "port":
            if not 0 <= (port := _int(lines)) <= 0xFFFF:
                lines.fail(f"invalid port number '{value}'")
        elif keyword in ("timeout", "pipelinedepth"):
            if _int(lines) < 1 and keyword == "pipelinedepth":
                lines.fail("PipelineDepth must be at least 1")
        elif keyword in ("disableextension", "disableextensions"):
            for word in [value, *lines.rest()]:
                if fold(word) not in _EXTENSIONS:
                    lines.fail(f"unrecognized IMAP extension '{word}' for {lines.cmd}")
                if fold(word) == "starttls":
                    notes.append(f"DisableExtension STARTTLS (line {line}): mbsync cannot start TLS in band")
        elif keyword in ("certificatefile", "clientcertificate", "clientkey"):
            path = _expand(value, home, f"{lines.cmd} on line {line}", notes)
            files.append((_FILE_WORDS[keyword], line, path))
            if keyword == "certificatefile":
                trust_file = path
                pins.append(("CertificateFile", value))
        elif keyword == "systemcertificates":
            system_trust = _bool(lines)
            pins.append(("SystemCertificates", value))
        elif keyword in ("ssltype", "tlstype"):
            if (ssl_type := _SSL_TYPES.get(fold(value))) is None:
                lines.fail(f"invalid {lines.cmd} '{value}' (None, STARTTLS or IMAPS)")
        elif keyword in ("sslversion", "sslversions"):
            versions = 0
            for word in [value, *lines.rest()]:
                if fold(word) not in ("sslv2", "sslv3") and fold(word) not in _SSL_VERSIONS:
                    lines.fail(f"unrecognized SSL version '{word}' (TLSv1, TLSv1.1, TLSv1.2 or TLSv1.3)")
                versions |= _SSL_VERSIONS.get(fold(word), 0)
        elif keyword == "tlsversions":
            versions = _V12 | _V13 if versions is None else versions  # 1.5 default: 1.2 and up
            for word in [value, *lines.rest()]:
                if word[:1] not in ("+", "-") or word[1:] not in _TLS_VERSIONS:
                    lines.fail(f"unrecognized TLS version '{word}' (+1.2, -1.0, …)")
                bit = _TLS_VERSIONS[word[1:]]
                versions = versions | bit if word[0] == "+" else versions & ~bit
        elif keyword in (*_LEGACY_SSL, "requirecram", "usekeychain"):
            flags[keyword] = _bool(lines)
        elif keyword in ("authmech", "authmechs"):
            lines.rest()
        elif keyword == "tunnel":
            tunnel = value
    if referenced is not None:
        if seen:
            lines.fail(f"{kind} '{name}' has both Account and account-specific options", start)
        return None, referenced, files
    for problem, bad in (
        ("neither Tunnel nor Host", tunnel is None and host is None),
        ("both User and UserCmd", {"user", "usercmd"} <= seen.keys()),
        ("both Pass and PassCmd", {"pass", "passcmd"} <= seen.keys()),
        ("both RequireCRAM and AuthMechs", "requirecram" in seen and bool({"authmech", "authmechs"} & seen.keys())),
    ):
        if bad:
            lines.fail(f"{kind} '{name}' has {problem}", start)
    mode = _mode(lines, f"{kind} '{name}'", start, tunnel, ssl_type, versions, flags, seen, notes)
    if mode is not Mode.NONE and (versions is not None or {*_LEGACY_SSL} & flags.keys()):
        _old_tls_note(versions, flags, notes)
    for word, note in (
        ("tlstype", "TLSType needs isync 1.5 (1.4 rejects the config; SSLType works in both)"),
        ("tlsversions", "TLSVersions needs isync 1.5 (1.4 rejects the config)"),
        ("usekeychain", "UseKeychain is accepted by macOS builds of mbsync only"),
        ("tunnel", "Tunnel: mbsync runs this command and speaks IMAP over it; it opens no connection itself"),
    ):
        if word in seen:
            notes.append(f"line {seen[word]}: {note}")
    account = Account(
        tool=Tool.MBSYNC,
        name=name,
        protocol=Protocol.IMAP,
        # drv_imap.c: with a Tunnel, Host and Port are not connected to; Host is only the name
        # the certificate is checked against when TLS runs over the tunnel.
        host=None if tunnel is not None else host,
        port=None if tunnel is not None else port or (993 if mode is Mode.IMPLICIT else 143),
        mode=mode,
        source=f"{lines.source}:{start}",
        servername=host if tunnel is not None and mode is not Mode.NONE else None,
        trust_file=trust_file,
        system_trust=system_trust,
        transport=None if tunnel is None else f"tunnel {tunnel}",
        pin_options=tuple(pins),
        notes=tuple(notes),
    )
    return account, account, files


def _mode(
    lines: _Lines,
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
    legacy = sorted(seen[word] for word in _LEGACY_SSL if word in flags)
    if not legacy:
        return ssl_type if ssl_type is not None else Mode.NONE if tunnel is not None else Mode.STARTTLS
    if ssl_type is not None or versions is not None:
        lines.fail(f"{what}: the legacy UseIMAPS/RequireSSL/UseTLS* options exclude SSLType and SSLVersions", start)
    notes.append(f"line {legacy[0]}: UseIMAPS/RequireSSL/UseTLS* are legacy: isync 1.4 reads them, 1.5 rejects them")
    versions = _legacy_versions(flags)
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


def _legacy_versions(flags: dict[str, bool]) -> int:
    """drv_imap.c: the legacy options keep TLS 1.0 unless `UseTLSv1 no`; newer ones only when asked for."""
    return (_V10 if flags.get("usetlsv1", True) else 0) | sum(
        bit for word, bit in (("usetlsv1.1", _V11), ("usetlsv1.2", _V12), ("usetlsv1.3", _V13)) if flags.get(word)
    )


def _old_tls_note(versions: int | None, flags: dict[str, bool], notes: list[str]) -> None:
    """OpenSSL uses the lowest contiguous run of the versions mbsync leaves enabled (SSL_OP_NO_*):
    measured with isync 1.4.4, `UseTLSv1.2 yes` alone (TLS 1.0 still on, 1.1 off) offers TLS 1.0 only."""
    versions = _legacy_versions(flags) if versions is None else versions
    bits = [bit for bit in (_V10, _V11, _V12, _V13) if versions & bit]
    highest = bits[0] if bits else 0
    while highest * 2 in bits:
        highest *= 2
    if bits and highest < _V12:
        offered = {_V10: "1.0", _V11: "1.1"}[highest]
        notes.append(
            f"the TLS versions configured leave mbsync offering TLS {offered} at most (OpenSSL stops at a gap)"
        )


def _expand(path: str, home: str, what: str, notes: list[str]) -> str:
    """config.c expand_strdup(): `~` and `~/…` are $HOME; `~user/…` is looked up (not done here)."""
    if path == "~" or path.startswith("~/"):
        return home + path[1:]
    if path.startswith("~"):
        notes.append(f"{what}: '{path}' names another user's home; mailpin did not look it up")
    elif not path.startswith("/"):
        notes.append(f"{what}: relative path; isync 1.4 reads it from the working directory, 1.5 from the config's")
    return path


# --- the file -----------------------------------------------------------------------------------------


def parse(text: str, source: str, home: str) -> MbsyncConfig:
    """Read an mbsync config; the first error mbsync would report raises `ConfigError`."""
    lines = _Lines(text, source)
    accounts: list[Account] = []
    servers: dict[str, Account] = {}  # IMAPAccount names; Account lookups take the first (strcmp loop)
    stores: dict[str, Store] = {}
    channels: list[Channel] = []
    groups: list[Group] = []
    files: list[tuple[str, int, str]] = []
    global_ok = True  # config.c: "global options may not follow sections"
    while lines.next():
        if lines.cmd is None:
            continue
        keyword, name, start = fold(lines.cmd), lines.value, lines.number
        if keyword in ("imapaccount", "imapstore"):
            own, used, found_files = _imap(lines, home, servers, keyword == "imapstore")
            files += found_files
            # A second definition of a name is read (and checked) but never used: lookups take the first.
            known = servers if keyword == "imapaccount" else stores
            accounts += [own] if own is not None and name not in known else []
            if keyword == "imapaccount" and own is not None:
                servers.setdefault(name, own)
            else:
                stores.setdefault(name, Store(name, start, used))
        elif keyword == "maildirstore":
            _maildir(lines)
            stores.setdefault(name, Store(name, start, None))
        elif keyword == "channel":
            channels.append(_channel(lines, stores))
        elif keyword == "group":
            groups.append(_group(lines))
        else:
            _global_option(lines, keyword)
            if not global_ok:
                lines.fail(f"global option '{lines.cmd}' may not follow sections: move it to the top")
            continue
        global_ok = False
    return MbsyncConfig(tuple(accounts), source, tuple(stores.values()), tuple(channels), tuple(groups), tuple(files))


def _global_option(lines: _Lines, keyword: str) -> None:
    if keyword == "fsync":
        _bool(lines)
    elif keyword == "fielddelimiter":
        _one_char(lines, "Field delimiter", punct=True)
    elif keyword == "bufferlimit":
        if _size(lines) == 0:
            lines.fail("BufferLimit cannot be zero")
    elif not _channel_option(lines, keyword):
        lines.fail(f"'{lines.cmd}' is not a recognized section-starting or global keyword")


def _maildir(lines: _Lines) -> None:
    """drv_maildir.c maildir_parse_store(); nothing in it matters to TLS, but mbsync checks it."""
    while lines.section():
        keyword = fold(lines.cmd or "")
        if keyword == "altmap":
            _bool(lines)
        elif keyword == "infodelimiter":
            _one_char(lines, "Info delimiter", punct=True)
        elif keyword == "subfolders":
            if fold(lines.value) not in ("verbatim", "maildir++", "legacy"):
                lines.fail(f"unrecognized SubFolders style '{lines.value}' (Verbatim, Maildir++ or Legacy)")
        elif keyword not in ("inbox", "path"):
            _store_option(lines, keyword, "MaildirStore")


def _channel(lines: _Lines, stores: dict[str, Store]) -> Channel:
    """A Channel section; `Far`/`Near` may only name stores defined above it (config.c)."""
    name, start = lines.value, lines.number
    sides: dict[str, Store] = {}
    patterns = False
    while lines.section():
        keyword = fold(lines.cmd or "")
        if keyword in ("far", "near", "master", "slave"):  # Master/Slave: pre-1.4 names, still read
            spec = lines.value
            end = spec.find(":", 1)
            if not spec.startswith(":") or end < 0:
                lines.fail(f"malformed mailbox spec '{spec}' (write {lines.cmd} :STORE:[MAILBOX])")
            if (store := stores.get(spec[1:end])) is None:
                lines.fail(f"unknown store '{spec[1:end]}' (a store must be defined above the channel)")
            sides["far" if keyword in ("far", "master") else "near"] = store
        elif keyword in ("pattern", "patterns"):
            lines.rest()
            patterns = True
        elif keyword == "maxsize":
            _size(lines)
        elif not _channel_option(lines, keyword):
            lines.fail(f"keyword '{lines.cmd}' is not recognized in Channel sections")
    for side in ("far", "near"):
        if side not in sides:
            lines.fail(f"channel '{name}' refers to no {side} side store (add {side.title()} :STORE:)", start)
    return Channel(name, start, sides["far"], sides["near"], patterns)


def _group(lines: _Lines) -> Group:
    name, start = lines.value, lines.number
    members = lines.rest()
    while lines.section():
        if fold(lines.cmd or "") not in ("channel", "channels"):
            lines.fail(f"keyword '{lines.cmd}' is not recognized in Group sections")
        members += [lines.value, *lines.rest()]
    return Group(name, start, tuple(members))


# --- the file mbsync would read, and the accounts one invocation uses ------------------------------------


def config_paths(argv: Sequence[str], env: Env) -> list[Path]:
    """`-c FILE`, else (isync ≥ 1.5) `$XDG_CONFIG_HOME/isyncrc` if it exists, else `~/.mbsyncrc`.

    isync 1.4 (Debian 12) reads only `~/.mbsyncrc`, so with both files present 1.4 and 1.5 read
    different files; the 1.5 order is followed (home-manager writes the XDG file).
    """
    explicit = mbsync_argv.parse_argv(argv).config
    if explicit is not None:
        return [Path(explicit)]
    return [path for path in (env.config_home / "isyncrc", env.home / ".mbsyncrc") if path.is_file()][:1]


def load(argv: Sequence[str], env: Env) -> MbsyncConfig:
    paths = config_paths(argv, env)
    if not paths:
        return MbsyncConfig((), str(env.home / ".mbsyncrc"), found=False)
    try:
        data = paths[0].read_bytes()
    except OSError as exc:
        raise ConfigError(str(paths[0]), None, f"cannot read this mbsync config file: {exc.strerror}") from None
    config = parse(data.decode("utf-8", "surrogateescape"), str(paths[0]), str(env.home))
    for keyword, line, file in config.local_files:
        # drv_imap.c checks access(R_OK) while reading the config and refuses the config otherwise.
        if not os.access(file, os.R_OK):
            raise ConfigError(config.source, line, f"{keyword} '{file}' cannot be read: mbsync refuses this config")
    return config


def select(config: MbsyncConfig, argv: Sequence[str], message: bytes | None = None) -> list[Account]:
    """The IMAP accounts of the stores this `mbsync ARGV…` opens (see `mbsync_argv.select`)."""
    return mbsync_argv.select(config, argv)


def needs_message(argv: Sequence[str]) -> bool:
    return False  # mbsync reads no message: the command line alone decides
