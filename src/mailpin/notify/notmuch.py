"""The notmuch alert: a well-formed message from mailpin, added to the user's notmuch database.

A desktop notification vanishes; a message tagged `mailpin inbox unread` waits in the inbox until
read. The message is built by the stdlib's `email` package (RFC 5322 + MIME, RFC 2047 for the
non-ASCII subject) and added through the `notmuch2` bindings when they are installed, else with
`notmuch insert`. Either way the file is delivered into a Maildir folder under the mail root
(`mailpin` by default, created on demand: a mail root is often a directory of maildirs and not one
itself, and then notmuch cannot deliver to its top level), notmuch's own `new.tags` apply, then ours.

Failures are `NotmuchAlertError`, one line each; the caller decides what to do (never: change a
verdict). Imports are lazy: this module is on the wrapper's import path.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from mailpin.errors import MailpinError

if TYPE_CHECKING:
    import threading
    from datetime import datetime
    from email.headerregistry import Address
    from pathlib import Path

DEFAULT_TAGS = ("+mailpin", "+inbox", "+unread")
DEFAULT_FOLDER = "mailpin"  # relative to database.mail_root, like `notmuch insert --folder`
SENDER = "mailpin@localhost"
MAX_HEADER_FIELD = 200  # characters of an account name or reason in a header; servers can send anything

# What libnotmuch reads from the process environment to find its config and database (lib/open.cc).
_NOTMUCH_ENVIRONMENT = (
    "NOTMUCH_CONFIG", "NOTMUCH_PROFILE", "NOTMUCH_DATABASE", "MAILDIR", "HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME",
)  # fmt: skip
_GUESS = "mailpin-guess@mailpin.invalid"


class NotmuchAlertError(MailpinError):
    """The alert could not be added: notmuch missing, no config or database, delivery failed."""


# --- the message ---------------------------------------------------------------------------------


def alert_message(account: str, what: str, body: str, now: datetime, to: str | None = None) -> bytes:
    """The alert as RFC 5322 bytes (LF line ends, as in a Maildir file; 7-bit clean).

    `account` and `what` become one header line each whatever they hold; `to` falls back to
    mailpin's own address when missing or not a plain address. A naive `now` is dated `-0000`
    (RFC 5322 §3.3: local time unknown)."""
    import email.policy
    from email.headerregistry import Address
    from email.message import EmailMessage
    from email.utils import format_datetime, make_msgid

    account, what = _header_text(account), _header_text(what)
    message = EmailMessage(policy=email.policy.default)
    message["From"] = Address("mailpin", addr_spec=SENDER)
    message["To"] = _recipient(to)
    message["Date"] = format_datetime(now)
    message["Message-ID"] = make_msgid("mailpin", domain="mailpin.invalid")  # time, pid and 64 random bits
    message["Subject"] = f"[mailpin] blocked: {account} — {what}"  # the policy RFC 2047-encodes the dash
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834 §5: no vacation replies to this
    message["X-Mailpin-Account"] = account
    message.set_content(body if body.endswith("\n") else body + "\n", cte="quoted-printable")
    return message.as_bytes()


def _header_text(value: str) -> str:
    """`value` as the text of one header line: what is not printable becomes a space (controls, CR and
    LF above all: a new header line; format characters such as bidi overrides, which disguise a
    subject; separators, surrogates, unassigned code points), runs of space one."""
    text = "".join(char if char.isprintable() else " " for char in value)
    text = " ".join(text.split())
    if len(text) > MAX_HEADER_FIELD:
        text = text[: MAX_HEADER_FIELD - 1] + "…"
    return text or "?"


def _recipient(to: str | None) -> Address:
    from email.errors import HeaderParseError
    from email.headerregistry import Address

    candidate = _header_text(to) if to else ""
    if candidate and candidate.isascii():  # a non-ASCII address needs RFC 6532, which a plain 5322 message cannot carry
        try:
            return Address(addr_spec=candidate)
        except (ValueError, IndexError, AttributeError, HeaderParseError):  # the parser raises all four
            pass
    return Address("mailpin", addr_spec=SENDER)


# --- the user's address --------------------------------------------------------------------------


def user_address(environ: Mapping[str, str], timeout: float = 5.0) -> str | None:
    """The user's address from notmuch (`user.primary_email`), or None when unset or notmuch fails.

    Unset, notmuch answers with a guess: $EMAIL, else user@host (lib/config.cc). The question is
    asked with a marker in $EMAIL, so a guess is told apart; the user's $EMAIL is kept, as notmuch
    itself would use it."""
    import shutil
    import subprocess

    notmuch = shutil.which("notmuch", path=environ.get("PATH", os.defpath))
    if notmuch is None:
        return None
    try:
        done = subprocess.run(
            [notmuch, "config", "get", "user.primary_email"],
            env={**environ, "EMAIL": _GUESS},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    lines = done.stdout.splitlines()
    address = lines[0].strip() if done.returncode == 0 and lines else ""
    if address == _GUESS:
        address = environ.get("EMAIL", "").strip()
    return address or None


# --- adding it to the database -------------------------------------------------------------------


def insert(
    message: bytes,
    tags: Sequence[str],
    environ: Mapping[str, str],
    timeout: float = 5.0,
    *,
    folder: str = DEFAULT_FOLDER,
) -> str:
    """Deliver `message` into `folder` under the mail root and index it with `tags` ("+tag" adds,
    "-tag" removes, after notmuch's `new.tags`); return the path taken, "notmuch2" or "notmuch insert".

    `timeout` bounds the whole: `notmuch insert` with its post-insert hook, or the bindings (which
    run no hook). Both wait while another process holds the database's write lock."""
    operations = _tag_operations(tags)
    _check_folder(folder)
    bindings = _bindings(environ)
    if bindings is not None:
        _insert_with_bindings(bindings, message, operations, folder, timeout)
        return "notmuch2"
    _insert_with_cli(message, operations, environ, timeout, folder)
    return "notmuch insert"


def _tag_operations(tags: Sequence[str]) -> list[str]:
    if isinstance(tags, str):
        raise NotmuchAlertError(f"notmuch alert: tags must be a list of changes, not the string {tags!r}")
    for tag in tags:
        if len(tag) < 2 or tag[0] not in "+-" or any(char.isspace() or not char.isprintable() for char in tag):
            raise NotmuchAlertError(f"notmuch alert: {tag!r} is not a tag change like +mailpin")
    return list(tags)


def _check_folder(folder: str) -> None:
    # notmuch's own rule (notmuch-insert.c is_valid_folder_name): relative, and never `..`.
    parts = folder.split("/")
    if folder and (folder.startswith("/") or "\0" in folder or any(part in ("", ".", "..") for part in parts)):
        raise NotmuchAlertError(f"notmuch alert: {folder!r} is not a folder under the mail root")


def _bindings(environ: Mapping[str, str]) -> Any | None:
    """The `notmuch2` module, when importable and when it would see the same notmuch as the CLI.

    libnotmuch reads the *process* environment; the CLI is handed `environ` itself, so where the
    two disagree on anything notmuch looks at, the CLI is the one that finds the user's database."""
    if any(environ.get(name) != os.environ.get(name) for name in _NOTMUCH_ENVIRONMENT):
        return None
    import importlib

    try:
        return importlib.import_module("notmuch2")
    except (ImportError, OSError):  # not installed, or installed without a loadable libnotmuch
        return None


def _insert_with_bindings(
    notmuch2: Any, message: bytes, operations: Sequence[str], folder: str, timeout: float
) -> None:
    """Run the insert in a worker thread, waited for `timeout` seconds: libnotmuch waits as long as
    another process holds the database's write lock (a long `notmuch new`), and a C call cannot be
    interrupted. A worker given up on delivers nothing once its database opens; if it was already
    past that point, the alert arrives late."""
    import threading

    outcome: list[BaseException | None] = []
    given_up = threading.Event()

    def work() -> None:
        try:
            _add_with_bindings(notmuch2, message, operations, folder, given_up)
        except BaseException as exc:  # handed to the caller's thread, raised there
            outcome.append(exc)
        else:
            outcome.append(None)

    worker = threading.Thread(target=work, name="mailpin-notmuch2", daemon=True)
    worker.start()
    worker.join(timeout)
    if not outcome:
        given_up.set()
        raise NotmuchAlertError(f"notmuch2: no answer within {timeout:g} s (database locked by another process?)")
    if outcome[0] is not None:
        raise outcome[0]


def _add_with_bindings(
    notmuch2: Any, message: bytes, operations: Sequence[str], folder: str, given_up: threading.Event
) -> None:
    from pathlib import Path

    database_class = notmuch2.Database
    try:
        database = database_class(mode=database_class.MODE.READ_WRITE, config=database_class.CONFIG.SEARCH)
    except Exception as exc:  # NotmuchError and its kin, OSError, configparser.Error: all one story here
        raise NotmuchAlertError(f"notmuch2: cannot open the database for writing: {_one_line(exc)}") from None
    try:
        if given_up.is_set():
            return
        root = _setting(database, "database.mail_root") or str(database.path)
        path = _deliver(Path(root, folder), message)
        try:
            added = database.add(str(path))
            if not added.dup:  # as `notmuch insert`: a known Message-ID keeps its tags
                changes = [f"+{tag.strip()}" for tag in _setting(database, "new.tags").split(";") if tag.strip()]
                with added.msg.frozen():  # all tags in one database write
                    for change in (*changes, *operations):
                        if change[0] == "+":
                            added.msg.tags.add(change[1:])
                        else:
                            added.msg.tags.discard(change[1:])
                if _setting(database, "maildir.synchronize_flags").lower() not in ("false", "0"):
                    added.msg.tags.to_maildir_flags()
        except BaseException:
            _withdraw(database, path)
            raise
    except NotmuchAlertError:
        raise
    except Exception as exc:
        raise NotmuchAlertError(f"notmuch2: could not add the alert: {_one_line(exc)}") from None
    finally:
        with contextlib.suppress(Exception):  # the last step: an error here loses nothing written
            database.close()


def _setting(database: Any, key: str) -> str:
    # The bindings give "" (or KeyError) for a missing key; the values merge the config file and
    # the database, defaults included (new.tags "unread;inbox", maildir.synchronize_flags "true").
    try:
        return str(database.config[key])
    except KeyError:
        return ""


def _withdraw(database: Any, path: Path) -> None:
    """Undo a half-done insert, as `notmuch insert` does without --keep."""
    with contextlib.suppress(Exception):
        database.remove(str(path))
    with contextlib.suppress(OSError):
        path.unlink()


def _deliver(maildir: Path, message: bytes) -> Path:
    """Write `message` into MAILDIR/new, creating the folder (0700) as `--create-folder` does.

    Maildir delivery (maildir(5)): written whole and synced under tmp/ with a unique name, then
    renamed into new/, so no reader ever sees part of a message."""
    import secrets
    import time

    from mailpin.state.durable import make_private_dirs, write_atomically

    try:
        for sub in ("cur", "new", "tmp"):
            make_private_dirs(maildir / sub)
        now = time.time()
        host = os.uname().nodename.replace("/", "\\057").replace(":", "\\072")
        name = f"{int(now)}.M{int(now % 1 * 1e6)}P{os.getpid()}R{secrets.token_hex(8)}.{host}"
        final = maildir / "new" / name
        write_atomically(final, message, 0o600, temp=maildir / "tmp" / name)  # Maildir: tmp/, then new/
    except OSError as exc:
        raise NotmuchAlertError(f"notmuch2: cannot deliver into {maildir}: {exc.strerror or exc}") from None
    return final


def _insert_with_cli(
    message: bytes, operations: Sequence[str], environ: Mapping[str, str], timeout: float, folder: str
) -> None:
    import shutil
    import signal
    import subprocess
    import tempfile

    notmuch = shutil.which("notmuch", path=environ.get("PATH", os.defpath))
    if notmuch is None:
        raise NotmuchAlertError("notmuch insert: notmuch is not installed (not found on PATH)")
    argv = [notmuch, "insert"]
    if folder:
        argv += [f"--folder={folder}", "--create-folder"]
    argv += ["--", *operations]  # options end here, whatever a tag looks like
    try:
        # stderr goes to a file, not a pipe: a post-insert hook that leaves a process behind keeps a
        # pipe open, and reading it to the end would wait for that process, past any timeout.
        with tempfile.TemporaryFile() as said:
            # Its own session: on timeout the whole group goes, the post-insert hook included.
            child = subprocess.Popen(
                argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=said, env=dict(environ),
                start_new_session=True,
            )  # fmt: skip
            try:
                child.communicate(message, timeout=timeout)
            except subprocess.TimeoutExpired:
                raise NotmuchAlertError(f"notmuch insert: no answer within {timeout:g} s (stopped)") from None
            finally:
                if child.returncode is None:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(child.pid, signal.SIGKILL)
                    child.wait()
            if child.returncode != 0:
                said.seek(0)
                text = said.read(65536).decode("utf-8", "replace")
                raise NotmuchAlertError(f"notmuch insert failed: {_complaint(text, child.returncode)}")
    except OSError as exc:
        raise NotmuchAlertError(f"notmuch insert: cannot run {notmuch}: {exc.strerror or exc}") from None


def _complaint(stderr: str, status: int) -> str:
    """notmuch's own words: its last "Error:" line (a hint such as "Try running 'notmuch setup'"
    may follow it), else its last line, else the status."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("Error:")]
    chosen = (errors or lines or [f"exit status {status}"])[-1].removeprefix("Error:").strip()
    if status == 75:  # EX_TEMPFAIL (notmuch-insert(1)): "most likely to be temporary in nature"
        chosen += " (temporary failure: try again)"
    return _one_line(chosen)


def _one_line(value: object) -> str:
    text = " ".join(str(value).split())
    return text[:300] or type(value).__name__
