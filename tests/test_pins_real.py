"""init / check / review / accept / forget against the real test servers (Dovecot, aiosmtpd) and the
hostile rig, through the command line, with real configs of msmtp and mbsync in a throwaway home.

Every case that passes has a sibling that proves the block (issue 4's bar).
"""

from __future__ import annotations

import io
import json
import ssl
from pathlib import Path
from typing import Any

import pytest

from mailpin.cli import main
from mailpin.env import Env
from tests.lab import hostile
from tests.lab.hostile import HostileServer

MSMTP = "msmtp:smtps"
SUBMISSION = "msmtp:submission"
IMAPS = "mbsync:imaps"
IMAP_STARTTLS = "mbsync:imap"


def cli(*argv: str, stdin: str = "") -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    env = Env.from_os()
    env.stdout, env.stderr, env.stdin = out, err, io.StringIO(stdin)
    code = main(list(argv), env)
    return code, out.getvalue(), err.getvalue()


def cli_json(*argv: str) -> tuple[int, dict[str, Any]]:
    code, out, _ = cli(*argv, "--json")
    return code, json.loads(out)


def statuses(data: dict[str, Any]) -> dict[str, tuple[str, tuple[str, ...]]]:
    return {item["account"]: (item["status"], tuple(item["reasons"])) for item in data["accounts"]}


def write_msmtprc(home: Path, ca: Path, accounts: dict[str, tuple[int, bool]], extra: str = "") -> None:
    """accounts: name -> (port, starttls)."""
    lines = ["defaults", "tls on", f"tls_trust_file {ca}", "from me@example.org", extra]
    for name, (port, starttls) in accounts.items():
        lines += [
            "",
            f"account {name}",
            "host 127.0.0.1",
            f"port {port}",
            f"tls_starttls {'on' if starttls else 'off'}",
        ]
    path = home / ".msmtprc"
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)


def write_mbsyncrc(home: Path, ca: Path, accounts: dict[str, tuple[int, str]]) -> None:
    """accounts: name -> (port, SSLType)."""
    blocks = []
    for name, (port, ssl_type) in accounts.items():
        blocks.append(
            f"IMAPAccount {name}\nHost 127.0.0.1\nPort {port}\nUser test\nPass secret\nSSLType {ssl_type}\n"
            f"CertificateFile {ca}\nSystemCertificates no\n\nIMAPStore {name}-remote\nAccount {name}\n"
        )
    (home / ".mbsyncrc").write_text("\n".join(blocks))


@pytest.fixture
def lab(isolated_env: Path, pki, dovecot_server, smtp_server) -> Path:
    """Two msmtp and two mbsync accounts on the real servers, both modes each."""
    write_msmtprc(
        isolated_env,
        pki.ca_pem,
        {"smtps": (smtp_server.smtps_port, False), "submission": (smtp_server.submission_port, True)},
    )
    write_mbsyncrc(
        isolated_env,
        pki.ca_pem,
        {"imaps": (dovecot_server.imaps_port, "IMAPS"), "imap": (dovecot_server.imap_port, "STARTTLS")},
    )
    return isolated_env


def pins_file(home: Path) -> Path:
    return home / ".config" / "mailpin" / "pins.conf"


def audit(home: Path) -> list[dict[str, Any]]:
    path = home / ".local" / "state" / "mailpin" / "audit.log"
    return [json.loads(line) for line in path.read_text().split("\n") if line]


# -- pin, verify --------------------------------------------------------------------------------


def test_init_pins_both_modes_and_check_verifies_them(lab: Path) -> None:
    code, data = cli_json("init", "--yes")
    assert code == 0, data
    outcomes = {item["account"]: item for item in data["accounts"]}
    assert {key: item["outcome"] for key, item in outcomes.items()} == {
        MSMTP: "pinned",
        SUBMISSION: "pinned",
        IMAPS: "pinned",
        IMAP_STARTTLS: "pinned",
    }
    assert all(item["level"] == "ca" for item in outcomes.values())
    assert pins_file(lab).stat().st_mode & 0o777 == 0o600
    text = pins_file(lab).read_text()
    assert "[msmtp:smtps]" in text and "mode = starttls" in text and "mode = implicit" in text

    code, data = cli_json("check")
    assert code == 0
    assert statuses(data) == {key: ("verified", ()) for key in (MSMTP, SUBMISSION, IMAPS, IMAP_STARTTLS)}
    events = [(event["event"], event["account"]) for event in audit(lab)]
    assert events.count(("pin", IMAPS)) == 1 and events.count(("verified", IMAPS)) == 1


