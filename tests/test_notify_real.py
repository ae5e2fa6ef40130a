"""Blocks reach the user: desktop notifications on a real session bus (dbus-daemon and a recording
notification server), rate-limited across processes, and alerts in a real notmuch database."""

from __future__ import annotations

import contextlib
import email
import email.policy
import os
import pwd
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import clock_environ, need
from tests.lab.notifyd import DeafBus, NotifyDaemon, short_tempdir
from tests.test_pins_real import MSMTP, cli, write_msmtprc
from tests.test_run_real import MESSAGE, mailpin_command, shim_env


@pytest.fixture
def blocked_lab(isolated_env: Path, pki, smtp_server, monkeypatch: pytest.MonkeyPatch) -> Path:
    """One msmtp account, pinned; the server then serves a certificate from a foreign CA."""
    write_msmtprc(isolated_env, pki.ca_pem, {"smtps": (smtp_server.smtps_port, False)})
    assert cli("init", "--yes")[0] == 0
    smtp_server.serve("foreign-ca")
    return isolated_env


def test_a_blocked_check_notifies_once_per_reason(blocked_lab: Path, session_bus, smtp_server, monkeypatch) -> None:
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", session_bus.address)
    assert cli("check")[0] == 69
    (note,) = session_bus.wait_for(1, timeout=5)
    assert note["app_name"] == "mailpin"
    assert note["summary"] == f"{MSMTP}: certificate from a different CA"
    assert f"mailpin review {MSMTP}" in note["body"] and f"127.0.0.1:{smtp_server.smtps_port}" in note["body"]
    assert note["hints"]["urgency"] == 2
    assert cli("check")[0] == 69  # the same block again, inside the interval: no second notification
    time.sleep(0.3)
    assert len(session_bus.notifications()) == 1
    smtp_server.serve("expired")  # another reason: told at once
    assert cli("check")[0] == 69
    second = session_bus.wait_for(2, timeout=5)[1]
    assert second["summary"] == f"{MSMTP}: certificate expired"


def test_recovery_clears_the_rate_limit(blocked_lab: Path, session_bus, smtp_server, monkeypatch) -> None:
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", session_bus.address)
    assert cli("check")[0] == 69
    session_bus.wait_for(1, timeout=5)
    smtp_server.serve("good")
    assert cli("check")[0] == 0
    smtp_server.serve("foreign-ca")
    assert cli("check")[0] == 69  # blocked again after a recovery: news again
    assert len(session_bus.wait_for(2, timeout=5)) == 2


def test_could_not_verify_is_a_normal_urgency_notification_told_at_each_send(
    isolated_env: Path, pki, session_bus, monkeypatch
) -> None:
    from tests.lab.pki import free_port

    write_msmtprc(isolated_env, pki.ca_pem, {"gone": (free_port(), False)})
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", session_bus.address)
    assert cli("check", "msmtp:gone")[0] == 75
    (note,) = session_bus.wait_for(1, timeout=5)
    assert note["hints"]["urgency"] == 1 and "could not verify" in note["summary"]
    # A person sending meanwhile (offline, say) is told at each send; a check again is not.
    for count in (2, 3):
        assert cli("run", "msmtp", "-a", "gone", "-t", stdin=MESSAGE.decode())[0] == 75
        note = session_bus.wait_for(count, timeout=5)[-1]
        assert note["hints"]["urgency"] == 1 and "message held as" in note["body"]
    assert cli("check", "msmtp:gone")[0] == 75
    time.sleep(0.3)
    assert len(session_bus.notifications()) == 3


def test_every_blocked_send_notifies_and_the_interval_is_for_checks(blocked_lab: Path, session_bus, shims) -> None:
    """A person pressed send three times (aerc shows them only "exit status 69"): told three times.
    A check of the same block right after (a timer's sync) is inside the interval: not told again."""
    env = shim_env(shims, DBUS_SESSION_BUS_ADDRESS=session_bus.address)
    for count in (1, 2, 3):
        done = subprocess.run(["msmtp", "-a", "smtps", "-t"], input=MESSAGE, env=env, capture_output=True, timeout=60)
        assert done.returncode == 69
        note = session_bus.wait_for(count, timeout=5)[-1]
        assert note["summary"] == f"{MSMTP}: certificate from a different CA" and note["hints"]["urgency"] == 2
        assert "message held as" in note["body"] and f"mailpin review {MSMTP}" in note["body"]
    assert cli("check")[0] == 69
    time.sleep(0.3)
    assert len(session_bus.notifications()) == 3  # across processes


