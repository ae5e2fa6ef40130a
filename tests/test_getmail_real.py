"""getmail6 behind the pins (issue 21): the real getmail 6.18 against the lab Dovecot (POP3 and IMAP
over Implicit TLS: getmail has no STARTTLS), through the shim.

getmail checks no certificate unless `ca_certs` is set; behind mailpin it fetches only from a server
that meets the profile, and its own session is held to the certificate just verified
(`ssl_fingerprints` in the in-memory copy of its rc file). A changed server is blocked before getmail
runs, with no login at the server; the user's rc file and getmail's state stay as they were.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from mailpin.run.enforce_fetch import with_fingerprint
from tests.conftest import need
from tests.test_run_real import MESSAGE, delivered, dovecot_logins, run, shim_env

RC = """[retriever]
type = {kind}
server = localhost
port = {port}
username = test
password = secret
{extra}
[destination]
# getmail's Maildir refuses to deliver as root (CI runs as root): the same Maildir, written by sh
type = MDA_external
path = /bin/sh
arguments = ("-c", "cat > {maildir}/new/$$.getmail")
allow_root_commands = true

[options]
delete = true
"""


def write_getmailrc(home: Path, name: str, kind: str, port: int, extra: str = "") -> Path:
    directory = home / ".config" / "getmail"
    directory.mkdir(parents=True, exist_ok=True)
    maildir = home / "Mail" / name
    for sub in ("new", "cur", "tmp"):
        (maildir / sub).mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(RC.format(kind=kind, port=port, extra=extra, maildir=maildir))
    return path


@pytest.fixture
def getmail_home(isolated_env: Path, pki, dovecot_server) -> Path:
    need("getmail")
    write_getmailrc(
        isolated_env, "pop", "SimplePOP3SSLRetriever", dovecot_server.pop3s_port, f"ca_certs = {pki.ca_pem}\n"
    )
    write_getmailrc(
        isolated_env, "imap", "SimpleIMAPSSLRetriever", dovecot_server.imaps_port, f"ca_certs = {pki.ca_pem}\n"
    )
    return isolated_env


@pytest.mark.parametrize("argv", [["-r", "pop"], ["--rcfile=imap"], ["-q", "-r", "pop", "-r", "imap"]])
def test_getmail_fetches_through_the_shim_and_is_blocked_without_a_login(
    getmail_home: Path, shims: Path, dovecot_server, argv: list[str]
) -> None:
    env = shim_env(shims)
    rcs = [getmail_home / ".config" / "getmail" / name for name in ("pop", "imap")]
    before = [rc.read_bytes() for rc in rcs]
    dovecot_server.deliver("INBOX", MESSAGE)
    logins = dovecot_logins(dovecot_server)
    done = run(["getmail", *argv], env)
    assert done.returncode == 0, done.stderr
    assert sum(delivered(getmail_home / "Mail" / name) for name in ("pop", "imap")) >= 1
    time.sleep(0.2)  # Dovecot writes its log asynchronously
    assert dovecot_logins(dovecot_server) - logins == argv.count("-r") + argv.count("--rcfile=imap")
    # getmail kept its state where it always does, and the user's rc files are untouched
    assert list((getmail_home / ".config" / "getmail").glob("oldmail-localhost-*"))
    assert [rc.read_bytes() for rc in rcs] == before
    dovecot_server.serve("foreign-ca")
    logins = dovecot_logins(dovecot_server)
    blocked = run(["getmail", *argv], env)
    assert blocked.returncode == 69, blocked.stderr
    assert b"getmail:" in blocked.stderr and b"blocked" in blocked.stderr
    time.sleep(0.2)
    assert dovecot_logins(dovecot_server) == logins


def test_getmails_own_session_is_held_to_the_certificate_verified(tmp_path: Path) -> None:
    """The rc copy getmail is handed: its fingerprint is the one verified (the file's own is replaced,
    continuation lines and all), every other line as it was — read back by mailpin's reader of getmail."""
    from mailpin.configs.getmail_rc import Context, read

    text = (
        "[retriever]\ntype = SimplePOP3SSLRetriever\nserver = pop.example.org\nusername = u\n"
        "SSL_Fingerprints = ('aa:bb',\n    'cc')\n\n[destination]\ntype = Maildir\npath = ~/Mail/\n"
    )
    verified = "ab" * 32
    copy = with_fingerprint(text.encode(), verified).decode()
    assert "SSL_Fingerprints" not in copy and "    'cc')" not in copy
    assert copy.count("ssl_fingerprints") == 1
    rc = tmp_path / "rc"
    rc.write_text(copy)
    account = read(copy, str(rc), "rc", Context(str(tmp_path), {"HOME": str(tmp_path)})).account
    assert account is not None and account.fingerprints == (verified,)
    assert account.host == "pop.example.org" and account.port == 995


def test_without_ca_certs_getmail_would_fetch_from_anyone_mailpin_does_not_pin_it_unattended(
    isolated_env: Path, shims: Path, dovecot_server
) -> None:
    """getmail alone checks nothing without `ca_certs`; mailpin judges the chain against the system
    store all the same, and a chain it does not trust is not pinned on first use: no login."""
    need("getmail")
    write_getmailrc(isolated_env, "pop", "SimplePOP3SSLRetriever", dovecot_server.pop3s_port)
    dovecot_server.deliver("INBOX", MESSAGE)
    logins = dovecot_logins(dovecot_server)
    blocked = run(["getmail", "-r", "pop"], shim_env(shims))
    assert blocked.returncode == 69, blocked.stderr
    assert b"getmail:pop blocked" in blocked.stderr and b"untrusted-chain" in blocked.stderr
    time.sleep(0.2)
    assert dovecot_logins(dovecot_server) == logins and delivered(isolated_env / "Mail" / "pop") == 0