def test_init_without_yes_off_a_tty_pins_nothing(lab: Path) -> None:
    code, out, _ = cli("init")
    assert code == 0
    assert "not asked" in out and "mailpin init --yes" in out
    assert not pins_file(lab).exists()
    code, data = cli_json("check")
    assert code == 0 and {status for status, _ in statuses(data).values()} == {"unpinned"}


def test_unpinned_accounts_block_when_the_settings_say_so(lab: Path) -> None:
    config = lab / ".config" / "mailpin" / "config"
    config.parent.mkdir(parents=True)
    config.write_text("unpinned = block\n")
    code, data = cli_json("check", MSMTP)
    assert code == 69 and statuses(data) == {MSMTP: ("blocked", ("unpinned",))}


# -- certificate changes, per level -------------------------------------------------------------

# (variant, level) -> reasons `check` must report (empty: verified). Issue 4's bar, written by hand.
CHANGES = {
    ("new-key", "ca"): (),
    ("new-key", "pkix"): (),
    ("new-key", "key"): ("key-changed",),
    ("new-key", "leaf"): ("cert-changed",),
    ("renewed", "key"): (),
    ("renewed", "ca"): (),
    ("renewed", "leaf"): ("cert-changed",),
    ("foreign-ca", "leaf"): ("untrusted-chain", "cert-changed", "ca-changed"),
    ("foreign-ca", "key"): ("untrusted-chain", "key-changed", "ca-changed"),
    ("foreign-ca", "ca"): ("untrusted-chain", "ca-changed"),
    ("foreign-ca", "pkix"): ("untrusted-chain",),
    ("expired", "leaf"): ("expired", "cert-changed"),
    ("expired", "key"): ("expired",),  # the lab's expired certificate keeps the key
    ("expired", "ca"): ("expired",),
    ("expired", "pkix"): ("expired",),
    ("wrong-name", "leaf"): ("hostname-mismatch", "cert-changed"),
    ("wrong-name", "key"): ("hostname-mismatch",),
    ("not-yet-valid", "ca"): ("not-yet-valid",),
    ("wrong-name", "ca"): ("hostname-mismatch",),
    ("wrong-name", "pkix"): ("hostname-mismatch",),
    ("self-signed", "ca"): ("untrusted-chain", "ca-changed"),
    ("self-signed", "pkix"): ("untrusted-chain",),
}


@pytest.mark.parametrize(("variant", "level"), sorted(CHANGES), ids=lambda value: str(value))
def test_certificate_change_on_smtp_implicit_tls(lab: Path, smtp_server, variant: str, level: str) -> None:
    assert cli("init", "--yes", "--level", level, MSMTP)[0] == 0
    smtp_server.serve(variant)
    want = CHANGES[(variant, level)]
    code, data = cli_json("check", MSMTP)
    assert statuses(data) == {MSMTP: ("blocked" if want else "verified", want)}
    assert code == (69 if want else 0)


@pytest.mark.parametrize("variant", ["renewed", "new-key", "foreign-ca", "expired", "wrong-name"])
def test_certificate_change_on_imap_starttls_at_level_key(lab: Path, dovecot_server, variant: str) -> None:
    assert cli("init", "--yes", "--level", "key", IMAP_STARTTLS, IMAPS)[0] == 0
    dovecot_server.serve(variant)
    want = CHANGES[(variant, "key")]
    code, data = cli_json("check", IMAP_STARTTLS, IMAPS)
    assert code == (69 if want else 0)
    status = "blocked" if want else "verified"
    assert statuses(data) == {IMAP_STARTTLS: (status, want), IMAPS: (status, want)}


def test_tls_version_downgrade(lab: Path, smtp_server) -> None:
    assert cli("init", "--yes", MSMTP, SUBMISSION)[0] == 0
    smtp_server.cap_tls(ssl.TLSVersion.TLSv1_2)
    code, data = cli_json("check", MSMTP, SUBMISSION)
    assert code == 69
    assert statuses(data) == {
        MSMTP: ("blocked", ("tls-version-downgrade",)),
        SUBMISSION: ("blocked", ("tls-version-downgrade",)),
    }


# -- mode changes (the hostile rig plays the server that changed) --------------------------------


