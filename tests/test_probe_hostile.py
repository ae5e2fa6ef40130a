"""`mailpin probe` against hostile servers playing the STARTTLS attack classes (USENIX Security
2021, "Why TLS is better without STARTTLS") and the stalls a real server cannot play.

Each scenario's expected exit status and reason code is written here, by DESIGN §4, not taken
from the rig's own catalogue."""

from __future__ import annotations

import json
import time

import pytest

from mailpin.cli import main
from tests.lab.hostile import IMPLICIT_TLS, SCENARIOS, HostileServer, bad_greeting

DEADLINE = 1.0  # seconds given to the probe in the stall scenarios (default is 10)

# scenario -> (exit status, reason or None for a clean probe)
EXPECTED: dict[str, tuple[int, str | None]] = {
    "smtp/benign": (0, None),
    "smtp/benign-multiline-greeting": (0, None),
    "smtp/benign-extra-extensions": (0, None),
    "smtp/benign-implicit": (0, None),
    "smtp/starttls-not-advertised": (69, "starttls-missing"),
    "smtp/starttls-454": (69, "starttls-refused"),
    "smtp/starttls-502": (69, "starttls-refused"),
    "smtp/starttls-554": (69, "starttls-refused"),
    "smtp/inject-after-220": (69, "plaintext-injection"),
    "smtp/accept-then-silent": (75, "timeout"),
    "smtp/drip": (75, "timeout"),
    "smtp/endless-line": (69, "protocol-error"),
    "smtp/bye-554-greeting": (69, "protocol-error"),  # RFC 5321 §3.1: 554, no service here
    "smtp/plaintext-on-implicit": (69, "mode-changed"),
    "smtp/silent-greeting": (75, "timeout"),
    "imap/benign": (0, None),
    "imap/benign-capability-in-greeting": (0, None),
    "imap/benign-implicit": (0, None),
    "imap/starttls-not-advertised": (69, "starttls-missing"),
    "imap/starttls-no": (69, "starttls-refused"),
    "imap/starttls-bad": (69, "starttls-refused"),
    "imap/starttls-continuation": (69, "protocol-error"),
    "imap/preauth": (69, "preauth"),
    "imap/inject-after-ok": (69, "plaintext-injection"),
    # RFC 3501 §7: untagged data may precede the tagged answer; it is plaintext, read before the
    # handshake and discarded (never shown), so no injection. After the tagged OK it is one (above).
    "imap/untagged-before-ok": (0, None),
    # The STARTTLS client suite's controls (USENIX Security 2021): what a server sends unasked after
    # its greeting is pre-TLS state, discarded — the probe verifies. Each has a sibling below it: the
    # same bytes after the go-ahead, which is the attack and still blocks.
    "imap/control-untagged-waiting": (0, None),  # waiting before STARTTLS is sent
    "imap/control-untagged-late": (0, None),  # arrives after STARTTLS is sent, before the tagged OK
    "imap/control-untagged-then-capability": (0, None),  # no capabilities in the greeting: one round trip
    "imap/control-capability-lines": (0, None),
    "imap/control-referral": (0, None),
    "imap/inject-untagged-after-ok": (69, "plaintext-injection"),
    "imap/inject-untagged-late": (69, "plaintext-injection"),  # a second packet, where the ServerHello is due
    "imap/inject-capability-after-ok": (69, "plaintext-injection"),
    "imap/inject-referral-after-ok": (69, "plaintext-injection"),
    "smtp/control-reply-waiting": (0, None),  # a stray 220 waiting before STARTTLS is not its go-ahead
    "smtp/inject-reply-after-220": (69, "plaintext-injection"),
    "pop3/control-status-waiting": (0, None),
    "pop3/inject-status-after-ok": (69, "plaintext-injection"),
    "imap/accept-then-silent": (75, "timeout"),
    "imap/endless-line": (69, "protocol-error"),
    "imap/bye-greeting": (75, "unreachable"),  # RFC 3501 §7.1.5: server refuses the connection now
    "imap/plaintext-on-implicit": (69, "mode-changed"),
    "imap/silent-greeting": (75, "timeout"),
    "pop3/benign": (0, None),
    "pop3/benign-implicit": (0, None),
    "pop3/starttls-not-advertised": (69, "starttls-missing"),
    "pop3/stls-err": (69, "starttls-refused"),
    "pop3/inject-after-ok": (69, "plaintext-injection"),
    "pop3/accept-then-silent": (75, "timeout"),
    "pop3/err-greeting": (75, "unreachable"),
    "pop3/plaintext-on-implicit": (69, "mode-changed"),
    "pop3/silent-greeting": (75, "timeout"),
}


def test_every_scenario_of_the_rig_has_an_expectation() -> None:
    assert set(EXPECTED) == set(SCENARIOS)


