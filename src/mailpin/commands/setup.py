"""`mailpin setup ADDRESS [--tool TOOL]`: a new account done as RFC 8314 means it.

1. Find the endpoint: the SRV record of the Implicit TLS service for the address's domain, then the
   well-known names (`smtp.`, `mail.` or `imap.`, and the domain itself) at the Implicit TLS port, all
   tried at once; STARTTLS only when no Implicit TLS endpoint works (RFC 8314 §5.1: prefer it).
2. Take only an endpoint whose certificate validates, under the trust the stanza will name, for the
   host the tool will be told to connect to. An SRV target outside the address's domain is not used
   unless the user names it (`--host`): the answer is unauthenticated (RFC 6186 §6, RFC 7817).
3. Pin it, and print the tool's complete, commented stanza; with `--write`, append it to the user's
   config after the diff and a yes (setup/write.py's rules: never a template, a backup, atomic).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from mailpin.commands.verify import Verifier
from mailpin.env import Env
from mailpin.errors import ExitStatus, UsageError
from mailpin.model import DEFAULT_PORTS, Account, Mode, Observation, Profile, Protocol, Tool
from mailpin.net import srv
from mailpin.setup import find, stanza, write

_STARTTLS_SERVICES = {Protocol.SMTP: "_submission._tcp", Protocol.IMAP: "_imap._tcp"}
_NAMES = {Protocol.SMTP: ("smtp", "mail"), Protocol.IMAP: ("imap", "mail")}


@dataclass(frozen=True)
class Tried:
    host: str
    port: int
    mode: Mode
    why: str  # where the idea came from
    problem: str | None
    observation: Observation | None = None


@dataclass
class SetupResult:
    address: str
    tool: Tool
    tried: list[Tried]
    skipped: list[str]  # SRV targets outside the domain, not tried
    lookups: list[str]
    chosen: Tried | None = None
    text: str = ""  # the stanza
    file: str | None = None
    diff: str = ""
    written: bool = False
    backup: str | None = None
    profile: Profile | None = None
    said: str = ""

    @property
    def exit_status(self) -> ExitStatus:
        if self.chosen is None:
            return ExitStatus.BLOCKED  # nothing to set up that validates
        return ExitStatus.CONFIG if self.said.startswith("not written:") else ExitStatus.OK


def run(
    env: Env,
    address: str,
    tool: Tool,
    *,
    host: str | None = None,
    trust_file: str | None = None,
    user: str | None = None,
    password_command: str | None = None,
    name: str | None = None,
    maildir: str | None = None,
    write_config: bool = False,
    yes: bool = False,
    confirm: Callable[[str], bool] | None = None,
) -> SetupResult:
    local, at, domain = address.rpartition("@")
    domain = domain.lower().rstrip(".")
    if not at or not local or "." not in domain or any(c.isspace() for c in address):
        raise UsageError(f"not a mail address: {address!r} (use NAME@DOMAIN)")
    protocol = Protocol.SMTP if tool is Tool.MSMTP else Protocol.IMAP
    name = name or domain
    verifier = Verifier(env)
    account = Account(
        tool, name, protocol, None, None, Mode.IMPLICIT, "mailpin setup",
        trust_file=trust_file, system_trust=trust_file is None,
    )  # fmt: skip
    verifier.judge(account).load()  # a trust file without certificates: exit 78, before any connection
    result = SetupResult(address, tool, [], [], [])
    for mode in (Mode.IMPLICIT, Mode.STARTTLS):  # STARTTLS only when no Implicit TLS endpoint works
        candidates = _candidates(verifier, protocol, mode, domain, host, result)
        result.tried += _try_all(verifier, account, candidates, mode)
        result.chosen = next((tried for tried in result.tried if tried.problem is None), None)
        if result.chosen is not None:
            break
    if result.chosen is None or result.chosen.observation is None:
        result.said = f"no endpoint for {address} that validates: " + "; ".join(_tried_text(result)) + "."
        return result
    chosen, observation = result.chosen, result.chosen.observation
    new = stanza.NewAccount(
        name, address, chosen.host, chosen.port, chosen.mode, chosen.why, user or address, password_command,
        trust_file, maildir or str(env.home / "Mail" / name),
    )  # fmt: skip
    today = env.now().strftime("%Y-%m-%d")
    key = f"{tool.value}:{name}"
    level = verifier.settings.level_for(key)
    result.profile = verifier.pin(key, observation, level, event="setup")
    file = _config_file(env, tool)
    before = file.read_bytes() if file.is_file() else b""
    if tool is Tool.MSMTP:
        result.text = stanza.msmtp(new, today)
    elif tool is Tool.MBSYNC:
        from mailpin.configs.tool_version import installed

        result.text = stanza.mbsync(new, today, installed("mbsync", env))
    else:
        result.text = stanza.offlineimap(new, today, with_general=not before)
    result.file = str(file)
    if not write_config:
        result.said = f"{key}: {chosen.host}:{chosen.port} ({_mode(chosen.mode)}, {chosen.why}); pinned. Add to {file}:"
        return result
    if tool is Tool.OFFLINEIMAP and before:
        result.said = (
            f"not written: {file} exists, and offlineimap takes its accounts from `[general] accounts`: "
            f"add {name} there and the sections below yourself"
        )
        return result
    separator = b"" if not before or before.endswith(b"\n\n") else (b"\n" if before.endswith(b"\n") else b"\n\n")
    after = before + separator + result.text.encode()
    result.diff = "".join(
        difflib.unified_diff(
            before.decode("utf-8", "replace").splitlines(True), after.decode("utf-8", "replace").splitlines(True),
            str(file), str(file),
        )
    )  # fmt: skip
    refused = _refused(env, verifier, tool, after, new)
    if refused:
        result.said = f"not written: {refused}"
        return result
    blocked = write.unwritable(file, before, env.home) if before else None
    if blocked:
        result.said = f"not written: {blocked}"
        return result
    if not yes and (confirm is None or not confirm(result.diff)):
        result.said = f"{key}: pinned; {file} not written (confirm, or --yes)"
        return result
    if before:
        try:
            result.backup = str(write.replace(file, before, after, env.now()))
        except write.WriteRefused as exc:
            result.said = f"not written: {exc}"
            return result
    else:
        from mailpin.state.durable import make_private_dirs, write_atomically

        make_private_dirs(file.parent)
        write_atomically(file, after, 0o600)
    if tool is not Tool.MSMTP:  # mbsync opens the Maildir store's root, it does not make it
        Path(new.maildir).mkdir(mode=0o700, parents=True, exist_ok=True)
    result.written = True
    result.said = f"{key}: {chosen.host}:{chosen.port} ({_mode(chosen.mode)}, {chosen.why}); pinned; added to {file}"
    return result


def _mode(mode: Mode) -> str:
    return "Implicit TLS" if mode is Mode.IMPLICIT else "STARTTLS"


def _candidates(
    verifier: Verifier, protocol: Protocol, mode: Mode, domain: str, host: str | None, result: SetupResult
) -> list[tuple[str, int, str]]:
    """(host, port, why) to try for MODE, in order: SRV by priority, then the well-known names."""
    service = (srv.IMPLICIT_SERVICES if mode is Mode.IMPLICIT else _STARTTLS_SERVICES).get(protocol)
    found: list[tuple[str, int, str]] = []
    if service is not None:
        answer = srv.lookup(f"{service}.{domain}", verifier.settings.nameservers, verifier.settings.timeout)
        result.lookups.append(answer.said)
        for record in answer.records:
            inside = record.target == domain or record.target.endswith("." + domain)
            if (host is not None and record.target == host.lower().rstrip(".")) or (host is None and inside):
                found.append((host or record.target, record.port, f"SRV {answer.name}"))
            elif host is None:
                result.skipped.append(f"{record.target}:{record.port} (SRV {answer.name}, outside {domain})")
    port = DEFAULT_PORTS[(protocol, mode)]
    if host is not None:
        found.append((host, port, "the well-known port"))
    else:  # only the names the domain has: asked of the same resolver as the SRV records
        names = [*(f"{label}.{domain}" for label in _NAMES[protocol]), domain]
        settings = verifier.settings
        known = [name for name in names if srv.exists(name, settings.nameservers, settings.timeout)]
        found += [(name, port, "the well-known name and port") for name in known]
        result.lookups += [f"{name}: no address" for name in names if name not in known]
    return list({(h.lower(), p): (h, p, why) for h, p, why in reversed(found)}.values())[::-1]


def _try_all(
    verifier: Verifier, account: Account, candidates: Sequence[tuple[str, int, str]], mode: Mode
) -> list[Tried]:
    """Every candidate at once: a name that does not resolve must not hold up one that works."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=max(1, min(8, len(candidates)))) as pool:
        return list(pool.map(lambda c: _try(verifier, account, c[0], c[1], mode, c[2]), candidates))


