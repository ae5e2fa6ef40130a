"""Held once, sent once — with the real mail programs, as they really retry (issue 16).

neomutt (in tmux, keys pressed as a user would) and git send-email send through mailpin's msmtp shim
to the lab's SMTP server, with the real msmtp behind it. While the server presents a foreign CA
the send is blocked and held; the user presses send again (neomutt keeps the Message-ID and writes
a new Date, git send-email writes a new Date and a new Message-ID). Whatever the order of retries,
restores and flushes, the server receives the message exactly once. And a fresh send is never
swallowed: the same bytes sent on three occasions (cron) arrive three times.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import need
from tests.test_pins_real import cli
from tests.test_run_real import mailpin_command, run, shim_env, write_msmtprc

BLOCKED = 69


@pytest.fixture
def lab(isolated_env: Path, pki, smtp_server, shims: Path) -> Lab:
    need("msmtp")
    write_msmtprc(isolated_env, pki.ca_pem, smtp_server.smtps_port, smtp_server.submission_port)
    assert cli("init", "--yes")[0] == 0
    return Lab(isolated_env, smtp_server, shims)


class Lab:
    def __init__(self, home: Path, server, shims: Path) -> None:  # type: ignore[no-untyped-def]
        self.home, self.server, self.shims = home, server, shims
        self.env = shim_env(shims)
        self.before = len(server.received())

    def attack(self) -> None:
        self.server.serve("foreign-ca")

    def restore(self) -> None:
        self.server.serve("good")

    def delivered(self) -> list[bytes]:
        return [content for _, _, content in self.server.received()[self.before :]]

    def mailpin(self, *argv: str) -> subprocess.CompletedProcess[bytes]:
        return run([mailpin_command(), *argv], self.env, timeout=120)

    def held(self) -> list[dict[str, object]]:
        listing = self.mailpin("queue", "list", "--json")
        assert listing.returncode == 0, listing.stderr
        held: list[dict[str, object]] = json.loads(listing.stdout)["held"]
        return held

    def flush(self) -> dict[str, object]:
        done = self.mailpin("queue", "flush", "--json")
        report: dict[str, object] = json.loads(done.stdout)
        assert report["exit_status"] == done.returncode, done.stderr
        return report


def wait_for(what: str, check: Callable[[], object], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


# -- neomutt, in a terminal ---------------------------------------------------------------------------


class Neomutt:
    """neomutt composing one message in a private tmux server; `send()` presses y in the compose menu."""

    def __init__(self, lab: Lab, tmp_path: Path) -> None:
        self.tmux, neomutt = need("tmux"), need("neomutt")
        self.socket = tmp_path / "tmux.sock"
        self.status = tmp_path / "neomutt.status"
        body = tmp_path / "body.txt"
        body.write_text("Hello Bob,\n\nthe report is attached in spirit.\n")
        mail = tmp_path / "Mail"
        for sub in ("cur", "new", "tmp"):
            (mail / "inbox" / sub).mkdir(parents=True)
        rc = tmp_path / "neomuttrc"
        rc.write_text(
            f'set sendmail="{lab.shims / "msmtp"} -oi"\nset from="Alice <alice@example.org>"\nset use_from=yes\n'
            f"set folder={mail}\nset spoolfile={mail}/inbox\nset mbox_type=Maildir\nset record=''\nset copy=no\n"
            "set editor=true\nset abort_unmodified=no\nset edit_headers=no\nset askcc=no\nset askbcc=no\n"
            "set postpone=no\nset header_cache=''\nset sleep_time=0\nset fast_reply=yes\n"
        )
        command = (
            f"{neomutt} -n -F {rc} -s 'quarterly report' -i {body} bob@example.org; echo $? > {self.status}; sleep 600"
        )
        environ = {**lab.env, "TERM": "screen", "HOME": str(lab.home)}
        subprocess.run(
            [self.tmux, "-S", str(self.socket), "new-session", "-d", "-x", "150", "-y", "40", command],
            env=environ,
            check=True,
        )

    def screen(self) -> str:
        done = subprocess.run(
            [self.tmux, "-S", str(self.socket), "capture-pane", "-p"], capture_output=True, text=True, check=False
        )
        return done.stdout

    def keys(self, *keys: str) -> None:
        subprocess.run([self.tmux, "-S", str(self.socket), "send-keys", *keys], check=True)

    def send_blocked(self) -> str:
        """Press send while the server is under attack: neomutt shows the delivery output; back to compose."""
        self.keys("y")
        wait_for("neomutt's delivery output", lambda: "Output of the delivery process" in self.screen())
        shown = self.screen()
        self.keys("q")
        wait_for("the compose menu again", lambda: "Compose" in self.screen())
        time.sleep(1.1)  # the next Date: is a second later
        return shown

    def send_delivered(self) -> None:
        self.keys("y")
        wait_for("neomutt to finish", self.status.exists)
        assert self.status.read_text().strip() == "0", self.screen()

    def give_up(self) -> None:
        self.keys("q")
        wait_for("neomutt to quit", self.status.exists)

    def close(self) -> None:
        subprocess.run([self.tmux, "-S", str(self.socket), "kill-server"], check=False, capture_output=True)


@pytest.fixture
def neomutt(lab: Lab, tmp_path: Path) -> Iterator[Neomutt]:
    client = Neomutt(lab, tmp_path)
    try:
        wait_for("neomutt's compose menu", lambda: "Compose" in client.screen())
        yield client
    finally:
        client.close()


def flat(text: str) -> str:
    """Without white space and wrap marks: neomutt's pager wraps long lines anywhere, even inside a
    word, and starts each continuation with "+"."""
    return "".join("".join(line.removeprefix("+") for line in text.splitlines()).split())


def _message_id(message: bytes) -> str:
    found = re.search(rb"^Message-ID: <([^>]+)>", message, re.MULTILINE | re.IGNORECASE)
    assert found, message[:500]
    return found.group(1).decode()


def test_neomutt_send_pressed_twice_under_attack_then_flushed_arrives_once(lab: Lab, neomutt: Neomutt) -> None:
    lab.attack()
    shown = neomutt.send_blocked()
    # What neomutt shows the user: blocked, the message is safe in the queue, sending again is harmless.
    text = flat(shown)
    assert flat("msmtp:default blocked") in text and flat("safe in mailpin's queue") in text, shown
    assert flat("sending it again from your mail program is harmless") in text, shown
    first = lab.held()
    assert len(first) == 1
    neomutt.send_blocked()  # again, a second later: a new Date, the same Message-ID
    second = lab.held()
    assert len(second) == 1 and second[0]["message_id"] == first[0]["message_id"]
    neomutt.give_up()
    assert lab.delivered() == []

    lab.restore()
    report = lab.flush()
    assert [item["outcome"] for item in report["flushed"]] == ["sent"]  # type: ignore[index, union-attr]
    assert lab.flush()["flushed"] == [] and lab.held() == []
    delivered = lab.delivered()
    assert len(delivered) == 1 and _message_id(delivered[0]) == first[0]["message_id"]
    assert b"quarterly report" in delivered[0]


def test_neomutt_retry_after_the_server_is_restored_arrives_once_and_flush_sends_nothing(
    lab: Lab, neomutt: Neomutt
) -> None:
    lab.attack()
    neomutt.send_blocked()
    neomutt.send_blocked()
    assert len(lab.held()) == 1
    lab.restore()
    neomutt.send_delivered()  # the user presses send again: verified, sent directly by msmtp
    assert lab.held() == []  # its held copy went once msmtp had accepted it
    report = lab.flush()
    assert report["flushed"] == [] and report["exit_status"] == 0
    assert len(lab.delivered()) == 1


def test_neomutt_blocked_when_the_queue_cannot_hold_it_says_so(lab: Lab, neomutt: Neomutt) -> None:
    """The sibling of "safe in the queue": when it cannot be held, neomutt's user is told to keep it."""
    queue = lab.home / ".local" / "state" / "mailpin" / "queue"
    queue.parent.mkdir(parents=True, exist_ok=True)
    queue.write_text("not a directory")
    lab.attack()
    shown = flat(neomutt.send_blocked())
    assert flat("NOT held") in shown and flat("mail program still has it") in shown and "safein" not in shown
    neomutt.give_up()
    assert lab.delivered() == []


