"""What the config editors (msmtp_edit, mbsync_edit) share: the edit, its refusal, and lines split
the way the tools split them, each with its own end (LF or CRLF), so that every other byte stays."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from mailpin.model import Account


class EditError(Exception):
    """The edit cannot be made safely; the message says why, for the user."""


@dataclass(frozen=True)
class Edit:
    before: bytes
    after: bytes
    changed: tuple[str, ...]  # the settings set, e.g. ("port 465", "tls_starttls off")
    along: tuple[str, ...] = ()  # other accounts that inherit the moved one and move with it


def rows_of(data: bytes) -> list[bytes]:
    """The lines with their own ends, split where msmtp and mbsync split them (at LF only)."""
    rows = data.split(b"\n")
    out = [row + b"\n" for row in rows[:-1]]
    if rows[-1]:
        out.append(rows[-1])  # a last line without its end keeps having none
    return out


def ending(row: bytes) -> bytes:
    return b"\r\n" if row.endswith(b"\r\n") else b"\n"


def indent_of(rows: list[bytes], start: int, end: int, comment: bytes = b"#") -> bytes:
    """The indentation of the first setting in lines START+1 .. END-1 (1-based), so an added line
    looks like its neighbours."""
    for row in rows[start : end - 1]:
        text = row.strip(b" \t\r\n")
        if text and not text.startswith(comment):
            return row[: len(row) - len(row.lstrip(b" \t"))]
    return b""


def shape_of(account: Account) -> Account:
    """An account as read, less where its lines are (an inserted line moves them)."""
    sources = tuple((role, setting, "") for role, setting, _ in account.tls_sources)
    return replace(account, source="", tls_sources=sources)


def others_changed(before: Iterable[Account], after: Iterable[Account], account: str) -> list[str]:
    """The accounts other than ACCOUNT that an edit changed (or made or lost), by name."""
    old = {a.name: shape_of(a) for a in before}
    new = {a.name: shape_of(a) for a in after}
    return sorted(name for name in old.keys() | new.keys() if name != account and old.get(name) != new.get(name))
