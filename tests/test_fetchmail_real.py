"""fetchmail behind the pins (issue 21): the real fetchmail 6.4 against the lab Dovecot (POP3 on 995
and on 110 with STLS, IMAP on 993), through the shim.

A poll that verifies fetches over the very session mailpin judged: fetchmail's `plugin` is the relay's
slot, inside which it speaks the protocol without TLS of its own (Dovecot sees one login per poll). A
changed server is blocked before fetchmail runs, with no login; daemon mode is refused with the way out;
a plaintext `password` line is never shown.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.conftest import need
from tests.test_run_real import MESSAGE, delivered, dovecot_logins, run, shim_env

SECRET = "secret"  # the lab Dovecot's password for user test: it must never show up in mailpin's output


def write_fetchmailrc(home: Path, name: str, protocol: str, port: int, tls: str, ca: Path, extra: str = "") -> Path:
    """One poll of the lab Dovecot, delivering into ~/Mail/NAME with an MDA (fetchmail as root warns
    but runs; no SMTP listener needed)."""
    maildir = home / "Mail" / name
    for sub in ("new", "cur", "tmp"):
        (maildir / sub).mkdir(parents=True, exist_ok=True)
    rc = home / ".fetchmailrc"
    rc.write_text(
        f"{extra}poll localhost proto {protocol} port {port}\n"
        f"  user test password {SECRET} {tls} sslcertfile {ca}\n"
        f'  mda "cat > {maildir}/new/fetched.$$"\n'
    )
    rc.chmod(0o600)
    return rc


CASES = {
    "pop3-implicit": ("pop3", "pop3s_port", "ssl"),
    "pop3-starttls": ("pop3", "pop3_port", ""),  # sslcertck (on by default) makes STLS required
    "imap-implicit": ("imap", "imaps_port", "ssl"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_fetchmail_fetches_through_the_shim_and_is_blocked_without_a_login(
    isolated_env: Path, shims: Path, pki, dovecot_server, case: str
) -> None:
    need("fetchmail")
    protocol, port, tls = CASES[case]
    write_fetchmailrc(isolated_env, "lab", protocol, getattr(dovecot_server, port), tls, pki.ca_pem)
    env = shim_env(shims)
    dovecot_server.deliver("INBOX", MESSAGE)
    logins = dovecot_logins(dovecot_server)
    done = run(["timeout", "-k", "5", "60", "fetchmail", "--nosyslog"], env, timeout=90)
    assert done.returncode == 0, done.stderr
    assert delivered(isolated_env / "Mail" / "lab") >= 1
    time.sleep(0.2)  # Dovecot writes its log asynchronously
    assert dovecot_logins(dovecot_server) - logins == 1  # one connection: the verified one carried the login
    assert SECRET.encode() not in done.stderr + done.stdout
    dovecot_server.serve("foreign-ca")
    logins = dovecot_logins(dovecot_server)
    blocked = run(["timeout", "-k", "5", "60", "fetchmail", "--nosyslog"], env, timeout=90)
    assert blocked.returncode == 69, blocked.stderr
    assert b"fetchmail:localhost blocked" in blocked.stderr and SECRET.encode() not in blocked.stderr
    time.sleep(0.2)
    assert dovecot_logins(dovecot_server) == logins


def test_daemon_mode_is_refused_with_the_way_out(isolated_env: Path, shims: Path, pki, dovecot_server) -> None:
    need("fetchmail")
    write_fetchmailrc(isolated_env, "lab", "pop3", dovecot_server.pop3s_port, "ssl", pki.ca_pem, "set daemon 300\n")
    env = shim_env(shims)
    refused = run(["fetchmail"], env)
    assert refused.returncode == 78, refused.stderr
    assert b"set daemon 300" in refused.stderr and b"run fetchmail from a timer" in refused.stderr
    dovecot_server.deliver("INBOX", MESSAGE)
    done = run(["timeout", "-k", "5", "60", "fetchmail", "--nosyslog", "--daemon", "0"], env, timeout=90)
    assert done.returncode == 0, done.stderr  # what contrib/systemd/mailpin-fetchmail.service runs
    assert delivered(isolated_env / "Mail" / "lab") >= 1
    assert run(["fetchmail", "-d", "60"], env).returncode == 2


def test_the_plaintext_password_is_never_shown(isolated_env: Path, pki, dovecot_server) -> None:
    from tests.test_pins_real import cli

    need("fetchmail")
    write_fetchmailrc(isolated_env, "lab", "pop3", dovecot_server.pop3s_port, "ssl", pki.ca_pem)
    for argv in (["accounts"], ["accounts", "--json"], ["init", "--yes"], ["check", "--json"], ["doctor"]):
        _, out, err = cli(*argv)
        assert SECRET not in out + err, argv
    assert "fetchmail:localhost" in cli("accounts")[1]
