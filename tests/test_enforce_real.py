"""Enforcement: the session that carries the password and the mail is held to the profile, not only
mailpin's pre-flight probe. A "split" server (tests/lab/split.py) is benign on the first connection
and hostile on the next; each case runs with enforcement and without (`enforce = no`), so the test
shows both the gap and what enforcement buys. With enforcement the tool is handed the very session
mailpin verified (run/relay.py): one connection, the benign one, carries the run; without it the
tool's own second connection meets the hostile side."""

from __future__ import annotations

import os
import ssl
import subprocess
from pathlib import Path

import pytest

from tests.conftest import need
from tests.lab import hostile
from tests.lab.hostile import HostileServer
from tests.lab.split import SplitServer
from tests.test_pins_real import cli
from tests.test_run_real import MESSAGE, shim_env

CREDENTIALS = (b"LOGIN", b"AUTHENTICATE", b"AUTH ", b"MAIL FROM")


def leaked(server: HostileServer) -> list[bytes]:
    """What the hostile side got that it must never get: a login, a password, a message."""
    return [line for line in server.received if any(word in line.upper() for word in CREDENTIALS)]


def settings(home: Path, account: str, enforce: bool) -> None:
    path = home / ".config" / "mailpin" / "config"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"[accounts]\n  [[{account}]]\n  enforce = {'yes' if enforce else 'no'}\n")


def tool(argv: list[str], env: dict[str, str], stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["timeout", "-k", "5", "60", *argv], input=stdin, env=env, capture_output=True, timeout=90)


def serving(pki, variant: str, script: hostile.Script, implicit: bool) -> HostileServer:
    cert = pki.cert(variant)
    return HostileServer(script, chain_pem=cert.chain_pem, key_pem=cert.key_pem, implicit_tls=implicit)


@pytest.mark.parametrize(
    ("enforce", "extra"),
    [
        (True, []),
        (True, ["--tls-fingerprint="]),  # the user's own flags cannot widen what was verified
        (False, []),
    ],
    ids=["enforced", "enforced-user-fingerprint", "pre-flight-only"],
)
def test_msmtp_never_sends_to_a_key_that_was_not_verified(
    isolated_env: Path, shims: Path, pki, smtp_server, enforce: bool, extra: list[str]
) -> None:
    need("msmtp")
    with (
        serving(pki, "new-key", hostile.benign("smtp"), True) as evil,
        SplitServer(smtp_server.smtps_port, evil.port) as split,
    ):
        (isolated_env / ".msmtprc").write_text(
            f"account lab\nhost localhost\nport {split.port}\ntls on\ntls_starttls off\n"
            f"tls_trust_file {pki.ca_pem}\nfrom alice@example.org\naccount default : lab\n"
        )
        (isolated_env / ".msmtprc").chmod(0o600)
        assert cli("init", "--yes", "--level", "key", "msmtp:lab")[0] == 0
        settings(isolated_env, "msmtp:lab", enforce)
        split.connections = 0  # from now on: the probe meets the real server, msmtp's own session the other
        done = tool(["msmtp", *extra, "-a", "lab", "-t"], shim_env(shims), MESSAGE)
        if enforce:  # one connection: the verified session carries the message (run/relay.py)
            assert split.connections == 1 and done.returncode == 0 and not leaked(evil), done.stderr
        else:
            assert (
                split.connections == 2
            )  # the gap: msmtp's own checks pass a valid certificate of the same CA with another key
            assert leaked(evil), evil.received


@pytest.mark.parametrize(
    ("enforce", "posix"), [(True, False), (True, True), (False, False)], ids=["enforced", "posix", "pre-flight-only"]
)
def test_msmtp_at_level_ca_trusts_only_the_pinned_cas(
    isolated_env: Path, shims: Path, pki, smtp_server, tmp_path: Path, enforce: bool, posix: bool
) -> None:
    """The user's bundle trusts two CAs; the pin is of one. msmtp's own session gets only that one,
    even with the bundle given again on msmtp's command line — with POSIXLY_CORRECT too, where
    mailpin's flags once went first and the user's later --tls-trust-file won (issue 17 item 3)."""
    need("msmtp")
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(pki.ca_pem.read_bytes() + pki.foreign_ca_pem.read_bytes())
    with (
        serving(pki, "foreign-ca", hostile.benign("smtp"), True) as evil,
        SplitServer(smtp_server.smtps_port, evil.port) as split,
    ):
        (isolated_env / ".msmtprc").write_text(
            f"account lab\nhost localhost\nport {split.port}\ntls on\ntls_starttls off\n"
            f"tls_trust_file {bundle}\nfrom alice@example.org\n"
        )
        (isolated_env / ".msmtprc").chmod(0o600)
        assert cli("init", "--yes", "msmtp:lab")[0] == 0  # level ca
        settings(isolated_env, "msmtp:lab", enforce)
        split.connections = 0
        env = shim_env(shims, **({"POSIXLY_CORRECT": "1"} if posix else {}))
        done = tool(["msmtp", "-a", "lab", f"--tls-trust-file={bundle}", "-t"], env, MESSAGE)
        assert split.connections == (1 if enforce else 2)
        assert bool(leaked(evil)) is not enforce, evil.received
        assert (done.returncode == 0) is enforce, done.stderr


