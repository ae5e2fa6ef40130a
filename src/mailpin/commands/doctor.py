"""`mailpin doctor [--notify-test]`: will a block reach this user here? Each check with its fix."""

from __future__ import annotations

from dataclasses import dataclass

from mailpin.env import Env


@dataclass(frozen=True)
class Finding:
    topic: str  # "desktop", "notmuch alert", …
    ok: bool
    detail: str
    fix: str = ""


@dataclass(frozen=True)
class DoctorResult:
    findings: tuple[Finding, ...]
    test_sent: str | None = None  # the path a test notification took ("" when none could), None if not asked


def run(env: Env, *, notify_test: bool = False) -> DoctorResult:
    from mailpin import settings
    from mailpin.notify import desktop

    configured = settings.load(env)
    findings = []
    usable = False
    for path, works, why in desktop.paths(env.environ):
        usable = usable or works
        findings.append(Finding("desktop", works, f"{path}: {why}" if why else path))
    if not configured.notify.desktop:
        findings.append(Finding("desktop", False, "turned off in mailpin's config", "[notify] desktop = yes"))
    elif not usable:
        fix = (
            "no desktop session reachable: blocks are told on stderr and in the exit status only; from cron, "
            "set XDG_RUNTIME_DIR (the bus is $XDG_RUNTIME_DIR/bus), or enable the notmuch alert"
        )
        findings.append(Finding("desktop", False, "no notification path works here", fix))
    findings.append(_notmuch(env, configured.notify.notmuch))
    sent = None
    if notify_test:
        note = desktop.Note(
            "mailpin: test notification",
            "If you can read this, mailpin's blocks will reach you here.\nNothing is wrong.",
            critical=False,
        )
        sent = desktop.send(note, env.environ, timeout=2.0)
    return DoctorResult(tuple(findings), sent)


def _notmuch(env: Env, enabled: bool) -> Finding:
    import shutil

    found = shutil.which("notmuch", path=env.environ.get("PATH"))
    if not enabled:
        hint = "[notify] notmuch = yes in mailpin's config puts an alert in your inbox" if found else ""
        return Finding("notmuch alert", True, "off", hint)
    if not found:
        return Finding("notmuch alert", False, "on, but notmuch is not installed", "install notmuch, or turn it off")
    from mailpin.notify import notmuch

    address = notmuch.user_address(env.environ)
    if address is None:
        return Finding("notmuch alert", False, "on, but notmuch has no usable config", "run `notmuch setup`")
    return Finding("notmuch alert", True, f"on: alerts go to {address}'s notmuch inbox")
