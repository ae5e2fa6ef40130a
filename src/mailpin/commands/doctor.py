"""`mailpin doctor [--json] [--notify-test]`: is mailpin really in front of the tools here, and will a
block reach this user? One finding per check, grouped, each not-ok one with its fix.

Nothing here connects to a mail server. A broken file is reported, never raised: the doctor must
still say everything else. Exit 78 when a tool's config, mailpin's settings or the pin store is
broken; otherwise 0, warnings included (`--notify-test`: 75 when nothing could deliver the test).
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from mailpin.commands import hooks as hooks_command
from mailpin.configs.discover import Discovery, discover, reader
from mailpin.env import Env
from mailpin.errors import ConfigError, ExitStatus
from mailpin.model import Account, Profile, Tool
from mailpin.output import JSON_VERSION
from mailpin.state import settings

GROUPS = ("shims", "configs", "accounts", "pin store", "notifications", "notmuch hook")


@dataclass(frozen=True)
class Finding:
    group: str  # one of GROUPS
    topic: str  # "msmtp", "msmtp:work", "desktop", …
    ok: bool
    detail: str
    fix: str = ""
    broken: bool = False  # a file mailpin must read is broken: exit 78


@dataclass(frozen=True)
class DoctorResult:
    findings: tuple[Finding, ...]
    test_sent: str | None = None  # the path a test notification took ("" when none could), None if not asked

    @property
    def exit_status(self) -> ExitStatus:
        if any(finding.broken for finding in self.findings):
            return ExitStatus.CONFIG
        return ExitStatus.TEMPFAIL if self.test_sent == "" else ExitStatus.OK


@dataclass(frozen=True)
class _Found:
    """One tool's configs: the files it would read, and what mailpin made of them."""

    paths: tuple[str, ...]
    discovery: Discovery

    @property
    def in_use(self) -> bool:
        return bool(self.paths or self.discovery.accounts or self.discovery.errors)


def run(env: Env, *, notify_test: bool = False) -> DoctorResult:

    found = {tool: _configs_of(env, tool) for tool in Tool}
    status = hooks_command.status(env)
    findings = _shims(env, status.tools, found)
    findings += _configs(found)
    try:
        configured = settings.load(env)
        where = configured.source or f"{settings.path(env)}: none, the defaults apply"
        findings.append(Finding("configs", "mailpin settings", True, where))
    except ConfigError as exc:
        configured = settings.Settings()
        fix = "correct it: until then the shims, check, init and the other pin commands stop with exit 78"
        findings.append(Finding("configs", "mailpin settings", False, str(exc), fix, broken=True))
    keys = [account.key for item in found.values() for account in item.discovery.accounts]
    if not any(item.discovery.errors for item in found.values()):
        for said in configured.unknown_accounts(keys):
            findings.append(
                Finding("configs", "mailpin settings", False, said, "correct the name, or remove the section")
            )
    profiles, store = _pin_store(env)
    findings += _accounts(found, profiles, configured)
    if profiles is not None and not any(f.broken for f in findings):
        findings += _could_move(env, configured, found, profiles)
    findings += store
    findings += _notifications(env, configured.notify.desktop, configured.notify.notmuch)
    findings.append(_hook(status.notmuch, found))
    sent = None
    if notify_test:
        from mailpin.notify import desktop

        note = desktop.Note(
            "mailpin: test notification",
            "If you can read this, mailpin's blocks will reach you here.\nNothing is wrong.",
            critical=False,
        )
        sent = desktop.send(note, env.environ, timeout=2.0)
    return DoctorResult(tuple(findings), sent)


def _configs_of(env: Env, tool: Tool) -> _Found:
    try:
        paths = tuple(str(path) for path in reader(tool).config_paths([], env))
    except ConfigError:
        paths = ()  # discover() reports the same problem
    return _Found(paths, discover(env, [tool]))


# --- shims ---------------------------------------------------------------------------------------


