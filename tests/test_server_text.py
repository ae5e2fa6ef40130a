"""Text a server controls never drives the terminal (issue 17 item 6): a certificate whose names
carry ESC, BEL and CR — IA5String and UTF8String allow them — is shown escaped by `mailpin probe`,
and cannot draw a forged "chain valid" line over the real verdict."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from mailpin import certs
from mailpin.cli import main
from tests.lab import hostile
from tests.lab.hostile import HostileServer
from tests.lab.pki import crafted, write_served

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
