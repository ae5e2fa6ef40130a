"""The attack-scenario matrix (issue 9): every scenario of tests/lab/campaign.py against every target.

For each scenario and target: pin against the benign behaviour of the server (real or rig) on the
same host:port through the tool's own config, switch the server to the scenario, then run
`mailpin check ACCOUNT --json` in-process or `mailpin run TOOL` through the repository's shims with
the real msmtp / mbsync / offlineimap (POP3: `mailpin probe`). The expected exit status and reasons
are the catalogue's, written by hand from DESIGN §3/§4. Every case records what it *observed*
(tests/lab/report.py) before asserting, so docs/SECURITY.md shows failures too.
"""

from __future__ import annotations

import json
import re
import ssl
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from mailpin.env import Env
from tests.conftest import need
from tests.lab import hostile
from tests.lab.campaign import (
    ALERT,
    CHECK,
    FETCHMAIL,
    GETMAIL,
    MBSYNC,
    MPOP,
    MSMTP,
    OFFLINEIMAP,
    PROBE,
    SCENARIOS,
    STALL_TIMEOUT,
    Expected,
    Scenario,
)
from tests.lab.hostile import HostileServer
from tests.lab.pki import TestPKI
from tests.lab.report import record
from tests.test_fetchmail_real import write_fetchmailrc
from tests.test_getmail_real import write_getmailrc
from tests.test_pins_real import cli
from tests.test_run_real import MESSAGE, delivered, dovecot_logins, mailpin_command, shim_env

if TYPE_CHECKING:
    from tests.lab.dovecot import Dovecot
    from tests.lab.smtpd import SmtpServer

DOMAIN = "msmtp.test"  # msmtp's EHLO name: tells msmtp's own session from mailpin's probe ("localhost")
TIMEOUT = 5.0  # mailpin's `timeout` outside the stall scenarios
KEYS = {
    CHECK: None, MSMTP: "msmtp:lab", MBSYNC: "mbsync:lab", OFFLINEIMAP: "offlineimap:lab", MPOP: "mpop:lab",
    GETMAIL: "getmail:lab", FETCHMAIL: "fetchmail:localhost",
}  # fmt: skip
FETCHERS = (MBSYNC, OFFLINEIMAP, MPOP, FETCHMAIL, GETMAIL)  # the targets that fetch mail from the real Dovecot
INBOXES = {
    MBSYNC: "Mail/lab/INBOX", OFFLINEIMAP: "OfflineMail/INBOX", MPOP: "Mail/pop", GETMAIL: "Mail/lab",
    FETCHMAIL: "Mail/lab",
}  # fmt: skip
DECISIONS = {"verified": 0, "pinned": 0, "blocked": 69, "unverified": 75}

# A product bug this matrix finds: the expectation stays what DESIGN says, and the cases of the
# scenario (by id suffix) are strict xfails naming the bug here until it is fixed. Fixed so far:
# reset-mid-handshake (was protocol-error, now unreachable), injection-late (was protocol-error).
KNOWN_BUGS: dict[str, str] = {}


def known_bug(scenario: Scenario) -> str:
    return KNOWN_BUGS.get(scenario.id.rsplit("/", 1)[1], "")


def _params() -> Iterator[Any]:
    for scenario in SCENARIOS:
        for target in scenario.targets:
            real = scenario.server.real or target not in (CHECK, PROBE) or scenario.attack == "ui-spoofing"
            marks: list[Any] = [pytest.mark.real] if real else []
            if known_bug(scenario):
                marks.append(pytest.mark.xfail(reason=known_bug(scenario), strict=True))
            yield pytest.param(scenario, target, marks=marks, id=f"{scenario.id}:{target.replace('run ', '')}")


# -- the server side: real or rig, benign first, then the scenario --------------------------------

CREDENTIAL_WORDS = (b"AUTH", b"MAIL FROM", b"RCPT TO", b"USER ", b"PASS ", b"APOP ")