# -- git send-email ---------------------------------------------------------------------------------------


@pytest.fixture
def git_send_email(lab: Lab, tmp_path: Path) -> Callable[[], subprocess.CompletedProcess[bytes]]:
    git = need("git")
    exec_path = subprocess.run([git, "--exec-path"], capture_output=True, text=True, check=True).stdout.strip()
    if not (Path(exec_path) / "git-send-email").exists():
        need("git-send-email")  # skips, or fails under CI=true (tests/run installs git-email)
    who = {"GIT_AUTHOR_NAME": "Alice", "GIT_AUTHOR_EMAIL": "alice@example.org"}
    who |= {"GIT_COMMITTER_NAME": "Alice", "GIT_COMMITTER_EMAIL": "alice@example.org"}
    env = {**lab.env, **who, "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull}
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "fix.c").write_text("int fixed = 1;\n")
    for command in (["init", "-q"], ["add", "fix.c"], ["commit", "-q", "-m", "fix the thing"]):
        subprocess.run([git, *command], cwd=repo, env=env, check=True)
    patch = subprocess.run(
        [git, "format-patch", "-1", "-o", str(tmp_path)], cwd=repo, env=env, capture_output=True, text=True, check=True
    ).stdout.strip()
    send = [
        git, "send-email", "--to=bob@example.org", "--confirm=never", "--suppress-cc=all", "--quiet",
        f"--sendmail-cmd={lab.shims / 'msmtp'} --read-envelope-from", patch,
    ]  # fmt: skip

    def again() -> subprocess.CompletedProcess[bytes]:
        done = subprocess.run(send, cwd=repo, env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=120)
        time.sleep(1.1)  # git's next Date: and Message-ID: are a second later
        return done

    return again


