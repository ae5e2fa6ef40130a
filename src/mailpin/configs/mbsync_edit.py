"""An mbsync account moved to Implicit TLS, as an edit of the config's bytes that changes nothing else.

The edit works on the section that defines the account — `IMAPAccount NAME`, or an `IMAPStore NAME`
with the account's options inline — which runs to the next blank line (isync config.c). Its
`SSLType` (isync 1.5: `TLSType`) line becomes `IMAPS` and its `Port` line the new port, each
rewritten in place, keyword as written (mbsync takes the last of each); a section without one gets
it right after its first line (`Port` only when the port is not IMAPS's 993). The legacy flags
(`UseIMAPS`, `RequireSSL`, `UseSSLv*`, `UseTLSv1*`) decide the mode another way: such a section is
left to the user. The edited bytes are read back with mailpin's mbsync reader: this account must be
Implicit TLS on the new port, and every other one read as before.
"""

from __future__ import annotations

import re
from dataclasses import replace

from mailpin.configs import mbsync
from mailpin.configs.edit import Edit, EditError, ending, indent_of, others_changed, rows_of, shape_of
from mailpin.configs.mbsync_model import MbsyncConfig
from mailpin.configs.mbsync_syntax import LEGACY_SSL, Lines, fold
from mailpin.model import Mode

IMAPS_PORT = 993


def implicit_tls(
    data: bytes, source: str, home: str, account: str, port: int, host: str | None = None, tls_keyword: str = "SSLType"
) -> Edit:
    """DATA (an mbsync config, SOURCE names it) with ACCOUNT on Implicit TLS at PORT (and on HOST, one
    the user confirmed, when given). TLS_KEYWORD: the word for the mode when the section has none
    (the installed isync's: SSLType; 1.5 TLSType)."""
    text = data.decode("utf-8", "surrogateescape")
    before = mbsync.parse(text, source, home)
    start, end, seen = _section(text, source, account)
    legacy = sorted(keyword for keyword in seen if keyword in LEGACY_SSL)
    if legacy:
        raise EditError(f"{source}:{start}: the section sets TLS with isync's old flags ({', '.join(legacy)}); "
                        "set SSLType IMAPS there by hand")  # fmt: skip
    rows = rows_of(data)
    changed = []
    inserted: list[bytes] = []
    mode_line = max((seen[k] for k in ("ssltype", "tlstype") if k in seen), default=None)
    if mode_line is not None:
        rows[mode_line - 1] = _rewritten(rows[mode_line - 1], "IMAPS")
    else:
        inserted.append(f"{tls_keyword} IMAPS".encode())
    changed.append(f"{tls_keyword} IMAPS")
    if "port" in seen:
        rows[seen["port"] - 1] = _rewritten(rows[seen["port"] - 1], str(port))
        changed.append(f"Port {port}")
    elif port != IMAPS_PORT:
        inserted.append(f"Port {port}".encode())
        changed.append(f"Port {port}")
    if host is not None:
        if "host" in seen:
            rows[seen["host"] - 1] = _rewritten(rows[seen["host"] - 1], host)
        else:
            inserted.append(f"Host {host}".encode())
        changed.append(f"Host {host}")
    head = rows[start - 1]
    eol = ending(head)
    indent = indent_of(rows, start, end)
    if not head.endswith(b"\n"):
        rows[start - 1] = head + eol  # the section's first line was the file's last, unended
    rows[start:start] = [indent + line + eol for line in inserted]
    after = b"".join(rows)
    _check(before, mbsync.parse(after.decode("utf-8", "surrogateescape"), source, home), account, port, source, host)
    return Edit(data, after, tuple(changed))


def _section(text: str, source: str, account: str) -> tuple[int, int, dict[str, int]]:
    """The section that defines ACCOUNT: its first line, the line after its last, and the last line
    of each account keyword in it."""
    lines = Lines(text, source)
    found: tuple[int, str] | None = None
    while lines.next():
        if lines.cmd is not None and fold(lines.cmd) in ("imapaccount", "imapstore") and lines.value == account:
            found = (lines.number, fold(lines.cmd))
            if found[1] == "imapaccount":
                break
    if found is None:
        raise EditError(f"no IMAPAccount or IMAPStore {account!r} in {source}")
    lines = Lines(text, source)
    while lines.next() and lines.number < found[0]:
        pass
    seen: dict[str, int] = {}
    last = found[0]
    while lines.section():
        seen[fold(lines.cmd or "")] = lines.number
        last = lines.number
    return found[0], last + 1, seen


def _rewritten(row: bytes, value: str) -> bytes:
    """ROW (`Keyword value [# comment]`) with its value replaced; the indentation, the keyword as
    written, the blanks and a trailing comment kept."""
    found = re.fullmatch(rb"([ \t]*\S+[ \t]+)\S+(.*?)(\r?\n)?", row, re.DOTALL)
    if found is None:
        raise EditError(f"cannot read the line {row!r}")
    return found.group(1) + value.encode() + found.group(2) + (found.group(3) or b"")


def _check(before: MbsyncConfig, after: MbsyncConfig, account: str, port: int, source: str, host: str | None) -> None:
    was = next((shape_of(a) for a in before.accounts if a.name == account), None)
    moved = next((shape_of(a) for a in after.accounts if a.name == account), None)
    went = moved is not None and moved.mode is Mode.IMPLICIT and moved.port == port
    if not went or was is None or moved is None or (host is not None and moved.host != host):
        raise EditError(f"{source}: the edit did not move {account!r} to Implicit TLS (mailpin's reading of it)")
    if replace(moved, mode=was.mode, port=was.port, host=was.host, pin_options=was.pin_options) != was:
        raise EditError(f"{source}: the edit would change more of {account!r} than its port and TLS mode")
    others = others_changed(before.accounts, after.accounts, account)
    if others:
        raise EditError(f"{source}: the edit would change {', '.join(others)} too; move it by hand")
