"""`mailpin upgrade [ACCOUNT…]`: move accounts from STARTTLS (or no TLS) to Implicit TLS (RFC 8314).

For each account that reaches its server over STARTTLS or in the clear:
1. find where the server offers Implicit TLS with a certificate that validates for the name the
   account checks (setup/find.py: SRV, then the well-known port);
2. edit the tool's config so that it connects there, changing nothing else (configs/msmtp_edit.py,
   mbsync_edit.py, offlineimap_edit.py), and check the edited bytes with the tool's own reader
   (`msmtp --pretend`; mbsync reading the file) and with mailpin's;
3. show the change as a unified diff and ask (`--yes`: do not ask; no terminal and no `--yes`: the
   diff only);
4. write it atomically with a dated backup (setup/write.py), or, where mailpin must not write (a
   template, the nix store), say where to make the change;
5. pin the account afresh in Implicit TLS mode: from then on a config that takes it back to
   STARTTLS is a `config-downgrade`, blocked like any downgrade.
Nothing could move: the account stays, with the reason, and the exit status is 0.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from mailpin.commands.verify import Target, Verifier
from mailpin.configs import mbsync_edit, msmtp_edit, offlineimap_edit
from mailpin.configs.edit import Edit, EditError
from mailpin.configs.msmtp import SYSTEM_CONFIG
from mailpin.env import Env
from mailpin.errors import ConfigError, ExitStatus
from mailpin.model import Account, Mode, Observation, Profile, Tool
from mailpin.net import srv
from mailpin.setup import find, write
from mailpin.setup.tool_check import mbsync_refuses, msmtp_refuses


@dataclass(frozen=True)
class Move:
    """What became of one account."""

    key: str
    state: str  # moved | proposed | unwritten | stays | refused
    said: str  # one line for the user
    endpoint: str | None = None  # where it moves (host:port)
    file: str | None = None
    diff: str = ""
    backup: str | None = None
    profile: Profile | None = None
    lookups: tuple[str, ...] = ()  # the SRV answers, in words


@dataclass
class UpgradeResult:
    moves: list[Move] = field(default_factory=list)
    errors: list[ConfigError] = field(default_factory=list)
    audit_problems: list[str] = field(default_factory=list)

    @property
    def exit_status(self) -> ExitStatus:
        if any(move.state == "refused" for move in self.moves):
            return ExitStatus.TEMPFAIL  # the file changed meanwhile: run again
        if self.errors or any(move.state == "unwritten" for move in self.moves):
            return ExitStatus.CONFIG
        return ExitStatus.OK


# The tools whose configs `upgrade` can edit (configs/*_edit.py; mpop's is msmtp's grammar); fetchmail's
# and getmail's editors are not written yet.
EDITABLE = (Tool.MSMTP, Tool.MBSYNC, Tool.OFFLINEIMAP, Tool.MPOP)


def candidates(targets: Sequence[Target]) -> list[Account]:
    """The accounts that reach their server by host name over STARTTLS or in the clear."""
    return [
        target.account
        for target in targets
        if target.account is not None
        and target.account.tool in EDITABLE
        and target.account.mode in (Mode.STARTTLS, Mode.NONE)
        and target.account.host is not None
        and target.account.transport is None
        and target.account.protocol in srv.IMPLICIT_SERVICES
    ]


def run(
    env: Env,
    names: Sequence[str],
    *,
    yes: bool,
    confirm: Callable[[str], bool] | None,
    host: str | None = None,
) -> UpgradeResult:
    verifier = Verifier(env)
    targets, errors = verifier.targets(names)
    result = UpgradeResult(errors=list(errors))
    accounts = candidates(targets)
    for target in targets:
        account = target.account
        if names and account is not None and account.tool not in EDITABLE and account.mode is not Mode.IMPLICIT:
            why = f"mailpin does not edit {account.tool.value}'s config yet: move it to Implicit TLS by hand"
            result.moves.append(Move(target.key, "stays", f"{target.key}: {why}, then `mailpin accept {target.key}`"))
    if names and not accounts and not result.moves:
        named = ", ".join(target.key for target in targets)
        result.moves.append(Move(named, "stays", f"{named}: on Implicit TLS already, or not reached by host name"))
    for account in accounts:
        result.moves.append(_upgrade(env, verifier, account, yes=yes, confirm=confirm, host=host))
    result.audit_problems = verifier.audit_problems
    return result


def _upgrade(
    env: Env,
    verifier: Verifier,
    account: Account,
    *,
    yes: bool,
    confirm: Callable[[str], bool] | None,
    host: str | None,
) -> Move:
    key, mode = account.key, "STARTTLS" if account.mode is Mode.STARTTLS else "no TLS"
    file = config_file(account)
    moved = as_moved(account)
    found = find.find(verifier, moved, verifier.settings.nameservers, host)
    lookups = tuple(answer.said for answer in found.answers)
    chosen = found.chosen
    if chosen is None or chosen.observation is None:
        return Move(key, "stays", f"{key} stays on {mode}: {found.why_not}", lookups=lookups)
    where = f"{chosen.candidate.host}:{chosen.candidate.port}"
    if file == str(SYSTEM_CONFIG):  # not the user's own file: an administrator's to change
        return Move(key, "stays", f"{key}: Implicit TLS works at {where}; the account is in {file}: change it there")
    if host is not None and account.servername:  # a tls_host_override would keep checking the old name
        return Move(
            key, "stays", f"{key}: Implicit TLS works at {where} ({chosen.candidate.why}); the account checks the "
            f"name in its tls_host_override: set it by hand, then `mailpin accept {key}`", where, lookups=lookups,
        )  # fmt: skip
    try:
        data = Path(file).read_bytes()
        edit = _edit(env, account, data, file, chosen.candidate.port, host)
    except OSError as exc:
        return Move(key, "stays", f"{key}: cannot read {file}: {exc.strerror or exc}", where, file, lookups=lookups)
    except (EditError, ConfigError) as exc:
        return Move(key, "stays", f"{key} stays on {mode}: {exc}", where, file, lookups=lookups)
    refused = _tool_refuses(env, verifier, account, edit.after, chosen.candidate.port, host)
    if refused:
        return Move(key, "stays", f"{key} stays on {mode}: {account.tool.value} would refuse the edit: {refused}")
    diff = "".join(
        difflib.unified_diff(
            edit.before.decode("utf-8", "replace").splitlines(keepends=True),
            edit.after.decode("utf-8", "replace").splitlines(keepends=True),
            file,
            file,
        )
    )
    checked = chosen.observation.endpoint.name_to_check
    why = f"{key}: Implicit TLS at {where} ({chosen.candidate.why}, certificate valid for {checked})"
    blocked = write.unwritable(Path(file), data, env.home)
    if blocked:
        return Move(key, "unwritten", f"{why}; not written: {blocked}", where, file, diff, lookups=lookups)
    if not yes and (confirm is None or not confirm(f"{why}\n{diff}")):
        said = f"{why}; not written (confirm, or `mailpin upgrade --yes {key}`)"
        return Move(key, "proposed", said, where, file, diff, lookups=lookups)
    try:
        backup = write.replace(Path(file), data, edit.after, env.now())
    except write.WriteRefused as exc:
        return Move(key, "refused", f"{key}: {exc}", where, file, diff, lookups=lookups)
    profile = _repin(verifier, key, chosen.observation, moved.certcheck)
    for name in edit.along:  # `account default : work` went along: its pin follows too
        _repin(verifier, f"{account.tool.value}:{name}", chosen.observation, moved.certcheck)
    also = f" (with {', '.join(edit.along)}, which inherits it)" if edit.along else ""
    said = (
        f"{why}{also}; {file} written (backup {backup.name}); pinned in Implicit TLS mode at level "
        f"{profile.level.value}"
    )
    return Move(key, "moved", said, where, file, diff, str(backup), profile, lookups)


def config_file(account: Account) -> str:
    """The file that defines ACCOUNT (its source is FILE:LINE)."""
    return account.source.rpartition(":")[0] or account.source


def as_moved(account: Account) -> Account:
    """ACCOUNT as it will check certificates on Implicit TLS. offlineimap checks none on STARTTLS:
    once moved it trusts its `sslcacertfile`, or the system's store (the edit writes OS-DEFAULT)."""
    if account.tool is not Tool.OFFLINEIMAP or account.remote is None:
        return account
    try:
        file = config_file(account)
        trust = offlineimap_edit.trust_after(Path(file).read_bytes(), file, account.remote)
    except (OSError, ConfigError):
        return account  # the edit reports what is wrong with the file
    return replace(account, certcheck=True, trust_file=trust, system_trust=trust is None)


