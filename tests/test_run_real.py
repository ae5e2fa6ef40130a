"""`mailpin run` through the shims, with the real msmtp / mbsync / offlineimap against the lab servers.

Every send or sync that passes has a sibling where the server changed and the real tool never runs.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import need
from tests.lab import hostile
from tests.lab.hostile import HostileServer
from tests.test_pins_real import cli

ROOT = Path(__file__).resolve().parent.parent
DOMAIN = "msmtp.test"  # msmtp's EHLO name in these configs: tells msmtp's sessions from mailpin's probe
MESSAGE = (
    b"From: Alice <alice@example.org>\nTo: you@example.org\nSubject: pinned\n"
    b"Date: Sun, 29 Nov 2026 18:00:00 +0000\nMessage-ID: <1@example.org>\n\nHello,\n.dot line\n\xc3\xa9t\xc3\xa9\n"
)


def mailpin_command() -> str:
    found = Path(sys.executable).parent / "mailpin"
    if not found.exists():
        pytest.fail(f"the mailpin entry point is not installed next to {sys.executable}")
    return str(found)


def shim_env(shims: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "PATH": f"{shims}{os.pathsep}{os.environ['PATH']}", "MAILPIN": mailpin_command(), **extra}


def run(
    argv: list[str], env: dict[str, str], stdin: bytes = b"", timeout: float = 60
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(argv, input=stdin, env=env, capture_output=True, timeout=timeout)


def write_msmtprc(home: Path, ca: Path, smtps: int, submission: int, extra: str = "") -> None:
    (home / ".msmtprc").write_text(
        f"defaults\ntls on\ntls_trust_file {ca}\ndomain {DOMAIN}\nhost localhost\n{extra}\n\n"
        f"account smtps\nport {smtps}\ntls_starttls off\nfrom alice@example.org\n\n"
        f"account submission\nport {submission}\ntls_starttls on\nfrom bob@example.org\n\n"
        "account default : smtps\n"
    )
    (home / ".msmtprc").chmod(0o600)


@pytest.fixture
def sender(isolated_env: Path, pki, smtp_server) -> Path:
    need("msmtp")
    write_msmtprc(isolated_env, pki.ca_pem, smtp_server.smtps_port, smtp_server.submission_port)
    return isolated_env


# argv shapes of the MUAs (ecosystem.md §1.9), the account they must reach, and the line endings.
SHAPES = {
    "neomutt": (["-oem", "-oi", "-B8BITMIME", "-f", "alice@example.org", "--", "you@example.org"], False),
    "aerc": (["--read-envelope-from", "you@example.org"], True),
    "emacs": (["-oi", "--read-envelope-from", "-t"], False),
    "git-send-email": (["-a", "submission", "-i", "you@example.org"], False),
    "alot": (["--account=submission", "-t"], False),
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_a_message_through_the_shim_arrives_as_bare_msmtp_delivers_it(
    sender: Path, shims: Path, smtp_server, shape: str
) -> None:
    argv, crlf = SHAPES[shape]
    message = MESSAGE.replace(b"\n", b"\r\n") if crlf else MESSAGE
    env = shim_env(shims)
    greeted = smtp_server.greeted_by(DOMAIN)
    bare = run(["/usr/bin/msmtp", *argv], dict(os.environ), message)
    assert bare.returncode == 0, bare.stderr
    if shape == "git-send-email":  # git runs `sh -c '<sendmailCmd> "$@"' - ARGS`
        wrapped = run(["sh", "-c", 'msmtp "$@"', "-", *argv], env, message)
    else:
        wrapped = run(["msmtp", *argv], env, message)
    assert wrapped.returncode == 0, wrapped.stderr
    first, second = smtp_server.received()[-2:]
    assert second == first  # envelope and content, byte for byte
    assert second[2] == MESSAGE.replace(b"\n", b"\r\n")
    per_send = 2 if "submission" in " ".join(argv) else 1  # RFC 3207 §4.2: EHLO again after STARTTLS
    # Through the relay msmtp's EHLO is the one on the verified TLS session; the one before STARTTLS
    # was mailpin's (net/starttls.py), on the same connection.
    assert smtp_server.greeted_by(DOMAIN) == greeted + per_send + 1


def test_msmtpq_with_the_shim_as_its_msmtp(sender: Path, shims: Path, smtp_server, tmp_path: Path) -> None:
    msmtpq = need("/usr/libexec/msmtp/msmtpq/msmtpq")
    env = shim_env(shims, MSMTP=str(shims / "msmtp"), EMAIL_CONN_TEST="x", MSMTPQ_Q=str(tmp_path / "q"))
    env["MSMTPQ_LOG"] = str(tmp_path / "q.log")
    (tmp_path / "q").mkdir(mode=0o700)
    done = run([msmtpq, "--read-envelope-from", "--read-recipients"], env, MESSAGE)
    assert done.returncode == 0, done.stderr
    assert smtp_server.received()[-1][2] == MESSAGE.replace(b"\n", b"\r\n")


def test_a_ten_megabyte_message_passes_unchanged(sender: Path, shims: Path, smtp_server) -> None:
    body = b"".join(b"line %07d of a long message, nothing to see here\n" % i for i in range(200_000))
    message = MESSAGE + body
    assert len(message) > 10_000_000
    done = run(["msmtp", "-t"], shim_env(shims), message, timeout=120)
    assert done.returncode == 0, done.stderr
    assert smtp_server.received()[-1][2] == message.replace(b"\n", b"\r\n")


def test_the_real_tools_own_failure_status_comes_back(sender: Path, shims: Path, pki, smtp_server) -> None:
    write_msmtprc(
        sender, pki.ca_pem, smtp_server.smtps_port, smtp_server.submission_port, "auth on\nuser test\npassword wrong"
    )
    bare = run(["/usr/bin/msmtp", "-t"], dict(os.environ), MESSAGE)
    wrapped = run(["msmtp", "-t"], shim_env(shims), MESSAGE)
    assert bare.returncode not in (0, 69, 75) and wrapped.returncode == bare.returncode
    assert b"authentication failed" in wrapped.stderr.lower()


# -- blocked: the real tool never runs, the message is held, flushed once after review -----------


def test_foreign_ca_blocks_holds_and_flushes_once_after_accept(sender: Path, shims: Path, smtp_server) -> None:
    assert cli("init", "--yes")[0] == 0
    before, greeted = len(smtp_server.received()), smtp_server.greeted_by(DOMAIN)
    smtp_server.serve("foreign-ca")
    env = shim_env(shims)
    done = run(["msmtp", "-oi", "--read-envelope-from", "-t"], env, MESSAGE)
    assert done.returncode == 69
    line = done.stderr.decode()
    assert "msmtp:smtps blocked" in line and "[untrusted-chain, ca-changed]" in line
    assert "message held as" in line and "mailpin review msmtp:smtps" in line
    assert len(line.strip().splitlines()) == 1
    assert smtp_server.greeted_by(DOMAIN) == greeted and len(smtp_server.received()) == before
    # The MUA retries: still blocked, held once.
    again = run(["msmtp", "-oi", "--read-envelope-from", "-t"], env, MESSAGE)
    assert again.returncode == 69 and b"already held" in again.stderr
    listing = run([mailpin_command(), "queue", "list"], env)
    assert listing.stdout.count(b"msmtp:smtps") == 1
    # Still blocked at flush time: nothing goes out, it stays held.
    assert run([mailpin_command(), "queue", "flush"], env).returncode == 69
    assert smtp_server.greeted_by(DOMAIN) == greeted
    smtp_server.serve("good")  # the server is back to what was pinned
    flushed = run([mailpin_command(), "queue", "flush"], env)
    assert flushed.returncode == 0, flushed.stderr
    assert len(smtp_server.received()) == before + 1
    assert smtp_server.received()[-1][2] == MESSAGE.replace(b"\n", b"\r\n")
    assert run([mailpin_command(), "queue", "flush"], env).returncode == 0
    assert len(smtp_server.received()) == before + 1  # once


def test_a_held_message_sent_by_the_muas_retry_is_not_flushed_again(sender: Path, shims: Path, smtp_server) -> None:
    assert cli("init", "--yes")[0] == 0
    smtp_server.serve("foreign-ca")
    env = shim_env(shims)
    assert run(["msmtp", "-t"], env, MESSAGE).returncode == 69
    smtp_server.serve("good")
    assert run(["msmtp", "-t"], env, MESSAGE).returncode == 0  # the retry goes out ...
    count = len(smtp_server.received())
    assert run([mailpin_command(), "queue", "flush"], env).returncode == 0
    assert len(smtp_server.received()) == count  # ... and the held copy went with it


def test_starttls_stripped_the_real_msmtp_never_talks_to_the_server(isolated_env: Path, shims: Path, pki) -> None:
    need("msmtp")
    good = pki.cert("good")
    with HostileServer(hostile.benign("smtp"), chain_pem=good.chain_pem, key_pem=good.key_pem) as rig:
        write_msmtprc(isolated_env, pki.ca_pem, 1, rig.port)
        assert cli("init", "--yes", "msmtp:submission")[0] == 0
        rig.script = hostile.stripped("smtp")
        done = run(["msmtp", "-a", "submission", "-t"], shim_env(shims), MESSAGE)
        assert done.returncode == 69 and b"[starttls-missing]" in done.stderr
        assert not [
            line
            for line in rig.received
            if line.upper().startswith((b"EHLO " + DOMAIN.encode().upper(), b"AUTH", b"MAIL"))
        ]


@pytest.mark.parametrize(("sent", "name", "status"), [(signal.SIGTERM, "TERM", 143), (signal.SIGINT, "INT", 130)])
def test_signals_reach_the_real_tool_and_its_status_comes_back(
    sender: Path, shims: Path, tmp_path: Path, sent: signal.Signals, name: str, status: int
) -> None:
    """After verification mailpin *is* the tool (exec): a SIGTERM from systemd or a Ctrl-C reaches it."""
    fake = tmp_path / "fake-msmtp"
    record = tmp_path / "signal"
    trap = f"trap 'echo {name} > {record}; exit {status}' {name}"
    fake.write_text(f"#!/bin/sh\n{trap}\necho ready\nwhile :; do sleep 0.05; done\n")
    fake.chmod(0o755)
    config = sender / ".config" / "mailpin" / "config"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(f"[tools]\nmsmtp = {fake}\n")
    proc = subprocess.Popen(["msmtp", "-t"], env=shim_env(shims), stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(MESSAGE)
    proc.stdin.close()
    assert proc.stdout.readline() == b"ready\n"  # verified, and the fake tool runs in this very process
    proc.send_signal(sent)
    assert proc.wait(timeout=10) == status
    proc.stdout.close()
    assert record.read_text() == f"{name}\n"


# -- mbsync and offlineimap ----------------------------------------------------------------------


def write_mbsyncrc(home: Path, ca: Path, port: int, names: tuple[str, ...] = ("lab",)) -> None:
    blocks = []
    for name in names:
        (home / "Mail" / name).mkdir(parents=True, exist_ok=True)
        blocks.append(
            f"IMAPAccount {name}\nHost localhost\nPort {port}\nUser test\nPass secret\nSSLType IMAPS\n"
            f"CertificateFile {ca}\nSystemCertificates no\n\n"
            f"IMAPStore {name}-remote\nAccount {name}\n\n"
            f"MaildirStore {name}-local\nPath {home}/Mail/{name}/\nInbox {home}/Mail/{name}/INBOX\n\n"
            f"Channel {name}\nFar :{name}-remote:\nNear :{name}-local:\nPatterns INBOX\nCreate Near\nSync Pull\n"
            f"SyncState *\n"
        )
    (home / ".mbsyncrc").write_text("\n".join(blocks))


def delivered(maildir: Path) -> int:
    return sum(1 for box in ("new", "cur") for _ in (maildir / box).glob("*")) if maildir.exists() else 0


def dovecot_logins(dovecot) -> int:
    return dovecot.log.read_text(errors="replace").count("Login: user=<test>") if dovecot.log.exists() else 0


@pytest.mark.parametrize("argv", [["-a"], ["lab"]], ids=["all", "one-channel"])
def test_mbsync_syncs_through_the_shim_and_is_blocked_without_a_login(
    isolated_env: Path, shims: Path, pki, dovecot_server, argv: list[str]
) -> None:
    need("mbsync")
    write_mbsyncrc(isolated_env, pki.ca_pem, dovecot_server.imaps_port)
    dovecot_server.deliver("INBOX", MESSAGE)
    env = shim_env(shims)
    done = run(["mbsync", *argv], env)
    assert done.returncode == 0, done.stderr
    assert delivered(isolated_env / "Mail" / "lab" / "INBOX") >= 1
    dovecot_server.serve("foreign-ca")
    logins = dovecot_logins(dovecot_server)
    blocked = run(["mbsync", *argv], env)
    assert blocked.returncode == 69 and b"mbsync:lab blocked" in blocked.stderr
    time.sleep(0.2)  # Dovecot writes its log asynchronously
    assert dovecot_logins(dovecot_server) == logins


def test_offlineimap_syncs_through_the_shim_and_is_blocked(
    isolated_env: Path, shims: Path, pki, dovecot_server
) -> None:
    need("offlineimap")
    local = isolated_env / "OfflineMail"
    (isolated_env / ".offlineimaprc").write_text(
        "[general]\naccounts = lab\nmetadata = ~/.offlineimap\n\n[Account lab]\nlocalrepository = lab-local\n"
        "remoterepository = lab-remote\n\n[Repository lab-local]\ntype = Maildir\nlocalfolders = ~/OfflineMail\n\n"
        f"[Repository lab-remote]\ntype = IMAP\nremotehost = localhost\nremoteport = {dovecot_server.imaps_port}\n"
        f"ssl = yes\nsslcacertfile = {pki.ca_pem}\nremoteuser = test\nremotepass = secret\n"
        "folderfilter = lambda f: f == 'INBOX'\n"
    )
    dovecot_server.deliver("INBOX", MESSAGE)
    env = shim_env(shims)
    timeout = ["timeout", "-k", "5", "60"]
    done = run([*timeout, "offlineimap", "-o", "-u", "quiet", "-a", "lab"], env, timeout=90)
    assert done.returncode == 0, done.stderr
    assert delivered(local / "INBOX") >= 1
    dovecot_server.serve("foreign-ca")
    blocked = run([*timeout, "offlineimap", "-o", "-u", "quiet", "-a", "lab"], env, timeout=90)
    assert blocked.returncode == 69 and b"offlineimap:lab blocked" in blocked.stderr


def test_notmuch_new_indexes_only_after_a_verified_check(
    isolated_env: Path, shims: Path, pki, dovecot_server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The installed pre-new hook runs the real `mailpin check --sync`, then the user's own pre-new
    (`mbsync -a`, here through the shim); blocked, `notmuch new` fails and indexes nothing."""
    need("notmuch")
    need("mbsync")
    for variable in ("NOTMUCH_PROFILE", "NOTMUCH_DATABASE", "MAILDIR"):
        monkeypatch.delenv(variable, raising=False)
    write_mbsyncrc(isolated_env, pki.ca_pem, dovecot_server.imaps_port)
    config = isolated_env / ".notmuch-config"
    config.write_text(f"[database]\npath={isolated_env / 'Mail'}\n")
    env = shim_env(shims, NOTMUCH_CONFIG=str(config))
    assert run(["notmuch", "new"], env).returncode == 0  # the database
    hooks = isolated_env / "Mail" / ".notmuch" / "hooks"
    hooks.mkdir(parents=True)
    (hooks / "pre-new").write_text("#!/bin/sh\nexec mbsync -a\n")  # the user's own hook
    (hooks / "pre-new").chmod(0o755)
    installed = run([mailpin_command(), "hooks", "install", "--bin", str(isolated_env / "bin"), "--notmuch"], env)
    assert installed.returncode == 0, installed.stderr
    assert (hooks / "pre-new.before-mailpin").exists()
    assert run([mailpin_command(), "init", "--yes"], env).returncode == 0

    def count() -> int:
        return int(run(["notmuch", "count", "*"], env).stdout)

    dovecot_server.deliver("INBOX", MESSAGE)
    indexed = run(["notmuch", "new"], env)
    assert indexed.returncode == 0, indexed.stderr
    assert count() >= 1
    before = count()
    dovecot_server.serve("foreign-ca")
    dovecot_server.deliver("INBOX", MESSAGE.replace(b"<1@", b"<2@"))
    blocked = run(["notmuch", "new"], env)
    assert blocked.returncode != 0
    assert b"mbsync:lab" in blocked.stdout + blocked.stderr
    assert count() == before


