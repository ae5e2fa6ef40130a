"""An offlineimap account moved to Implicit TLS, as an edit of the config's bytes that changes nothing else.

The edit works on the account's remote repository section (`[Repository NAME]`, up to the next
section header): `ssl = yes`, and `remoteport` when it is not IMAPS's 993 (or is written already),
each rewritten in place (the option's name and delimiter as written) or added after the header.
offlineimap refuses `ssl = yes` without something to check the certificate with: a section that has
neither `sslcacertfile` nor `cert_fingerprint` gets `sslcacertfile = OS-DEFAULT`, the system's CA
store — the trust the endpoint was found valid under. An option whose value runs on over indented
lines is left to the user. The edited bytes are read back with mailpin's offlineimap reader (the
parser offlineimap builds, and its rules): this account must be Implicit TLS on the new port, and
every other one read as before.
"""

from __future__ import annotations

import re

from mailpin.configs import offlineimap
from mailpin.configs.edit import Edit, EditError, ending, others_changed, rows_of
from mailpin.configs.offlineimap_parsed import Parsed
from mailpin.model import Account, Mode

IMAPS_PORT = 993
_OPTION = re.compile(rb"([ \t]*[^=:\s][^=:\n]*?[ \t]*[=:][ \t]*)(.*?)(\r?\n)?", re.DOTALL)


def trust_after(data: bytes, source: str, remote: str) -> str | None:
    """The CA file the account will trust once on Implicit TLS (its `sslcacertfile`), None for the
    system's store (OS-DEFAULT, or none written: the edit writes OS-DEFAULT)."""
    cfg = Parsed(data.decode("utf-8", "surrogateescape"), source)
    value = cfg.get(f"Repository {remote}", "sslcacertfile")
    return None if value is None or value.strip() == "OS-DEFAULT" else value.strip()


def implicit_tls(data: bytes, source: str, home: str, account: Account, port: int, host: str | None = None) -> Edit:
    text = data.decode("utf-8", "surrogateescape")
    before = offlineimap.parse(text, source, home)
    if account.remote is None:
        raise EditError(f"{source}: account {account.name!r} has no remote repository")
    section = f"Repository {account.remote}"
    cfg = Parsed(text, source)
    start = cfg.lines.get((section, ""))
    if start is None:
        raise EditError(f"{source}: no [{section}] section")
    rows = rows_of(data)
    end = next((n for n in range(start + 1, len(rows) + 1) if rows[n - 1].startswith(b"[")), len(rows) + 1)
    wanted = {"ssl": "yes"}
    if port != IMAPS_PORT or (section, "remoteport") in cfg.lines:
        wanted["remoteport"] = str(port)
    if host is not None:
        wanted["remotehost"] = host
    if not cfg.has(section, "sslcacertfile") and not cfg.has(section, "cert_fingerprint"):
        wanted["sslcacertfile"] = "OS-DEFAULT"
    inserted = []
    for option, value in wanted.items():
        line = cfg.lines.get((section, option))
        if line is None or not start < line < end:
            inserted.append(f"{option} = {value}".encode())
            continue
        following = rows[line] if line < len(rows) else b""
        if following[:1] in (b" ", b"\t") and following.strip():
            raise EditError(f"{source}:{line}: `{option}` runs on over several lines; change it by hand")
        found = _OPTION.fullmatch(rows[line - 1])
        if found is None:
            raise EditError(f"{source}:{line}: cannot read the `{option}` line")
        rows[line - 1] = found.group(1) + value.encode() + (found.group(3) or b"")
    eol = ending(rows[start - 1])
    if not rows[start - 1].endswith(b"\n"):
        rows[start - 1] += eol
    rows[start:start] = [line + eol for line in inserted]
    after = b"".join(rows)
    _check(before, offlineimap.parse(after.decode("utf-8", "surrogateescape"), source, home), account.name, port, host)
    return Edit(data, after, tuple(f"{option} = {value}" for option, value in wanted.items()))


def _check(
    before: offlineimap.OfflineimapConfig,
    after: offlineimap.OfflineimapConfig,
    account: str,
    port: int,
    host: str | None,
) -> None:
    moved = next((a for a in after.accounts if a.name == account), None)
    problems = [str(exc) for name, exc in after.problems if name == account]
    if moved is None or moved.mode is not Mode.IMPLICIT or moved.port != port or (host and moved.host != host):
        why = f": {problems[0]}" if problems else ""
        raise EditError(f"{after.source}: the edit did not move {account!r} to Implicit TLS{why}")
    others = others_changed(before.accounts, after.accounts, account)
    if others:
        raise EditError(f"{after.source}: the edit would change {', '.join(others)} too; move it by hand")
