"""One connection (issue 19): the session mailpin verified is the one the tool uses.

Two bars, for msmtp, mbsync and offlineimap alike:

- the server sees as many TCP connections for `mailpin run TOOL` as for the bare tool — on the
  run that pins an account on first use and on every run after it; one extra is a miss;
- a split attacker (tests/lab/split.py: the first connection goes to the real server, every later
  one to a hostile server) gets nothing from the tool at any pin level: no login, no password, no
  message. The hostile side is as good as an attacker gets: a certificate for the same name from
  the same trusted CA with another key (the tool alone takes it; at levels ca and pkix so does
  mailpin's policy), the pinned certificate with at most TLS 1.2 where 1.3 was pinned, STARTTLS
  stripped. With one connection the verified session carries the run, so the mail still arrives.
"""

from __future__ import annotations

import base64
import binascii
import os
import ssl
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from mailpin.env import Env
from mailpin.state.store import PinStore
from tests.conftest import need
from tests.lab import hostile
from tests.lab.counting import CountingServer
from tests.lab.hostile import HostileServer
from tests.lab.split import SplitServer
from tests.test_campaign import write_config
from tests.test_enforce_real import CREDENTIALS, serving
from tests.test_pins_real import cli
from tests.test_run_real import MESSAGE, delivered, shim_env

if TYPE_CHECKING:
    from tests.lab.dovecot import Dovecot
    from tests.lab.pki import TestPKI
    from tests.lab.smtpd import SmtpServer

PASSWORD = b"secret"  # the lab user's
FORBIDDEN = tuple(word.upper() for word in (*CREDENTIALS, b"Subject: pinned"))  # a login, a command, the message
# timeout's "timed out" / killed after -k, and SIGSEGV. msmtp hangs on some broken servers
# (real-components.md); offlineimap3's own STARTTLS path crashes or stalls for good now and then
# (measured here: 4 bare runs in 15 against the lab Dovecot, 3 of them in a row), so its runs get a
# short timeout and are tried again: a run that completes takes under a second.
CRASHED = (124, 137, -9, -11)


def carries_password(line: bytes) -> bool:
    """The password as it travels: plain (IMAP LOGIN) or in base64, alone (AUTH LOGIN) or in a SASL
    PLAIN message with or without an authorization identity (AUTH PLAIN, AUTHENTICATE with SASL-IR)."""
    if PASSWORD in line:
        return True
    for token in line.split():
        try:
            if PASSWORD in base64.b64decode(token, validate=True):
                return True
        except binascii.Error:
            pass
    return False


def reached(server: HostileServer) -> list[bytes]:
    """The lines of the tool's that reached the hostile side: a login, a password, the message."""
    return [line for line in server.received if carries_password(line) or any(w in line.upper() for w in FORBIDDEN)]


@dataclass(frozen=True)
class Invocation:
    """One run of a tool on the lab accounts it was configured with."""

    argv: list[str]
    stdin: bytes
    keys: tuple[str, ...]  # the mailpin accounts this run uses
    arrived: Callable[[], int]  # messages that reached where this run delivers them
    tries: int = 1
    seconds: int = 20  # per try

    def run(self, env: dict[str, str], server: SplitServer) -> subprocess.CompletedProcess[bytes]:
        """Run the tool; the server counts each try afresh (a split server's next connection is benign again)."""
        for _ in range(self.tries):
            server.connections = 0
            argv = ["timeout", "-k", "1", str(self.seconds), *self.argv]
            done = subprocess.run(argv, input=self.stdin, env=env, capture_output=True, timeout=60)
            if done.returncode not in CRASHED:
                break
        return done


def msmtp(home: Path, ca: Path, port: int, implicit: bool, smtp_server: SmtpServer) -> Invocation:
    (home / ".msmtprc").write_text(
        f"account lab\nhost localhost\nport {port}\ntls on\ntls_starttls {'off' if implicit else 'on'}\n"
        f"tls_trust_file {ca}\nfrom alice@example.org\nauth plain\nuser test\npassword secret\n"
        "account default : lab\n"
    )
    (home / ".msmtprc").chmod(0o600)
    return Invocation(["msmtp", "-a", "lab", "-t"], MESSAGE, ("msmtp:lab",), lambda: len(smtp_server.received()))