def test_git_send_email_run_twice_under_attack_then_flushed_arrives_once(lab: Lab, git_send_email) -> None:  # type: ignore[no-untyped-def]
    lab.attack()
    first = git_send_email()
    assert first.returncode == BLOCKED and b"safe in mailpin's queue" in first.stderr, first.stderr
    held = lab.held()
    second = git_send_email()  # a new Date and a new Message-ID: the same patch
    assert second.returncode == BLOCKED and b"replacing the older copy" in second.stderr, second.stderr
    now_held = lab.held()
    assert len(now_held) == 1 and now_held[0]["message_id"] != held[0]["message_id"]
    lab.restore()
    report = lab.flush()
    assert [item["outcome"] for item in report["flushed"]] == ["sent"]  # type: ignore[index, union-attr]
    delivered = lab.delivered()
    assert len(delivered) == 1 and b"Subject: [PATCH] fix the thing" in delivered[0]
    assert _message_id(delivered[0]) == now_held[0]["message_id"]  # the latest copy: what was last sent
    assert lab.flush()["flushed"] == [] and len(lab.delivered()) == 1


def test_git_send_email_retry_after_the_server_is_restored_arrives_once(lab: Lab, git_send_email) -> None:  # type: ignore[no-untyped-def]
    lab.attack()
    assert git_send_email().returncode == BLOCKED
    assert len(lab.held()) == 1
    lab.restore()
    retry = git_send_email()
    assert retry.returncode == 0, retry.stderr
    assert lab.held() == []
    assert lab.flush()["flushed"] == []
    assert len(lab.delivered()) == 1


# -- fresh sends: never swallowed -------------------------------------------------------------------------

CRON = b"From: root <alice@example.org>\nTo: alice@example.org\nSubject: Cron <root@host> backup\n\nbackup: ok\n"


def test_the_same_bytes_sent_on_three_occasions_arrive_three_times(lab: Lab) -> None:
    """cron's nightly mail: no Message-ID, the same text every night (msmtp adds Message-ID and Date
    as it sends). Blocked and flushed, then sent normally, then blocked and flushed again."""
    send = ["msmtp", "-oi", "-t"]
    lab.attack()
    assert run(send, lab.env, CRON).returncode == BLOCKED
    lab.restore()
    assert lab.flush()["exit_status"] == 0
    night_two = run(send, lab.env, CRON)
    assert night_two.returncode == 0 and b"not sent again" not in night_two.stderr
    lab.attack()
    assert run(send, lab.env, CRON).returncode == BLOCKED
    lab.restore()
    assert lab.flush()["exit_status"] == 0
    delivered = lab.delivered()
    assert len(delivered) == 3 and all(content.endswith(b"backup: ok\r\n") for content in delivered)
    assert len({_message_id(content) for content in delivered}) == 3  # three messages, as msmtp made them