# -- the hand-over itself: what the real tool gets, and the guards around it ---------------------


def fake_tool(home: Path, tmp_path: Path, script: str) -> Path:
    fake = tmp_path / "fake-msmtp"
    fake.write_text("#!/bin/sh\n" + script)
    fake.chmod(0o755)
    config = home / ".config" / "mailpin" / "config"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(f"[tools]\nmsmtp = {fake}\n")
    return fake


def test_the_tool_gets_the_callers_environment_and_signal_dispositions(
    sender: Path, shims: Path, tmp_path: Path
) -> None:
    report = tmp_path / "report"
    fake_tool(sender, tmp_path, f"{{ env; grep SigIgn /proc/self/status; }} > {report}\ncat >/dev/null\n")
    caller = {key: value for key, value in shim_env(shims).items() if not key.startswith(("LC_", "LANG"))}
    done = run(["env", "-u", "LC_ALL", "msmtp", "-t"], caller, MESSAGE)
    assert done.returncode == 0, done.stderr
    text = report.read_text()
    assert "LC_CTYPE=" not in text  # Python's locale coercion stays Python's
    assert "MAILPIN_RUN_DEPTH=1" in text
    ignored = int(next(line for line in text.splitlines() if line.startswith("SigIgn")).split()[1], 16)
    assert not ignored & (1 << (signal.SIGPIPE - 1)) and not ignored & (1 << (signal.SIGXFSZ - 1))