def mbsync(home: Path, ca: Path, port: int, implicit: bool, accounts: int) -> Invocation:
    names = [f"lab{number}" for number in range(1, accounts + 1)]
    blocks = []
    for name in names:
        box = home / "Mail" / name
        box.mkdir(parents=True)
        blocks.append(
            f"IMAPAccount {name}\nHost localhost\nPort {port}\nUser test\nPass secret\n"
            f"SSLType {'IMAPS' if implicit else 'STARTTLS'}\nCertificateFile {ca}\nSystemCertificates no\n\n"
            f"IMAPStore {name}-remote\nAccount {name}\n\nMaildirStore {name}-local\nPath {box}/\nInbox {box}/INBOX\n\n"
            f"Channel {name}\nFar :{name}-remote:\nNear :{name}-local:\nPatterns INBOX\nCreate Near\nSync Pull\n"
        )
    (home / ".mbsyncrc").write_text("\n".join(blocks))
    keys = tuple(f"mbsync:{name}" for name in names)
    return Invocation(["mbsync", "-a"], b"", keys, lambda: sum(delivered(home / "Mail" / n / "INBOX") for n in names))


def fetcher(tool: str, home: Path, ca: Path, port: int, implicit: bool) -> Invocation:
    """mpop, fetchmail or getmail on one POP3 account of the lab Dovecot (campaign's configs)."""
    write_config(tool, home, port, implicit, ca)
    argv = {
        "mpop": ["mpop", "-q", "lab"],
        "fetchmail": ["fetchmail", "--nosyslog"],
        "getmail": ["getmail", "-r", "lab"],
    }
    key = {"mpop": "mpop:lab", "fetchmail": "fetchmail:localhost", "getmail": "getmail:lab"}[tool]
    inbox = home / "Mail" / ("pop" if tool == "mpop" else "lab")
    return Invocation(argv[tool], b"", (key,), lambda: delivered(inbox))


def offlineimap(home: Path, ca: Path, port: int, implicit: bool) -> Invocation:
    # sslcacertfile on the STARTTLS account too: offlineimap reads it for every IMAP repository
    # (and checks nothing with it there), and mailpin validates the chain it pins against it.
    write_config("offlineimap", home, port, implicit, ca)
    argv = ["offlineimap", "-o", "-u", "quiet", "-a", "lab"]
    inbox = home / "OfflineMail" / "INBOX"
    return Invocation(argv, b"", ("offlineimap:lab",), lambda: delivered(inbox), tries=5, seconds=8)


POP3_TOOLS = ("mpop", "fetchmail", "getmail")


@dataclass(frozen=True)
class Lab:
    home: Path
    pki: TestPKI
    smtp: SmtpServer
    dovecot: Dovecot

    def real_port(self, tool: str, implicit: bool) -> int:
        if tool == "msmtp":
            return self.smtp.smtps_port if implicit else self.smtp.submission_port
        if tool in POP3_TOOLS:
            return self.dovecot.pop3s_port if implicit else self.dovecot.pop3_port
        return self.dovecot.imaps_port if implicit else self.dovecot.imap_port

    def configure(self, tool: str, port: int, implicit: bool, accounts: int = 1) -> Invocation:
        need(tool)
        ca = self.pki.ca_pem
        if tool == "msmtp":
            return msmtp(self.home, ca, port, implicit, self.smtp)
        if tool == "mbsync":
            return mbsync(self.home, ca, port, implicit, accounts)
        if tool in POP3_TOOLS:
            return fetcher(tool, self.home, ca, port, implicit)
        return offlineimap(self.home, ca, port, implicit)

    def new_mail(self) -> None:
        """Something new to pull: every run of mbsync or offlineimap then has a message to deliver."""
        self.dovecot.deliver("INBOX", MESSAGE)


@pytest.fixture
def lab(isolated_env: Path, pki: TestPKI, smtp_server: SmtpServer, dovecot_server: Dovecot) -> Lab:
    return Lab(isolated_env, pki, smtp_server, dovecot_server)


def pinned() -> dict[str, str]:
    return {key: profile.level.value for key, profile in PinStore.for_env(Env.from_os()).load().items()}


# -- 1. connection counts ---------------------------------------------------------------------------

COUNTED = {  # case -> (tool, Implicit TLS?, accounts)
    "msmtp-implicit": ("msmtp", True, 1),
    "msmtp-starttls": ("msmtp", False, 1),
    "mbsync-1-imaps": ("mbsync", True, 1),
    "mbsync-3-imaps": ("mbsync", True, 3),
    "mbsync-1-starttls": ("mbsync", False, 1),
    "mbsync-3-starttls": ("mbsync", False, 3),
    "offlineimap-imaps": ("offlineimap", True, 1),
    "offlineimap-starttls": ("offlineimap", False, 1),
    "mpop-implicit": ("mpop", True, 1),
    "mpop-starttls": ("mpop", False, 1),
    "fetchmail-implicit": ("fetchmail", True, 1),
    "fetchmail-starttls": ("fetchmail", False, 1),
}  # getmail: no tunnel, so its own session is a second connection (held to the certificate verified)


