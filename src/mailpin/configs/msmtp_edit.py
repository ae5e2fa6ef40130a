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
never written. mpop's config is msmtp's grammar with mpop's commands (configs/mpop.py): the same
edit serves it, read back with mpop's reader (`tool="mpop"`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from mailpin.configs import msmtp
from mailpin.configs.edit import Edit, EditError, ending, indent_of, rows_of
from mailpin.configs.msmtp_syntax import lines
from mailpin.model import Account, Mode

_SECTION_ENDS = ("account", "defaults")


def implicit_tls(
    data: bytes, source: str, home: str, account: str, port: int, host: str | None = None, tool: str = "msmtp"
) -> Edit:
    """DATA (an msmtp or mpop config, SOURCE names it) with ACCOUNT on Implicit TLS at PORT (and on
    HOST, one the user confirmed, when given)."""
    reader = _READERS[tool]
    config = reader(data, source, home)
    settings = next((s for s in config.settings if s.name == account), None)
    if settings is None:
        raise EditError(f"no account {account!r} in {source}")
    if settings.implicit:
        raise EditError(f"{source}: the account is made of the lines before the first `account` line; name it first")
    rows = rows_of(data)
    start = settings.line  # the `account NAME` line
    end = next((n for n, command, _ in lines(data) if n > start and command in _SECTION_ENDS), len(rows) + 1)
    wanted = {"port": str(port), "tls": "on", "tls_starttls": "off"} | ({"host": host} if host else {})
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
    indent = indent_of(rows, start, end)
    eol = ending(rows[start - 1])
    inserted = []
    for name, value in changes.items():
        if name in last:
            row = rows[last[name] - 1]
            rows[last[name] - 1] = row[: len(row) - len(row.lstrip(b" \t"))] + f"{name} {value}".encode() + ending(row)
        else:
            inserted.append(indent + f"{name} {value}".encode() + eol)
    rows[start:start] = inserted
    after = b"".join(rows)
    along = _check(config, reader(after, source, home), account, port, source, host)
    return Edit(data, after, tuple(f"{name} {value}" for name, value in changes.items()), along)


class _Read(Protocol):
    """What the check needs of a reading: each account's settings, and its Account."""

    @property
    def settings(self) -> tuple[msmtp.Settings, ...]: ...

    @property
    def accounts(self) -> tuple[Account, ...]: ...


def _parse_msmtp(data: bytes, source: str, home: str) -> _Read:
    return msmtp.parse(data.decode("utf-8", "surrogateescape"), source, home)


def _parse_mpop(data: bytes, source: str, home: str) -> _Read:
    from mailpin.configs import mpop

    return mpop.parse(data.decode("utf-8", "surrogateescape"), source, home)


_READERS: dict[str, Callable[[bytes, str, str], _Read]] = {"msmtp": _parse_msmtp, "mpop": _parse_mpop}


_MOVED = ("port", "tls", "tls_starttls", "host")


def _check(before: _Read, after: _Read, account: str, port: int, source: str, host: str | None) -> tuple[str, ...]:
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
        target = moved[name]
        rest_same = {k: v for k, v in old[name].items() if k not in _MOVED} == {
            k: v for k, v in new[name].items() if k not in _MOVED
        }
        went = target.port == port and target.mode is Mode.IMPLICIT and target.host == moved[account].host
        if not rest_same or not went or (host is not None and target.host != host):
            what = f"{name!r} too" if name != account else f"more of {account!r} than its port and TLS mode"
            raise EditError(f"{source}: the edit would change {what}; move it by hand")
        if name != account:
            along.append(name)
    return tuple(along)