@pytest.mark.parametrize(
    ("enforce", "priorities"),
    [(True, ""), (True, "tls_priorities NORMAL:+VERS-TLS1.2\n"), (False, "")],
    ids=["enforced", "enforced-user-priorities", "pre-flight-only"],
)
def test_msmtp_session_keeps_the_pinned_tls_version(
    isolated_env: Path, shims: Path, pki, smtp_server, enforce: bool, priorities: str
) -> None:
    """The review's downgrade: pinned with TLS 1.3, the probe meets TLS 1.3 and msmtp's own session
    a server that offers at most TLS 1.2, with the very certificate that was pinned. The pinned floor
    goes to msmtp as `--tls-priorities` (on top of the user's own priority string)."""
    need("msmtp")
    good = pki.cert("good")
    with (
        serving(pki, "good", hostile.benign("smtp"), True) as evil,
        SplitServer(smtp_server.smtps_port, evil.port) as split,
    ):
        evil.use_tls(good.chain_pem, good.key_pem, maximum=ssl.TLSVersion.TLSv1_2)
        (isolated_env / ".msmtprc").write_text(
            f"account lab\nhost localhost\nport {split.port}\ntls on\ntls_starttls off\n{priorities}"
            f"tls_trust_file {pki.ca_pem}\nfrom alice@example.org\nauth plain\nuser test\npassword secret\n"
        )
        (isolated_env / ".msmtprc").chmod(0o600)
        assert cli("init", "--yes", "msmtp:lab")[0] == 0
        assert "TLSv1.3" in (isolated_env / ".config" / "mailpin" / "pins.conf").read_text()
        settings(isolated_env, "msmtp:lab", enforce)
        split.connections = 0
        done = tool(["msmtp", "-a", "lab", "-t"], shim_env(shims), MESSAGE)
        if enforce and not priorities:  # the relay: msmtp's session is the one verified at TLS 1.3
            assert split.connections == 1 and done.returncode == 0, done.stderr
            assert not leaked(evil) and evil.handshakes == 0, evil.received
        elif enforce:  # tls_priorities keeps msmtp's own TLS (enforce.relays), held by the flags
            assert split.connections == 2
            assert done.returncode != 0 and not leaked(evil) and evil.handshakes == 0, evil.received
        else:  # the gap: msmtp alone takes TLS 1.2, and the password and the message go over it
            assert split.connections == 2 and leaked(evil), evil.received


def test_msmtp_with_its_own_priorities_still_sends_when_the_floor_holds(
    isolated_env: Path, shims: Path, pki, smtp_server
) -> None:
    """The sibling: the same user priority string, a server that keeps TLS 1.3 — the combined
    `--tls-priorities` is a string GnuTLS takes, and the message goes out."""
    need("msmtp")
    (isolated_env / ".msmtprc").write_text(
        f"account lab\nhost localhost\nport {smtp_server.smtps_port}\ntls on\ntls_starttls off\n"
        f"tls_priorities NORMAL:+VERS-TLS1.2\ntls_trust_file {pki.ca_pem}\nfrom alice@example.org\n"
    )
    (isolated_env / ".msmtprc").chmod(0o600)
    assert cli("init", "--yes", "msmtp:lab")[0] == 0
    before = len(smtp_server.received())
    done = tool(["msmtp", "-a", "lab", "-t"], shim_env(shims), MESSAGE)
    assert done.returncode == 0, done.stderr
    assert len(smtp_server.received()) == before + 1


