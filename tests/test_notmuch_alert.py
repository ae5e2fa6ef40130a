"""The notmuch alert against the real notmuch: the message is valid RFC 5322 whatever the account
name or reason holds, `notmuch insert` indexes it with the configured tags where `notmuch show`
renders it, and every way it can fail is a `NotmuchAlertError` of one line.

The `notmuch2` bindings cannot be installed here (the PyPI package builds against libnotmuch-dev,
Debian's python3-notmuch2 serves only Debian's python3): their path is tested with a recording
stand-in module, which shows the selection, the Maildir delivery and the tag changes.
"""

from __future__ import annotations

import email
import email.policy
import json
import os
import signal
import subprocess
import sys
import threading
import time
import types
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailpin.errors import MailpinError
from mailpin.notify import notmuch
from mailpin.notify.notmuch import DEFAULT_TAGS, NotmuchAlertError, alert_message, insert, user_address
from tests.conftest import need

# Data only: the alert's Date header; nothing compares it with the clock.
NOW = datetime(2026, 11, 29, 17, 3, 12, tzinfo=timezone(timedelta(hours=1)))
SUBJECT = "[mailpin] blocked: msmtp:work — certificate from a different CA"
BODY = (
    "mailpin blocked msmtp:work (smtp.example.org:465).\n\n  mailpin review msmtp:work\n  mailpin accept msmtp:work\n"
)
INJECTIONS = [f"{newline}Bcc: victim@example.org" for newline in ("\r\n", "\n", "\r", "\u2028", "\x85", "\r\n\r\n")]


