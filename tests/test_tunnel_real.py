"""`mailpin tunnel ACCOUNT`: the verified session, relayed on stdin/stdout — and nothing relayed when
the session does not match the profile."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.lab import hostile
from tests.test_enforce_real import leaked, serving
from tests.test_pins_real import cli
from tests.test_run_real import mailpin_command

SESSION = b"a1 LOGIN test secret\r\na2 SELECT INBOX\r\na3 LOGOUT\r\n"


def mbsyncrc(home: Path, ca: Path, port: int, ssl_type: str) -> None:
    (home / ".mbsyncrc").write_text(
        f"IMAPAccount lab\nHost localhost\nPort {port}\nUser test\nPass secret\nSSLType {ssl_type}\n"
        f"CertificateFile {ca}\nSystemCertificates no\n"
    )


def tunnel(stdin: bytes) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([mailpin_command(), "tunnel", "mbsync:lab"], input=stdin, capture_output=True, timeout=30)


@pytest.mark.parametrize("ssl_type", ["IMAPS", "STARTTLS"])
def test_the_tunnel_carries_an_imap_session(isolated_env: Path, pki, dovecot_server, ssl_type: str) -> None:
    port = dovecot_server.imaps_port if ssl_type == "IMAPS" else dovecot_server.imap_port
    mbsyncrc(isolated_env, pki.ca_pem, port, ssl_type)
    assert cli("init", "--yes", "mbsync:lab")[0] == 0
    done = tunnel(SESSION)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.split(b"\r\n")
    # Implicit TLS: Dovecot's own greeting comes through; STARTTLS: the tunnel stands in for it.
    assert lines[0].startswith(b"* OK") and (b"Dovecot" in lines[0]) is (ssl_type == "IMAPS")
    assert any(line.startswith(b"a1 OK") for line in lines) and any(line.startswith(b"a3 OK") for line in lines)


@pytest.mark.parametrize(
    ("variant", "script", "implicit", "reason"),
    [
        ("foreign-ca", hostile.benign("imap"), True, b"untrusted-chain"),
        ("new-key", hostile.benign("imap"), True, b"key-changed"),
        ("good", hostile.stripped("imap"), False, b"starttls-missing"),
        (
            "good",
            hostile.injected("imap", b"{tag} OK Begin TLS negotiation now\r\n* 1 EXISTS\r\n"),
            False,
            b"plaintext-injection",
        ),
    ],
    ids=["foreign-ca", "new-key-level-key", "stripped", "injection"],
)
def test_the_tunnel_relays_nothing_on_a_mismatch(isolated_env: Path, pki, variant, script, implicit, reason) -> None:
    with serving(pki, "good", hostile.benign("imap"), implicit) as good:
        mbsyncrc(isolated_env, pki.ca_pem, good.port, "IMAPS" if implicit else "STARTTLS")
        assert cli("init", "--yes", "--level", "key", "mbsync:lab")[0] == 0
    with serving(pki, variant, script, implicit) as evil:
        mbsyncrc(isolated_env, pki.ca_pem, evil.port, "IMAPS" if implicit else "STARTTLS")
        store = isolated_env / ".config" / "mailpin" / "pins.conf"
        store.write_text(store.read_text().replace(f"port = {good.port}", f"port = {evil.port}"))
        done = tunnel(SESSION)
        assert done.returncode == 69 and reason in done.stderr, done.stderr
        assert done.stdout == b""  # not a byte to the tool
        assert not leaked(evil), evil.received  # and not a byte of the tool's to the server
