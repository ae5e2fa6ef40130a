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


def _unpinned_tunnel_target(isolated_env: Path, pki, port: int):  # type: ignore[no-untyped-def]
    """A tunnel that has read the store (nothing pinned) and not yet connected."""
    from mailpin.commands.verify import Verifier
    from mailpin.env import Env
    from mailpin.model import Tool

    mbsyncrc(isolated_env, pki.ca_pem, port, "IMAPS")
    verifier = Verifier(Env.from_os())
    targets, _ = verifier.targets(["mbsync:lab"], [Tool.MBSYNC])
    assert [target.profile for target in targets] == [None]
    return verifier, targets[0]


@pytest.mark.parametrize("meanwhile", ["good", "new-key"])
def test_the_tunnels_first_use_pin_never_replaces_a_pin_written_meanwhile(
    isolated_env: Path, pki, dovecot_server, meanwhile: str
) -> None:
    """Issue 17 item 5: the user's `init --level leaf`, written while an unattended tunnel was on
    its way to pin on first use, stays — and decides: the same certificate passes; another one (the
    user pinned while the server served a new key) blocks, nothing relayed."""
    from mailpin.commands import tunnel as tunnel_command
    from mailpin.env import Env
    from mailpin.model import Status
    from mailpin.state.store import PinStore

    verifier, target = _unpinned_tunnel_target(isolated_env, pki, dovecot_server.imaps_port)
    dovecot_server.serve(meanwhile)
    assert cli("init", "--yes", "--level", "leaf", "mbsync:lab")[0] == 0
    dovecot_server.serve("good")
    store = PinStore.for_env(Env.from_os())
    written = store.load()["mbsync:lab"]
    session = tunnel_command._open(verifier, target)
    if session.chan is not None:
        session.chan.close()
    assert store.load()["mbsync:lab"] == written and written.level.value == "leaf"
    if meanwhile == "good":
        assert session.outcome.verdict.status is Status.VERIFIED and session.chan is not None
    else:
        assert session.outcome.verdict.status is Status.BLOCKED and session.chan is None
        assert "cert-changed" in session.outcome.verdict.reasons


def test_the_tunnel_still_pins_on_first_use_when_nothing_was_written(isolated_env: Path, pki, dovecot_server) -> None:
    from mailpin.commands import tunnel as tunnel_command
    from mailpin.env import Env
    from mailpin.model import Status
    from mailpin.state.store import PinStore

    verifier, target = _unpinned_tunnel_target(isolated_env, pki, dovecot_server.imaps_port)
    session = tunnel_command._open(verifier, target)
    assert session.chan is not None
    session.chan.close()
    assert session.outcome.verdict.status is Status.PINNED
    assert PinStore.for_env(Env.from_os()).load()["mbsync:lab"].level.value == "ca"