def test_a_wrapper_that_calls_the_shim_again_is_stopped_as_a_loop(sender: Path, shims: Path, tmp_path: Path) -> None:
    calls = tmp_path / "calls"
    fake_tool(sender, tmp_path, f'echo call >> {calls}\nexec msmtp "$@"\n')  # like msmtpq with MSMTP=the shim
    done = run(["msmtp", "-t"], shim_env(shims), MESSAGE, timeout=30)
    assert done.returncode == 78 and b"loop" in done.stderr
    assert calls.read_text().count("call") == 2


def test_an_endpoint_from_eval_is_never_let_through(sender: Path, shims: Path, tmp_path: Path, pki) -> None:
    ran = tmp_path / "ran"
    fake_tool(sender, tmp_path, f"touch {ran}\n")
    (sender / ".msmtprc").write_text(
        f"account evaluated\ntls on\ntls_trust_file {pki.ca_pem}\neval echo host smtp.example.org\n"
        "from alice@example.org\naccount default : evaluated\n"
    )
    done = run(["msmtp", "-t"], shim_env(shims), MESSAGE)
    assert done.returncode == 78 and b"endpoint unknown" in done.stderr
    assert not ran.exists()


def test_a_retry_of_a_message_flushed_from_the_queue_is_not_sent_twice(sender: Path, shims: Path, smtp_server) -> None:
    """msmtpq resends what it queued once the wrapper succeeds: mailpin's queue already sent it."""
    assert cli("init", "--yes")[0] == 0
    smtp_server.serve("foreign-ca")
    env = shim_env(shims)
    assert run(["msmtp", "-t"], env, MESSAGE).returncode == 69
    smtp_server.serve("good")
    assert run([mailpin_command(), "queue", "flush"], env).returncode == 0
    count = len(smtp_server.received())
    again = run(["msmtp", "-t"], env, MESSAGE)
    assert again.returncode == 0 and b"not sent again" in again.stderr
    assert len(smtp_server.received()) == count


