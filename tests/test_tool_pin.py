"""The tool's own certificate pin holds beside mailpin's (issue 17 items 2 and 4).

msmtp's `tls_fingerprint` and offlineimap's `cert_fingerprint` pin the exact certificate. mailpin's
enforcement replaces the tool's own TLS check (a tunnel for offlineimap, its own flags for msmtp), so
mailpin applies that pin itself: a certificate that mailpin's profile accepts (a new key from the
same CA, at level ca) but the tool's pin refuses is blocked — as the tool alone would refuse it.
"""

from __future__ import annotations

import hashlib
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from mailpin.model import Account, Finding, Mode, Protocol, Status, Tool, Verdict
from mailpin.trust import policy
from tests.conftest import need
from tests.test_pins_real import cli
from tests.test_policy import PINNED
from tests.test_run_real import mailpin_command

DER = b"0\x82 a certificate's DER"


def account(tool: Tool, *fingerprints: str) -> Account:
    return Account(tool=tool, name="work", protocol=Protocol.SMTP, host="h", port=465, mode=Mode.IMPLICIT,
                   source="/home/u/.rc:3", fingerprints=fingerprints)  # fmt: skip


def colon(digest: bytes) -> str:
    return ":".join(f"{byte:02X}" for byte in digest)


PASSED = Verdict("msmtp:work", Status.VERIFIED)


@pytest.mark.parametrize(
    ("tool", "pin"),
    [
        (Tool.MSMTP, colon(hashlib.sha256(DER).digest())),
        (Tool.MSMTP, colon(hashlib.sha1(DER).digest()).replace(":", " ")),  # deprecated, still msmtp's
        (Tool.OFFLINEIMAP, hashlib.sha512(DER).hexdigest()),
        (Tool.OFFLINEIMAP, hashlib.sha256(DER).hexdigest().upper()),
        (Tool.OFFLINEIMAP, hashlib.sha1(DER).hexdigest()),
    ],
)
def test_the_tools_own_pin_of_this_certificate_passes(tool: Tool, pin: str) -> None:
    seen = replace(PINNED, leaf_der=DER)
    assert policy.tool_pin(PASSED, account(tool, "00" * 32, pin), seen) == PASSED


@pytest.mark.parametrize("tool", [Tool.MSMTP, Tool.OFFLINEIMAP])
def test_another_certificate_than_the_tools_pin_is_blocked(tool: Tool) -> None:
    seen = replace(PINNED, leaf_der=DER + b"!")
    pins = (colon(hashlib.sha256(DER).digest()), hashlib.sha512(DER).hexdigest())
    verdict = policy.tool_pin(PASSED, account(tool, *pins), seen)
    setting = "tls_fingerprint" if tool is Tool.MSMTP else "cert_fingerprint"
    assert verdict.status is Status.BLOCKED and verdict.reasons == ("cert-changed",)
    assert f"not the one your {tool.value} config pins ({setting} in /home/u/.rc:3)" in verdict.detail


def test_without_a_tool_pin_or_when_already_blocked_nothing_changes() -> None:
    seen = replace(PINNED, leaf_der=DER + b"!")
    assert policy.tool_pin(PASSED, account(Tool.MSMTP), seen) == PASSED
    blocked = Verdict("msmtp:work", Status.BLOCKED, (Finding("ca-changed", "x"),))
    assert policy.tool_pin(blocked, account(Tool.MSMTP, "AA:" * 31 + "AA"), seen) == blocked


# -- the real tools' configs, against the lab servers ----------------------------------------------------


def msmtprc(home: Path, ca: Path, port: int, fingerprint: str) -> None:
    (home / ".msmtprc").write_text(
        f"account lab\nhost localhost\nport {port}\ntls on\ntls_starttls off\ntls_trust_file {ca}\n"
        f"tls_fingerprint {fingerprint}\nfrom alice@example.org\naccount default : lab\n"
    )
    (home / ".msmtprc").chmod(0o600)


def test_msmtp_tls_fingerprint_holds_beside_a_ca_pin(isolated_env: Path, pki, smtp_server) -> None:
    """Pinned at level ca; the server turns to a new key from the same CA. mailpin's profile would
    pass it; msmtp's tls_fingerprint refuses it — and so does mailpin, as bare msmtp does."""
    msmtp = need("msmtp")
    good = colon(hashlib.sha256(pki.cert("good").leaf_der).digest())
    msmtprc(isolated_env, pki.ca_pem, smtp_server.smtps_port, good)
    assert cli("init", "--yes", "--level", "ca", "msmtp:lab")[0] == 0
    assert cli("check", "msmtp:lab")[0] == 0
    smtp_server.serve("new-key")
    code, out, _ = cli("check", "msmtp:lab")
    assert code == 69 and "cert-changed" in out and "tls_fingerprint" in out, out
    bare = subprocess.run([msmtp, "--serverinfo", "-a", "lab"], capture_output=True, timeout=30, check=False)
    assert bare.returncode != 0  # the tool alone refuses it too


def test_offlineimap_cert_fingerprint_holds_beside_a_ca_pin(isolated_env: Path, pki, dovecot_server) -> None:
    sha512 = hashlib.sha512(pki.cert("good").leaf_der).hexdigest()
    (isolated_env / ".offlineimaprc").write_text(
        "[general]\naccounts = lab\n\n[Account lab]\nlocalrepository = lab-local\nremoterepository = lab-remote\n\n"
        "[Repository lab-local]\ntype = Maildir\nlocalfolders = ~/OfflineMail\n\n"
        f"[Repository lab-remote]\ntype = IMAP\nremotehost = localhost\nremoteport = {dovecot_server.imaps_port}\n"
        f"ssl = yes\nsslcacertfile = {pki.ca_pem}\ncert_fingerprint = {sha512}\n"
        "remoteuser = test\nremotepass = secret\n"
    )
    assert cli("init", "--yes", "--level", "ca", "offlineimap:lab")[0] == 0
    assert cli("check", "offlineimap:lab")[0] == 0
    dovecot_server.serve("new-key")
    code, out, _ = cli("check", "offlineimap:lab")
    assert code == 69 and "cert-changed" in out and "cert_fingerprint" in out, out
    # The tunnel `mailpin run offlineimap` puts in (offlineimap's own TLS off) applies it as well:
    # nothing of the tool's session is relayed, so the LOGIN never reaches that server.
    session = b"a1 LOGIN test secret\r\na2 LOGOUT\r\n"
    done = subprocess.run([mailpin_command(), "tunnel", "offlineimap:lab"], input=session, capture_output=True,
                          timeout=60, check=False)  # fmt: skip
    assert done.returncode == 69 and b"a1 OK" not in done.stdout and b"cert_fingerprint" in done.stderr, done.stderr
    dovecot_server.serve("good")
    done = subprocess.run([mailpin_command(), "tunnel", "offlineimap:lab"], input=session, capture_output=True,
                          timeout=60, check=False)  # fmt: skip
    assert done.returncode == 0 and b"a1 OK" in done.stdout, done.stderr