def _try(verifier: Verifier, account: Account, host: str, port: int, mode: Mode, why: str) -> Tried:
    """`mailpin upgrade`'s judgement (setup/find.attempt), the certificate checked for HOST itself."""
    tried = find.attempt(verifier, account, find.Candidate(host, port, why), host, mode)
    return Tried(host, port, mode, why, tried.problem, tried.observation)


def _tried_text(result: SetupResult) -> list[str]:
    said = [f"{t.host}:{t.port} ({t.why}): {t.problem}" for t in result.tried]
    said += [f"{skipped}: `--host` to use it" for skipped in result.skipped]
    return said or ["nothing to try"]


def _config_file(env: Env, tool: Tool) -> Path:
    """The user config the tool reads now, else where it looks first."""
    from mailpin.configs import mbsync, msmtp, offlineimap

    if tool is Tool.MSMTP:
        found = [path for path in msmtp.config_paths([], env) if path != msmtp.SYSTEM_CONFIG]
        return found[-1] if found else env.home / ".msmtprc"
    if tool is Tool.MBSYNC:
        return (mbsync.config_paths([], env) or [env.home / ".mbsyncrc"])[0]
    return (offlineimap.config_paths([], env) or [env.home / ".offlineimaprc"])[0]


def _refused(env: Env, verifier: Verifier, tool: Tool, after: bytes, new: stanza.NewAccount) -> str | None:
    """The tool's reading (msmtp --pretend) and mailpin's of the config with the stanza added."""
    if tool is Tool.MSMTP:
        from mailpin.setup.tool_check import msmtp_refuses

        expected = {"host": new.host, "port": str(new.port), "tls": "on"}
        expected["tls_starttls"] = "off" if new.mode is Mode.IMPLICIT else "on"
        refused = msmtp_refuses(env, verifier.settings, after, new.name, expected)
        return f"msmtp would refuse it: {refused}" if refused else None
    return None


def as_json(result: SetupResult) -> dict[str, object]:
    chosen = result.chosen
    return {
        "address": result.address,
        "tool": result.tool.value,
        "endpoint": f"{chosen.host}:{chosen.port}" if chosen else None,
        "mode": chosen.mode.value if chosen else None,
        "found_by": chosen.why if chosen else None,
        "tried": [
            {"endpoint": f"{t.host}:{t.port}", "mode": t.mode.value, "why": t.why, "problem": t.problem}
            for t in result.tried
        ],
        "not_tried": result.skipped,
        "srv": result.lookups,
        "stanza": result.text or None,
        "file": result.file,
        "written": result.written,
        "backup": result.backup,
        "said": result.said,
    }


def as_text(result: SetupResult) -> str:
    lines = [*(f"SRV {said}" for said in result.lookups), result.said]
    if result.text and not result.written:
        lines.append(result.text.rstrip("\n"))
    return "\n".join(lines)
