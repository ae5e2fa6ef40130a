"""Fifty mailpin processes at once — `check` and `accept` racing on one pin store and one audit
log — leave a valid pin file and a complete log (issue 4's bar)."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from mailpin.env import Env
from mailpin.state.store import PinStore
from tests.test_pins_real import MSMTP, cli, write_msmtprc

PROCESSES = 50


def test_fifty_processes_checking_and_accepting_at_once(isolated_env: Path, pki, smtp_server) -> None:
    write_msmtprc(isolated_env, pki.ca_pem, {"smtps": (smtp_server.smtps_port, False)})
    assert cli("init", "--yes", MSMTP)[0] == 0
    commands = [["check", MSMTP] if i % 2 else ["accept", "--add", MSMTP] for i in range(PROCESSES)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "mailpin", *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for argv in commands
    ]
    results = [(proc.wait(timeout=120), *proc.communicate()) for proc in procs]
    failed = [(argv, code, err) for argv, (code, _, err) in zip(commands, results, strict=True) if code != 0]
    assert not failed, failed[:3]

    profiles = PinStore.for_env(Env.from_os()).load()  # raises if the file is torn
    assert list(profiles) == [MSMTP]
    leaf = x509.load_der_x509_certificate(pki.cert("good").leaf_der)
    spki = leaf.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    assert profiles[MSMTP].spki_sha256 == (base64.b64encode(hashlib.sha256(spki).digest()).decode(),)

    lines = (isolated_env / ".local" / "state" / "mailpin" / "audit.log").read_text().split("\n")
    assert lines[-1] == ""  # newline-terminated
    events = [json.loads(line) for line in lines[:-1]]  # every line whole
    kinds = [event["event"] for event in events]
    assert kinds.count("verified") == PROCESSES // 2
    assert kinds.count("accept") == PROCESSES // 2
    assert kinds.count("pin") == 1