@pytest.mark.parametrize(
    ("enforce", "argv"),
    [(True, ["-a"]), (True, ["-Vc", "RC", "-a"]), (True, ["-c", "RC", "--", "lab"]), (False, ["-a"])],
    ids=["enforced", "enforced-c-in-a-cluster", "enforced-channel-after-dashes", "pre-flight-only"],
)
def test_mbsync_logs_in_only_on_the_verified_session(
    isolated_env: Path, shims: Path, pki, dovecot_server, enforce: bool, argv: list[str]
) -> None:
    need("mbsync")
    with (
        serving(pki, "new-key", hostile.benign("imap"), True) as evil,
        SplitServer(dovecot_server.imaps_port, evil.port) as split,
    ):
        box = isolated_env / "Mail" / "lab"
        box.mkdir(parents=True)
        (isolated_env / ".mbsyncrc").write_text(  # "SSLType": mbsync unquotes keywords too
            f'IMAPAccount lab\nHost localhost\nPort {split.port}\nUser test\nPass secret\n"SSLType" IMAPS\n'
            f"CertificateFile {pki.ca_pem}\nSystemCertificates no\n\nIMAPStore lab-remote\nAccount lab\n\n"
            f"MaildirStore lab-local\nPath {box}/\nInbox {box}/INBOX\n\n"
            "Channel lab\nFar :lab-remote:\nNear :lab-local:\nPatterns INBOX\nCreate Near\nSync Pull\n"
        )
        assert cli("init", "--yes", "--level", "key", "mbsync:lab")[0] == 0
        settings(isolated_env, "mbsync:lab", enforce)
        split.connections = 0
        rc = str(isolated_env / ".mbsyncrc")
        done = tool(["mbsync", *(rc if arg == "RC" else arg for arg in argv)], shim_env(shims))
        if enforce:  # one connection: mbsync's Tunnel is handed the verified session
            assert split.connections == 1 and done.returncode == 0 and not leaked(evil), done.stderr
        else:
            assert done.returncode != 0 and leaked(evil), evil.received


def mbsyncrc(home: Path, port: int, ca: Path, ssltype: str = "IMAPS") -> Path:
    """One IMAP account `lab` (user test) and a channel `lab` pulling its INBOX; returns the maildir."""
    box = home / "Mail" / "lab"
    box.mkdir(parents=True)
    (home / ".mbsyncrc").write_text(
        f"IMAPAccount lab\nHost localhost\nPort {port}\nUser test\nPass secret\nSSLType {ssltype}\n"
        f"CertificateFile {ca}\nSystemCertificates no\n\nIMAPStore lab-remote\nAccount lab\n\n"
        f"MaildirStore lab-local\nPath {box}/\nInbox {box}/INBOX\n\n"
        "Channel lab\nFar :lab-remote:\nNear :lab-local:\nPatterns INBOX\nCreate Near\nSync Pull\n"
    )
    return box


def offlineimaprc(home: Path, port: int) -> None:
    (home / ".offlineimaprc").write_text(
        "[general]\naccounts = lab\nmetadata = ~/.offlineimap\n\n[Account lab]\nlocalrepository = lab-local\n"
        "remoterepository = lab-remote\n\n[Repository lab-local]\ntype = Maildir\nlocalfolders = ~/OfflineMail\n\n"
        f"[Repository lab-remote]\ntype = IMAP\nremotehost = localhost\nremoteport = {port}\nssl = no\n"
        "remoteuser = test\nremotepass = secret\nfolderfilter = lambda f: f == 'INBOX'\n"
    )


@pytest.mark.parametrize("enforce", [True, False], ids=["enforced", "pre-flight-only"])
@pytest.mark.parametrize("attack", ["foreign-ca", "stripped"])
def test_offlineimap_starttls_never_logs_in_on_a_hostile_session(
    isolated_env: Path, shims: Path, pki, dovecot_server, enforce: bool, attack: str
) -> None:
    need("offlineimap")
    script = hostile.benign("imap") if attack == "foreign-ca" else hostile.stripped("imap")
    variant = "foreign-ca" if attack == "foreign-ca" else "good"
    with serving(pki, variant, script, False) as evil, SplitServer(dovecot_server.imap_port, evil.port) as split:
        offlineimaprc(isolated_env, split.port)
        # offlineimap's STARTTLS path checks no certificate: what the user's tool trusts is the system
        # store; mailpin's pin needs the lab CA to have validated once, so it is pinned with it.
        assert cli("init", "--yes", "--accept-untrusted", "offlineimap:lab")[0] == 0
        settings(isolated_env, "offlineimap:lab", enforce)
        # offlineimap3's own STARTTLS path fails now and then by itself (real-components.md); against
        # this lab server about one run in two fails on a busy 2-core machine, today or 13 months on
        # (.ci/run's second pass), so three tries missed the gap one time in eight. The gap is shown
        # when one of eight runs reaches the login (a failed run costs 11 s at most); with
        # enforcement, none of three may.
        for _ in range(3 if enforce else 8):
            split.connections = 0
            tool(["offlineimap", "-o", "-u", "quiet", "-a", "lab"], shim_env(shims))
            if leaked(evil):
                break
        if enforce:
            assert not leaked(evil), evil.received
        else:  # the gap: offlineimap accepts a foreign CA, and goes on in plaintext without STARTTLS
            assert leaked(evil), evil.received


def test_offlineimap_starttls_with_a_foreign_ca_is_blocked_through_mailpin(
    isolated_env: Path, shims: Path, pki, dovecot_server
) -> None:
    """The account that alone accepts a foreign-CA certificate by itself (real-components.md)."""
    need("offlineimap")
    offlineimaprc(isolated_env, dovecot_server.imap_port)
    assert cli("init", "--yes", "--accept-untrusted", "offlineimap:lab")[0] == 0
    dovecot_server.serve("foreign-ca")
    done = tool(["offlineimap", "-o", "-u", "quiet", "-a", "lab"], shim_env(shims))
    assert done.returncode == 69 and b"offlineimap:lab blocked" in done.stderr


