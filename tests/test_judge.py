"""The chain memo (mailpin.trust.judge): a remembered verdict is the verdict a full judgement gives.

Every shortcut has a sibling where one input changed — the certificate, the name, the trust file's
bytes, the clock, the judge's version, a damaged memo — and the chain is judged in full again.
"""

from __future__ import annotations

import base64
import datetime
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from mailpin.errors import ConfigError
from mailpin.trust import anchors, certs, judge
from mailpin.trust.judge import Judge
from tests.lab.verdicts import EXPECTED

NOW = datetime.datetime.now(datetime.timezone.utc)
NAMES = ("localhost", "wrong.example")


def full(pki, variant: str, name: str, trust_file: Path, now: datetime.datetime = NOW) -> judge.Judged:
    """What certs decides without any memo."""
    chain = certs.parse_chain(pki.cert(variant).chain_der)
    trust = certs.load_trust(str(trust_file), {})
    return tuple(certs.facts(cert) for cert in chain), certs.validate(chain, name, trust, now)


@pytest.fixture
def memo(tmp_path: Path) -> Path:
    return tmp_path / "memo"


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many chains were parsed with cryptography (a full judgement)."""
    calls: list[int] = []
    parse = certs.parse_chain

    def parse_chain(chain_der):  # type: ignore[no-untyped-def]
        calls.append(len(chain_der))
        return parse(chain_der)

    monkeypatch.setattr(certs, "parse_chain", parse_chain)
    return calls


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("variant", sorted(EXPECTED))
def test_a_remembered_verdict_is_the_full_verdict(pki, memo: Path, counted: list[int], variant: str, name: str) -> None:
    want = full(pki, variant, name, pki.ca_pem)
    counted.clear()
    chain_der = pki.cert(variant).chain_der
    first = Judge(anchors.locate(str(pki.ca_pem), {}), memo)(chain_der, name, NOW)
    again = Judge(anchors.locate(str(pki.ca_pem), {}), memo)(chain_der, name, NOW)  # a new process, same memo
    assert first == want
    assert again == want
    clean = want[1].chain_valid and want[1].hostname_valid and not want[1].reasons
    # Only a verdict without any finding is remembered; anything else is judged in full every time.
    assert len(counted) == (1 if clean else 2)
    assert len(list(memo.glob("*.json")) if memo.exists() else []) == (1 if clean else 0)


def test_the_lab_expectations_are_what_the_memo_returns(pki, memo: Path) -> None:
    judged = Judge(anchors.locate(str(pki.ca_pem), {}), memo)
    for variant, expected in EXPECTED.items():
        for _ in range(2):
            _, verdict = judged(pki.cert(variant).chain_der, "localhost", NOW)
            assert (verdict.chain_valid, verdict.hostname_valid, verdict.reasons) == expected


def _edges(pki) -> list[datetime.datetime]:
    """Every moment a certificate the path builder could use enters or leaves its validity period."""
    chain = certs.parse_chain(pki.cert("good").chain_der)
    anchors_ = certs.load_trust(str(pki.ca_pem), {}).anchors
    return sorted({moment for c in (*chain, *anchors_) for moment in (c.not_valid_before_utc, c.not_valid_after_utc)})


def test_around_every_validity_edge_the_memo_says_what_a_full_judgement_says(
    pki, memo: Path, counted: list[int]
) -> None:
    chain_der = pki.cert("good").chain_der
    judged = Judge(anchors.locate(str(pki.ca_pem), {}), memo)
    assert judged(chain_der, "localhost", NOW) == full(pki, "good", "localhost", pki.ca_pem)
    counted.clear()
    assert judged(chain_der, "localhost", NOW)[1].chain_valid  # remembered
    assert counted == []
    second = datetime.timedelta(seconds=1)
    for edge in _edges(pki):
        for moment in (edge - 2 * second, edge - second, edge, edge + second, edge + 2 * second):
            assert judged(chain_der, "localhost", moment) == full(pki, "good", "localhost", pki.ca_pem, moment)
    leaf = certs.parse_chain(chain_der)[0]
    counted.clear()
    _, verdict = judged(chain_der, "localhost", leaf.not_valid_after_utc + second)
    assert verdict.reasons == ("expired",)
    assert counted == [len(chain_der)]  # judged in full


def test_the_memo_window_stops_short_of_the_next_edge(pki, memo: Path, counted: list[int]) -> None:
    chain_der = pki.cert("good").chain_der
    judged = Judge(anchors.locate(str(pki.ca_pem), {}), memo)
    judged(chain_der, "localhost", NOW)
    before = max(edge for edge in _edges(pki) if edge <= NOW)
    after = min(edge for edge in _edges(pki) if edge > NOW)
    second = datetime.timedelta(seconds=1)
    counted.clear()
    judged(chain_der, "localhost", before + second)  # the first moment of the window
    judged(chain_der, "localhost", after - second)  # its last
    assert counted == []
    judged(chain_der, "localhost", before)
    judged(chain_der, "localhost", after)
    assert len(counted) == 2


def _issuer(
    name: str,
    key: ec.EllipticCurvePrivateKey,
    signer: ec.EllipticCurvePrivateKey | None = None,
    signer_name: str | None = None,
    starts: datetime.datetime = NOW,
) -> x509.Certificate:
    """A CA certificate for `key`, self-signed unless `signer` (named `signer_name`) signs it."""
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    issuer = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, signer_name or name)])
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(starts)
        .not_valid_after(NOW + datetime.timedelta(days=400))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(signer or key, hashes.SHA256())
    )


def test_a_second_path_that_becomes_valid_later_is_judged_in_full(tmp_path: Path, counted: list[int]) -> None:
    """Two roots, one intermediate key certified by both; root 1's certificate for it starts in ten
    days. Judged today the path goes through root 2; once both are valid the verifier may prefer
    root 1 — the memo must not answer with today's path then (CA pins differ)."""
    keys = [ec.generate_private_key(ec.SECP256R1()) for _ in range(4)]
    root1, root2 = _issuer("root one", keys[0]), _issuer("root two", keys[1])
    later = NOW + datetime.timedelta(days=10)
    by_root1 = _issuer("the intermediate", keys[2], keys[0], "root one", starts=later)
    by_root2 = _issuer("the intermediate", keys[2], keys[1], "root two", starts=NOW - datetime.timedelta(days=1))
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(by_root1.subject)
        .public_key(keys[3].public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - datetime.timedelta(days=1))
        .not_valid_after(NOW + datetime.timedelta(days=300))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(keys[2], hashes.SHA256())
    )
    trust_file = tmp_path / "roots.pem"
    trust_file.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (root1, root2)))
    der = serialization.Encoding.DER
    chain_der = [leaf.public_bytes(der), by_root1.public_bytes(der), by_root2.public_bytes(der)]
    trust = certs.load_trust(str(trust_file), {})

    def in_full(at: datetime.datetime) -> judge.Judged:
        chain = certs.parse_chain(chain_der)
        return tuple(certs.facts(c) for c in chain), certs.validate(chain, "localhost", trust, at)

    judged = Judge(anchors.locate(str(trust_file), {}), tmp_path / "memo")
    today = judged(chain_der, "localhost", NOW)
    assert today == in_full(NOW) and today[1].ca_certs[-1].subject == "CN=root two"
    then = NOW + datetime.timedelta(days=20)
    counted.clear()
    assert judged(chain_der, "localhost", then) == in_full(then)
    assert counted  # judged in full: the candidates changed since the memo was written
    assert in_full(then)[1].ca_certs[-1].subject == "CN=root one"  # the premise: another path by then