@pytest.fixture
def rig(isolated_env: Path, pki):
    good = pki.cert("good")
    with HostileServer(hostile.benign("smtp"), chain_pem=good.chain_pem, key_pem=good.key_pem) as server:
        yield server
    assert not server.errors, server.errors


def test_starttls_stripped_after_the_pin(rig: HostileServer, isolated_env: Path, pki) -> None:
    write_msmtprc(isolated_env, pki.ca_pem, {"rig": (rig.port, True)})
    assert cli("init", "--yes", "msmtp:rig")[0] == 0
    rig.script = hostile.stripped("smtp")
    code, data = cli_json("check", "msmtp:rig")
    assert code == 69 and statuses(data) == {"msmtp:rig": ("blocked", ("starttls-missing",))}
    assert "pinned: STARTTLS" in data["accounts"][0]["detail"]


def test_implicit_tls_endpoint_now_speaks_starttls_or_plaintext(rig: HostileServer, isolated_env: Path, pki) -> None:
    rig.implicit_tls = True
    write_msmtprc(isolated_env, pki.ca_pem, {"rig": (rig.port, False)})
    assert cli("init", "--yes", "msmtp:rig")[0] == 0
    rig.implicit_tls = False  # the same port now greets in plaintext (offering STARTTLS)
    code, data = cli_json("check", "msmtp:rig")
    assert code == 69 and statuses(data) == {"msmtp:rig": ("blocked", ("mode-changed",))}


def test_injection_after_starttls_is_blocked(rig: HostileServer, isolated_env: Path, pki) -> None:
    write_msmtprc(isolated_env, pki.ca_pem, {"rig": (rig.port, True)})
    assert cli("init", "--yes", "msmtp:rig")[0] == 0
    rig.script = hostile.injected("smtp", b"220 go ahead\r\n250 injected\r\n")
    code, data = cli_json("check", "msmtp:rig")
    assert code == 69 and statuses(data) == {"msmtp:rig": ("blocked", ("plaintext-injection",))}


def test_config_downgrade_is_a_block_without_touching_the_server(lab: Path, pki, smtp_server) -> None:
    assert cli("init", "--yes", MSMTP)[0] == 0
    write_msmtprc(lab, pki.ca_pem, {"smtps": (smtp_server.submission_port, True)})
    code, data = cli_json("check", MSMTP)
    assert code == 69 and statuses(data)[MSMTP] == ("blocked", ("config-downgrade", "port-changed"))
    write_msmtprc(lab, pki.ca_pem, {"smtps": (smtp_server.smtps_port, False)}, extra="tls_certcheck off")
    assert statuses(cli_json("check", MSMTP)[1])[MSMTP] == ("blocked", ("config-downgrade",))


# -- untrusted certificates at first use ----------------------------------------------------------


def test_untrusted_certificate_needs_an_explicit_confirmation(lab: Path, smtp_server) -> None:
    smtp_server.serve("self-signed")
    code, data = cli_json("init", "--yes", MSMTP)
    assert code == 69
    assert data["accounts"][0]["outcome"] == "needs-confirmation"
    assert not pins_file(lab).exists()
    code, data = cli_json("init", "--yes", "--accept-untrusted", MSMTP, MSMTP)
    assert code == 0 and data["accounts"][0] == {**data["accounts"][0], "outcome": "pinned", "level": "key"}
    assert cli_json("check", MSMTP)[0] == 0
    smtp_server.serve("foreign-ca")  # another untrusted certificate: the confirmation was for one key
    code, data = cli_json("check", MSMTP)
    assert code == 69 and "key-changed" in statuses(data)[MSMTP][1]