def parse(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def run_notmuch(*args: str, stdin: bytes = b"") -> str:
    done = subprocess.run(["notmuch", *args], input=stdin, capture_output=True, check=True, timeout=30)
    return done.stdout.decode()


def tags_of(message_id: str) -> set[str]:
    [found] = json.loads(run_notmuch("search", "--format=json", f"id:{message_id}"))
    return set(found["tags"])


def bare_id(raw: bytes) -> str:
    return str(parse(raw)["Message-ID"]).strip("<>")


@pytest.fixture
def mail_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A notmuch user: NOTMUCH_CONFIG, a Maildir as database.path, the database made by `notmuch new`."""
    need("notmuch")
    for name in ("NOTMUCH_PROFILE", "NOTMUCH_DATABASE", "MAILDIR", "EMAIL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setitem(sys.modules, "notmuch2", None)  # the CLI, even where the bindings are installed
    root = tmp_path / "mail"
    for sub in ("cur", "new", "tmp"):
        (root / sub).mkdir(parents=True)
    config = tmp_path / "notmuch-config"
    config.write_text(f"[database]\npath={root}\n[new]\ntags=unread;inbox;\n")
    monkeypatch.setenv("NOTMUCH_CONFIG", str(config))
    run_notmuch("new")
    run_notmuch("config", "set", "user.primary_email", "user@example.org")
    return root


# --- the message ---------------------------------------------------------------------------------


def test_the_alert_is_a_well_formed_message() -> None:
    raw = alert_message("msmtp:work", "certificate from a different CA", BODY, NOW, to="user@example.org")
    message = parse(raw)

    assert raw.isascii()  # 7-bit clean: RFC 2047 in the subject, quoted-printable in the body
    assert not message.defects
    assert all(not message[name].defects for name in message)
    assert message["Subject"] == SUBJECT
    assert b"=?utf-8?" in raw.split(b"\n\n", 1)[0]  # the em dash really is encoded, not raw UTF-8
    assert message["From"].addresses[0].display_name == "mailpin"
    assert message["From"].addresses[0].addr_spec == "mailpin@localhost"
    assert message["To"].addresses[0].addr_spec == "user@example.org"
    assert email.utils.parsedate_to_datetime(message["Date"]) == NOW
    assert message["Message-ID"].startswith("<") and message["Message-ID"].endswith("@mailpin.invalid>")
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["X-Mailpin-Account"] == "msmtp:work"
    assert message["MIME-Version"] == "1.0"
    assert message.get_content_type() == "text/plain"
    assert message.get_content_charset() == "utf-8"
    assert message.get_content() == BODY


def test_without_an_address_the_alert_is_to_mailpin_itself() -> None:
    for to in (None, "", "not an address", "a@b, c@d", "jörg@example.org", "a@", "<a@b>"):
        message = parse(alert_message("msmtp:work", "x", BODY, NOW, to=to))
        assert message["To"].addresses[0].addr_spec == "mailpin@localhost", to


def test_message_ids_are_unique() -> None:
    ids = {parse(alert_message("msmtp:work", "x", BODY, NOW))["Message-ID"] for _ in range(50)}
    assert len(ids) == 50


def test_a_naive_time_is_dated_as_unknown_zone() -> None:
    message = parse(alert_message("a", "b", BODY, datetime(2026, 11, 29, 17, 3, 12)))
    assert message["Date"].endswith("-0000")
    assert email.utils.parsedate_to_datetime(message["Date"]).replace(tzinfo=None) == datetime(2026, 11, 29, 17, 3, 12)


@pytest.mark.parametrize("injection", INJECTIONS)
def test_server_text_cannot_add_a_header(injection: str) -> None:
    raw = alert_message(f"msmtp:work{injection}", f"reason{injection}", BODY, NOW, to=f"user@example.org{injection}")
    message = parse(raw)

    assert "Bcc" not in message
    assert not any(line.lower().startswith(b"bcc:") for line in raw.splitlines())
    assert sorted(message.keys()) == sorted(
        ["From", "To", "Date", "Message-ID", "Subject", "Auto-Submitted", "X-Mailpin-Account", "Content-Type",
         "Content-Transfer-Encoding", "MIME-Version"]
    )  # fmt: skip
    assert (
        message["Subject"] == "[mailpin] blocked: msmtp:work Bcc: victim@example.org — reason Bcc: victim@example.org"
    )
    assert message["To"].addresses[0].addr_spec == "mailpin@localhost"  # "address Bcc: …" is no address
    assert message.get_content() == BODY


def test_escapes_and_bidi_overrides_do_not_reach_the_subject() -> None:
    message = parse(alert_message("msmtp:\x1b[31mwork\u202e", "a\x00b\tc", BODY, NOW))
    assert message["Subject"] == "[mailpin] blocked: msmtp: [31mwork — a b c"


def test_a_huge_reason_is_cut() -> None:
    message = parse(alert_message("msmtp:work", "x" * 10_000, BODY, NOW))
    assert len(message["Subject"]) < 250
    assert message["Subject"].endswith("…")


def _expected_body(body: str) -> str:
    body = body.replace("\r\n", "\n").replace("\r", "\n")
    return body if body.endswith("\n") else body + "\n"


@settings(max_examples=300, deadline=None)
@given(account=st.text(), what=st.text(), body=st.text())
def test_any_text_gives_one_valid_message(account: str, what: str, body: str) -> None:
    raw = alert_message(account, what, body, NOW)
    message = parse(raw)

    assert raw.isascii()
    assert not message.defects
    assert len(message.keys()) == 10
    subject = message["Subject"]
    assert subject.startswith("[mailpin] blocked: ")
    assert subject.isprintable()
    assert message["X-Mailpin-Account"].isprintable()
    assert message.get_content() == _expected_body(body)  # line ends become LF, as in a Maildir file


# --- the user's address --------------------------------------------------------------------------


def test_user_address_is_the_configured_one(mail_root: Path) -> None:
    assert user_address(dict(os.environ)) == "user@example.org"


def test_user_address_is_none_when_unset(mail_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run_notmuch("config", "set", "user.primary_email")  # no value: removes it
    assert run_notmuch("config", "get", "user.primary_email").strip()  # notmuch itself makes one up (user@host)
    assert user_address(dict(os.environ)) is None
    # … but it takes $EMAIL, as notmuch does
    assert user_address({**os.environ, "EMAIL": "me@example.net"}) == "me@example.net"


def test_user_address_is_none_without_config_or_notmuch(tmp_path: Path) -> None:
    need("notmuch")
    assert user_address({**os.environ, "NOTMUCH_CONFIG": str(tmp_path / "missing")}) is None
    assert user_address({**os.environ, "PATH": str(tmp_path)}) is None


# --- notmuch insert ------------------------------------------------------------------------------


def test_insert_indexes_the_alert_with_the_default_tags(mail_root: Path) -> None:
    raw = alert_message("msmtp:work", "certificate from a different CA", BODY, NOW, to="user@example.org")

    assert insert(raw, DEFAULT_TAGS, dict(os.environ)) == "notmuch insert"

    message_id = bare_id(raw)
    assert run_notmuch("search", "--output=messages", "tag:mailpin").split() == [f"id:{message_id}"]
    assert tags_of(message_id) == {"mailpin", "inbox", "unread"}
    assert run_notmuch("dump", f"id:{message_id}").splitlines()[-1] == f"+inbox +mailpin +unread -- id:{message_id}"
    assert run_notmuch("show", "--format=raw", f"id:{message_id}").encode() == raw
    shown = run_notmuch("show", f"id:{message_id}")
    assert f"Subject: {SUBJECT}" in shown
    assert "mailpin review msmtp:work" in shown and "mailpin accept msmtp:work" in shown
    # the file: in the `mailpin` folder, new/, readable by the user only
    [path] = run_notmuch("search", "--output=files", f"id:{message_id}").split()
    assert Path(path).parent == mail_root / "mailpin" / "new"
    assert Path(path).stat().st_mode & 0o077 == 0
    assert run_notmuch("count", "folder:mailpin").strip() == "1"


def test_the_rendered_body_is_the_review_text(mail_root: Path) -> None:
    body = "Pinned: CA ISRG Root X1\nLive: CA Evil Corp — não confiável\n\n  mailpin review msmtp:work\n"
    raw = alert_message("msmtp:work", "certificate from a different CA", body, NOW)
    insert(raw, DEFAULT_TAGS, dict(os.environ))

    part = json.loads(run_notmuch("show", "--format=json", "--part=1", f"id:{bare_id(raw)}"))
    assert part["content-type"] == "text/plain"
    assert part["content"] == body


def test_custom_tags_follow_new_tags(mail_root: Path) -> None:
    run_notmuch("config", "set", "new.tags", "new", "unread", "inbox")
    raw = alert_message("mbsync:home", "certificate with a different key", BODY, NOW)

    insert(raw, ("+mailpin", "+security", "-inbox"), dict(os.environ))

    assert tags_of(bare_id(raw)) == {"new", "unread", "mailpin", "security"}  # new.tags, then ours: -inbox wins


def test_a_tag_change_that_looks_like_an_option_stays_a_tag_change(mail_root: Path) -> None:
    raw = alert_message("a", "b", BODY, NOW)
    insert(raw, ("--world-readable", "+mailpin"), dict(os.environ))  # removes the tag "-world-readable"

    [path] = run_notmuch("search", "--output=files", f"id:{bare_id(raw)}").split()
    assert Path(path).stat().st_mode & 0o077 == 0
    assert tags_of(bare_id(raw)) == {"mailpin", "inbox", "unread"}


def test_insert_into_the_top_level_of_a_maildir_root(mail_root: Path) -> None:
    raw = alert_message("msmtp:work", "x", BODY, NOW)
    insert(raw, DEFAULT_TAGS, dict(os.environ), folder="")
    [path] = run_notmuch("search", "--output=files", f"id:{bare_id(raw)}").split()
    assert Path(path).parent == mail_root / "new"


def test_a_root_of_maildirs_gets_the_alert_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The usual mbsync layout: ~/Mail/work/INBOX/… — the root is no Maildir, so notmuch cannot
    deliver to its top level; the `mailpin` folder is made for the alert."""
    need("notmuch")
    monkeypatch.setitem(sys.modules, "notmuch2", None)
    root = tmp_path / "Mail"
    for sub in ("cur", "new", "tmp"):
        (root / "work" / "INBOX" / sub).mkdir(parents=True)
    (tmp_path / "config").write_text(f"[database]\npath={root}\n")
    monkeypatch.setenv("NOTMUCH_CONFIG", str(tmp_path / "config"))
    run_notmuch("new")
    raw = alert_message("mbsync:work", "x", BODY, NOW)

    with pytest.raises(NotmuchAlertError, match=r"notmuch insert failed: open '.*/tmp/.*': No such file"):
        insert(raw, DEFAULT_TAGS, dict(os.environ), folder="")
    assert insert(raw, DEFAULT_TAGS, dict(os.environ)) == "notmuch insert"
    assert run_notmuch("count", f"id:{bare_id(raw)} and tag:mailpin and folder:mailpin").strip() == "1"
    assert sorted(p.name for p in (root / "mailpin").iterdir()) == ["cur", "new", "tmp"]


@pytest.mark.parametrize("tags", [("mailpin",), ("+",), ("+a b",), ("+a\nb",), "+mailpin", ("+mailpin", "")])
def test_bad_tags_are_refused_before_notmuch_runs(mail_root: Path, tags: Any) -> None:
    with pytest.raises(NotmuchAlertError, match=r"^notmuch alert: .*tag"):
        insert(alert_message("a", "b", BODY, NOW), tags, dict(os.environ))
    assert run_notmuch("count", "*").strip() == "0"


@pytest.mark.parametrize("folder", ["../outside", "/abs", "a/../../b", "a//b", "."])
def test_bad_folders_are_refused(mail_root: Path, folder: str) -> None:
    with pytest.raises(NotmuchAlertError, match="is not a folder under the mail root"):
        insert(alert_message("a", "b", BODY, NOW), DEFAULT_TAGS, dict(os.environ), folder=folder)
    assert not (mail_root.parent / "outside").exists()


def test_no_notmuch_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    need("notmuch")
    monkeypatch.setitem(sys.modules, "notmuch2", None)
    monkeypatch.setenv("NOTMUCH_CONFIG", str(tmp_path / "no-such-config"))
    with pytest.raises(NotmuchAlertError) as caught:
        insert(alert_message("a", "b", BODY, NOW), DEFAULT_TAGS, dict(os.environ))
    assert str(caught.value) == "notmuch insert failed: cannot load config file."
    assert isinstance(caught.value, MailpinError)


def test_no_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    need("notmuch")
    monkeypatch.setitem(sys.modules, "notmuch2", None)
    root = tmp_path / "mail"
    root.mkdir()
    (tmp_path / "config").write_text(f"[database]\npath={root}\n")
    monkeypatch.setenv("NOTMUCH_CONFIG", str(tmp_path / "config"))
    with pytest.raises(NotmuchAlertError, match=r"^notmuch insert failed: Cannot open database at .*\.notmuch"):
        insert(alert_message("a", "b", BODY, NOW), DEFAULT_TAGS, dict(os.environ))
    assert list(root.iterdir()) == []  # nothing delivered either


def test_notmuch_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "notmuch2", None)
    with pytest.raises(NotmuchAlertError, match=r"^notmuch insert: notmuch is not installed \(not found on PATH\)$"):
        insert(alert_message("a", "b", BODY, NOW), DEFAULT_TAGS, {**os.environ, "PATH": str(tmp_path)})