def _shims(env: Env, tools: Sequence[hooks_command.ToolStatus], found: Mapping[Tool, _Found]) -> list[Finding]:
    findings = []
    for item in tools:
        tool, in_use = item.tool, found[Tool(item.tool)].in_use
        if item.runs is None:
            if not in_use:
                findings.append(Finding("shims", tool, True, "not installed, and no config: nothing to guard"))
            else:
                fix = f"install {tool}, then `mailpin hooks install`"
                findings.append(Finding("shims", tool, False, f"{tool} has a config but is not on PATH", fix))
        elif item.shim:
            running = f" running {shlex.join(item.command)}" if item.command else ""
            reaches = f"→ {item.real}" if item.real else f"→ no real {tool}"
            detail = f"{item.runs} is mailpin's shim{running} {reaches}"
            if not item.problems:
                findings.append(Finding("shims", tool, True, detail))
            elif item.real is None and len(item.problems) == 1 and not in_use:
                findings.append(Finding("shims", tool, True, f"{detail} (no {tool} config either: nothing to run)"))
            else:
                findings.append(Finding("shims", tool, False, detail, "; ".join(item.problems)))
        elif not in_use:
            findings.append(Finding("shims", tool, True, f"{item.runs} is the real {tool} (no {tool} config to guard)"))
        else:
            detail = f"{item.runs} is the real {tool}: it runs unchecked"
            findings.append(Finding("shims", tool, False, detail, _shim_fix(env, tool, item.runs)))
    return findings


def _shim_fix(env: Env, tool: str, runs: str) -> str:
    from mailpin import hooks
    from mailpin.run.handover import is_shim

    for directory in hooks.path_dirs(env.environ):
        candidate = os.path.join(directory, tool)
        if hooks.runnable(candidate) and is_shim(candidate):
            return f'mailpin\'s shim is in {directory}, after {os.path.dirname(runs)}: export PATH="{directory}:$PATH"'
    default = env.home / ".local" / "bin"
    install = (
        f"`mailpin hooks install` (shims in {default}; --bin DIR for another place), put that directory first on PATH"
    )
    # Each tool's own way around PATH: a MUA's sendmail for msmtp; for the syncs, whatever starts them.
    other = {
        "msmtp": f"point your MUA's sendmail at {default / 'msmtp'}",
        "mbsync": f"run `mailpin run mbsync …` (or {default / 'mbsync'}) in your timer, cron line or notmuch hook",
        "offlineimap": f"run `mailpin run offlineimap …` (or {default / 'offlineimap'}) in your timer or cron line",
    }
    return f"{install} — or {other[tool]}" if tool in other else install


# --- configs, accounts, pin store ----------------------------------------------------------------


def _configs(found: Mapping[Tool, _Found]) -> list[Finding]:
    findings = []
    for tool, item in found.items():
        for error in item.discovery.errors:
            fix = "correct it (`mailpin accounts` lists every problem)"
            findings.append(Finding("configs", tool.value, False, str(error), fix, broken=True))
        if item.discovery.errors:
            continue
        if not item.paths:
            findings.append(Finding("configs", tool.value, True, "no config file"))
            continue
        count = len(item.discovery.accounts)
        accounts = f"{count} account{'s' if count != 1 else ''}"
        findings.append(Finding("configs", tool.value, True, f"{', '.join(item.paths)}: read, {accounts}"))
    return findings


def _pin_store(env: Env) -> tuple[dict[str, Profile] | None, list[Finding]]:
    from mailpin.state.store import PINS_VERSION, PinStore

    store = PinStore.for_env(env)
    path = store.path
    try:
        profiles = store.load()
    except ConfigError as exc:  # the store's own words say what is wrong and how to mend it
        where = f"{exc.source}:{exc.line}" if exc.line is not None else exc.source
        return None, [Finding("pin store", "pins.conf", False, f"{where}: cannot be read", exc.problem, broken=True)]
    if not os.path.lexists(path):
        return profiles, [Finding("pin store", "pins.conf", True, f"{path}: none yet (`mailpin init` writes it)")]
    real = os.path.realpath(path)
    shown = f"{path} (a link to {real})" if real != str(path) else str(path)
    count = len(profiles)
    detail = f"{shown}: readable, version {PINS_VERSION}, {count} profile{'s' if count != 1 else ''}"
    findings = [Finding("pin store", "pins.conf", True, detail)]
    try:
        mode = os.stat(real).st_mode & 0o777
    except OSError:
        mode = 0
    if mode & 0o022:
        fix = f"chmod go-w {real} (mailpin writes it 0600)"
        findings.append(Finding("pin store", "pins.conf", False, f"writable by others (mode {mode:04o})", fix))
    return profiles, findings