def test_another_name_is_judged_in_full(pki, memo: Path) -> None:
    judged = Judge(anchors.locate(str(pki.ca_pem), {}), memo)
    chain_der = pki.cert("good").chain_der
    assert judged(chain_der, "localhost", NOW)[1].hostname_valid
    _, verdict = judged(chain_der, "mail.example.org", NOW)
    assert verdict.reasons == ("hostname-mismatch",)


def test_a_trust_file_edited_in_place_is_another_trust(pki, memo: Path, tmp_path: Path) -> None:
    trust_file = tmp_path / "trust.pem"
    trust_file.write_bytes(pki.ca_pem.read_bytes())
    chain_der = pki.cert("good").chain_der
    assert Judge(anchors.locate(str(trust_file), {}), memo)(chain_der, "localhost", NOW)[1].chain_valid
    trust_file.write_bytes(pki.foreign_ca_pem.read_bytes())  # same path, the lab root gone
    _, verdict = Judge(anchors.locate(str(trust_file), {}), memo)(chain_der, "localhost", NOW)
    assert verdict.reasons == ("untrusted-chain",)
    assert not verdict.chain_valid


def test_the_system_store_and_an_own_trust_file_are_different_trusts(pki, memo: Path) -> None:
    chain_der = pki.cert("good").chain_der
    assert Judge(anchors.locate_for(str(pki.ca_pem), False, {}), memo)(chain_der, "localhost", NOW)[1].chain_valid
    _, verdict = Judge(anchors.locate_for(None, True, {}), memo)(chain_der, "localhost", NOW)
    assert verdict.reasons == ("untrusted-chain",)  # the lab root is in no system store
    both = Judge(anchors.locate_for(str(pki.ca_pem), True, {}), memo)(chain_der, "localhost", NOW)[1]
    assert both.chain_valid and "+" in both.trust


