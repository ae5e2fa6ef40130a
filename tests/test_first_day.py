"""What a new user trips on first (issue 18): each case as the user meets it, through the CLI."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import need
from tests.test_pins_real import cli


@pytest.mark.parametrize("tool", ["msmtp", "mbsync", "offlineimap"])
def test_a_config_path_that_is_a_directory_is_an_error_naming_it(isolated_env: Path, tool: str) -> None:
    """The tools stop on it (msmtp "input error" 74, mbsync "No channels defined", offlineimap "Is a
    directory"); mailpin says so, naming the path, where it once read 0 accounts and said ok."""
    real = need(tool)
    path = isolated_env / {"msmtp": ".msmtprc", "mbsync": ".mbsyncrc", "offlineimap": ".offlineimaprc"}[tool]
    path.mkdir()
    argv = {"msmtp": ["-a", "x", "you@example.org"], "mbsync": ["-a"], "offlineimap": ["-o"]}[tool]
    alone = subprocess.run(["timeout", "20", real, *argv], input=b"", capture_output=True, env=dict(os.environ))
    assert alone.returncode not in (0, 124), alone.stderr
    for command in (["accounts"], ["check"], ["doctor"]):
        code, out, err = cli(*command)
        assert code == 78, (command, out, err)
        assert f"{path}: is a directory" in out + err, (command, out, err)


@pytest.mark.parametrize("tool", ["msmtp", "mbsync", "offlineimap"])
def test_an_option_the_tool_does_not_know_is_a_usage_error(isolated_env: Path, tool: str) -> None:
    """`mailpin run TOOL --frobnicate`: the tool would refuse its own command line; mailpin says so
    with the usage status (2), not as a broken config (78), and runs nothing."""
    from tests.test_run_real import mailpin_command

    need(tool)
    done = subprocess.run([mailpin_command(), "run", tool, "--frobnicate"], input=b"", capture_output=True, timeout=30)
    assert done.returncode == 2, done.stderr
    assert f"mailpin: {tool} command line: ".encode() in done.stderr and b"frobnicate" in done.stderr


def test_check_exits_with_the_most_severe_status_blocked_then_config_then_unverified(
    isolated_env: Path, tmp_path: Path
) -> None:
    """A broken config and an unreachable account: 78 (running again will not mend the config); the
    order is the one `mailpin --help` states."""
    from tests.lab.pki import free_port

    (isolated_env / ".msmtprc").write_text(
        f"account gone\nhost localhost\nport {free_port()}\ntls on\ntls_starttls off\n"
    )
    (isolated_env / ".msmtprc").chmod(0o600)
    (isolated_env / ".mbsyncrc").write_text("IMAPAccount broken\nHost\n")
    code, out, err = cli("check")
    assert code == 78, out + err
    assert "could not verify" in out.lower() or "UNVERIFIED" in out, out
    (isolated_env / ".mbsyncrc").unlink()
    assert cli("check")[0] == 75
    help_text = subprocess.run(
        [str(Path(os.sys.executable).parent / "mailpin"), "check", "--help"], capture_output=True, text=True, timeout=30
    ).stdout
    assert "the most severe wins: 69, then 78, then 75" in " ".join(help_text.split())


def test_queue_flush_says_each_fact_once(isolated_env: Path, pki) -> None:
    """A flush that cannot verify (the server is gone): one line, one clause per fact — what
    happened, why, and that the message is still held (said once; the notification has its own)."""
    from datetime import datetime, timezone

    from mailpin.env import Env
    from mailpin.state.queue import Queue
    from tests.lab import hostile
    from tests.lab.hostile import HostileServer

    need("msmtp")
    good = pki.cert("good")
    with HostileServer(hostile.benign("smtp"), chain_pem=good.chain_pem, key_pem=good.key_pem, implicit_tls=True) as up:
        _msmtp_account(isolated_env, up.port, pki.ca_pem)
        assert cli("init", "--yes", "msmtp:lab")[0] == 0
    message = b"From: me@example.org\r\nTo: rcpt@example.org\r\nSubject: held\r\n\r\nline\r\n"
    held = Queue.for_env(Env.from_os()).hold(
        message, "msmtp", ("-a", "lab", "rcpt@example.org"), ["msmtp:lab"], ["unreachable"], "down",
        datetime.now(timezone.utc),
    ).held  # fmt: skip
    code, out, err = cli("queue", "flush")
    assert code == 75, out + err
    (line,) = out.splitlines()
    assert line.startswith(f'{held.id} "held": could not verify: ') and line.endswith("; still held"), line
    assert line.count("held") == 2 and line.count(held.id) == 1, line  # the subject, then "still held"
    assert "stays held" not in out + err and "unreachable" in line, out + err


def _msmtp_account(home: Path, port: int, ca: Path, starttls: bool = False) -> None:
    (home / ".msmtprc").write_text(
        f"account lab\nhost localhost\nport {port}\ntls on\ntls_starttls {'on' if starttls else 'off'}\n"
        f"tls_trust_file {ca}\nfrom alice@example.org\n"
    )
    (home / ".msmtprc").chmod(0o600)


def test_review_shows_whole_certificate_hashes(isolated_env: Path, pki, smtp_server) -> None:
    """The README tells users to compare fingerprints: all 64 hex digits, pinned and live."""
    need("msmtp")
    _msmtp_account(isolated_env, smtp_server.smtps_port, pki.ca_pem)
    assert cli("init", "--yes", "--level", "leaf", "msmtp:lab")[0] == 0
    smtp_server.serve("renewed")
    code, out, _ = cli("review", "msmtp:lab")
    assert code == 69, out
    import hashlib

    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    def leaf_sha256(variant: str) -> str:
        leaf = x509.load_pem_x509_certificates(pki.cert(variant).chain_pem.read_bytes())[0]
        return hashlib.sha256(leaf.public_bytes(Encoding.DER)).hexdigest()

    pinned, live = leaf_sha256("good"), leaf_sha256("renewed")
    assert f"pinned {pinned}" in out and f"live   {live}" in out, out


def test_review_of_an_unpinned_account_says_how_to_pin_it(isolated_env: Path, pki, smtp_server) -> None:
    need("msmtp")
    _msmtp_account(isolated_env, smtp_server.smtps_port, pki.ca_pem)
    _, out, _ = cli("review", "msmtp:lab")
    assert out.splitlines()[0] == "msmtp:lab — not pinned yet: `mailpin init msmtp:lab`", out
    assert "unpinned" not in out and "  pinned " not in out and " - " not in out, out
    assert "localhost" in out  # what the server shows now


def test_review_after_stripping_never_offers_accept(isolated_env: Path, pki, smtp_server) -> None:
    """STARTTLS stripped on the live connection: `accept` refuses it, so `review` does not offer it,
    and says that stripping is never accepted."""
    from tests.lab import hostile
    from tests.lab.hostile import HostileServer
    from tests.lab.split import SplitServer

    need("msmtp")
    with (
        HostileServer(hostile.stripped("smtp")) as evil,
        SplitServer(smtp_server.submission_port, evil.port) as split,
    ):
        _msmtp_account(isolated_env, split.port, pki.ca_pem, starttls=True)
        assert cli("init", "--yes", "msmtp:lab")[0] == 0
        code, out, _ = cli("review", "msmtp:lab")
        assert code == 69 and "starttls-missing" in out, out
        assert "mailpin accept" not in out and "never accepted" in out, out
        assert cli("accept", "--yes", "msmtp:lab")[0] != 0  # what review no longer offers


def test_an_unknown_account_in_mailpins_settings_is_told_with_a_suggestion(isolated_env: Path) -> None:
    (isolated_env / ".msmtprc").write_text("account work\nhost localhost\nport 2525\n")
    (isolated_env / ".msmtprc").chmod(0o600)
    settings = isolated_env / ".config" / "mailpin" / "config"
    settings.parent.mkdir(parents=True)
    settings.write_text("[accounts]\n  [[msmtp:wrk]]\n  level = key\n  [[work]]\n  enforce = no\n")
    said = f"{settings}: [accounts] [[msmtp:wrk]] names no account of the tools' configs"
    for command in ("accounts", "check", "doctor"):
        code, out, err = cli(command)
        assert code == 0, (command, out, err)  # told, not an error
        assert said in out + err and "did you mean msmtp:work?" in out + err, (command, out, err)
        assert "[[work]]" not in out + err  # a bare NAME that names msmtp:work is fine


def test_usage_errors_say_what_is_wrong(isolated_env: Path) -> None:
    from tests.test_run_real import mailpin_command

    def run(*argv: str) -> tuple[int, str]:
        done = subprocess.run(
            [mailpin_command(), *argv], capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL
        )
        return done.returncode, done.stderr

    code, err = run("--frob")
    assert code == 2 and "unrecognized option '--frob'" in err and "required: COMMAND" not in err, err
    code, err = run("check", "--frob")
    assert code == 2 and err.startswith("usage: mailpin check") and "unrecognized arguments: --frob" in err, err
    code, err = run("queue", "list", "--frob")
    assert code == 2 and err.startswith("usage: mailpin queue list"), err
    code, err = run("run")
    assert code == 2 and "name the tool" in err and "tool, ARGS" not in err, err
    assert run("--vers")[0] == 0 and run("--h")[0] == 0  # argparse's own abbreviations still work
    (isolated_env / ".msmtprc").write_text("account work\nhost localhost\nport 1\ntls on\n")
    (isolated_env / ".msmtprc").chmod(0o600)
    code, err = run("run", "msmtp", "-a", "nosuch", "you@example.org")
    assert code == 78 and err.count(str(isolated_env / ".msmtprc")) == 1, err  # the file named once
    (isolated_env / ".msmtprc").write_text("account work\nhost\n")
    code, out, err = cli("check")
    assert code == 78 and out == "" and "command host needs an argument" in err, (out, err)  # no "no accounts found"
    settings = isolated_env / ".config" / "mailpin" / "config"
    settings.parent.mkdir(parents=True)
    settings.write_text("[notify]\ndesktop = maybe\n")
    code, _, err = cli("check")
    assert code == 78 and err.rstrip().endswith("is of the wrong type: use yes or no"), err


def test_queue_list_columns_line_up(isolated_env: Path) -> None:
    from datetime import datetime, timedelta, timezone

    from mailpin.env import Env
    from mailpin.state.queue import Queue

    queue, now = Queue.for_env(Env.from_os()), datetime.now(timezone.utc)
    short = b"From: a@example.org\r\nTo: b@example.org\r\nSubject: hi\r\n\r\nx\r\n"
    long = short.replace(b"hi", b"a much longer subject") + b"y" * 5000
    queue.hold(short, "msmtp", ("-a", "w", "b@example.org"), ["msmtp:w"], ["ca-changed"], "x", now - timedelta(days=3))
    queue.hold(long, "msmtp", ("-a", "work", "b@example.org"), ["msmtp:work"], ["key-changed,expired"], "y", now)
    code, out, _ = cli("queue", "list")
    lines = out.splitlines()
    assert code == 0 and len(lines) == 2, out
    for word in ("  msmtp  ", "msmtp:", "held"):  # a column starts at the same place on every line
        assert len({line.index(word) for line in lines}) == 1, out


def test_control_bytes_of_the_users_own_config_never_reach_the_terminal_raw(isolated_env: Path) -> None:
    """A config with ESC, BEL, CR in an account name and in a bad line: every line mailpin prints
    about it (the listing, the error, doctor) shows them escaped."""
    from tests.test_run_real import mailpin_command

    raw = "\x1b[2J\x07\r"
    (isolated_env / ".msmtprc").write_text(f"account w{raw}x\nhost localhost\nport 2525\n")
    (isolated_env / ".msmtprc").chmod(0o600)
    (isolated_env / ".mbsyncrc").write_text(f"IMAPAccount a\nHost h\nFrob{raw} yes\n")
    for command in (["accounts"], ["check"], ["doctor"], ["run", "mbsync", "-a"]):
        done = subprocess.run([mailpin_command(), *command], capture_output=True, timeout=30, stdin=subprocess.DEVNULL)
        shown = done.stdout + done.stderr
        assert not any(byte in shown for byte in (b"\x1b", b"\x07", b"\r")), (command, shown)
        assert b"\\x1b[2J" in shown, (command, shown)
