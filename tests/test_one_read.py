"""One read: the tool gets the config bytes mailpin verified, not the file again (issue 17, item 4).

The review's reproduction: mbsync's config was read once to verify, then again to rewrite it for
the tunnel; an edit in between sent a pinned account straight to a server nobody checked. Here a
"racer" stands in for the real tool ([tools] in mailpin's config): it edits the user's config after
mailpin has verified it and before the tool reads it, then execs the real tool. The tool and the
tunnel it starts must act on the verified bytes; the bare racer shows the edit would have mattered.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from mailpin.env import Env
from mailpin.model import Tool
from mailpin.run.decide import decide
from mailpin.run.enforce import plan
from mailpin.state.settings import load as load_settings
from tests.conftest import need
from tests.test_enforce_real import mbsyncrc, offlineimaprc, tool
from tests.test_pins_real import cli
from tests.test_run_real import MESSAGE, shim_env, write_msmtprc


def racer(home: Path, name: str, real: str, edit: str) -> Path:
    """A stand-in for the tool that runs `edit` (a sed script) on the user's config, then execs it."""
    path = home / f"racer-{name}"
    config = {"msmtp": ".msmtprc", "mbsync": ".mbsyncrc", "offlineimap": ".offlineimaprc"}[name]
    path.write_text(f'#!/bin/sh\nsed -i -e {edit!r} "$HOME/{config}"\nexec {real} "$@"\n')
    path.chmod(0o755)
    settings = home / ".config" / "mailpin" / "config"
    settings.parent.mkdir(parents=True, exist_ok=True)
    settings.write_text(f"[tools]\n{name} = {path}\n")
    return path


def test_msmtp_reads_the_bytes_that_were_verified(isolated_env: Path, shims: Path, pki, smtp_server) -> None:
    real = need("msmtp")
    write_msmtprc(isolated_env, pki.ca_pem, smtp_server.smtps_port, smtp_server.submission_port)
    assert cli("init", "--yes", "msmtp:smtps")[0] == 0
    # After the check: the account's host becomes one nobody verified.
    fake = racer(isolated_env, "msmtp", real, "s/^host localhost$/host unverified.invalid/")
    done = tool(["msmtp", "--pretend", "-a", "smtps", "you@example.org"], shim_env(shims), MESSAGE)
    assert done.returncode == 0, done.stderr
    assert b"host = localhost" in done.stdout and b"unverified.invalid" not in done.stdout
    assert "unverified.invalid" in (isolated_env / ".msmtprc").read_text()  # the edit did happen
    # The bare racer reads the edited file: the edit would have mattered.
    bare = subprocess.run([str(fake), "--pretend", "-a", "smtps", "x@y"], capture_output=True, timeout=30)
    assert b"host = unverified.invalid" in bare.stdout


def test_a_message_sent_after_the_edit_goes_where_it_was_verified(
    isolated_env: Path, shims: Path, pki, smtp_server
) -> None:
    real = need("msmtp")
    write_msmtprc(isolated_env, pki.ca_pem, smtp_server.smtps_port, smtp_server.submission_port)
    assert cli("init", "--yes", "msmtp:smtps")[0] == 0
    racer(isolated_env, "msmtp", real, "s/^host localhost$/host unverified.invalid/")
    before = len(smtp_server.received())
    done = tool(["msmtp", "-a", "smtps", "you@example.org"], shim_env(shims), MESSAGE)
    assert done.returncode == 0, done.stderr
    assert len(smtp_server.received()) == before + 1


def synced(root: Path, marker: bytes) -> bool:
    mail = [path for path in root.rglob("*") if path.is_file() and path.parent.name in ("cur", "new")]
    return any(marker in path.read_bytes() for path in mail)


def delivered(dovecot, name: str) -> bytes:
    marker = f"one-read-{name}-{os.getpid()}".encode()
    dovecot.deliver("INBOX", b"From: a@example.org\r\nSubject: " + marker + b"\r\n\r\nbody\r\n")
    return marker


def test_mbsync_and_its_tunnel_use_the_verified_config(isolated_env: Path, shims: Path, pki, dovecot_server) -> None:
    """The edit renames the account and points it elsewhere: the tunnel, started by mbsync after the
    edit, once read the user's file again and found no `mbsync:lab` to verify."""
    real = need("mbsync")
    box = mbsyncrc(isolated_env, dovecot_server.imaps_port, pki.ca_pem)
    assert cli("init", "--yes", "mbsync:lab")[0] == 0
    racer(isolated_env, "mbsync", real, "s/^IMAPAccount lab$/IMAPAccount moved/;s/^Account lab$/Account moved/")
    marker = delivered(dovecot_server, "mbsync")
    done = tool(["mbsync", "lab"], shim_env(shims))
    assert done.returncode == 0, done.stderr
    assert "IMAPAccount moved" in (isolated_env / ".mbsyncrc").read_text()
    assert synced(box, marker)


def test_offlineimap_and_its_tunnel_use_the_verified_config(
    isolated_env: Path, shims: Path, pki, dovecot_server
) -> None:
    real = need("offlineimap")
    offlineimaprc(isolated_env, dovecot_server.imaps_port)
    rc = isolated_env / ".offlineimaprc"
    rc.write_text(rc.read_text().replace("ssl = no\n", f"ssl = yes\nsslcacertfile = {pki.ca_pem}\n"))
    assert cli("init", "--yes", "offlineimap:lab")[0] == 0
    # After the check the remote repository points at a port where nothing listens.
    racer(isolated_env, "offlineimap", real, "s/^remoteport = .*/remoteport = 9/;s/^ssl = yes/ssl = no/")
    marker = delivered(dovecot_server, "offlineimap")
    done = tool(["offlineimap", "-o", "-u", "quiet", "-a", "lab"], shim_env(shims))
    assert done.returncode == 0, done.stderr
    assert "remoteport = 9" in rc.read_text()
    assert synced(isolated_env / "OfflineMail", marker)