def test_tty_answers_decide(lab: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = io.StringIO()
    env = Env.from_os()
    env.stdout, env.stderr, env.stdin = out, io.StringIO(), Tty("y\nn\n")
    code = main(["init", MSMTP, SUBMISSION], env)
    assert code == 0
    text = out.getvalue()
    assert "Pin msmtp:smtps at level ca? [y/N]" in text and "SHA-256(SPKI)" in text
    assert "msmtp:smtps: pinned" in text and "msmtp:submission: declined" in text
    assert "[msmtp:smtps]" in pins_file(lab).read_text()
    assert "[msmtp:submission]" not in pins_file(lab).read_text()


# -- review, accept, forget ---------------------------------------------------------------------


def test_review_accept_forget_cycle(lab: Path, smtp_server) -> None:
    assert cli("init", "--yes", "--level", "key", MSMTP)[0] == 0
    assert cli("check", MSMTP)[0] == 0
    smtp_server.serve("new-key")
    code, out, _ = cli("review", MSMTP)
    assert code == 69
    assert "a new key from the same CA" in out and "verified 1 time since" in out and "blocked 1 time" not in out
    assert "this change was not due" in out and f"mailpin accept {MSMTP}" in out
    code, data = cli_json("review", MSMTP)
    assert data["accounts"][0]["pinned"]["level"] == "key" and data["accounts"][0]["verified_since_pin"] == 1

    code, out, _ = cli("accept", MSMTP)
    assert code == 0 and "accepted — level key" in out
    assert cli("check", MSMTP)[0] == 0
    smtp_server.serve("good")  # the old key is no longer pinned ...
    assert statuses(cli_json("check", MSMTP)[1])[MSMTP] == ("blocked", ("key-changed",))
    assert cli("accept", "--add", MSMTP)[0] == 0  # ... until accepted beside the new one
    smtp_server.serve("new-key")
    assert cli("check", MSMTP)[0] == 0

    kinds = [event["event"] for event in audit(lab) if event["account"] == MSMTP]
    assert kinds.count("accept") == 2 and "review" in kinds and "blocked" in kinds

    code, out, _ = cli("forget", MSMTP)
    assert code == 0 and "forgotten" in out
    assert statuses(cli_json("check", MSMTP)[1])[MSMTP] == ("unpinned", ("unpinned",))
    assert cli("forget", MSMTP)[0] == 2  # nothing pinned any more: a usage error, not silence


def test_accept_refuses_an_attack_and_an_untrusted_certificate(lab: Path, smtp_server) -> None:
    assert cli("init", "--yes", MSMTP)[0] == 0
    before = pins_file(lab).read_bytes()
    smtp_server.serve("foreign-ca")
    code, out, _ = cli("accept", MSMTP)
    assert code == 69 and "NOT accepted" in out and "--accept-untrusted" in out
    assert pins_file(lab).read_bytes() == before
    code, out, _ = cli("accept", "--accept-untrusted", MSMTP)
    assert code == 0 and "level key" in out


def test_unknown_account_is_a_usage_error(lab: Path) -> None:
    code, _, err = cli("check", "msmtp:nosuch")
    assert code == 2 and "msmtp:nosuch" in err


# -- a store that must not lie --------------------------------------------------------------------


def test_truncated_pin_file_stops_every_command_and_nothing_re_pins(lab: Path) -> None:
    assert cli("init", "--yes")[0] == 0
    path = pins_file(lab)
    text = path.read_bytes()
    path.write_bytes(text[: len(text) // 2])
    broken = path.read_bytes()
    for argv in (["check"], ["init", "--yes"], ["accept", MSMTP], ["review", MSMTP], ["forget", MSMTP], ["accounts"]):
        code, _, err = cli(*argv)
        assert code == 78, argv
        assert str(path) in err, argv
    assert path.read_bytes() == broken


def test_levels_from_mailpins_config_apply_per_account(lab: Path) -> None:
    config = lab / ".config" / "mailpin" / "config"
    config.parent.mkdir(parents=True)
    config.write_text("level = pkix\n[accounts]\n  [[msmtp:smtps]]\n  level = leaf\n  [[imaps]]\n  level = key\n")
    code, data = cli_json("init", "--yes")
    assert code == 0
    levels = {item["account"]: item["level"] for item in data["accounts"]}
    assert levels == {MSMTP: "leaf", SUBMISSION: "pkix", IMAPS: "key", IMAP_STARTTLS: "pkix"}
    assert cli_json("init", "--yes", "--level", "ca", MSMTP)[1]["accounts"][0]["outcome"] == "already-pinned"


def test_a_typo_in_mailpins_config_stops_with_a_hint(lab: Path) -> None:
    config = lab / ".config" / "mailpin" / "config"
    config.parent.mkdir(parents=True)
    config.write_text("unpined = block\n")
    code, _, err = cli("check")
    assert code == 78 and str(config) in err and "did you mean 'unpinned'" in err


def test_first_use_pins_a_trusted_account_and_refuses_an_untrusted_one(lab: Path, smtp_server) -> None:
    """What the wrappers do with an unpinned account under `unpinned = pin-if-trusted` (ssh's accept-new)."""
    from mailpin.commands.verify import Verifier
    from mailpin.model import Status

    verifier = Verifier(Env.from_os())
    (target,), _ = verifier.targets([MSMTP])
    outcome = verifier.verify(target, pin_first_use=True)
    assert outcome.verdict.status is Status.PINNED
    assert "[msmtp:smtps]" in pins_file(lab).read_text()
    assert [event["level"] for event in audit(lab) if event["event"] == "pin"] == ["ca"]

    smtp_server.serve("self-signed")
    (target,), _ = verifier.targets([SUBMISSION])
    outcome = verifier.verify(target, pin_first_use=True)
    assert outcome.verdict.status is Status.BLOCKED
    assert outcome.verdict.reasons == ("unpinned", "untrusted-chain")
    assert "[msmtp:submission]" not in pins_file(lab).read_text()


def test_one_unreadable_trust_file_does_not_hide_the_other_accounts(lab: Path, smtp_server) -> None:
    assert cli("init", "--yes", MSMTP, SUBMISSION)[0] == 0
    rc = lab / ".msmtprc"
    rc.write_text(rc.read_text().replace("tls_starttls on", f"tls_starttls on\ntls_trust_file {lab / 'gone.pem'}"))
    code, data = cli_json("check", MSMTP, SUBMISSION)
    assert code == 78
    assert statuses(data) == {MSMTP: ("verified", ()), SUBMISSION: ("config-error", ())}
    broken = next(item for item in data["accounts"] if item["account"] == SUBMISSION)
    assert "gone.pem" in broken["warnings"][0]
    smtp_server.serve("foreign-ca")  # a block still outranks the broken file
    code, data = cli_json("check", MSMTP, SUBMISSION)
    assert code == 69 and statuses(data)[MSMTP][0] == "blocked"


def test_config_now_connecting_elsewhere_is_never_verified(lab: Path, pki, smtp_server) -> None:
    assert cli("init", "--yes", MSMTP)[0] == 0
    accounts = {"smtps": (smtp_server.smtps_port, False)}
    write_msmtprc(lab, pki.ca_pem, accounts, extra="tls_host_override evil.example")
    assert statuses(cli_json("check", MSMTP)[1])[MSMTP] == ("blocked", ("config-downgrade",))
    write_msmtprc(lab, pki.ca_pem, accounts, extra="socket /tmp/mailpin-test.sock")
    assert statuses(cli_json("check", MSMTP)[1])[MSMTP] == ("blocked", ("config-downgrade",))


def test_review_of_a_profile_no_config_names_stays_skipped(lab: Path, pki) -> None:
    assert cli("init", "--yes", MSMTP)[0] == 0
    write_msmtprc(lab, pki.ca_pem, {})
    code, data = cli_json("review", MSMTP)
    assert code == 0 and statuses(data) == {MSMTP: ("skipped", ())}
    assert data["accounts"][0]["cert_sha256"]  # the live side is still shown


def test_accept_keeps_the_profiles_level_over_the_default(lab: Path) -> None:
    assert cli("init", "--yes", "--level", "leaf", MSMTP)[0] == 0
    config = lab / ".config" / "mailpin" / "config"
    config.write_text("level = pkix\n")
    code, data = cli_json("accept", MSMTP)
    assert code == 0 and data["accounts"][0]["pinned"]["level"] == "leaf"
    assert cli_json("accept", "--level", "key", MSMTP)[1]["accounts"][0]["pinned"]["level"] == "key"


def test_expiry_warning_for_key_pins_never_blocks(lab: Path) -> None:
    """The lab's certificate expires in a year: with a 400-day horizon a key pin warns, a ca pin does not."""
    assert cli("init", "--yes", "--level", "key", MSMTP)[0] == 0
    assert cli("init", "--yes", SUBMISSION)[0] == 0
    config = lab / ".config" / "mailpin" / "config"
    config.write_text("expiry_warning_days = 365\n")
    code, out, _ = cli("check", MSMTP, SUBMISSION)
    assert code == 0
    warned = [line for line in out.splitlines() if "warning:" in line]
    assert len(warned) == 1 and "expires on" in warned[0] and f"mailpin accept {MSMTP}" in warned[0]
    config.write_text("expiry_warning_days = 14\n")
    assert "warning" not in cli("check", MSMTP)[1]
    assert [event["account"] for event in audit(lab) if event["event"] == "warning"] == [MSMTP]