@pytest.mark.parametrize("key", sorted(EXPECTED))
def test_hostile_scenario(key: str, pki, capsys) -> None:
    protocol = key.split("/")[0]
    implicit = key in IMPLICIT_TLS or key.endswith("plaintext-on-implicit")
    good = pki.cert("good")
    with HostileServer(
        SCENARIOS[key], chain_pem=good.chain_pem, key_pem=good.key_pem, implicit_tls=key in IMPLICIT_TLS
    ) as server:
        started = time.monotonic()
        status = main([
            "probe", f"127.0.0.1:{server.port}", "--protocol", protocol,
            "--mode", "implicit" if implicit else "starttls", "--servername", "localhost",
            "--trust-file", str(pki.ca_pem), "--timeout", str(DEADLINE), "--json",
        ])  # fmt: skip
        elapsed = time.monotonic() - started
        sent = list(server.received)
        assert server.errors == []  # the rig played its part as written
    data = json.loads(capsys.readouterr().out)
    want_status, want_reason = EXPECTED[key]
    assert (status, data["reasons"]) == (want_status, [want_reason] if want_reason else []), data
    assert elapsed < DEADLINE + 0.5, f"took {elapsed:.2f} s"
    if want_status == 0:
        assert data["chain_valid"] is True
        assert data["cert_sha256"] == _sha256(good.leaf_der)
    else:
        assert data["error"]
        assert "cert_sha256" not in data
    if protocol == "imap":  # RFC 3501 §2.2.1: a fresh tag for every command of the connection
        tags = [line.split(b" ")[0] for line in sent]
        assert len(tags) == len(set(tags)), sent
    # Whatever happened, mailpin never sent a credential or mail.
    assert not any(line.split(b" ")[1:2] in ([b"LOGIN"], [b"AUTHENTICATE"]) for line in sent)
    assert not any(line.upper().startswith((b"AUTH", b"MAIL FROM", b"USER", b"PASS")) for line in sent)


def test_plaintext_injection_names_the_injected_bytes(pki, capsys) -> None:
    good = pki.cert("good")
    with HostileServer(SCENARIOS["smtp/inject-after-220"], chain_pem=good.chain_pem, key_pem=good.key_pem) as server:
        status = main(["probe", f"127.0.0.1:{server.port}", "--protocol", "smtp", "--mode", "starttls"])
        handshakes = server.handshakes
    err = capsys.readouterr().err
    assert status == 69
    assert "250 injected" in err
    assert "[plaintext-injection]" in err
    assert handshakes == 0  # refused before the handshake: the injected bytes never reach TLS
    assert err.count("\n") == 1  # one clear line


def test_stall_uses_the_default_ten_second_deadline_unless_told(pki, capsys) -> None:
    # The default deadline is 10 s: a silent server at --timeout 1 ends within about a second.
    with HostileServer(SCENARIOS["imap/silent-greeting"]) as server:
        started = time.monotonic()
        status = main(["probe", f"127.0.0.1:{server.port}", "--protocol", "imap", "--mode", "starttls",
                       "--timeout", "1"])  # fmt: skip
        elapsed = time.monotonic() - started
    assert status == 75
    assert 0.9 < elapsed < 1.5
    assert "[timeout]" in capsys.readouterr().err


def _sha256(der: bytes) -> str:
    import hashlib

    return hashlib.sha256(der).hexdigest()


def _hang_up_after(data: bytes):
    def script(peer) -> None:
        peer.send(data)
        peer.line(1.0)  # read the client's next command, then hang up without answering

    return script


@pytest.mark.parametrize(
    ("protocol", "script", "reason"),
    [
        ("smtp", bad_greeting(b"421 4.3.2 too busy, try later\r\n"), "unreachable"),  # RFC 5321 §3.1
        ("smtp", _hang_up_after(b"220 ready\r\n"), "unreachable"),
        ("imap", _hang_up_after(b"* OK ready\r\n"), "unreachable"),
        ("pop3", _hang_up_after(b"+OK ready\r\n"), "unreachable"),
        ("smtp", _hang_up_after(b"220 ready\r\n250-"), "unreachable"),
    ],
)
def test_server_that_hangs_up_is_could_not_verify_not_an_attack(protocol, script, reason, capsys) -> None:
    # A hang-up is not a downgrade: exit 75 (quiet notification later), and still nothing is sent.
    with HostileServer(script) as server:
        status = main(["probe", f"127.0.0.1:{server.port}", "--protocol", protocol, "--mode", "starttls",
                       "--timeout", "2", "--json"])  # fmt: skip
        assert server.errors == []
    data = json.loads(capsys.readouterr().out)
    assert (status, data["reasons"]) == (75, [reason])


def _malformed_san_cert(tmp_path):
    """A certificate whose subjectAltName is not valid DER (a crafted chain member)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtensionOID

    from tests.lab.pki import crafted

    malformed = x509.UnrecognizedExtension(ExtensionOID.SUBJECT_ALTERNATIVE_NAME, b"\x30\x03\x82\x01")
    cert = crafted("crafted", ec.generate_private_key(ec.SECP256R1()), (malformed, False))
    return cert.public_bytes(serialization.Encoding.PEM)


def test_a_malformed_certificate_in_the_chain_is_blocked_not_a_crash(pki, tmp_path, capsys) -> None:
    good = pki.cert("good")
    chain = tmp_path / "chain.pem"
    chain.write_bytes(good.chain_pem.read_bytes() + _malformed_san_cert(tmp_path))
    with HostileServer(SCENARIOS["imap/benign-implicit"], chain_pem=chain, key_pem=good.key_pem,
                       implicit_tls=True) as server:  # fmt: skip
        status = main(["probe", f"127.0.0.1:{server.port}", "--protocol", "imap", "--mode", "implicit", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert (status, data["reasons"]) == (69, ["protocol-error"])
    assert "unreadable certificate" in data["error"]