def credential_lines(lines: list[bytes]) -> list[bytes]:
    """What a client sends only with credentials or mail: LOGIN / AUTHENTICATE (IMAP), AUTH, MAIL
    FROM, RCPT TO (SMTP), USER / PASS / APOP (POP3)."""
    found = []
    for line in lines:
        words = line.split(None, 2)
        if (len(words) > 1 and words[1].upper() in (b"LOGIN", b"AUTHENTICATE")) or line.upper().startswith(
            CREDENTIAL_WORDS
        ):
            found.append(line)
    return found


@dataclass
class Stage:
    """One scenario's server: ``port`` to pin against; ``attack()`` switches to the scenario."""

    scenario: Scenario
    pki: TestPKI
    port: int = 0
    rig: HostileServer | None = None
    smtpd: SmtpServer | None = None
    dovecot: Dovecot | None = None
    _mark: dict[str, int] = field(default_factory=dict)

    def attack(self) -> None:
        server = self.scenario.server
        if self.rig is not None:
            self.rig.script = server.script or hostile.benign(self.scenario.protocol)
            if server.tls_on_connect is not None:
                self.rig.implicit_tls = server.tls_on_connect
            cert = self.pki.cert(server.variant)
            self.rig.use_tls(cert.chain_pem, cert.key_pem, server.tls_max)
        elif self.smtpd is not None:
            self.smtpd.cap_tls(server.tls_max or ssl.TLSVersion.MAXIMUM_SUPPORTED)
            self.smtpd.serve(server.variant)
        else:
            assert self.dovecot is not None
            self.dovecot.serve(server.variant)

    def mark(self) -> None:
        """Remember where the server's records stand: what comes later is the target's doing."""
        if self.rig is not None:
            self._mark = {"lines": len(self.rig.received), "connections": self.rig.connections}
        elif self.smtpd is not None:
            self._mark = {"messages": len(self.smtpd.received()), "ehlos": self.smtpd.greeted_by(DOMAIN)}
        else:
            self._mark = {"logins": dovecot_logins(self.dovecot)}

    def leaked(self, wait: bool) -> list[str]:
        """Credentials or mail the server saw since `mark()` (Dovecot logs asynchronously: `wait`)."""
        if self.rig is not None:
            return [
                line.decode("ascii", "replace") for line in credential_lines(self.rig.received[self._mark["lines"] :])
            ]
        if self.smtpd is not None:
            new = self.smtpd.received()[self._mark["messages"] :]
            return [f"message from {sender}" for sender, _, _ in new]
        assert self.dovecot is not None
        if wait:
            time.sleep(0.3)
        logins = dovecot_logins(self.dovecot) - self._mark["logins"]
        return [f"{logins} login(s) of user test"] if logins else []

    def tool_reached(self) -> bool:
        """Did the tool's own session reach the server after `mark()` (beyond mailpin's pre-flight)?"""
        if self.rig is not None:
            new = self.rig.received[self._mark["lines"] :]
            if self.rig.connections - self._mark["connections"] >= 2 or f"EHLO {DOMAIN}".encode() in new:
                return True
            # One connection (run/relay.py): the tool's commands follow mailpin's STARTTLS on it.
            said = [line.upper() for line in new]
            start = next((at for at, line in enumerate(said) if b"STARTTLS" in line or b"STLS" in line), len(said))
            words = (b"CAPABILITY", b"LOGIN", b"AUTHENTICATE", b"CAPA", b"USER", b"AUTH")
            return any(word in line for line in said[start + 1 :] for word in words)
        if self.smtpd is not None:
            return self.smtpd.greeted_by(DOMAIN) > self._mark["ehlos"]
        return bool(self.leaked(wait=False))