def _accounts(
    found: Mapping[Tool, _Found], profiles: Mapping[str, Profile] | None, configured: settings.Settings
) -> list[Finding]:
    from mailpin.commands.verify import nothing_to_verify
    from mailpin.model import Status
    from mailpin.run import enforce

    accounts: dict[str, Account] = {}
    for item in found.values():
        for account in item.discovery.accounts:
            accounts.setdefault(account.key, account)
    if profiles is None:
        detail = f"{len(accounts)} found; which are pinned is unknown: the pin store cannot be read"
        return [Finding("accounts", "pin state", False, detail, "see the pin store below")]
    if not accounts and not profiles:
        fix = "configure msmtp, mbsync or offlineimap, then `mailpin init`"
        return [Finding("accounts", "accounts", False, "none found in the tools' configs", fix)]
    findings = []
    for key, account in accounts.items():
        profile = profiles.get(key)
        if profile is not None:
            when = f"{profile.pinned_at:%Y-%m-%d}"
            # Which path `mailpin run` takes: the verified session itself, or flags (and why).
            path = enforce.describe(account, profile, configured) if configured.enforce_for(key) else "enforce = no"
            detail = f"pinned at level {profile.level.value} ({profile.endpoint}, {when}); session: {path}"
            findings.append(Finding("accounts", key, True, detail))
            continue
        verdict = nothing_to_verify(account)
        if verdict is None:
            fix = f"run `mailpin init` (or `mailpin init {key}`)"
            findings.append(Finding("accounts", key, False, "no TLS profile yet", fix))
        elif verdict.status is Status.SKIPPED:
            findings.append(Finding("accounts", key, True, "; ".join(verdict.warnings)))
        else:  # mailpin blocks it: no TLS, or an endpoint mailpin cannot know
            detail = "; ".join((*verdict.warnings, verdict.detail) if verdict.detail else verdict.warnings)
            findings.append(Finding("accounts", key, False, detail, f"correct the account at {account.source}"))
    broken = {tool.value for tool, item in found.items() if item.discovery.errors}
    for key in sorted(set(profiles) - set(accounts)):
        tool = key.partition(":")[0]
        if tool in broken:
            detail = f"pinned; whether {tool}'s config still names it is unknown (it is broken)"
            findings.append(Finding("accounts", key, False, detail, f"correct {tool}'s config (above)"))
        else:
            fix = f"`mailpin forget {key}` if the account is gone for good"
            findings.append(Finding("accounts", key, False, "pinned, but no config names it", fix))
    return findings


# --- telling the user ----------------------------------------------------------------------------


def _could_move(
    env: Env, configured: settings.Settings, found: Mapping[Tool, _Found], profiles: Mapping[str, Profile]
) -> list[Finding]:
    """STARTTLS accounts whose host answers with Implicit TLS too: said once (setup/hint.py)."""
    from mailpin.commands.verify import Target, Verifier
    from mailpin.setup.hint import could_move

    targets = [Target(a.key, a, profiles.get(a.key)) for item in found.values() for a in item.discovery.accounts]
    said = "Implicit TLS answers at {} with a valid certificate (RFC 8314 prefers it to STARTTLS; said once)"
    return [
        Finding("accounts", key, False, said.format(where), f"mailpin upgrade {key}")
        for key, where in could_move(Verifier(env, configured), targets)
    ]


def _notifications(env: Env, desktop_on: bool, notmuch_on: bool) -> list[Finding]:
    from mailpin.notify import desktop

    findings = []
    if not desktop_on:
        off = Finding("notifications", "desktop", False, "turned off in mailpin's config", "[notify] desktop = yes")
        findings.append(off)
    else:
        paths = desktop.paths(env.environ)
        for path, _, why in (found for found in paths if found[1]):  # a path that does not work is moot then
            findings.append(Finding("notifications", "desktop", True, f"{path}: {why}" if why else path))
        if not any(works for _, works, _ in paths):
            tried = "; ".join(f"{path}: {why}" for path, _, why in paths)
            fix = (
                "blocks are told on stderr and in the exit status only; from cron the bus is found at "
                "/run/user/$UID/bus while you are logged in to the desktop; over SSH or on a server, "
                "enable the notmuch alert"
            )
            findings.append(
                Finding("notifications", "desktop", False, f"no notification path works here ({tried})", fix)
            )
    findings.append(_notmuch_alert(env, notmuch_on))
    return findings


