"""`mailpin doctor`: every group reported, each problem with its fix, a broken file named without
hiding the rest, and the exit status rule (78 for a broken config or pin store, else 0).

No mail server is involved: doctor connects to none. The real tools are stand-ins on PATH, so the
shim lines do not depend on what this machine has installed.
"""

from __future__ import annotations

import io
import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from mailpin import hooks
from mailpin.cli import main
from mailpin.commands import doctor
from mailpin.env import Env
from mailpin.model import Level, Mode, Profile, Protocol
from mailpin.state.store import PinStore
from tests.conftest import need

# Data only: doctor prints a profile's pin date and compares no date with the clock.
T0 = datetime(2026, 11, 29, 17, 5, tzinfo=timezone.utc)
MSMTPRC = """\
defaults
tls on
from me@example.org

account work
host smtp.example.org
port 465
tls_starttls off

account local
host 127.0.0.1
port 25
tls off
"""


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    env = Env.from_os()
    env.stdout, env.stderr, env.stdin = out, err, io.StringIO()
    code = main(list(argv), env)
    return code, out.getvalue(), err.getvalue()


def lines(out: str) -> dict[str, list[str]]:
    """The text output by group: group name → its finding lines (fix lines joined to theirs)."""
    groups: dict[str, list[str]] = {}
    current: list[str] = []
    for line in out.splitlines():
        if line in doctor.GROUPS:
            current = groups.setdefault(line, [])
        elif line.startswith("      ") and current:
            current[-1] += "\n" + line.strip()
        elif line.startswith("  "):
            current.append(line.strip())
    return groups


def finding(out: str, group: str, topic: str) -> str:
    (line,) = [line for line in lines(out)[group] if line[4:].startswith(f"{topic}:")]
    return line


def profile(account: str, host: str = "smtp.example.org") -> Profile:
    return Profile(
        account=account,
        protocol=Protocol.SMTP,
        host=host,
        port=465,
        mode=Mode.IMPLICIT,
        tls_version="TLSv1.3",
        level=Level.CA,
        cert_sha256=("0f" * 32,),
        spki_sha256=("bGVhZi1rZXk=",),
        ca_spki_sha256=("cm9vdA==",),
        subject=f"CN={host}",
        issuer="CN=Example CA",
        not_before=T0,
        not_after=T0.replace(year=2027),
        pinned_at=T0,
        trust="system",
    )


def pin(*profiles: Profile) -> None:
    with PinStore.for_env(Env.from_os()).update() as current:
        current.update({item.account: item for item in profiles})


@pytest.fixture
def real_tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Stand-ins for the real msmtp, mbsync, offlineimap, on PATH before the system's."""
    directory = tmp_path / "real"
    directory.mkdir()
    for tool in hooks.TOOLS:
        (directory / tool).write_text("#!/bin/sh\nexit 0\n")
        (directory / tool).chmod(0o755)
    monkeypatch.setenv("PATH", f"{directory}{os.pathsep}{os.environ['PATH']}")
    return directory