@contextmanager
def staged(scenario: Scenario, pki: TestPKI, request: pytest.FixtureRequest) -> Iterator[Stage]:
    stage = Stage(scenario, pki)
    server, implicit = scenario.server, scenario.mode == "implicit"
    if not server.real:
        good = pki.cert("good")
        with HostileServer(
            hostile.benign(scenario.protocol), chain_pem=good.chain_pem, key_pem=good.key_pem, implicit_tls=implicit
        ) as rig:
            rig.use_tls(good.chain_pem, good.key_pem, server.pin_tls_max)
            stage.rig, stage.port = rig, rig.port
            yield stage
        assert rig.errors == [], rig.errors  # the rig played its part as written
    elif scenario.protocol == "smtp":
        smtpd = request.getfixturevalue("smtp_server")
        smtpd.cap_tls(server.pin_tls_max or ssl.TLSVersion.MAXIMUM_SUPPORTED)
        stage.smtpd, stage.port = smtpd, smtpd.smtps_port if implicit else smtpd.submission_port
        yield stage
    else:
        dovecot = request.getfixturevalue("dovecot_server")
        ports = {
            ("imap", True): dovecot.imaps_port,
            ("imap", False): dovecot.imap_port,
            ("pop3", True): dovecot.pop3s_port,
            ("pop3", False): dovecot.pop3_port,
        }
        stage.dovecot, stage.port = dovecot, ports[(scenario.protocol, implicit)]
        yield stage


# -- the client side: the tools' configs ------------------------------------------------------------


def write_config(tool: str, home: Path, port: int, implicit: bool, ca: Path) -> None:
    if tool == "msmtp":
        (home / ".msmtprc").write_text(
            f"defaults\ntls on\ntls_trust_file {ca}\ndomain {DOMAIN}\n\naccount lab\nhost localhost\nport {port}\n"
            f"tls_starttls {'off' if implicit else 'on'}\nfrom alice@example.org\n\naccount default : lab\n"
        )
        (home / ".msmtprc").chmod(0o600)
    elif tool == "mbsync":
        box = home / "Mail" / "lab"
        box.mkdir(parents=True, exist_ok=True)
        (home / ".mbsyncrc").write_text(
            f"IMAPAccount lab\nHost localhost\nPort {port}\nUser test\nPass secret\n"
            f"SSLType {'IMAPS' if implicit else 'STARTTLS'}\nCertificateFile {ca}\nSystemCertificates no\n\n"
            f"IMAPStore lab-remote\nAccount lab\n\nMaildirStore lab-local\nPath {box}/\nInbox {box}/INBOX\n\n"
            "Channel lab\nFar :lab-remote:\nNear :lab-local:\nPatterns INBOX\nCreate Near\nSync Pull\nSyncState *\n"
        )
    elif tool == "fetchmail":
        write_fetchmailrc(home, "lab", "pop3", port, "ssl" if implicit else "", ca)
    elif tool == "getmail":
        write_getmailrc(home, "lab", "SimplePOP3SSLRetriever", port, f"ca_certs = {ca}\n")
    elif tool == "mpop":
        for sub in ("new", "cur", "tmp"):
            (home / "Mail" / "pop" / sub).mkdir(parents=True, exist_ok=True)
        (home / ".mpoprc").write_text(
            f"account lab\nhost localhost\nport {port}\ntls on\ntls_starttls {'off' if implicit else 'on'}\n"
            f"tls_trust_file {ca}\nuser test\npassword secret\ndelivery maildir ~/Mail/pop\n\naccount default : lab\n"
        )
        (home / ".mpoprc").chmod(0o600)
    else:
        (home / ".offlineimaprc").write_text(
            "[general]\naccounts = lab\nmetadata = ~/.offlineimap\n\n[Account lab]\nlocalrepository = lab-local\n"
            "remoterepository = lab-remote\n\n[Repository lab-local]\ntype = Maildir\nlocalfolders = ~/OfflineMail\n\n"
            f"[Repository lab-remote]\ntype = IMAP\nremotehost = localhost\nremoteport = {port}\n"
            f"ssl = {'yes' if implicit else 'no'}\nsslcacertfile = {ca}\nremoteuser = test\nremotepass = secret\n"
            "folderfilter = lambda f: f == 'INBOX'\n"
        )


