"""The chain memo (mailpin.judge): a remembered verdict is the verdict a full judgement gives.

Every shortcut has a sibling where one input changed — the certificate, the name, the trust file's
bytes, the clock, the judge's version, a damaged memo — and the chain is judged in full again.
"""

from __future__ import annotations

import datetime
import json
import subprocess
import sys
from pathlib import Path

import pytest

from mailpin import anchors, certs, judge
from mailpin.judge import Judge
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


def test_a_remembered_chain_is_judged_in_full_outside_its_validity(pki, memo: Path, counted: list[int]) -> None:
    chain_der = pki.cert("good").chain_der
    judged = Judge(anchors.locate(str(pki.ca_pem), {}), memo)
    served, verdict = judged(chain_der, "localhost", NOW)
    leaf = served[0]
    entry = json.loads(next(memo.glob("*.json")).read_text())
    path = (leaf, *verdict.ca_certs)
    assert entry["valid_from"] == max(c.not_before for c in path).isoformat()
    assert entry["valid_until"] == min(c.not_after for c in path).isoformat()
    counted.clear()
    second = datetime.timedelta(seconds=1)
    assert judged(chain_der, "localhost", leaf.not_after)[1].reasons == ()  # the last valid moment: a hit
    assert counted == []
    assert judged(chain_der, "localhost", leaf.not_after + second)[1].reasons == ("expired",)
    assert judged(chain_der, "localhost", leaf.not_before - second)[1].reasons == ("not-yet-valid",)
    assert len(counted) == 2


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
    elif how == "nested":
        return b"[" * 100_000
    return json.dumps(entry).encode()


@pytest.mark.parametrize(
    "how", ["garbage", "truncated", "other-key", "other-leaf", "naive-date", "wrong-type", "bad-der", "nested"]
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


def test_a_trust_file_without_certificates_is_a_config_error_only_when_parsed(pki, tmp_path: Path) -> None:
    from mailpin.errors import ConfigError

    empty = tmp_path / "empty.pem"
    empty.write_text("nothing here\n")
    judged = Judge(anchors.locate(str(empty), {}), tmp_path / "memo")
    with pytest.raises(ConfigError, match="no PEM certificates"):
        judged(pki.cert("good").chain_der, "localhost", NOW)
    missing = tmp_path / "missing.pem"
    with pytest.raises(ConfigError, match="cannot read trust file"):
        anchors.locate(str(missing), {})


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