@pytest.mark.parametrize("case", list(COUNTED))
def test_the_server_sees_no_more_connections_than_the_bare_tool_makes(lab: Lab, shims: Path, case: str) -> None:
    """Bare, then through mailpin on first use (it pins), then pinned: each run delivers, and the
    server counts the same connections for all three."""
    tool, implicit, accounts = COUNTED[case]
    with CountingServer(lab.real_port(tool, implicit)) as server:
        invocation = lab.configure(tool, server.port, implicit, accounts)
        seen: dict[str, int] = {}
        for label, env in (("bare", dict(os.environ)), ("first-use", shim_env(shims)), ("pinned", shim_env(shims))):
            lab.new_mail()
            before = invocation.arrived()
            done = invocation.run(env, server)
            seen[label] = server.settled()
            assert done.returncode == 0 and invocation.arrived() > before, (label, done.stderr)
            if label == "first-use":
                assert set(pinned()) == set(invocation.keys)
    assert seen["bare"] >= accounts
    assert seen == {"bare": seen["bare"], "first-use": seen["bare"], "pinned": seen["bare"]}


# -- 2. a split attacker at every pin level ---------------------------------------------------------

ATTACKS = {  # attack -> (Implicit TLS account?, the hostile certificate variant, its dialogue, its TLS ceiling)
    "same-ca-new-key": (True, "new-key", hostile.benign, None),
    "tls1.2-only": (True, "good", hostile.benign, ssl.TLSVersion.TLSv1_2),
    "starttls-stripped": (False, "good", hostile.stripped, None),
}
LEVELS = ("leaf", "key", "ca", "pkix")


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("attack", list(ATTACKS))
@pytest.mark.parametrize("tool", ["msmtp", "mbsync", "offlineimap", "mpop", "fetchmail"])
def test_a_split_attacker_gets_nothing_and_the_verified_session_carries_the_run(
    lab: Lab, shims: Path, tool: str, attack: str, level: str
) -> None:
    implicit, variant, script, ceiling = ATTACKS[attack]
    proto = "smtp" if tool == "msmtp" else "pop3" if tool in POP3_TOOLS else "imap"
    with (
        serving(lab.pki, variant, script(proto), implicit) as evil,
        SplitServer(lab.real_port(tool, implicit), evil.port) as split,
    ):
        if ceiling is not None:
            served = lab.pki.cert(variant)
            evil.use_tls(served.chain_pem, served.key_pem, maximum=ceiling)
        invocation = lab.configure(tool, split.port, implicit)
        assert cli("init", "--yes", "--level", level, *invocation.keys)[0] == 0
        assert pinned() == dict.fromkeys(invocation.keys, level)
        if ceiling is not None:
            assert "TLSv1.3" in (lab.home / ".config" / "mailpin" / "pins.conf").read_text()
        lab.new_mail()
        before = invocation.arrived()
        done = invocation.run(shim_env(shims), split)  # the first connection is the real server, the rest hostile
        assert not reached(evil), (evil.received, done.stderr)
        # The verified (first) connection was the real server's, so the run goes through on it.
        assert done.returncode == 0 and invocation.arrived() > before, done.stderr


@pytest.mark.parametrize("level", LEVELS)
def test_getmails_own_session_to_a_split_attacker_is_refused_before_its_login(
    lab: Lab, shims: Path, level: str
) -> None:
    """getmail cannot be handed the verified session: its own connection is a second one. The split
    attacker's side, with a certificate for the same name from the same CA and another key (what getmail
    alone takes, even with ca_certs), gets no login: getmail's copy of its rc file pins the certificate
    mailpin verified, which getmail compares before it logs in. The run fails; no mail is lost (it stays
    on the server). (A hostile side serving the pinned certificate itself — its key — at a lower TLS
    version is beyond what getmail's options can refuse: `ssl_version` names one version, not a floor.)"""
    with (
        serving(lab.pki, "new-key", hostile.benign("pop3"), True) as evil,
        SplitServer(lab.real_port("getmail", True), evil.port) as split,
    ):
        invocation = lab.configure("getmail", split.port, True)
        assert cli("init", "--yes", "--level", level, *invocation.keys)[0] == 0
        lab.new_mail()
        done = invocation.run(shim_env(shims), split)
        assert not reached(evil), (evil.received, done.stderr)
        assert done.returncode != 0 and b"ssl_fingerprints mismatch" in done.stdout + done.stderr