def write_settings(home: Path, timeout: float) -> None:
    path = home / ".config" / "mailpin" / "config"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"timeout = {timeout:g}\n")


def audit(home: Path) -> list[dict[str, Any]]:
    path = home / ".local" / "state" / "mailpin" / "audit.log"
    return [json.loads(line) for line in path.read_text().splitlines() if line] if path.exists() else []


def tool_for(scenario: Scenario, target: str) -> str:
    if target in (MSMTP, MBSYNC, OFFLINEIMAP, MPOP, FETCHMAIL, GETMAIL):
        return target.removeprefix("run ")
    return "msmtp" if scenario.protocol == "smtp" else "mbsync"


# -- what a target showed -------------------------------------------------------------------------


@dataclass
class Seen:
    status: int
    reasons: tuple[str, ...]
    elapsed: float
    leaked: list[str]
    texts: list[str] = field(default_factory=list)  # everything mailpin showed (stderr, JSON, notifications)
    problems: list[str] = field(default_factory=list)  # further requirements that failed
    note: str = ""

    @property
    def observed(self) -> Expected:
        return Expected(self.status, self.reasons)


def run_check(key: str) -> Seen:
    started = time.monotonic()
    code, out, err = cli("check", key, "--json")
    elapsed = time.monotonic() - started
    data = json.loads(out)
    (item,) = data["accounts"]
    return Seen(code, tuple(item["reasons"]), elapsed, [], texts=[out, err])


def run_probe(port: int, protocol: str, mode: str, pki: TestPKI, timeout: float) -> Seen:
    started = time.monotonic()
    code, out, err = cli(
        "probe", f"127.0.0.1:{port}", "--protocol", protocol, "--mode", mode, "--servername", "localhost",
        "--trust-file", str(pki.ca_pem), "--timeout", f"{timeout:g}", "--json",
    )  # fmt: skip
    elapsed = time.monotonic() - started
    return Seen(code, tuple(json.loads(out)["reasons"]), elapsed, [], texts=[out, err])


TOOL_ARGV = {
    "msmtp": ["msmtp", "-a", "lab", "-t"],
    "mbsync": ["mbsync", "-a"],
    "offlineimap": ["offlineimap", "-o", "-u", "quiet", "-a", "lab"],
    "mpop": ["mpop", "-q", "lab"],
    "getmail": ["getmail", "-q", "-r", "lab"],
    "fetchmail": ["fetchmail", "--nosyslog"],
}


def run_tool(tool: str, key: str, home: Path, env: dict[str, str]) -> tuple[Seen, subprocess.CompletedProcess[bytes]]:
    """`mailpin run TOOL` through the shim. The outcome is mailpin's decision (from the audit log):
    0 when it verified and handed over, whatever the tool then did on its own."""
    before = len(audit(home))
    stdin = MESSAGE if tool == "msmtp" else b""
    started = time.monotonic()
    done = subprocess.run(
        ["timeout", "-k", "5", "60", *TOOL_ARGV[tool]], input=stdin, env=env, capture_output=True, timeout=90
    )
    elapsed = time.monotonic() - started
    decisions = [e for e in audit(home)[before:] if e["account"] == key and e["event"] in DECISIONS]
    stderr = done.stderr.decode("utf-8", "replace")
    if not decisions:
        seen = Seen(done.returncode, (), elapsed, [], texts=[stderr], problems=["no decision in the audit log"])
        return seen, done
    first = decisions[0]  # the pre-flight; a tunnel (mbsync, offlineimap) decides again in-line
    status = DECISIONS[first["event"]]
    seen = Seen(status, tuple(first.get("reasons", ())), elapsed, [], texts=[stderr])
    if status != 0 and done.returncode != status:
        seen.problems.append(f"exit status {done.returncode}, but mailpin decided {first['event']}")
    if status == 0:
        seen.note = f"handed over; {tool} exit {done.returncode}"
    return seen, done