@pytest.fixture
def shim_dir(isolated_env: Path, real_tools: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """`mailpin hooks install --bin DIR`, DIR first on PATH."""
    directory = isolated_env / "bin"
    monkeypatch.setenv("PATH", f"{directory}{os.pathsep}{os.environ['PATH']}")
    code, _, err = cli("hooks", "install", "--bin", str(directory))
    assert code == 0, err
    return directory


@pytest.fixture
def msmtprc(isolated_env: Path) -> Path:
    path = isolated_env / ".msmtprc"
    path.write_text(MSMTPRC)
    path.chmod(0o600)
    return path


def test_healthy_setup_is_all_ok_and_exit_0(shim_dir: Path, real_tools: Path, msmtprc: Path) -> None:
    pin(profile("msmtp:work"))
    code, out, err = cli("doctor")
    assert code == 0, out + err
    groups = lines(out)
    assert list(groups) == list(doctor.GROUPS)
    for group in ("shims", "configs", "accounts", "pin store", "notmuch hook"):
        assert all(line.startswith("ok  ") for line in groups[group]), (group, groups[group])
    shim = finding(out, "shims", "msmtp")
    assert f"{shim_dir / 'msmtp'} is mailpin's shim" in shim and f"→ {real_tools / 'msmtp'}" in shim
    assert f"{msmtprc}: read, 2 accounts" in finding(out, "configs", "msmtp")
    assert "pinned at level ca (smtp.example.org:465, 2026-11-29)" in finding(out, "accounts", "msmtp:work")
    assert "nothing to pin" in finding(out, "accounts", "msmtp:local")  # cleartext to this machine
    assert "version 1, 1 profile" in finding(out, "pin store", "pins.conf")


def test_no_shims_say_how_to_install_them(isolated_env: Path, real_tools: Path, msmtprc: Path) -> None:
    code, out, _ = cli("doctor")
    assert code == 0  # warnings only
    line = finding(out, "shims", "msmtp")
    assert line.startswith("--  ") and f"{real_tools / 'msmtp'} is the real msmtp: it runs unchecked" in line
    assert "fix: `mailpin hooks install`" in line and "first on PATH" in line
    # No mbsync config: nothing to guard, so no nagging about its shim.
    assert finding(out, "shims", "mbsync").startswith("ok  ")
    assert out.rstrip().endswith("warnings")


def test_each_tools_fix_is_its_own(isolated_env: Path, real_tools: Path, msmtprc: Path) -> None:
    """msmtp's way around PATH is the MUA's sendmail; mbsync's and offlineimap's is what starts them
    (a timer, cron, the notmuch hook), never "point your MUA's sendmail at" them."""
    (isolated_env / ".mbsyncrc").write_text("IMAPAccount a\nHost imap.example.org\nUser u\nSSLType IMAPS\n")
    (isolated_env / ".offlineimaprc").write_text(
        "[general]\naccounts = a\n[Account a]\nlocalrepository = l\nremoterepository = r\n[Repository l]\n"
        "type = Maildir\nlocalfolders = ~/m\n[Repository r]\ntype = IMAP\nremotehost = imap.example.org\n"
        "sslcacertfile = OS-DEFAULT\n"
    )
    _, out, _ = cli("doctor")
    assert "point your MUA's sendmail at" in finding(out, "shims", "msmtp")
    for tool in ("mbsync", "offlineimap"):
        line = finding(out, "shims", tool)
        assert "it runs unchecked" in line and "sendmail" not in line, line
        assert f"`mailpin run {tool} …`" in line and "timer" in line, line


def test_a_shim_later_on_path_is_told_to_come_first(
    isolated_env: Path, real_tools: Path, msmtprc: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    later = isolated_env / "later"
    assert cli("hooks", "install", "--bin", str(later))[0] == 0
    monkeypatch.setenv("PATH", f"{os.environ['PATH']}{os.pathsep}{later}")
    line = finding(cli("doctor")[1], "shims", "msmtp")
    assert line.startswith("--  ") and f'export PATH="{later}:$PATH"' in line


def test_a_shim_whose_mailpin_is_gone(shim_dir: Path, msmtprc: Path) -> None:
    (shim_dir / "msmtp").write_text(hooks.render("msmtp", ["/nonexistent/mailpin"]))
    code, out, _ = cli("doctor")
    line = finding(out, "shims", "msmtp")
    assert code == 0 and line.startswith("--  ") and "running /nonexistent/mailpin" in line
    assert "/nonexistent/mailpin, which is gone: run `mailpin hooks install` again" in line


def test_broken_msmtprc_is_78_named_and_the_rest_still_printed(shim_dir: Path, msmtprc: Path) -> None:
    msmtprc.write_text(MSMTPRC + "no_such_command 1\n")
    pin(profile("msmtp:work"))
    code, out, err = cli("doctor")
    assert code == 78, out + err
    line = finding(out, "configs", "msmtp")
    assert line.startswith("--  ") and f"{msmtprc}:14:" in line and "fix: correct it" in line
    assert list(lines(out)) == list(doctor.GROUPS)
    assert finding(out, "shims", "msmtp").startswith("ok  ")
    assert finding(out, "pin store", "pins.conf").startswith("ok  ")
    # Its profile is not called an orphan: the config that names it could not be read.
    account = finding(out, "accounts", "msmtp:work")
    assert "forget" not in account and "msmtp's config" in account
    assert "1 broken (exit 78)" in out


def test_corrupt_pin_store_is_78_named_and_the_rest_still_printed(
    shim_dir: Path, msmtprc: Path, isolated_env: Path
) -> None:
    pin(profile("msmtp:work"))
    store = isolated_env / ".config" / "mailpin" / "pins.conf"
    store.write_text(store.read_text().replace("# end of mailpin pins", ""))
    code, out, err = cli("doctor")
    assert code == 78, out + err
    line = finding(out, "pin store", "pins.conf")
    assert line.startswith("--  ") and f"{store}: cannot be read" in line and "truncated or corrupt" in line
    assert "the pin store cannot be read" in finding(out, "accounts", "pin state")
    for group in ("shims", "configs", "notifications", "notmuch hook"):
        assert lines(out)[group], group
    assert finding(out, "configs", "msmtp").startswith("ok  ")
    assert err == ""  # reported, not raised


def test_broken_settings_file_is_78(shim_dir: Path, msmtprc: Path, isolated_env: Path) -> None:
    settings = isolated_env / ".config" / "mailpin" / "config"
    settings.parent.mkdir(parents=True, exist_ok=True)
    settings.write_text("levle = ca\n")
    code, out, _ = cli("doctor")
    assert code == 78
    line = finding(out, "configs", "mailpin settings")
    assert line.startswith("--  ") and "unknown setting 'levle'" in line
    assert lines(out)["notifications"]  # told on the defaults


def test_unpinned_account_says_mailpin_init(shim_dir: Path, msmtprc: Path) -> None:
    code, out, _ = cli("doctor")
    line = finding(out, "accounts", "msmtp:work")
    assert code == 0 and line.startswith("--  msmtp:work: no TLS profile yet") and "`mailpin init`" in line


def test_orphan_profile_says_mailpin_forget(shim_dir: Path, msmtprc: Path) -> None:
    pin(profile("msmtp:work"), profile("msmtp:gone", "old.example.org"))
    code, out, _ = cli("doctor")
    line = finding(out, "accounts", "msmtp:gone")
    assert code == 0 and line.startswith("--  ") and "no config names it" in line
    assert "`mailpin forget msmtp:gone`" in line


def test_no_accounts_at_all_says_where_to_start(isolated_env: Path, real_tools: Path) -> None:
    code, out, _ = cli("doctor")
    (line,) = lines(out)["accounts"]
    assert code == 0 and line.startswith("--  ") and "`mailpin init`" in line


MBSYNCRC = """\
IMAPAccount work
Host imap.example.org
User me
SSLType IMAPS

IMAPStore work-remote
Account work

MaildirStore local
Path ~/Mail/
Inbox ~/Mail/INBOX

Channel work
Far :work-remote:
Near :local:
"""


def test_notmuch_hook_missing_then_installed(
    shim_dir: Path, isolated_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    need("notmuch")
    for variable in ("NOTMUCH_PROFILE", "NOTMUCH_DATABASE", "MAILDIR"):
        monkeypatch.delenv(variable, raising=False)
    (isolated_env / ".mbsyncrc").write_text(MBSYNCRC)
    config = isolated_env / ".notmuch-config"
    config.write_text(f"[database]\npath={tmp_path / 'mail'}\n")
    monkeypatch.setenv("NOTMUCH_CONFIG", str(config))
    hook = tmp_path / "mail" / ".notmuch" / "hooks" / "pre-new"
    line = finding(cli("doctor")[1], "notmuch hook", "pre-new")
    assert line.startswith(f"--  pre-new: {hook}: none") and "fix: mailpin hooks install --notmuch" in line
    assert cli("hooks", "install", "--bin", str(shim_dir), "--notmuch")[0] == 0
    line = finding(cli("doctor")[1], "notmuch hook", "pre-new")
    assert line == f"ok  pre-new: {hook}: mailpin's check"


def test_json_structure(shim_dir: Path, msmtprc: Path, isolated_env: Path) -> None:
    pin(profile("msmtp:gone"))
    code, out, _ = cli("doctor", "--json")
    data: dict[str, Any] = json.loads(out)
    assert code == 0 and data["version"] == 1 and data["exit_status"] == 0 and data["ok"] is False
    assert data["notify_test"] is None
    assert {check["group"] for check in data["checks"]} == set(doctor.GROUPS)
    for check in data["checks"]:
        assert set(check) == {"group", "topic", "ok", "detail", "fix", "broken"}
        assert check["ok"] or check["fix"], check  # every problem comes with its fix
    by_topic = {(check["group"], check["topic"]): check for check in data["checks"]}
    assert by_topic[("accounts", "msmtp:gone")]["fix"] == "`mailpin forget msmtp:gone` if the account is gone for good"
    assert by_topic[("accounts", "msmtp:work")]["ok"] is False
    assert by_topic[("shims", "msmtp")]["ok"] is True

    (isolated_env / ".msmtprc").write_text("account\n")
    code, out, _ = cli("doctor", "--json")
    data = json.loads(out)
    assert code == 78 and data["exit_status"] == 78
    (broken,) = [check for check in data["checks"] if check["broken"]]
    assert broken["group"] == "configs" and broken["topic"] == "msmtp"


def test_notify_test_without_a_desktop_is_75(isolated_env: Path, real_tools: Path) -> None:
    code, out, _ = cli("doctor", "--notify-test")
    assert code == 75 and "test notification: NOT delivered" in out
    code, out, _ = cli("doctor", "--notify-test", "--json")
    assert code == 75 and json.loads(out)["notify_test"] == {"sent": False, "via": None}