ATTACKS = {
    "foreign-ca": lambda proto: ("foreign-ca", hostile.benign(proto)),
    "stripped": lambda proto: ("good", hostile.stripped(proto)),
    "injected": lambda proto: ("good", hostile.injected(proto, INJECTIONS[proto])),
}
INJECTIONS = {
    "smtp": b"220 go ahead\r\n250 injected\r\n",
    "imap": b"{tag} OK Begin TLS negotiation now\r\n* 1 EXISTS\r\n",
}


@pytest.mark.parametrize("attack", sorted(ATTACKS))
@pytest.mark.parametrize("tool_name", ["msmtp", "mbsync", "offlineimap"])
def test_with_enforcement_no_tool_logs_in_on_a_hostile_starttls_session(
    isolated_env: Path, shims: Path, pki, smtp_server, dovecot_server, tool_name: str, attack: str
) -> None:
    """The issue's matrix: STARTTLS accounts of all three tools behind a split server that strips,
    injects, or serves a foreign CA on the tool's own connection."""
    need(tool_name)
    proto = "smtp" if tool_name == "msmtp" else "imap"
    variant, script = ATTACKS[attack](proto)
    real = smtp_server.submission_port if proto == "smtp" else dovecot_server.imap_port
    with serving(pki, variant, script, False) as evil, SplitServer(real, evil.port) as split:
        key = f"{tool_name}:lab"
        if tool_name == "msmtp":
            (isolated_env / ".msmtprc").write_text(
                f"account lab\nhost localhost\nport {split.port}\ntls on\ntls_starttls on\n"
                f"tls_trust_file {pki.ca_pem}\nfrom alice@example.org\nauth plain\nuser test\npassword secret\n"
            )
            (isolated_env / ".msmtprc").chmod(0o600)
            argv, stdin = ["msmtp", "-a", "lab", "-t"], MESSAGE
            assert cli("init", "--yes", key)[0] == 0
        elif tool_name == "mbsync":
            mbsyncrc(isolated_env, split.port, pki.ca_pem, "STARTTLS")
            argv, stdin = ["mbsync", "-a"], b""
            assert cli("init", "--yes", key)[0] == 0
        else:
            offlineimaprc(isolated_env, split.port)
            argv, stdin = ["offlineimap", "-o", "-u", "quiet", "-a", "lab"], b""
            assert cli("init", "--yes", "--accept-untrusted", key)[0] == 0
        split.connections = 0
        done = tool(argv, shim_env(shims), stdin)
        # One connection: the verified one carries the run; the hostile side never hears from the tool.
        assert split.connections == 1, done.stderr
        assert done.returncode == 0 and not leaked(evil), (done.stderr, evil.received)


def test_msmtp_trusting_only_the_intermediate_sends_as_msmtp_alone_does(
    isolated_env: Path, shims: Path, pki, smtp_server, tmp_path: Path
) -> None:
    """GnuTLS ends a chain at any trusted CA: msmtp with only the intermediate in tls_trust_file
    sends. mailpin judges msmtp's chains by that rule (mbsync's and offlineimap's by OpenSSL's,
    tests/test_chain_matrix.py), so it pins and sends too — no false block."""
    need("msmtp")
    import ssl as ssl_module

    intermediate = tmp_path / "intermediate.pem"
    intermediate.write_text(ssl_module.DER_cert_to_PEM_cert(pki.intermediate_der))
    (isolated_env / ".msmtprc").write_text(
        f"account lab\nhost localhost\nport {smtp_server.smtps_port}\ntls on\ntls_starttls off\n"
        f"tls_trust_file {intermediate}\nfrom alice@example.org\n"
    )
    (isolated_env / ".msmtprc").chmod(0o600)
    alone = tool(["/usr/bin/msmtp", "-a", "lab", "-t"], dict(os.environ), MESSAGE)
    assert alone.returncode == 0, alone.stderr
    assert cli("init", "--yes", "msmtp:lab")[0] == 0
    before = len(smtp_server.received())
    done = tool(["msmtp", "-a", "lab", "-t"], shim_env(shims), MESSAGE)
    assert done.returncode == 0, done.stderr
    assert len(smtp_server.received()) == before + 1
    smtp_server.serve("foreign-ca")  # the sibling: a chain the intermediate does not sign is refused
    blocked = tool(["msmtp", "-a", "lab", "-t"], shim_env(shims), MESSAGE)
    assert blocked.returncode == 69 and len(smtp_server.received()) == before + 1, blocked.stderr