def check_block_line(seen: Seen, key: str, stderr: str) -> None:
    """DESIGN §2.4: one line on stderr naming the account, what happened and the reasons."""
    lines = stderr.strip().splitlines()
    what = "could not verify" if seen.status == 75 else "blocked"
    if len(lines) != 1:
        seen.problems.append(f"{len(lines)} stderr lines, one expected: {stderr!r}")
    elif f"{key} {what}" not in lines[0] or f"[{', '.join(seen.reasons)}]" not in lines[0]:
        seen.problems.append(f"the stderr line does not name {key} and its reasons: {lines[0]!r}")


def check_held(seen: Seen, key: str, env: dict[str, str]) -> None:
    """The blocked message is held, byte for byte, for `mailpin queue flush` after review."""
    from mailpin.state.queue import Queue

    listing = subprocess.run([mailpin_command(), "queue", "list", "--json"], env=env, capture_output=True, timeout=30)
    held = json.loads(listing.stdout)["held"]
    if len(held) != 1 or held[0]["accounts"] != [key] or held[0]["reasons"] != list(seen.reasons):
        seen.problems.append(f"held: {held}")
        return
    queue = Queue.for_env(Env.from_os())
    if held[0]["size"] != len(MESSAGE) or queue.message(queue.get(held[0]["id"])) != MESSAGE:
        seen.problems.append("the held message is not the message sent, byte for byte")