def test_a_block_that_cannot_be_held_still_says_blocked(sender: Path, shims: Path, smtp_server) -> None:
    assert cli("init", "--yes")[0] == 0
    smtp_server.serve("foreign-ca")
    state = sender / ".local" / "state" / "mailpin"
    state.mkdir(parents=True, exist_ok=True)
    (state / "queue").write_text("not a directory")
    done = run(["msmtp", "-t"], shim_env(shims), MESSAGE)
    assert done.returncode == 69
    assert b"blocked" in done.stderr and b"NOT held" in done.stderr and b"mail program still has it" in done.stderr


def test_an_xdg_isyncrc_does_not_make_the_shim_call_itself(
    isolated_env: Path, shims: Path, pki, dovecot_server
) -> None:
    """Which file mbsync reads depends on its version (`mbsync --version`): asked of the real mbsync,
    never of the shim first on PATH, which would ask again, and again."""
    need("mbsync")
    write_mbsyncrc(isolated_env, pki.ca_pem, dovecot_server.imaps_port)
    xdg = isolated_env / ".config" / "isyncrc"
    xdg.parent.mkdir(parents=True, exist_ok=True)
    xdg.write_text((isolated_env / ".mbsyncrc").read_text())
    done = run(["mbsync", "-a"], shim_env(shims), timeout=60)
    assert done.returncode == 0, done.stderr