def test_the_mail_programs_pipes_close_when_mailpin_exits(blocked_lab: Path, shims: Path, tmp_path: Path) -> None:
    """A notifier that leaves a process behind (a notify-send that starts a helper) must not hold the
    mail program's stdout or stderr: a mail program that reads them to the end (neomutt, Emacs,
    alot) would wait for that process, not for mailpin. The block is told, and the pipes close when
    mailpin exits while the helper is still there."""
    lingering = tmp_path / "helper.pid"
    notifier = shims / "notify-send"
    notifier.write_text(f"#!/bin/sh\nsleep 30 &\necho $! > {lingering}\n")
    notifier.chmod(0o755)
    # A bus address where nothing listens: D-Bus direct fails at once, notify-send is tried next.
    env = shim_env(shims, DBUS_SESSION_BUS_ADDRESS=f"unix:path={tmp_path}/no-bus")
    sender = subprocess.Popen(
        ["msmtp", "-a", "smtps", "-t"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    try:
        _, err = sender.communicate(MESSAGE, timeout=20)  # reads both pipes to their end
        helper = int(lingering.read_text())
        os.kill(helper, 0)  # still there when the pipes closed: it outlived mailpin
    finally:
        if lingering.exists() and lingering.read_text().strip().isdigit():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(lingering.read_text()), signal.SIGKILL)  # the helper this test's notify-send started
        if sender.poll() is None:
            sender.kill()
            sender.communicate()
    assert sender.returncode == 69 and f"{MSMTP} blocked".encode() in err


def test_from_systemd_the_bus_is_found_in_xdg_runtime_dir(blocked_lab: Path, monkeypatch) -> None:
    with NotifyDaemon(program=need("dbus-daemon")) as bus:
        monkeypatch.setenv("XDG_RUNTIME_DIR", str(bus.directory))
        assert "DBUS_SESSION_BUS_ADDRESS" not in os.environ
        assert cli("check")[0] == 69
        assert len(bus.wait_for(1, timeout=5)) == 1


# cron(8) runs a job with HOME, LOGNAME, SHELL=/bin/sh and PATH=/usr/bin:/bin, and nothing else.
CRON_PATH = "/usr/bin:/bin"
# Where /run/user is can only be set inside the process: nothing in cron's environment says it.
_WITH_RUN_USER = (
    "import sys; from pathlib import Path; from mailpin.notify import desktop; "
    "desktop.RUN_USER = Path(sys.argv[1]); from mailpin.cli import main; sys.exit(main(sys.argv[2:]))"
)


def from_cron(home: Path, run_user: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    environ = {**clock_environ(), "HOME": str(home), "LOGNAME": pwd.getpwuid(os.getuid()).pw_name}
    environ |= {"PATH": CRON_PATH, "SHELL": "/bin/sh"}
    return subprocess.run(
        [sys.executable, "-c", _WITH_RUN_USER, str(run_user), *argv],
        env=environ, cwd=home, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


@pytest.fixture
def run_user() -> Iterator[Path]:
    """A /run/user of the test's own, with this user's directory in it (short: a socket path must fit
    in 108 bytes)."""
    base = short_tempdir(prefix="mailpin-run-user-")
    (base / str(os.getuid())).mkdir(mode=0o700)
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_from_cron_with_nothing_set_the_bus_is_found_in_run_user(blocked_lab: Path, run_user: Path) -> None:
    with NotifyDaemon(run_user / str(os.getuid()), program=need("dbus-daemon")) as bus:
        done = from_cron(blocked_lab, run_user, "check")
        assert done.returncode == 69, done.stderr
        (note,) = bus.wait_for(1, timeout=5)
    assert note["summary"] == f"{MSMTP}: certificate from a different CA" and note["hints"]["urgency"] == 2


def test_from_cron_a_bus_that_is_not_the_users_is_not_told(blocked_lab: Path, run_user: Path) -> None:
    """A link at /run/user/$UID/bus (libdbus lstat()s it) and, as root, a socket of another user's
    there are not this user's bus: the block is 69 all the same, and nobody is told."""
    mine = run_user / str(os.getuid())
    with NotifyDaemon(mine, program=need("dbus-daemon")) as bus:
        (mine / "bus").rename(mine / "bus.real")  # the daemon listens on, under the new name
        (mine / "bus").symlink_to(mine / "bus.real")
        done = from_cron(blocked_lab, run_user, "check")
        assert done.returncode == 69, done.stderr
        if os.getuid() == 0:  # CI runs as root, who may give a socket away
            (mine / "bus.real").replace(mine / "bus")
            os.chown(mine / "bus", 65534, -1)  # nobody
            done = from_cron(blocked_lab, run_user, "check")
            assert done.returncode == 69, done.stderr
        time.sleep(0.3)
        assert bus.notifications() == []


def timed_check(env: dict[str, str]) -> tuple[int, float]:
    started = time.monotonic()
    done = subprocess.run([mailpin_command(), "check", "--json"], env=env, capture_output=True, timeout=60)
    return done.returncode, time.monotonic() - started


def test_without_a_desktop_the_block_is_not_delayed(blocked_lab: Path) -> None:
    """Over SSH, on a server: no bus at all, or a bus socket nobody answers on — still 69, at once."""
    env = dict(os.environ)
    nobus = min(timed_check(env)[1] for _ in range(2))
    with DeafBus(Path(os.environ["XDG_RUNTIME_DIR"])):
        status, deaf = timed_check(env)
    assert status == 69
    assert deaf - nobus < 1.0, (deaf, nobus)


def test_the_notmuch_alert_lands_in_the_inbox(blocked_lab: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    need("notmuch")
    for variable in ("NOTMUCH_PROFILE", "NOTMUCH_DATABASE", "MAILDIR"):
        monkeypatch.delenv(variable, raising=False)
    mail = blocked_lab / "Mail"
    for sub in ("cur", "new", "tmp"):
        (mail / sub).mkdir(parents=True)
    config = blocked_lab / ".notmuch-config"
    config.write_text(f"[database]\npath={mail}\n[user]\nprimary_email=me@example.org\n")
    monkeypatch.setenv("NOTMUCH_CONFIG", str(config))
    assert subprocess.run(["notmuch", "new"], capture_output=True).returncode == 0
    settings = blocked_lab / ".config" / "mailpin" / "config"
    settings.parent.mkdir(parents=True, exist_ok=True)
    settings.write_text("[notify]\ndesktop = no\nnotmuch = yes\nnotmuch_tags = +mailpin, +inbox, +unread, +security\n")
    assert cli("check")[0] == 69
    assert cli("check")[0] == 69  # inside the interval: still one alert

    found = subprocess.run(["notmuch", "search", "--output=messages", "tag:mailpin"], capture_output=True, text=True)
    (message_id,) = found.stdout.split()
    tags = subprocess.run(["notmuch", "search", "--output=tags", message_id], capture_output=True, text=True)
    assert {"mailpin", "inbox", "unread", "security"} <= set(tags.stdout.split())
    raw = subprocess.run(["notmuch", "show", "--format=raw", message_id], capture_output=True).stdout
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert not parsed.defects
    assert parsed["Subject"] == f"[mailpin] blocked: {MSMTP} — certificate from a different CA"
    assert parsed["To"] == "me@example.org" and parsed["Message-ID"] and parsed["Date"]
    shown = subprocess.run(["notmuch", "show", message_id], capture_output=True, text=True).stdout
    assert f"mailpin review {MSMTP}" in shown and f"mailpin accept {MSMTP}" in shown


def test_doctor_says_which_path_works_and_sends_a_test(isolated_env: Path, session_bus, monkeypatch) -> None:
    code, out, _ = cli("doctor", "--notify-test")
    assert code == 75 and "NOT delivered" in out and "--  desktop" in out
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", session_bus.address)
    code, out, _ = cli("doctor", "--notify-test")
    assert code == 0 and "ok  desktop: dbus" in out and "sent via dbus" in out
    (note,) = session_bus.wait_for(1, timeout=5)
    assert note["summary"] == "mailpin: test notification" and note["hints"]["urgency"] == 1


def test_init_offers_the_notmuch_alert_to_notmuch_users(isolated_env: Path, pki, smtp_server) -> None:
    write_msmtprc(isolated_env, pki.ca_pem, {"smtps": (smtp_server.smtps_port, False)})
    assert "notmuch = yes" not in cli("init")[1]
    (isolated_env / ".notmuch-config").write_text("[database]\npath=/nonexistent\n")
    assert "notmuch = yes" in cli("init")[1]
