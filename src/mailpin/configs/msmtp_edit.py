"""An msmtp account moved to Implicit TLS, as an edit of the config's bytes that changes nothing else.

The edit works on the account's own section (from its `account` line to the next `account` or
`defaults` line): its own settings win over `defaults` and over what `account NAME : BASE` inherits
(msmtp conf.c), so setting `port`, `tls` and `tls_starttls` there is enough, whatever the section
inherits. A line the section already has is rewritten in place (the last one of its command: msmtp
takes the last); a missing one is added right after the `account` line. Every other byte stays:
comments, blank lines, the order, CRLF line ends. What the edit made is then read back with
mailpin's msmtp reader: the account must now be Implicit TLS on the new port, and every other
account must read exactly as before — except one that inherits this one (`account default : work`)
and goes to the same host: it moves along, the same way, and is named. Any other change: refused,
never written.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailpin.configs import msmtp
from mailpin.configs.msmtp_syntax import lines
from mailpin.model import Mode

_SECTION_ENDS = ("account", "defaults")


class EditError(Exception):
    """The edit cannot be made safely; the message says why, for the user."""


@dataclass(frozen=True)
class Edit:
    before: bytes
    after: bytes
    changed: tuple[str, ...]  # the settings set, e.g. ("port 465", "tls_starttls off")
    along: tuple[str, ...] = ()  # other accounts that inherit the moved one and move with it


def implicit_tls(data: bytes, source: str, home: str, account: str, port: int) -> Edit:
    """DATA (an msmtp config, SOURCE names it) with ACCOUNT on Implicit TLS at PORT."""
    config = _parse(data, source, home)
    settings = next((s for s in config.settings if s.name == account), None)
    if settings is None:
        raise EditError(f"no account {account!r} in {source}")
    if settings.implicit:
        raise EditError(f"{source}: the account is made of the lines before the first `account` line; name it first")
    rows = _rows(data)
    start = settings.line  # the `account NAME` line
    end = next((n for n, command, _ in lines(data) if n > start and command in _SECTION_ENDS), len(rows) + 1)
    wanted = {"port": str(port), "tls": "on", "tls_starttls": "off"}
    current = dict(settings.values)
    changes = {name: value for name, value in wanted.items() if current.get(name) != value}
    if not changes:
        raise EditError(f"{source}: account {account!r} is on Implicit TLS at port {port} already")
    last: dict[str, int] = {}
    for number, command, _ in lines(data):
        if start < number < end:
            name = "tls_starttls" if command == "tls_nostarttls" else command
            if name in changes:
                last[name] = number
    indent = _indent(rows, start, end)
    ending = _ending(rows[start - 1])
    inserted = []
    for name, value in changes.items():
        if name in last:
            row = rows[last[name] - 1]
            rows[last[name] - 1] = row[: len(row) - len(row.lstrip(b" \t"))] + f"{name} {value}".encode() + _ending(row)
        else:
            inserted.append(indent + f"{name} {value}".encode() + ending)
    rows[start:start] = inserted
    after = b"".join(rows)
    along = _check(config, _parse(after, source, home), account, port, source)
    return Edit(data, after, tuple(f"{name} {value}" for name, value in changes.items()), along)


def _parse(data: bytes, source: str, home: str) -> msmtp.MsmtpConfig:
    return msmtp.parse(data.decode("utf-8", "surrogateescape"), source, home)


def _rows(data: bytes) -> list[bytes]:
    """The lines with their own ends, split where msmtp splits them (at LF only)."""
    rows = data.split(b"\n")
    out = [row + b"\n" for row in rows[:-1]]
    if rows[-1]:
        out.append(rows[-1])  # a last line without its end keeps having none
    return out


def _ending(row: bytes) -> bytes:
    return b"\r\n" if row.endswith(b"\r\n") else b"\n"


def _indent(rows: list[bytes], start: int, end: int) -> bytes:
    """The indentation of the section's first setting, so an added line looks like its neighbours."""
    for row in rows[start : end - 1]:
        text = row.strip(b" \t\r\n")
        if text and not text.startswith(b"#"):
            return row[: len(row) - len(row.lstrip(b" \t"))]
    return b""


_MOVED = ("port", "tls", "tls_starttls")


def _check(
    before: msmtp.MsmtpConfig, after: msmtp.MsmtpConfig, account: str, port: int, source: str
) -> tuple[str, ...]:
    """The edit did what it should and nothing else; the accounts that move along with ACCOUNT."""
    old = {s.name: dict(s.values) for s in before.settings}
    new = {s.name: dict(s.values) for s in after.settings}
    moved = {a.name: a for a in after.accounts}
    if set(old) != set(new) or account not in moved:
        raise EditError(f"{source}: the edit would change which accounts there are")
    along = []
    for name in old:
        if old[name] == new[name] and name != account:
            continue
        target, host = moved[name], moved[account].host
        rest_same = {k: v for k, v in old[name].items() if k not in _MOVED} == {
            k: v for k, v in new[name].items() if k not in _MOVED
        }
        if not rest_same or target.port != port or target.mode is not Mode.IMPLICIT or target.host != host:
            what = f"{name!r} too" if name != account else f"more of {account!r} than its port and TLS mode"
            raise EditError(f"{source}: the edit would change {what}; move it by hand")
        if name != account:
            along.append(name)
    return tuple(along)