def test_a_send_the_chain_memo_knows_imports_neither_cryptography_nor_the_queue(
    sender: Path, shims: Path, smtp_server
) -> None:
    """Issue 19's start-up: once the relay's local certificate exists and the chain memo knows the
    server's chain, a send loads neither `cryptography` (about 20 ms and 12 MB) nor anything of it;
    once the pin store's reading is remembered (state/memo.py), not configobj either, nor `typing` or
    `tempfile`. The first send, which makes them, does — the sibling that shows the
    check can see it."""
    env = {**shim_env(shims), "PYTHONPROFILEIMPORTTIME": "1"}

    def imported(done: subprocess.CompletedProcess[bytes]) -> set[str]:
        assert done.returncode == 0, done.stderr[-2000:]
        lines = done.stderr.decode(errors="replace").splitlines()
        return {line.rsplit("|", 1)[-1].strip() for line in lines if line.startswith("import time:")}

    first = imported(run(["msmtp", "-t"], env, MESSAGE))
    assert {"cryptography", "configobj"} <= first
    again = imported(run(["msmtp", "-t"], env, MESSAGE))
    assert "ssl" in again and not {name for name in again if name.startswith(("cryptography", "configobj"))}, sorted(
        again
    )
    assert not {"typing", "tempfile", "shutil"} & again, sorted(again)
    # Nothing held: the queue and the message identity (the `email` package) are not imported either.
    assert not {"mailpin.state.queue", "mailpin.state.identity", "email"} & again, sorted(again)