def test_another_judge_version_does_not_use_the_memo(
    pki, memo: Path, counted: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    chain_der = pki.cert("good").chain_der
    Judge(anchors.locate(str(pki.ca_pem), {}), memo)(chain_der, "localhost", NOW)
    monkeypatch.setattr(judge, "__version__", "99.0")
    judge._judges.cache_clear()
    try:
        counted.clear()
        Judge(anchors.locate(str(pki.ca_pem), {}), memo)(chain_der, "localhost", NOW)
        assert counted == [len(chain_der)]
    finally:
        judge._judges.cache_clear()


def _tamper(entry: dict, how: str) -> bytes:
    if how == "garbage":
        return b"\x00not json"
    if how == "truncated":
        return json.dumps(entry).encode()[:50]
    if how == "other-key":
        entry["key"] = "0" * 64
    elif how == "other-leaf":
        entry["served"][0]["sha256"] = "ab" * 32
    elif how == "naive-date":
        entry["served"][0]["not_after"] = "2099-01-01T00:00:00"
    elif how == "wrong-type":
        entry["served"][0]["sans"] = [1, 2]
    elif how == "bad-der":
        entry["path_der"] = ["***"]
    elif how == "other-path":
        entry["path"][0]["sha256"] = "cd" * 32
    elif how == "no-path":  # as if the leaf were an anchor itself: it is not in this trust
        entry["path"], entry["path_der"] = [], []
    elif how == "nested":
        return b"[" * 100_000
    return json.dumps(entry).encode()


@pytest.mark.parametrize(
    "how",
    [
        "garbage",
        "truncated",
        "other-key",
        "other-leaf",
        "naive-date",
        "wrong-type",
        "bad-der",
        "nested",
        "other-path",
        "no-path",
    ],
)
def test_a_damaged_memo_is_a_miss_and_is_rewritten(pki, memo: Path, counted: list[int], how: str) -> None:
    chain_der = pki.cert("good").chain_der
    judged = Judge(anchors.locate(str(pki.ca_pem), {}), memo)
    want = judged(chain_der, "localhost", NOW)
    (path,) = memo.glob("*.json")
    path.write_bytes(_tamper(json.loads(path.read_text()), how))
    counted.clear()
    assert judged(chain_der, "localhost", NOW) == want
    assert counted == [len(chain_der)]
    counted.clear()
    assert judged(chain_der, "localhost", NOW) == want  # rewritten whole: a hit again
    assert counted == []


def test_a_memo_that_cannot_be_written_costs_only_time(pki, tmp_path: Path, counted: list[int]) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    judged = Judge(anchors.locate(str(pki.ca_pem), {}), blocker / "memo")
    for _ in range(2):
        assert judged(pki.cert("good").chain_der, "localhost", NOW)[1].chain_valid
    assert len(counted) == 2


def test_the_memo_keeps_the_newest_entries(pki, memo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(judge, "_KEEP", 3)
    judged = Judge(anchors.locate(str(pki.ca_pem), {}), memo)
    for variant in ("good", "renewed", "new-key"):
        judged(pki.cert(variant).chain_der, "localhost", NOW)
    for name in ("localhost", "LOCALHOST"):  # each name is an entry of its own
        judged(pki.cert("good").chain_der, name, NOW + datetime.timedelta(seconds=1))
    assert len(list(memo.glob("*.json"))) == 3
    assert (memo.stat().st_mode & 0o777) == 0o700


def test_a_trust_file_without_certificates_is_a_config_error_before_any_connection(pki, tmp_path: Path) -> None:
    empty = tmp_path / "empty.pem"
    empty.write_text("nothing here\n")
    with pytest.raises(ConfigError, match="no PEM certificates"):
        anchors.locate(str(empty), {})
    with pytest.raises(ConfigError, match="cannot read trust file"):
        anchors.locate(str(tmp_path / "missing.pem"), {})
    damaged = tmp_path / "damaged.pem"  # looks like PEM, is not: found when the chain is judged in full
    damaged.write_text("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n")
    with pytest.raises(ConfigError, match="no PEM certificates"):
        Judge(anchors.locate(str(damaged), {}), tmp_path / "memo")(pki.cert("good").chain_der, "localhost", NOW)


def _remembered(pki, memo: Path) -> tuple[Judge, Path]:
    judged = Judge(anchors.locate(str(pki.ca_pem), {}), memo)
    judged(pki.cert("good").chain_der, "localhost", NOW)
    (entry,) = memo.glob("*.json")
    return judged, entry


def test_a_memo_entry_that_is_not_a_plain_file_of_ours_is_never_read(pki, memo: Path, counted: list[int]) -> None:
    judged, entry = _remembered(pki, memo)
    chain_der = pki.cert("good").chain_der
    kept = entry.read_bytes()
    for how in ("symlink", "fifo", "huge", "group-writable"):
        entry.unlink()
        if how == "symlink":
            (memo / "elsewhere").write_bytes(kept)
            entry.symlink_to(memo / "elsewhere")
        elif how == "fifo":
            os.mkfifo(entry)
        elif how == "huge":
            entry.write_bytes(kept + b" " * (judge._MAX_ENTRY + 1))
        else:
            entry.write_bytes(kept)
            entry.chmod(0o664)
        counted.clear()
        done: list[judge.Judged] = []
        worker = threading.Thread(target=lambda out=done: out.append(judged(chain_der, "localhost", NOW)), daemon=True)
        worker.start()
        worker.join(10)
        assert done, f"{how}: the judge waited on the memo"
        assert done[0][1].chain_valid and counted == [len(chain_der)], how


def test_a_memo_directory_others_can_write_is_not_used(pki, memo: Path, counted: list[int]) -> None:
    judged, entry = _remembered(pki, memo)
    memo.chmod(0o777)
    counted.clear()
    judged(pki.cert("good").chain_der, "localhost", NOW)
    assert len(counted) == 1
    entry.unlink()
    judged(pki.cert("good").chain_der, "localhost", NOW)
    assert not list(memo.glob("*.json"))  # nor written to


def test_a_self_signed_certificate_in_the_trust_file_is_remembered_too(pki, memo: Path, counted: list[int]) -> None:
    """msmtp users point tls_trust_file at the server's own certificate: the path is the leaf alone."""
    served = pki.cert("self-signed")
    judged = Judge(anchors.locate(str(served.chain_pem), {}), memo)
    want = full(pki, "self-signed", "localhost", served.chain_pem)
    assert want[1].chain_valid and want[1].ca_certs == ()
    counted.clear()
    assert judged(served.chain_der, "localhost", NOW) == want
    assert judged(served.chain_der, "localhost", NOW) == want
    assert len(counted) == 1  # the second was remembered
    # The same certificate under a trust that does not hold it: judged in full, and untrusted.
    _, verdict = Judge(anchors.locate(str(pki.ca_pem), {}), memo)(served.chain_der, "localhost", NOW)
    assert verdict.reasons == ("untrusted-chain",)


def test_a_remembered_path_must_end_at_one_of_the_anchors(pki, memo: Path, counted: list[int]) -> None:
    judged, entry = _remembered(pki, memo)
    data = json.loads(entry.read_text())
    foreign = certs.facts(certs.parse_chain([pki.foreign_root_der])[0])
    data["path"][-1] = judge._plain(foreign)
    data["path_der"][-1] = base64.b64encode(pki.foreign_root_der).decode()
    entry.write_text(json.dumps(data))
    counted.clear()
    _, verdict = judged(pki.cert("good").chain_der, "localhost", NOW)
    assert counted == [len(pki.cert("good").chain_der)]
    assert verdict.ca_der[-1] == pki.root_der


def test_a_verification_the_memo_knows_does_not_import_cryptography(pki, smtp_server, isolated_env: Path) -> None:
    """What the memo is for: `mailpin check` again without cryptography's import; and a served
    certificate that changed is judged in full (and blocked) all the same."""
    rc = isolated_env / ".msmtprc"
    rc.write_text(
        f"account smtps\nhost 127.0.0.1\nport {smtp_server.smtps_port}\ntls on\ntls_starttls off\n"
        f"tls_trust_file {pki.ca_pem}\nfrom me@example.org\n"
    )
    rc.chmod(0o600)

    def mailpin(*argv: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-X", "importtime", "-m", "mailpin", *argv]
        return subprocess.run(command, capture_output=True, text=True, timeout=60)

    assert mailpin("init", "--yes").returncode == 0
    again = mailpin("check", "msmtp:smtps")
    assert again.returncode == 0, again.stderr[-2000:]
    assert " cryptography" not in again.stderr
    smtp_server.serve("new-key")  # same CA: verified at level `ca`, but a chain the memo never saw
    renewed = mailpin("check", "msmtp:smtps")
    assert renewed.returncode == 0, renewed.stderr[-2000:]
    assert " cryptography.x509" in renewed.stderr
    smtp_server.serve("foreign-ca")
    changed = mailpin("check", "msmtp:smtps")
    assert changed.returncode == 69
    assert " cryptography.x509" in changed.stderr