def _notmuch_alert(env: Env, enabled: bool) -> Finding:
    import shutil

    found = shutil.which("notmuch", path=env.environ.get("PATH"))
    if not enabled:
        hint = "[notify] notmuch = yes in mailpin's config puts an alert in your inbox" if found else ""
        return Finding("notifications", "notmuch alert", True, "off", hint)
    if not found:
        fix = "install notmuch, or turn it off"
        return Finding("notifications", "notmuch alert", False, "on, but notmuch is not installed", fix)
    from mailpin.notify import notmuch

    address = notmuch.user_address(env.environ)
    if address is None:
        fix = "run `notmuch setup`"
        return Finding("notifications", "notmuch alert", False, "on, but notmuch has no usable config", fix)
    return Finding("notifications", "notmuch alert", True, f"on: alerts go to {address}'s notmuch inbox")


def _hook(hook: hooks_command.HookStatus, found: Mapping[Tool, _Found]) -> Finding:
    from mailpin import hooks

    syncs = any(found[tool].discovery.accounts for tool in (Tool.MBSYNC, Tool.OFFLINEIMAP))
    where = hook.directory / hooks.PRE_NEW if hook.directory else None
    if hook.state == "unknown":
        return Finding("notmuch hook", "pre-new", True, f"notmuch {hook.note}")
    if hook.state == "mailpin":
        chained = f", then {hook.chained}" if hook.chained else ""
        detail = f"{where}: mailpin's check{chained}" + (" (read-only)" if hook.read_only else "")
        return Finding("notmuch hook", "pre-new", not hook.problems, detail, "; ".join(hook.problems))
    if not syncs:
        state = "none" if hook.state == "absent" else "not mailpin's"
        return Finding("notmuch hook", "pre-new", True, f"{where}: {state} (no mbsync or offlineimap account to check)")
    if hook.state == "absent":
        detail = f"{where}: none, so `notmuch new` indexes without a check"
        return Finding("notmuch hook", "pre-new", False, detail, "mailpin hooks install --notmuch")
    if hook.read_only:
        fix = "add `mailpin check --sync --quiet` where it is generated (home-manager: programs.notmuch.hooks.preNew)"
    else:
        fix = "`mailpin hooks install --notmuch` (your hook is kept as pre-new.before-mailpin and runs after the check)"
    return Finding("notmuch hook", "pre-new", False, f"{where}: a hook that is not mailpin's, so no check", fix)


# --- rendering -----------------------------------------------------------------------------------


def text(result: DoctorResult) -> str:
    lines = []
    for group in GROUPS:
        findings = [finding for finding in result.findings if finding.group == group]
        if findings:
            lines.append(group)
        for finding in findings:
            lines.append(f"  {'ok' if finding.ok else '--'}  {finding.topic}: {finding.detail}")
            if finding.fix:
                lines.append(f"      {'fix' if not finding.ok else 'tip'}: {finding.fix}")
    if result.test_sent is not None:
        sent = f"sent via {result.test_sent}" if result.test_sent else "NOT delivered: no notification path works here"
        lines.append(f"test notification: {sent}")
    lines.append(_summary(result))
    return "\n".join(lines)


def _summary(result: DoctorResult) -> str:
    broken = sum(finding.broken for finding in result.findings)
    warnings = sum(not finding.ok and not finding.broken for finding in result.findings)
    parts = [f"{broken} broken (exit 78)"] if broken else []
    parts += [f"{warnings} warning{'s' if warnings != 1 else ''}"] if warnings else []
    return "; ".join(parts) if parts else "everything ok"


def to_json(result: DoctorResult) -> dict[str, Any]:
    sent = result.test_sent
    return {
        "version": JSON_VERSION,
        "exit_status": int(result.exit_status),
        "ok": all(finding.ok for finding in result.findings),
        "checks": [{**asdict(finding), "fix": finding.fix or None} for finding in result.findings],
        "notify_test": None if sent is None else {"sent": bool(sent), "via": sent or None},
    }