def _post_insert_hook(root: Path, script: str) -> None:
    hook = root / ".notmuch" / "hooks" / "post-insert"
    hook.parent.mkdir(parents=True, exist_ok=True)
    hook.write_text(f"#!/bin/sh\n{script}\n")
    hook.chmod(0o755)


@contextmanager
def _reaping(pid_file: Path) -> Iterator[None]:
    """Stop the process a hook left behind (its pid in PID_FILE), whatever the test did."""
    try:
        yield
    finally:
        if pid_file.exists():
            try:
                os.kill(int(pid_file.read_text()), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass


def test_a_hanging_post_insert_hook_is_stopped_at_the_timeout(mail_root: Path, tmp_path: Path) -> None:
    pid_file = tmp_path / "hook.pid"
    _post_insert_hook(mail_root, f'echo $$ > "{pid_file}"\nexec sleep 60')
    with _reaping(pid_file):
        started = time.monotonic()
        with pytest.raises(NotmuchAlertError, match=r"^notmuch insert: no answer within 0\.5 s \(stopped\)$"):
            insert(alert_message("a", "b", BODY, NOW), DEFAULT_TAGS, dict(os.environ), timeout=0.5)
        assert time.monotonic() - started < 3
        # The hook went with notmuch: the whole group was stopped (gone, or a zombie waiting for init).
        assert _stopped(int(pid_file.read_text()), within=3.0)


def _stopped(pid: int, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except FileNotFoundError:
            return True
        if "\nState:\tZ" in status:
            return True
        time.sleep(0.05)
    return False


def test_a_hook_that_leaves_a_process_behind_does_not_hold_the_alert(mail_root: Path, tmp_path: Path) -> None:
    pid_file = tmp_path / "left.pid"
    _post_insert_hook(mail_root, f'sleep 60 >&2 &\necho $! > "{pid_file}"\necho hook ran >&2')
    with _reaping(pid_file):
        started = time.monotonic()
        raw = alert_message("a", "b", BODY, NOW)
        assert insert(raw, DEFAULT_TAGS, dict(os.environ), timeout=5) == "notmuch insert"
        assert time.monotonic() - started < 3  # not waiting for the stderr the sleeper still holds
        assert tags_of(bare_id(raw)) == {"mailpin", "inbox", "unread"}


def test_a_locked_database_costs_the_timeout_and_delivers_nothing(mail_root: Path) -> None:
    """notmuch waits for the write lock (a long `notmuch new` holds it); mailpin waits `timeout`."""
    holder = subprocess.Popen(["notmuch", "tag", "--batch"], stdin=subprocess.PIPE)  # holds the lock until EOF
    assert holder.stdin is not None
    try:
        holder.stdin.write(b"+held -- *\n")
        holder.stdin.flush()
        time.sleep(0.3)
        started = time.monotonic()
        with pytest.raises(NotmuchAlertError, match=r"^notmuch insert: no answer within 0\.5 s \(stopped\)$"):
            insert(alert_message("a", "b", BODY, NOW), DEFAULT_TAGS, dict(os.environ), timeout=0.5)
        assert time.monotonic() - started < 3
    finally:
        holder.stdin.close()
        holder.wait(timeout=10)
    assert not (mail_root / "mailpin").exists()  # notmuch opens the database before it delivers
    raw = alert_message("a", "b", BODY, NOW)
    assert insert(raw, DEFAULT_TAGS, dict(os.environ)) == "notmuch insert"  # the lock released, it works
    assert tags_of(bare_id(raw)) == {"mailpin", "inbox", "unread"}


def test_tempfail_is_named() -> None:
    assert notmuch._complaint(
        "Error: A Xapian exception occurred opening database: Unable to get write lock\n", 75
    ) == ("A Xapian exception occurred opening database: Unable to get write lock (temporary failure: try again)")
    assert notmuch._complaint("Error: cannot load config file.\nTry running 'notmuch setup'.\n", 1) == (
        "cannot load config file."
    )
    assert notmuch._complaint("", 3) == "exit status 3"


# --- the notmuch2 bindings -----------------------------------------------------------------------


class FakeTags(set[str]):
    def __init__(self, calls: list[Any]) -> None:
        super().__init__()
        self.calls = calls

    def add(self, tag: str) -> None:
        self.calls.append(("add", tag))
        super().add(tag)

    def discard(self, tag: str) -> None:
        self.calls.append(("discard", tag))
        super().discard(tag)

    def to_maildir_flags(self) -> None:
        self.calls.append(("to_maildir_flags",))


class FakeMessage:
    def __init__(self, calls: list[Any]) -> None:
        self.calls = calls
        self.tags = FakeTags(calls)

    @contextmanager
    def frozen(self) -> Iterator[None]:
        self.calls.append(("freeze",))
        yield
        self.calls.append(("thaw",))


def fake_notmuch2(
    root: Path, *, fail_open: bool = False, fail_add: bool = False, lock: threading.Event | None = None
) -> types.ModuleType:
    """A stand-in for the `notmuch2` bindings (the shape of notmuch 0.37's) that records its calls;
    with `lock`, opening waits until it is set, as libnotmuch waits for the write lock."""
    calls: list[Any] = []

    class Database:
        MODE = types.SimpleNamespace(READ_ONLY="ro-mode", READ_WRITE="rw-mode")
        CONFIG = types.SimpleNamespace(EMPTY="empty-config", SEARCH="search-config")

        def __init__(self, path: Any = None, mode: Any = "ro-mode", config: Any = "search-config") -> None:
            calls.append(("open", path, mode, config))
            if lock is not None:
                lock.wait(10)
            if fail_open:
                raise OSError(2, "No such file or directory")
            self.path = root
            self.config = {
                "database.mail_root": str(root),
                "new.tags": "unread;inbox;",
                "maildir.synchronize_flags": "true",
            }
            self.message = FakeMessage(calls)

        def add(self, filename: str, *, sync_flags: bool = False) -> Any:
            calls.append(("add", filename, Path(filename).read_bytes()))
            if fail_add:
                raise RuntimeError("A Xapian exception occurred")
            return types.SimpleNamespace(msg=self.message, dup=False)

        def remove(self, filename: str) -> None:
            calls.append(("remove", filename))

        def close(self) -> None:
            calls.append(("close",))

    module = types.ModuleType("notmuch2")
    module.Database = Database  # type: ignore[attr-defined]
    module.calls = calls  # type: ignore[attr-defined]
    return module


def test_the_bindings_are_used_when_importable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "mail"
    fake = fake_notmuch2(root)
    monkeypatch.setitem(sys.modules, "notmuch2", fake)
    raw = alert_message("msmtp:work", "certificate from a different CA", BODY, NOW)

    assert insert(raw, ("+mailpin", "+security", "-inbox"), dict(os.environ)) == "notmuch2"

    [delivered] = (root / "mailpin" / "new").iterdir()
    assert delivered.read_bytes() == raw
    assert delivered.stat().st_mode & 0o777 == 0o600
    assert list((root / "mailpin" / "tmp").iterdir()) == []
    assert fake.calls == [
        ("open", None, "rw-mode", "search-config"),
        ("add", str(delivered), raw),
        ("freeze",),
        ("add", "unread"), ("add", "inbox"),  # new.tags first, as `notmuch insert`
        ("add", "mailpin"), ("add", "security"), ("discard", "inbox"),
        ("thaw",),
        ("to_maildir_flags",),  # maildir.synchronize_flags
        ("close",),
    ]  # fmt: skip


def test_a_failed_add_with_the_bindings_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "mail"
    fake = fake_notmuch2(root, fail_add=True)
    monkeypatch.setitem(sys.modules, "notmuch2", fake)

    with pytest.raises(NotmuchAlertError, match=r"^notmuch2: could not add the alert: A Xapian exception occurred$"):
        insert(alert_message("a", "b", BODY, NOW), DEFAULT_TAGS, dict(os.environ))

    assert list((root / "mailpin" / "new").iterdir()) == []
    assert [call[0] for call in fake.calls] == ["open", "add", "remove", "close"]


def test_no_database_with_the_bindings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "mail"
    monkeypatch.setitem(sys.modules, "notmuch2", fake_notmuch2(root, fail_open=True))
    with pytest.raises(NotmuchAlertError, match=r"^notmuch2: cannot open the database for writing: .*No such file"):
        insert(alert_message("a", "b", BODY, NOW), DEFAULT_TAGS, dict(os.environ))
    assert not root.exists()  # nothing delivered before the database opened


def test_the_cli_when_the_bindings_would_see_another_environment(
    mail_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """libnotmuch reads the process environment; an `environ` that points elsewhere goes to the CLI."""
    fake = fake_notmuch2(tmp_path / "elsewhere")
    monkeypatch.setitem(sys.modules, "notmuch2", fake)
    environ = dict(os.environ)
    monkeypatch.setenv("NOTMUCH_CONFIG", str(tmp_path / "some-other-config"))
    raw = alert_message("a", "b", BODY, NOW)

    assert insert(raw, DEFAULT_TAGS, environ) == "notmuch insert"

    assert fake.calls == []
    monkeypatch.setenv("NOTMUCH_CONFIG", environ["NOTMUCH_CONFIG"])
    assert tags_of(bare_id(raw)) == {"mailpin", "inbox", "unread"}


def test_a_locked_database_with_the_bindings_costs_the_timeout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "mail"
    lock = threading.Event()
    fake = fake_notmuch2(root, lock=lock)
    monkeypatch.setitem(sys.modules, "notmuch2", fake)

    started = time.monotonic()
    with pytest.raises(NotmuchAlertError, match=r"^notmuch2: no answer within 0\.3 s \(database locked by another"):
        insert(alert_message("a", "b", BODY, NOW), DEFAULT_TAGS, dict(os.environ), timeout=0.3)
    assert time.monotonic() - started < 2

    lock.set()  # the other process is done: the worker given up on opens the database, and delivers nothing
    for _ in range(100):
        if ("close",) in fake.calls:
            break
        time.sleep(0.02)
    assert [call[0] for call in fake.calls] == ["open", "close"]
    assert not root.exists()