# -- the matrix ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("scenario", "target"), list(_params()))
def test_scenario(
    scenario: Scenario,
    target: str,
    pki: TestPKI,
    isolated_env: Path,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    home, expected = isolated_env, scenario.expected_for(target)
    timeout = STALL_TIMEOUT if scenario.stall else TIMEOUT
    bus = request.getfixturevalue("session_bus") if scenario.attack == "ui-spoofing" else None
    if bus is not None:  # what mailpin tells the desktop is part of what it shows
        monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", bus.address)
    if target != CHECK and target != PROBE:
        need(tool_for(scenario, target))
    shims = request.getfixturevalue("shims") if target not in (CHECK, PROBE) else None
    write_settings(home, timeout)
    implicit = scenario.mode == "implicit"
    with staged(scenario, pki, request) as stage:
        key = KEYS.get(target) or f"{tool_for(scenario, target)}:lab"
        if target == PROBE:
            benign = run_probe(stage.port, scenario.protocol, scenario.mode, pki, timeout)
            assert (benign.status, benign.reasons) == (0, ()), "the benign behaviour must probe clean"
        else:
            write_config(tool_for(scenario, target), home, stage.port, implicit, pki.ca_pem)
            level = ["--level", scenario.level] if scenario.level else []
            pinned = cli("init", "--yes", *level, key)
            assert pinned[0] == 0, pinned
            if scenario.server.pin_tls_max or scenario.attack == "downgrade":
                floor = "TLSv1.2" if scenario.server.pin_tls_max else "TLSv1.3"
                assert f"tls_version = {floor}" in (home / ".config" / "mailpin" / "pins.conf").read_text()
        if stage.dovecot is not None and target in FETCHERS:
            stage.dovecot.deliver("INBOX", MESSAGE)
        stage.attack()
        stage.mark()
        done: subprocess.CompletedProcess[bytes] | None = None
        env: dict[str, str] = {}
        if target == PROBE:
            seen = run_probe(stage.port, scenario.protocol, scenario.mode, pki, timeout)
            bound = timeout + 1.0
        elif target == CHECK:
            seen = run_check(key)
            bound = timeout + 1.0
        else:
            assert shims is not None
            env = shim_env(shims, **({"DBUS_SESSION_BUS_ADDRESS": bus.address} if bus else {}))
            seen, done = run_tool(tool_for(scenario, target), key, home, env)
            bound = timeout + 4.0 if scenario.stall else 60.0
        seen.leaked = stage.leaked(wait=stage.dovecot is not None and (expected.status != 0 or done is not None))
        if seen.elapsed > bound:
            seen.problems.append(f"took {seen.elapsed:.2f} s, bound {bound:g} s")
        # -- the requirements beyond the verdict
        if expected.status != 0:
            if seen.leaked:
                seen.problems.append(f"credentials or mail reached the server: {seen.leaked}")
            if done is not None and seen.observed == expected:
                check_block_line(seen, key, seen.texts[0])
                if target == MSMTP:
                    check_held(seen, key, env)
                if stage.tool_reached():
                    seen.problems.append("the real tool's own session reached the server")
        elif done is not None:
            if "mailpin:" in seen.texts[0]:
                seen.problems.append(f"mailpin said something on stderr: {seen.texts[0]!r}")
            if scenario.server.real:
                if target == MSMTP:
                    assert stage.smtpd is not None
                    arrived = bool(seen.leaked) and stage.smtpd.received()[-1][2] == MESSAGE.replace(b"\n", b"\r\n")
                else:
                    arrived = delivered(home / INBOXES[target]) >= 1
                if done.returncode != 0 or not arrived:
                    seen.problems.append(f"the real tool did not deliver/sync: exit {done.returncode}: {done.stderr!r}")
                fetched = target in (MPOP, FETCHMAIL, GETMAIL)
                seen.note = "delivered" if target == MSMTP else "fetched" if fetched else "synced"
            elif not stage.tool_reached():
                seen.problems.append("the tool's own session never reached the server")
        if scenario.attack == "ui-spoofing":
            assert bus is not None
            if expected.status != 0:
                bus.wait_for(1, timeout=5)  # the block is told on the desktop
            shown = [*seen.texts, *(json.dumps(note) for note in bus.notifications())]
            if any(ALERT in text or "hostile.test/login" in text for text in shown):
                if expected.clean:  # a plaintext [ALERT] of a session that passed is never shown
                    seen.problems.append("the server's [ALERT] text was shown by mailpin")
                else:  # quoted as the evidence of the injection: recorded for the table
                    seen.note = "the [ALERT] text is quoted in mailpin's block message"
        passed = seen.observed == expected and not seen.problems
        record(
            "matrix",
            scenario=scenario.id,
            protocol=scenario.protocol,
            mode=scenario.mode,
            description=scenario.description,
            target=target,
            expected=str(expected),
            observed=str(seen.observed),
            observed_status=seen.status,
            observed_reasons=list(seen.reasons),
            credentials_or_mail_seen=bool(seen.leaked),
            passed=passed,
            known_bug=known_bug(scenario),
            elapsed=round(seen.elapsed, 2),
            note=seen.note,
            problems=seen.problems,
            played_by=scenario.server.played_by,
            **{"class": scenario.attack},
        )
        assert seen.observed == expected, f"{target}: observed {seen.observed}, expected {expected}: {seen.texts}"
        assert not seen.problems, seen.problems


def test_every_target_of_every_protocol_is_covered() -> None:
    """SMTP and IMAP in both modes against check and the real tools; POP3 in both modes (probe)."""
    covered = {(s.protocol, s.mode, target) for s in SCENARIOS for target in s.targets}
    for mode in ("implicit", "starttls"):
        assert {("smtp", mode, CHECK), ("smtp", mode, MSMTP)} <= covered
        assert {("imap", mode, CHECK), ("imap", mode, MBSYNC), ("imap", mode, OFFLINEIMAP)} <= covered
        assert {("pop3", mode, PROBE), ("pop3", mode, MPOP), ("pop3", mode, FETCHMAIL)} <= covered
    assert ("pop3", "implicit", GETMAIL) in covered
    assert all(re.fullmatch(r"[a-z0-9]+/(implicit|starttls)/[a-z0-9-]+", s.id) for s in SCENARIOS)
    for name in KNOWN_BUGS:
        assert any(s.id.endswith("/" + name) for s in SCENARIOS), name
