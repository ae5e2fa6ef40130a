"""Pure, bounded parsers for server replies of SMTP, IMAP and POP3.

Every function takes one line (bytes, without its CRLF) or a list of them and either returns a
value or raises `ReplyError`; never anything else (property-tested). They hold no socket: the
reading and the limits on length and count live in `net.channel`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


class ReplyError(ValueError):
    """A server line that is not what the protocol allows."""


def _text(line: bytes) -> str:
    # Replies are ASCII (RFC 5321 §2.4, RFC 3501 §9); keep anything else visible, never crash.
    return line.decode("ascii", errors="backslashreplace")


def printable(text: str, limit: int | None = 200) -> str:
    """Server text shown to people: control characters escaped, length capped (UI spoofing); `limit`
    None: escaped, never cut (mailpin's own lines that carry such text)."""
    cleaned = "".join(ch if ch.isprintable() else f"\\x{ord(ch):02x}" for ch in text)
    return cleaned if limit is None or len(cleaned) <= limit else cleaned[:limit] + "…"


def printable_lines(text: str) -> str:
    """Text for a person that keeps its line breaks: every other character a terminal, a notification
    server or a mail reader could act on (ESC, BEL, CR, C1 controls such as CSI, bidi overrides) is
    escaped — the last guard at each place a block is told, whatever a server got into it."""
    return "\n".join(printable(line, limit=None) for line in text.split("\n"))


# --- SMTP (RFC 5321 §4.2) -------------------------------------------------------------------

_SMTP_LINE = re.compile(rb"([2-5][0-5][0-9])([ -]|$)(.*)", re.DOTALL)


@dataclass(frozen=True)
class SmtpLine:
    code: int
    last: bool  # "code SP text" or "code" alone ends a reply; "code-text" continues it
    text: str


@dataclass(frozen=True)
class SmtpReply:
    code: int
    lines: tuple[str, ...]

    @property
    def keywords(self) -> frozenset[str]:
        """EHLO keywords (RFC 5321 §4.1.1.1): the first word of every line after the first."""
        return frozenset(line.split(" ", 1)[0].upper() for line in self.lines[1:] if line)

    def summary(self) -> str:
        return printable(f"{self.code} {self.lines[0]}".rstrip() if self.lines else str(self.code))


def parse_smtp_line(line: bytes) -> SmtpLine:
    match = _SMTP_LINE.fullmatch(line)
    if match is None:
        raise ReplyError(f"not an SMTP reply line: {printable(_text(line))!r}")
    code, sep, rest = match.groups()
    return SmtpLine(int(code), sep != b"-", _text(rest))


def join_smtp_reply(lines: list[SmtpLine]) -> SmtpReply:
    """RFC 5321 §4.2.1: every line of a multi-line reply carries the same code."""
    if not lines or not lines[-1].last:
        raise ReplyError("incomplete SMTP reply")
    codes = {line.code for line in lines}
    if len(codes) != 1:
        raise ReplyError(f"SMTP reply mixes codes {sorted(codes)}")
    if any(line.last for line in lines[:-1]):
        raise ReplyError("SMTP reply continues after its last line")
    return SmtpReply(lines[0].code, tuple(line.text for line in lines))


# --- IMAP (RFC 3501 §7, RFC 9051 §7) --------------------------------------------------------

_IMAP_TAG = re.compile(rb"[\x21\x23-\x27\x2a-\x5a\x5e-\x7a\x7c\x7e]+")  # ASTRING-CHAR minus "+"
_IMAP_STATUS = ("OK", "NO", "BAD", "PREAUTH", "BYE")


@dataclass(frozen=True)
class ImapLine:
    tag: str  # "*" untagged, "+" continuation request, else the command tag
    status: str | None  # OK / NO / BAD / PREAUTH / BYE when the response is a status response
    code: str | None  # the response code between [ and ], e.g. "CAPABILITY IMAP4rev1 STARTTLS"
    text: str  # what follows (for non-status untagged data: the whole data after "* ")

    @property
    def capabilities(self) -> frozenset[str] | None:
        """Capabilities from `* CAPABILITY …` data or a `[CAPABILITY …]` response code."""
        if self.tag == "*" and self.status is None and self.text.upper().startswith("CAPABILITY"):
            return frozenset(word.upper() for word in self.text.split()[1:])
        if self.code is not None and self.code.upper().startswith("CAPABILITY"):
            return frozenset(word.upper() for word in self.code.split()[1:])
        return None

    def summary(self) -> str:
        parts = [self.tag, self.status or "", f"[{self.code}]" if self.code else "", self.text]
        return printable(" ".join(part for part in parts if part))


def parse_imap_line(line: bytes) -> ImapLine:
    if line.startswith(b"+"):
        return ImapLine("+", None, None, _text(line[1:].lstrip()))
    tag, sep, rest = line.partition(b" ")
    if not sep or not (tag == b"*" or _IMAP_TAG.fullmatch(tag)):
        raise ReplyError(f"not an IMAP response: {printable(_text(line))!r}")
    word, _, after = rest.partition(b" ")
    status = _text(word).upper()
    if status not in _IMAP_STATUS:
        if tag != b"*":
            raise ReplyError(f"tagged IMAP response without a status: {printable(_text(line))!r}")
        return ImapLine("*", None, None, _text(rest))
    if status in ("PREAUTH", "BYE") and tag != b"*":
        raise ReplyError(f"{status} is only sent untagged: {printable(_text(line))!r}")
    code = None
    if after.startswith(b"["):
        end = after.find(b"]")
        if end < 0:
            raise ReplyError(f"unterminated response code: {printable(_text(line))!r}")
        code, after = _text(after[1:end]), after[end + 1 :].lstrip()
    return ImapLine(_text(tag), status, code, _text(after))


# --- POP3 (RFC 1939 §3, RFC 2449 §5) --------------------------------------------------------


@dataclass(frozen=True)
class Pop3Status:
    ok: bool
    text: str

    def summary(self) -> str:
        return printable(("+OK " if self.ok else "-ERR ") + self.text).rstrip()


def parse_pop3_status(line: bytes) -> Pop3Status:
    """RFC 1939 §3: a status indicator "+OK" or "-ERR", optionally followed by text."""
    for indicator, ok in ((b"+OK", True), (b"-ERR", False)):
        if line.upper() == indicator or line.upper().startswith(indicator + b" "):
            return Pop3Status(ok, _text(line[len(indicator) :].lstrip()))
    raise ReplyError(f"not a POP3 status line: {printable(_text(line))!r}")


def pop3_capa_item(line: bytes) -> str | None:
    """One line of a CAPA listing (RFC 2449 §5): the capability tag, or None at the "." end.

    A line beginning with "." is byte-stuffed (RFC 1939 §3); a lone "." ends the listing.
    """
    if line == b".":
        return None
    if line.startswith(b"."):
        line = line[1:]
    words = _text(line).split()
    if not words:
        raise ReplyError("empty line in a POP3 CAPA listing")
    return words[0].upper()