def test_a_retry_of_a_flushed_message_id_is_not_sent_twice_but_a_fresh_one_is(lab: Lab) -> None:
    """The one suppression: a mail program's retry of what a flush has just delivered (the same
    Message-ID and envelope). The same text under a new Message-ID is a new message and goes."""
    message = CRON.replace(b"\n\n", b"\nMessage-ID: <nightly-1@example.org>\n\n")
    send = ["msmtp", "-oi", "-t"]
    lab.attack()
    assert run(send, lab.env, message).returncode == BLOCKED
    lab.restore()
    assert lab.flush()["exit_status"] == 0
    retry = run(send, lab.env, message.replace(b"From:", b"Date: Mon, 30 Nov 2026 06:00:00 +0000\nFrom:"))
    assert retry.returncode == 0 and b"not sent again" in retry.stderr
    assert len(lab.delivered()) == 1
    fresh = run(send, lab.env, message.replace(b"nightly-1", b"nightly-2"))
    assert fresh.returncode == 0 and b"not sent again" not in fresh.stderr
    assert len(lab.delivered()) == 2


# -- honest reports -----------------------------------------------------------------------------------------


def test_flush_says_sent_only_when_msmtp_accepted_it(lab: Lab, tmp_path: Path) -> None:
    """msmtp's own failures are msmtp's: a fake msmtp that exits 69 (its status for a TLS failure)
    after a verified connection is reported as `failed`, never as mailpin's `blocked`, nor `sent`."""
    lab.attack()
    assert run(["msmtp", "-t"], lab.env, CRON).returncode == BLOCKED
    lab.restore()
    fake = tmp_path / "msmtp-fails"
    fake.write_text("#!/bin/sh\ncat >/dev/null\necho 'msmtp: TLS handshake failed: the server hung up' >&2\nexit 69\n")
    fake.chmod(0o755)
    config = lab.home / ".config" / "mailpin" / "config"
    config.write_text(f"[tools]\nmsmtp = {fake}\n")
    report = lab.flush()
    item = report["flushed"][0]  # type: ignore[index]
    assert (item["outcome"], item["status"]) == ("failed", 69)
    assert item["detail"] == "msmtp failed (status 69): msmtp: TLS handshake failed: the server hung up"
    assert len(lab.held()) == 1 and lab.held()[0]["state"] == "held" and lab.delivered() == []
    text = lab.mailpin("queue", "flush")
    assert b"msmtp failed (status 69)" in text.stdout and b"still held" in text.stdout and b"blocked" not in text.stdout
    config.unlink()
    assert lab.flush()["exit_status"] == 0 and len(lab.delivered()) == 1


def test_flush_reports_msmtps_own_refusal_with_its_status(lab: Lab) -> None:
    """The real msmtp refuses (a wrong password): `failed` with msmtp's status and words; still held."""
    lab.attack()
    assert run(["msmtp", "-t"], lab.env, CRON).returncode == BLOCKED
    lab.restore()
    rc = lab.home / ".msmtprc"
    good = rc.read_text()
    rc.write_text(good.replace("host localhost\n", "host localhost\nauth on\nuser test\npassword wrong\n"))
    bare = subprocess.run(["/usr/bin/msmtp", "-t"], input=CRON, capture_output=True, check=False, timeout=60)
    done = lab.mailpin("queue", "flush", "--json")
    item = json.loads(done.stdout)["flushed"][0]
    assert item["outcome"] == "failed" and item["status"] == bare.returncode == done.returncode != 0
    assert item["detail"].startswith(f"msmtp failed (status {bare.returncode}): msmtp: ")
    assert b"authentication failed" in done.stderr.lower()  # msmtp's own words, as it said them
    assert len(lab.held()) == 1 and lab.delivered() == []
    rc.write_text(good)
    assert lab.flush()["exit_status"] == 0 and len(lab.delivered()) == 1