@pytest.mark.parametrize("tool_name", ["mbsync", "offlineimap", "msmtp"])
def test_the_plan_hands_over_the_bytes_read_for_the_decision(
    isolated_env: Path, pki, smtp_server, dovecot_server, tool_name: str
) -> None:
    """The seam itself: the file changes between the decision and the plan; the plan's in-memory
    config still holds the bytes the decision read (before, mbsync's plan read the file again)."""
    if tool_name == "msmtp":
        write_msmtprc(isolated_env, pki.ca_pem, smtp_server.smtps_port, smtp_server.submission_port)
        path, argv = isolated_env / ".msmtprc", ["-a", "smtps", "you@example.org"]
    elif tool_name == "mbsync":
        mbsyncrc(isolated_env, dovecot_server.imaps_port, pki.ca_pem)
        path, argv = isolated_env / ".mbsyncrc", ["lab"]
    else:
        offlineimaprc(isolated_env, dovecot_server.imaps_port)
        path, argv = isolated_env / ".offlineimaprc", ["-a", "lab"]
        path.write_text(path.read_text().replace("ssl = no\n", f"ssl = yes\nsslcacertfile = {pki.ca_pem}\n"))
    assert cli("init", "--yes", f"{tool_name}:{'smtps' if tool_name == 'msmtp' else 'lab'}")[0] == 0
    env = Env.from_os()
    verified = path.read_bytes()
    decision = decide(env, Tool(tool_name), argv, load_settings(env), message=MESSAGE)
    assert decision.passed
    path.write_bytes(verified.replace(b"localhost", b"unverified.invalid"))
    made = plan(env, Tool(tool_name), argv, decision, load_settings(env))
    try:
        handed = [Path(f"/proc/self/fd/{fd}").read_bytes() for fd in made.keep_fds]
        assert verified in handed  # the tool's config (or the tunnel's copy of it), as verified
        assert not any(b"unverified.invalid" in data for data in handed)
        assert any(f"/fd/{fd}" in " ".join(made.argv) for fd in made.keep_fds)
    finally:
        for fd in made.keep_fds:
            os.close(fd)


def test_msmtp_is_told_the_account_that_was_verified(isolated_env: Path, pki, smtp_server) -> None:
    """Belt and braces (issue 17 item 3): the command handed to msmtp names the verified account, so
    a remaining difference between mailpin's reading of `-f` matching and msmtp's own cannot send
    through an account nobody verified. Here the plan is made for `-a work` and handed the argv of
    a sub-address send that msmtp alone would give to `other` (conf.c: the sub-address match of
    `other` beats the earlier wildcard of `work`)."""
    real = need("msmtp")
    (isolated_env / ".msmtprc").write_text(
        f"defaults\nhost localhost\nport {smtp_server.smtps_port}\ntls on\ntls_starttls off\n"
        f"tls_trust_file {pki.ca_pem}\n\naccount work\nfrom *@work.example\n\naccount other\nfrom me@work.example\n"
    )
    (isolated_env / ".msmtprc").chmod(0o600)
    assert cli("init", "--yes")[0] == 0
    env = Env.from_os()
    argv = ["--pretend", "-f", "me+lists@work.example", "you@example.org"]
    alone = subprocess.run([real, *argv], capture_output=True, timeout=30)
    assert b"using account other" in alone.stdout
    decision = decide(env, Tool.MSMTP, ["-a", "work", "you@example.org"], load_settings(env), MESSAGE)
    assert decision.passed and [o.target.key for o in decision.outcomes] == ["msmtp:work"]
    made = plan(env, Tool.MSMTP, argv, decision, load_settings(env))
    try:
        handed = subprocess.run([real, *made.argv], capture_output=True, timeout=30, pass_fds=made.keep_fds)
    finally:
        for fd in made.keep_fds:
            os.close(fd)
    assert b"using account work" in handed.stdout, handed.stdout


def test_an_account_given_by_host_on_the_command_line_is_not_named(isolated_env: Path, pki, smtp_server) -> None:
    """`--host` (no config account) and msmtp's SMTPSERVER fallback have no name msmtp could take with
    --account (msmtp refuses --host with --account): the verified settings go as flags only."""
    real = need("msmtp")
    env = Env.from_os()
    argv = [
        "--pretend", "--host=localhost", f"--port={smtp_server.smtps_port}", "--tls=on", "--tls-starttls=off",
        f"--tls-trust-file={pki.ca_pem}", "--from=alice@example.org", "you@example.org",
    ]  # fmt: skip
    decision = decide(env, Tool.MSMTP, argv, load_settings(env), MESSAGE)
    assert decision.passed, [o.verdict for o in decision.outcomes]
    made = plan(env, Tool.MSMTP, argv, decision, load_settings(env))
    try:
        assert not any(arg.startswith("--account") for arg in made.argv), made.argv
        handed = subprocess.run([real, *made.argv], capture_output=True, timeout=30, pass_fds=made.keep_fds)
    finally:
        for fd in made.keep_fds:
            os.close(fd)
    assert handed.returncode == 0 and b"host = localhost" in handed.stdout, handed.stdout + handed.stderr
