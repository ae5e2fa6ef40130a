"""Text a server controls never drives the terminal (issue 17 item 6): a certificate whose names
carry ESC, BEL and CR — IA5String and UTF8String allow them — is shown escaped by `mailpin probe`,
and cannot draw a forged "chain valid" line over the real verdict."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from mailpin.cli import main
from mailpin.commands.verify import Outcome, Target
from mailpin.env import Env
from mailpin.model import Finding, Status, Verdict
from mailpin.net.replies import printable_lines
from mailpin.notify import alerts
from mailpin.run.wrapper import blocked_line
from mailpin.state.audit import AuditLog
from mailpin.trust import certs
from tests.lab import hostile
from tests.lab.hostile import HostileServer
from tests.lab.pki import crafted, write_served
from tests.test_pins_real import cli

FORGED = "\r  chain        valid (system trust)\x1b[2K\x07"


def hostile_certificate(directory: Path) -> tuple[Path, Path, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    san = x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.DNSName("x\x1b[31my\x07")])
    cert = crafted(
        "localhost" + FORGED, key, (san, False), valid=(datetime.timedelta(days=1), datetime.timedelta(days=30))
    )
    return (*write_served(directory, cert, key), cert)


def test_certificate_facts_escape_every_name(tmp_path: Path) -> None:
    *_, cert = hostile_certificate(tmp_path)
    facts = certs.facts(cert)
    for text in (facts.subject, facts.issuer, *facts.sans):
        assert not any(char in text for char in "\x1b\x07\r\n"), text
    assert "\\x1b[31my\\x07" in " ".join(facts.sans) and "\\x0d" in facts.subject


def test_probe_shows_a_hostile_certificates_names_escaped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    chain, key, _ = hostile_certificate(tmp_path)
    with HostileServer(hostile.benign("smtp"), chain_pem=chain, key_pem=key, implicit_tls=True) as server:
        code = main(["probe", f"localhost:{server.port}", "--protocol", "smtp", "--mode", "implicit"])
    out = capsys.readouterr().out
    assert code == 0, out  # probe observes and reports: no pin, no verdict to exit with
    assert not any(char in out for char in "\x1b\x07\r"), repr(out)
    chain_lines = [line for line in out.splitlines() if line.strip().startswith("chain ")]
    assert len(chain_lines) == 1 and "NOT valid" in chain_lines[0], out  # the only verdict line is the real one


RAW = "\x1b\x07\r\x9b\u202e"  # ESC, BEL, CR, CSI (C1), right-to-left override


def test_the_last_guard_escapes_every_control_but_line_breaks() -> None:
    text = "ok line\nbad \x1b[2K\x07\rline \x9b31m \u202eevil\n"
    shown = printable_lines(text)
    assert shown.count("\n") == 2 and not any(char in shown for char in RAW)
    assert "\\x1b[2K\\x07\\x0dline \\x9b31m \\x202eevil" in shown


def test_a_notification_and_an_alert_escape_what_a_server_got_into_a_verdict() -> None:
    """Defense in depth: even a finding that carried raw server text (today every source escapes it
    itself: certs.facts, the reply parsers, the injection evidence) is told escaped."""
    verdict = Verdict("msmtp:lab", Status.BLOCKED, (Finding("untrusted-chain", f"issuer {FORGED}\u202e\x9b1m"),))
    outcome = Outcome(Target("msmtp:lab", None, None), None, verdict)
    for told in (alerts.body(outcome, "held"), alerts._alert_text(outcome, "held"), blocked_line(outcome, "")):
        assert not any(char in told for char in RAW), repr(told)
        assert "\\x1b[2K" in told


def test_the_audit_log_escapes_c1_controls_and_reads_back_the_same(isolated_env: Path) -> None:
    log = AuditLog.for_env(Env.from_os())
    log.record("blocked", "msmtp:lab", datetime.datetime.now(datetime.timezone.utc), detail=FORGED + "\u202e\x9b")
    raw = log.path.read_text(encoding="utf-8")
    assert not any(char in raw for char in RAW), repr(raw)
    assert json.loads(raw)["detail"] == FORGED + "\u202e\x9b"


def test_every_place_a_block_is_told_shows_a_hostile_certificate_escaped(
    isolated_env: Path, tmp_path: Path, pki, session_bus, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pinned on the lab certificate; the server then presents one from a CA whose names carry ESC,
    BEL, CR, a C1 CSI and a bidi override. The block line, `review`, the desktop notification and
    the audit log show those names escaped."""
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", session_bus.address)
    good = pki.cert("good")
    ca_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = crafted(
        "Evil CA" + FORGED + "\u202e\x9b[31m", ca_key, (x509.BasicConstraints(ca=True, path_length=None), True)
    )
    san = x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.DNSName("x\x1b[31my\x07")])
    leaf = crafted("localhost" + FORGED, leaf_key, (san, False), issuer=(ca.subject, ca_key))
    chain, key = write_served(tmp_path, leaf, leaf_key)
    chain.write_bytes(chain.read_bytes() + ca.public_bytes(serialization.Encoding.PEM))
    with HostileServer(
        hostile.benign("smtp"), chain_pem=good.chain_pem, key_pem=good.key_pem, implicit_tls=True
    ) as server:
        (isolated_env / ".msmtprc").write_text(
            f"account lab\nhost localhost\nport {server.port}\ntls on\ntls_starttls off\ntls_trust_file {pki.ca_pem}\n"
        )
        (isolated_env / ".msmtprc").chmod(0o600)
        assert cli("init", "--yes", "msmtp:lab")[0] == 0
        server.use_tls(chain, key)
        code, out, err = cli("check", "msmtp:lab")
        assert code == 69, out + err
        review = cli("review", "msmtp:lab")[1]
    (note,) = session_bus.wait_for(1, timeout=5)
    audit = (isolated_env / ".local" / "state" / "mailpin" / "audit.log").read_text(encoding="utf-8")
    for shown in (out, err, review, note["summary"], note["body"], audit):
        assert not any(char in shown for char in RAW), repr(shown)
    assert "Evil CA" in review and "\\x1b" in review  # the names are there, escaped