def _edit(env: Env, account: Account, data: bytes, file: str, port: int, host: str | None) -> Edit:
    if account.tool in (Tool.MSMTP, Tool.MPOP):
        return msmtp_edit.implicit_tls(data, file, str(env.home), account.name, port, host, account.tool.value)
    if account.tool is Tool.OFFLINEIMAP:
        return offlineimap_edit.implicit_tls(data, file, str(env.home), account, port, host)
    from mailpin.configs.tool_version import installed

    version = installed("mbsync", env)
    keyword = "TLSType" if version is not None and version >= (1, 5) else "SSLType"
    return mbsync_edit.implicit_tls(data, file, str(env.home), account.name, port, host, keyword)


def _tool_refuses(
    env: Env, verifier: Verifier, account: Account, after: bytes, port: int, host: str | None
) -> str | None:
    """The tool's own reading of the edited bytes: msmtp --pretend; mbsync's config reader; for
    offlineimap, mailpin's reader (offlineimap's own parser and rules) has read them in the edit."""
    if account.tool in (Tool.MSMTP, Tool.MPOP):
        expected = {"port": str(port), "tls": "on", "tls_starttls": "off"} | ({"host": host} if host else {})
        return msmtp_refuses(env, verifier.settings, after, account.name, expected, account.tool.value)
    if account.tool is Tool.MBSYNC:
        return mbsync_refuses(env, verifier.settings, after)
    return None  # offlineimap has no reader that connects to nothing: mailpin's (its parser, its rules) read it


def _repin(verifier: Verifier, key: str, observation: Observation, certcheck: bool) -> Profile:
    """The account pinned afresh where it now connects, at the level it had (or the settings')."""
    before = verifier.profiles.get(key)
    level = before.level if before is not None else verifier.settings.level_for(key)
    return verifier.pin(key, observation, level, event="upgrade", certcheck=certcheck)


def as_json(move: Move) -> dict[str, object]:
    return {
        "account": move.key,
        "state": move.state,
        "said": move.said,
        "endpoint": move.endpoint,
        "file": move.file,
        "diff": move.diff or None,
        "backup": move.backup,
        "level": move.profile.level.value if move.profile else None,
        "srv": list(move.lookups),
    }


def as_text(moves: Sequence[Move], *, diffs: bool) -> str:
    """One line per account; the diff under it when nobody was asked (it is what to apply, or what was)."""
    lines = []
    for move in moves:
        lines.append(move.said)
        if diffs and move.diff and move.state in ("proposed", "unwritten", "moved"):
            lines.append(move.diff.rstrip("\n"))
    return "\n".join(lines) if lines else "no account on STARTTLS or without TLS"
