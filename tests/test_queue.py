"""The held-message queue (issue 5): real files on disk, exact bytes, one send per held message.

Flush is driven by a fake sender for its state machine (sent, refused, crashed, raced); the real
`mailpin run` → msmtp → SMTP server path is the last test.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import stat
import subprocess
import threading
import time
from collections import Counter
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from mailpin.cli import main
from mailpin.commands import queue as queue_command
from mailpin.commands.queue import Attempt
from mailpin.env import Env
from mailpin.errors import UsageError
from mailpin.state.identity import identify
from mailpin.state.queue import Held, Queue, QueueError, _encode, digest

# Data only: nothing here meets a certificate or the wall clock (the real-msmtp test takes its own).
T0 = datetime(2026, 11, 29, 18, 15, 0, tzinfo=timezone.utc)
ARGV = ("-oi", "-oem", "--", "rcpt@example.org")
MESSAGE = (
    b"From: Me <me@example.org>\r\nTo: Rcpt <rcpt@example.org>, other@example.org\r\nCc: cc@example.org\r\n"
    b"Subject: =?utf-8?q?Caf=C3=A9_=E2=82=AC?= report\r\n\r\nbody \xe9\xff 8-bit\r\n.\r\n..dots\r\nno CRLF at end"
)


def make_env(now: datetime = T0) -> Env:
    env = Env.from_os()  # HOME and XDG_* point into tmp_path (conftest.isolated_env)
    env.stdout, env.stderr, env.stdin = io.StringIO(), io.StringIO(), io.StringIO()
    env.now = lambda: now
    return env


@pytest.fixture
def env() -> Env:
    return make_env()


@pytest.fixture
def queue(env: Env) -> Queue:
    return Queue.for_env(env)


def hold(queue: Queue, message: bytes = MESSAGE, argv: tuple[str, ...] = ARGV, now: datetime = T0) -> Held:
    done = queue.hold(message, "msmtp", argv, ["msmtp:work"], ["key-changed"], "key changed", now)
    assert done.how == "new"
    return done.held


def files(queue: Queue) -> list[str]:
    # sent.json remembers digests of sent messages (the duplicate guard), not messages
    return sorted(name for name in os.listdir(queue.directory) if not name.endswith(".lock") and name != "sent.json")


def cli(env: Env, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    env.stdout, env.stderr = out, err
    code = main(list(argv), env)
    return code, out.getvalue(), err.getvalue()


# -- hold -------------------------------------------------------------------------------------------


def test_hold_writes_the_exact_bytes_and_metadata_in_private_files(queue: Queue, isolated_env: Path) -> None:
    held = hold(queue)
    # The documented digest: tool NUL, argument count NUL, each argument NUL, then the message.
    expected = hashlib.sha256(b"msmtp\x004\x00" + b"".join(arg.encode() + b"\0" for arg in ARGV) + MESSAGE)
    assert held.digest == expected.hexdigest()
    assert held.id == f"20261129T181500Z-{held.digest[:8]}"
    assert files(queue) == [f"{held.id}.eml", f"{held.id}.json"]
    assert (queue.directory / f"{held.id}.eml").read_bytes() == MESSAGE
    for name in files(queue):
        assert stat.S_IMODE((queue.directory / name).stat().st_mode) == 0o600
    state = isolated_env / ".local" / "state"
    for directory in (queue.directory, queue.directory.parent, state, state.parent):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory
    meta = json.loads((queue.directory / f"{held.id}.json").read_text())
    assert meta["version"] == 2 and meta["state"] == "held" and meta["argv"] == list(ARGV)
    assert meta["identity"] == list(identify("msmtp", ARGV, MESSAGE).keys) and meta["message_id"] == ""
    assert meta["held_at"] == "2026-11-29T18:15:00+00:00" and meta["size"] == len(MESSAGE)
    assert held.subject == "Café € report"
    assert held.recipients == ("rcpt@example.org", "other@example.org", "cc@example.org")
    assert queue.list() == [held] and queue.get(held.id) == held
    assert queue.message(held) == MESSAGE


def test_a_ten_megabyte_message_comes_back_byte_for_byte(queue: Queue) -> None:
    line = bytes(range(256)) + b"\r\n" + bytes(range(128, 256)) + b"\n"  # CRLF, bare LF, every byte value
    big = b"Subject: big\r\n\r\n" + line * (10_000_000 // len(line) + 1)
    held = hold(queue, big)
    assert held.size == len(big) > 10_000_000
    assert queue.message(queue.get(held.id)) == big


def test_subject_is_decoded_escaped_and_capped(queue: Queue) -> None:
    spoof = b"Subject: ok\x1b[2J\r\n  folded \xc3\xa9" + b" long" * 40 + b"\r\nTo: a@example.org\r\n\r\nbody"
    held = hold(queue, spoof)
    assert held.subject.startswith("ok\\x1b[2J folded é long") and "\x1b" not in held.subject
    assert len(held.subject) == 100 and held.subject.endswith("…")
    assert held.recipients == ("a@example.org",)
    bare = hold(queue, b"no headers at all, no blank line")
    assert (bare.subject, bare.recipients) == ("", ())


RETRY = (
    b"Date: Sun, 29 Nov 2026 18:15:00 +0000\r\nMessage-ID: <a1@example.org>\r\nFrom: me@example.org\r\n"
    b"To: rcpt@example.org\r\nSubject: retried\r\n\r\nthe text\r\n"
)


def test_the_same_message_is_held_once(queue: Queue) -> None:
    first = hold(queue, RETRY)
    again = queue.hold(RETRY, "msmtp", ARGV, ["msmtp:work"], ["expired"], "x", T0 + timedelta(hours=1))
    assert (again.held, again.how) == (first, "already")
    # neomutt's retry: a new Date. It replaces the held copy (the newest bytes are what the user sent last).
    later = RETRY.replace(b"18:15:00", b"18:16:00")
    neomutt = queue.hold(later, "msmtp", ARGV, [], [], "", T0 + timedelta(minutes=1))
    assert (neomutt.how, neomutt.replaced) == ("replaced", (first.id,))
    assert [entry.id for entry in queue.list()] == [neomutt.held.id] and queue.message(neomutt.held) == later
    # git send-email's retry: a new Date and a new Message-ID, the same text to the same envelope.
    git = later.replace(b"a1@", b"b2@").replace(b"18:16:00", b"18:17:00")
    assert queue.hold(git, "msmtp", ARGV, [], [], "", T0 + timedelta(minutes=2)).how == "replaced"
    # An edited retry (same Message-ID, new text) replaces it too: what the user last asked to send.
    edited = git.replace(b"the text", b"the text, corrected")
    assert queue.hold(edited, "msmtp", ARGV, [], [], "", T0 + timedelta(minutes=3)).how == "replaced"
    assert [queue.message(entry) for entry in queue.list()] == [edited]


def test_other_messages_are_held_apart(queue: Queue) -> None:
    first = hold(queue, RETRY)
    others = [
        hold(queue, RETRY, argv=("-oi", "--", "someone-else@example.org")),  # another envelope
        hold(queue, RETRY, argv=(*ARGV, "-f", "other@example.org")),  # another envelope-from
        hold(queue, RETRY.replace(b"a1@", b"c3@").replace(b"the text", b"other text")),  # another message
        hold(queue, RETRY.replace(b"Message-ID: <a1@example.org>\r\n", b"").replace(b"text", b"txt")),  # no Message-ID
    ]
    assert len({first.id, *(held.id for held in others)}) == 5 and len(queue.list()) == 5


def test_without_a_message_id_the_same_text_is_one_message(queue: Queue) -> None:
    cron = b"From: root\nTo: me@example.org\nSubject: backup report\n\nall good\n"
    first = hold(queue, cron)
    dated = queue.hold(b"Date: Mon, 30 Nov 2026 06:00:00 +0000\n" + cron, "msmtp", ARGV, [], [], "", T0)
    assert (dated.how, dated.replaced) == ("replaced", (first.id,))
    assert hold(queue, cron.replace(b"all good", b"disk full")).id != dated.held.id


def test_the_digest_does_not_confuse_argument_boundaries(queue: Queue) -> None:
    ids = {hold(queue, b"\0x", argv=()).id, hold(queue, b"x", argv=("",)).id, hold(queue, b"x", argv=("a b",)).id}
    ids.add(hold(queue, b"x", argv=("a", "b")).id)
    assert len(ids) == 4


def test_list_is_oldest_first(queue: Queue) -> None:
    late = hold(queue, b"Subject: late\n\nx", now=T0 + timedelta(minutes=5))
    early = hold(queue, b"Subject: early\n\nx", now=T0 - timedelta(days=1))
    middle = hold(queue, b"Subject: middle\n\nx", now=T0)
    assert [held.id for held in queue.list()] == [early.id, middle.id, late.id]


def test_get_and_drop(queue: Queue) -> None:
    held = hold(queue)
    assert queue.drop(held.id) == held
    assert files(queue) == []
    for bad in (held.id, "../../etc/passwd", "20261129T181500Z-"):
        with pytest.raises(UsageError, match=r"no held message \S+ \(see `mailpin queue list`\)"):
            queue.get(bad)
    with pytest.raises(UsageError):
        queue.drop(held.id)


def test_a_retry_sent_directly_takes_its_held_copies_once_the_tool_accepted_it(queue: Queue) -> None:
    held, other = hold(queue, RETRY), hold(queue, RETRY, argv=("-a", "home", "other@example.org"))
    identity = identify("msmtp", ARGV, RETRY.replace(b"18:15:00", b"18:20:00"))  # the retry: a new Date
    assert queue.matching(identity) == [held]
    with queue.locked():
        claimed = queue.claim_matching(identity)
        assert claimed == [held] and queue.get(held.id).state == "sending"
        assert queue.settle(claimed, False, T0) == []  # the tool refused it: held again, as it was
    assert queue.get(held.id).state == "held"
    with queue.locked():
        claimed = queue.claim_matching(identity)
        assert queue.settle(claimed, True, T0) == [held.id]
    assert queue.list() == [other]
    # Not sent from the queue by a flush: a later send of the same Message-ID is never suppressed.
    assert queue.delivered(identity, T0) is None


def test_a_retry_also_takes_a_copy_an_interrupted_send_left_sending(queue: Queue) -> None:
    held = hold(queue, RETRY)
    queue.mark(held.id, "sending")
    identity = identify("msmtp", ARGV, RETRY)
    with queue.locked():
        claimed = queue.claim_matching(identity)
        queue.settle(claimed, False, T0)
    assert queue.get(held.id).state == "sending"  # still "may have gone out"
    with queue.locked():
        assert queue.settle(queue.claim_matching(identity), True, T0) == [held.id]
    assert queue.list() == []


def test_only_a_message_id_delivered_by_a_flush_within_the_window_is_suppressed(queue: Queue) -> None:
    from mailpin.state.queue import DELIVERED_WINDOW

    held = hold(queue, RETRY)
    with queue.locked():
        queue.settle([queue.claim(held.id)], True, T0, by_flush=True)
    retry = identify("msmtp", ARGV, RETRY.replace(b"18:15:00", b"18:19:00"))
    assert queue.delivered(retry, T0 + DELIVERED_WINDOW) == T0
    assert queue.delivered(retry, T0 + DELIVERED_WINDOW + timedelta(seconds=1)) is None
    assert queue.delivered(retry, T0 - timedelta(seconds=1)) is None  # a clock that went back: no memory
    other_envelope = identify("msmtp", ("-oi", "--", "someone-else@example.org"), RETRY)
    assert queue.delivered(other_envelope, T0) is None
    # git's retry (a new Message-ID) and a message without one are never suppressed.
    assert queue.delivered(identify("msmtp", ARGV, RETRY.replace(b"a1@", b"b2@")), T0) is None
    cron = b"To: rcpt@example.org\n\nsame text\n"
    cron_held = hold(queue, cron)
    with queue.locked():
        queue.settle([queue.claim(cron_held.id)], True, T0, by_flush=True)
    assert queue.delivered(identify("msmtp", ARGV, cron), T0) is None


def test_an_incomplete_hold_is_ignored_then_cleaned_up(queue: Queue) -> None:
    held = hold(queue)
    queue.drop(held.id)
    (queue.directory / f"{held.id}.eml").write_bytes(MESSAGE)  # a crash between the two files
    (queue.directory / f".{held.id}.json.0123456789ab.tmp").write_bytes(b"{")
    assert queue.scan() == ([], [])
    assert queue_command.flush(make_env(), sender=_never).flushed == ()
    again = hold(queue, now=T0 + timedelta(seconds=30))
    assert files(queue) == [f"{again.id}.eml", f"{again.id}.json"]


def test_unreadable_entries_are_reported_not_listed(queue: Queue, env: Env) -> None:
    good, corrupt, lost, cut = hold(queue), hold(queue, b"2"), hold(queue, b"3"), hold(queue, b"four")
    (queue.directory / f"{corrupt.id}.json").write_text('{"version": 1, "id": "')
    (queue.directory / f"{lost.id}.eml").unlink()
    (queue.directory / f"{cut.id}.eml").write_bytes(b"fo")
    entries, problems = queue.scan()
    assert entries == [good]
    assert len(problems) == 3
    assert any(f"{corrupt.id}.json: corrupt (not JSON)" in problem for problem in problems)
    assert any(f"{lost.id}.eml" in problem for problem in problems)
    assert any(f"{cut.id}.eml: 2 bytes, 4 were held" in problem for problem in problems)
    code, out, err = cli(env, "queue")
    assert code == 0 and good.id in out and corrupt.id not in out
    assert err.count("mailpin: ") == 3 and f"{corrupt.id}.json" in err


def test_a_changed_message_is_not_returned(queue: Queue) -> None:
    held = hold(queue)
    (queue.directory / f"{held.id}.eml").write_bytes(MESSAGE.replace(b"report", b"rep0rt"))
    with pytest.raises(QueueError, match="changed since it was held"):
        queue.message(held)


@pytest.mark.parametrize("failing_call", [1, 2, 3, 4])
def test_a_full_disk_leaves_nothing_behind(queue: Queue, monkeypatch: pytest.MonkeyPatch, failing_call: int) -> None:
    # fsync calls of one hold: the .eml, the directory, the .json, the directory.
    hold(queue, b"already there")
    before = files(queue)
    calls = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        calls.append(fd)
        if len(calls) == failing_call:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(QueueError, match=f"{queue.directory}: cannot hold the message: No space left") as caught:
        queue.hold(MESSAGE, "msmtp", ARGV, [], [], "", T0)
    assert caught.value.exit_status == 75
    assert files(queue) == before


def test_a_short_write_then_enospc_leaves_nothing_behind(queue: Queue, monkeypatch: pytest.MonkeyPatch) -> None:
    real_write = os.write

    def write(fd: int, data: bytes | memoryview) -> int:
        if len(data) > 1000:
            return real_write(fd, bytes(data[:1000]))  # a short write, then the disk is full
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "write", write)
    with pytest.raises(QueueError, match="No space left on device"):
        queue.hold(MESSAGE * 100, "msmtp", ARGV, [], [], "", T0)
    assert files(queue) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_a_read_only_queue_refuses_to_hold(queue: Queue) -> None:
    hold(queue, b"x")
    queue.directory.chmod(0o500)
    try:
        with pytest.raises(QueueError, match="Permission denied"):
            queue.hold(MESSAGE, "msmtp", ARGV, [], [], "", T0)
    finally:
        queue.directory.chmod(0o700)
    assert len(files(queue)) == 2


def test_an_unusable_state_directory_refuses_to_hold(queue: Queue) -> None:
    queue.directory.parent.mkdir(parents=True)
    queue.directory.write_bytes(b"")  # not a directory: as root too, unlike a read-only one
    with pytest.raises(QueueError, match=f"{queue.directory}: cannot create the queue directory: File exists"):
        queue.hold(MESSAGE, "msmtp", ARGV, [], [], "", T0)
    assert queue.directory.read_bytes() == b""


def test_mark_rewrites_the_state_atomically(queue: Queue) -> None:
    held = hold(queue)
    assert queue.mark(held.id, "sending").state == "sending"
    assert queue.get(held.id).state == "sending"
    assert stat.S_IMODE((queue.directory / f"{held.id}.json").stat().st_mode) == 0o600
    assert files(queue) == [f"{held.id}.eml", f"{held.id}.json"]  # no temp file left
    with pytest.raises(ValueError, match="unknown state"):
        queue.mark(held.id, "sent")


# -- flush ------------------------------------------------------------------------------------------


def _never(held: Held, message: bytes) -> Attempt:
    raise AssertionError(f"{held.id} must not be sent")


_OUTCOME = {0: "sent", 69: "blocked", 75: "unverified", 78: "config"}


class FakeSender:
    """Answers each send with the next status; records what it was given and the state on disk meanwhile."""

    def __init__(self, queue: Queue, *statuses: int, delay: float = 0.0) -> None:
        self.queue, self.statuses, self.delay = queue, list(statuses), delay
        self.sent: list[tuple[str, bytes, str]] = []
        self.lock = threading.Lock()

    def __call__(self, held: Held, message: bytes) -> Attempt:
        with self.lock:
            self.sent.append((held.id, message, self.queue.get(held.id).state))
            status = self.statuses.pop(0) if self.statuses else 0
        time.sleep(self.delay)
        outcome = _OUTCOME.get(status, "failed")
        return Attempt(outcome, status, f"msmtp failed (status {status})" if outcome == "failed" else f"why {status}")


def test_flush_sends_each_held_message_once_and_removes_it(queue: Queue, env: Env) -> None:
    first, second = hold(queue, b"1", now=T0), hold(queue, b"2", now=T0 + timedelta(seconds=1))
    sender = FakeSender(queue)
    result = queue_command.flush(env, sender=sender)
    assert sender.sent == [(first.id, b"1", "sending"), (second.id, b"2", "sending")]  # oldest first, exact bytes
    assert [item.outcome for item in result.flushed] == ["sent", "sent"] and result.exit_status == 0
    assert files(queue) == []
    assert queue_command.flush(env, sender=_never).flushed == ()


@pytest.mark.parametrize(
    ("statuses", "outcomes", "exit_status", "said"),
    [
        ([69], ["blocked"], 69, "blocked: why 69; still held"),
        ([75], ["unverified"], 75, "could not verify: why 75; still held"),
        ([1], ["failed"], 1, "msmtp failed (status 1); still held"),
        ([0, 1, 75, 69], ["sent", "failed", "unverified", "blocked"], 69, "sent"),
        ([1, 75, 0], ["failed", "unverified", "sent"], 75, "sent"),
    ],
)
def test_a_refused_send_stays_held_and_the_worst_status_wins(
    queue: Queue, env: Env, statuses: list[int], outcomes: list[str], exit_status: int, said: str
) -> None:
    entries = [hold(queue, str(n).encode(), now=T0 + timedelta(seconds=n)) for n in range(len(statuses))]
    result = queue_command.flush(env, sender=FakeSender(queue, *statuses))
    assert [item.outcome for item in result.flushed] == outcomes
    assert result.exit_status == exit_status
    assert said in queue_command.flush_text(result)
    still = [held.id for held, status in zip(entries, statuses, strict=True) if status]
    assert [held.id for held in queue.list()] == still
    assert {held.state for held in queue.list()} <= {"held"}


def test_an_interrupted_send_is_never_sent_again_without_force(queue: Queue, env: Env) -> None:
    held = hold(queue)

    def crash(entry: Held, message: bytes) -> Attempt:
        raise RuntimeError("killed mid-send")

    with pytest.raises(RuntimeError):
        queue_command.flush(env, sender=crash)
    assert queue.get(held.id).state == "sending"

    result = queue_command.flush(env, sender=_never)  # a plain flush: reported, not sent, not a failure
    assert [(item.outcome, item.status) for item in result.flushed] == [("skipped", 0)]
    assert "may have gone out" in queue_command.flush_text(result)
    named = queue_command.flush(env, [held.id], sender=_never)  # named without --force: not sent, not 0
    assert named.exit_status == 2
    with pytest.raises(UsageError, match="name them"):
        queue_command.flush(env, force=True, sender=_never)

    sender = FakeSender(queue)
    assert queue_command.flush(env, [held.id], force=True, sender=sender).exit_status == 0
    assert [id for id, _, _ in sender.sent] == [held.id]
    assert files(queue) == []


def test_flush_of_named_ids_sends_only_those(queue: Queue, env: Env) -> None:
    one, two = hold(queue, b"1"), hold(queue, b"2")
    sender = FakeSender(queue)
    assert queue_command.flush(env, [two.id], sender=sender).exit_status == 0
    assert [id for id, _, _ in sender.sent] == [two.id]
    assert queue.list() == [one]
    with pytest.raises(UsageError, match="no held message"):
        queue_command.flush(env, [one.id, two.id], sender=_never)  # unknown ID: nothing is sent
    assert queue.list() == [one]


def test_two_concurrent_flushes_never_send_one_message_twice(queue: Queue) -> None:
    for n in range(4):
        hold(queue, f"message {n}".encode(), now=T0 + timedelta(seconds=n))
    sender = FakeSender(queue, delay=0.05)
    errors: list[BaseException] = []

    def flush() -> None:
        try:
            queue_command.flush(make_env(), sender=sender)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=flush) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors
    assert sorted(Counter(id for id, _, _ in sender.sent).values()) == [1, 1, 1, 1]
    assert files(queue) == []


def test_a_retry_waits_for_a_running_flush_at_most_as_long_as_it_is_told(queue: Queue) -> None:
    from mailpin.state.queue import Busy

    with queue.locked():
        started = time.monotonic()
        busy = pytest.raises(Busy, match="mailpin queue flush is sending held messages; try again")
        with busy as caught, queue.locked(0.3):
            pass
        assert 0.3 <= time.monotonic() - started < 5 and caught.value.exit_status == 75
    with queue.locked(0.3):  # free again: taken at once
        pass


def test_a_blocked_retry_of_a_message_a_flush_is_sending_is_not_held_again(queue: Queue) -> None:
    held = hold(queue, RETRY)
    retry = RETRY.replace(b"18:15:00", b"18:15:30")
    with queue.locked():
        queue.claim(held.id)
        done = queue.hold(retry, "msmtp", ARGV, [], [], "", T0)  # from another process, in real life
        assert (done.how, done.held.id) == ("sending", held.id)
        queue.settle([held], False, T0)  # the flush's send was refused: it stays held
    assert [entry.id for entry in queue.list()] == [held.id]
    # The same, once no flush is running: an entry left `sending` was interrupted; the retry is held
    # beside it (the interrupted one may have gone out: the user decides).
    queue.mark(held.id, "sending")
    again = queue.hold(retry, "msmtp", ARGV, [], [], "", T0)
    assert again.how == "new" and len(queue.list()) == 2


def test_a_hold_does_not_wait_for_a_running_flush(queue: Queue) -> None:
    with queue.locked():
        done: list[Held] = []
        thread = threading.Thread(target=lambda: done.append(hold(queue)))
        thread.start()
        thread.join(timeout=10)
        assert done, "hold waited for the flush lock"


def test_a_flush_sends_one_copy_of_a_message_held_twice(queue: Queue, env: Env) -> None:
    """Two entries of one message (a crash between a replacement and the removal of the copy it
    replaced, or an entry written by an older mailpin): one goes out, the other goes with it."""
    first = hold(queue, RETRY)
    later = RETRY.replace(b"18:15:00", b"18:16:00")
    key = digest("msmtp", ARGV, later)
    copy = replace(first, id=f"20261129T181600Z-{key[:8]}", held_at=T0 + timedelta(minutes=1), digest=key)
    (queue.directory / f"{copy.id}.eml").write_bytes(later)
    (queue.directory / f"{copy.id}.json").write_bytes(_encode(copy))
    assert len(queue.list()) == 2
    sender = FakeSender(queue)
    result = queue_command.flush(env, sender=sender)
    assert [id for id, _, _ in sender.sent] == [first.id]
    assert [item.outcome for item in result.flushed] == ["sent", "gone"]
    assert f"the same message as {first.id}, sent just now" in queue_command.flush_text(result)
    assert queue.list() == []


# -- command line -----------------------------------------------------------------------------------


def test_cli_list_drop_and_json(queue: Queue, monkeypatch: pytest.MonkeyPatch) -> None:
    env = make_env(T0 + timedelta(hours=2, minutes=5))
    assert cli(env, "queue") == (0, "no held messages\n", "")
    held = hold(queue)
    code, out, _ = cli(env, "queue", "list")
    assert code == 0
    assert out == f'{held.id}  2h  msmtp  msmtp:work  key-changed  {len(MESSAGE)} B  held  "Café € report"\n'
    for argv in (["queue", "--json"], ["queue", "list", "--json"]):
        code, out, _ = cli(env, *argv)
        data = json.loads(out)
        assert code == 0 and data["version"] == 1 and data["problems"] == []
        assert data["held"][0]["id"] == held.id and data["held"][0]["argv"] == list(ARGV)

    code, out, err = cli(env, "queue", "drop", held.id, "20991231T000000Z-00000000")
    assert (code, out) == (2, "") and "no held message 20991231T000000Z-00000000" in err
    assert queue.list() == [held]  # one unknown ID: nothing dropped
    assert cli(env, "queue", "drop", held.id) == (0, f'{held.id} "Café € report": dropped\n', "")
    assert queue.list() == []


def test_cli_flush(queue: Queue, monkeypatch: pytest.MonkeyPatch) -> None:
    env = make_env()
    held = hold(queue)
    sender = FakeSender(queue, 69)
    monkeypatch.setattr(queue_command, "tool_sender", lambda _: sender)
    code, out, _ = cli(env, "queue", "flush", "--json")
    assert code == 69
    assert json.loads(out)["flushed"] == [{"id": held.id, "outcome": "blocked", "status": 69, "detail": "why 69"}]
    code, out, _ = cli(env, "queue", "flush")
    assert (code, out) == (0, f'{held.id} "Café € report": sent\n')
    assert cli(env, "queue", "flush", "--force")[0] == 2


# -- end to end: real msmtp, real SMTP server -------------------------------------------------------


def test_flush_delivers_a_held_message_once_through_real_msmtp(isolated_env: Path, pki, smtp_server) -> None:
    from tests.conftest import need
    from tests.lab.counting import CountingServer
    from tests.test_pins_real import write_msmtprc

    msmtp = need("msmtp")
    with CountingServer(smtp_server.smtps_port) as counting:
        write_msmtprc(isolated_env, pki.ca_pem, {"smtps": (counting.port, False)})
        now = datetime.now(timezone.utc)  # the clock the lab certificates were made with: any date
        env = make_env(now)
        assert cli(env, "init", "--yes")[0] == 0
        argv = ("-a", "smtps", "-oi", "rcpt@example.org")
        # With Date and Message-ID present msmtp adds no header: what arrives is what was held.
        message = (
            b"Date: Sun, 29 Nov 2026 18:15:00 +0000\r\nMessage-ID: <held@example.org>\r\nFrom: me@example.org\r\n"
            b"To: rcpt@example.org\r\nSubject: held\r\n\r\nline\r\n.dot\r\n\xe9\r\n"
        )
        queue = Queue.for_env(env)
        held = queue.hold(message, "msmtp", argv, ["msmtp:smtps"], ["ca-changed"], "foreign CA", now).held
        before = len(smtp_server.received())

        smtp_server.serve("foreign-ca")
        code, out, err = cli(env, "queue", "flush")
        assert code == 69, (out, err)
        assert f'{held.id} "held": blocked: msmtp:smtps: ' in out and out.endswith(
            "[untrusted-chain, ca-changed]; still held\n"
        )
        assert [entry.id for entry in queue.list()] == [held.id]
        assert queue.get(held.id).state == "held" and len(smtp_server.received()) == before

        smtp_server.serve("good")
        counting.connections = 0
        code, out, err = cli(env, "queue", "flush")
        assert (code, out) == (0, f'{held.id} "held": sent\n'), err
        assert counting.settled() == 1  # the verified session carried it: no second connection (issue 19)
        delivered = smtp_server.received()[before:]
        assert len(delivered) == 1 and queue.list() == []

        # What bare msmtp delivers for the same bytes and argv: the same content.
        bare = _bare_msmtp(msmtp, argv, message, isolated_env)
        assert bare.returncode == 0, bare.stderr
        assert len(smtp_server.received()) == before + 2
        assert delivered[0][2] == smtp_server.received()[-1][2] == message

        code, out, _ = cli(env, "queue", "flush")
        assert (code, out) == (0, "no held messages\n") and len(smtp_server.received()) == before + 2


def _bare_msmtp(msmtp: str, argv: tuple[str, ...], message: bytes, home: Path) -> subprocess.CompletedProcess[bytes]:
    from tests.conftest import clock_environ  # msmtp on the suite's clock, as the lab certificates are

    environ = {**clock_environ(), "PATH": os.environ.get("PATH", os.defpath), "HOME": str(home), "LC_ALL": "C"}
    return subprocess.run([msmtp, *argv], input=message, capture_output=True, timeout=30, env=environ, check=False)
