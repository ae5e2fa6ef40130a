"""Held outgoing messages: a send that was blocked is kept here until `mailpin queue flush` (DESIGN §2.4).

`$XDG_STATE_HOME/mailpin/queue/` holds two files per message, both 0600 and each written atomically:
`ID.eml`, the exact bytes msmtp would have read on stdin (never altered), then `ID.json`, the
metadata. The `.json` is the commit marker: written last on hold, removed first on drop or send, so
an `.eml` alone is a hold that did not finish (the wrapper died; it exited non-zero, so the mail
client still has the message) and is ignored, then removed by the next hold.

Two locks (flock, so they bind threads with their own descriptors as well as processes):
`.write.lock` for a moment around every change of the directory (so holds deduplicate, and a
discard and a flush cannot both claim one message), and `.lock` for the whole of a flush (so two
flushes never send the same message). Order: `.lock`, then `.write.lock`.

A message goes `held` → `sending` (written to disk before the tool runs) → removed once sent, or
back to `held` when the send was refused. An entry left `sending` was interrupted and may have
gone out: only an explicit `flush --force ID` sends it again.
"""

from __future__ import annotations

import builtins
import contextlib
import fcntl
import hashlib
import json
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from mailpin.durable import make_private_dirs, sync_dir, write_atomically
from mailpin.env import Env
from mailpin.errors import ExitStatus, MailpinError, UsageError
from mailpin.net.replies import printable

QUEUE_VERSION = 1
HELD, SENDING = "held", "sending"
SENT_MEMORY = timedelta(days=14)  # how long a message sent from the queue is remembered (duplicate guard)
FLUSHING = "MAILPIN_FLUSHING"  # set by `queue flush` for its `mailpin run` child: the held ID being sent
_ID = re.compile(r"[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8,64}")
_DIGEST = re.compile(r"[0-9a-f]{64}")
_HEAD_LIMIT = 256 * 1024  # headers are read for the listing only: never the whole of a huge message


class QueueError(MailpinError):
    """The queue cannot be written or read: names the file or directory and the OS error.

    75 (EX_TEMPFAIL, "try again later"): a message that could not be held must make the wrapper fail,
    so that the mail client keeps it, and a full or read-only disk is a temporary condition."""

    exit_status = ExitStatus.TEMPFAIL


@dataclass(frozen=True)
class Held:
    id: str  # UTC time of the hold + the digest's first hex digits: sortable and shell-safe
    tool: str
    argv: tuple[str, ...]  # the tool's arguments as the mail client gave them (without the tool name)
    accounts: tuple[str, ...]  # TOOL:NAME keys involved
    reasons: tuple[str, ...]  # reason codes of the block
    detail: str  # one line: what the block said
    held_at: datetime
    size: int
    digest: str
    subject: str  # informational: decoded, control characters escaped, at most 100 characters
    recipients: tuple[str, ...]  # informational: To and Cc from the headers
    state: str  # HELD, or SENDING (a flush started and did not finish: it may have gone out)


def digest(tool: str, argv: Sequence[str], message: bytes) -> str:
    # sha256 over: tool NUL, the number of arguments in decimal NUL, each argument followed by NUL,
    # then the message bytes. No argument holds a NUL (argv cannot), so the encoding is unambiguous.
    parts = [tool, str(len(argv)), *argv]
    if any("\0" in part for part in parts):
        raise ValueError("a tool name or argument with a NUL character")
    head = b"".join(part.encode("utf-8", "surrogateescape") + b"\0" for part in parts)
    return hashlib.sha256(head + message).hexdigest()


class Queue:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @classmethod
    def for_env(cls, env: Env) -> Queue:
        return cls(env.state_home / "mailpin" / "queue")

    def hold(
        self,
        message: bytes,
        tool: str,
        argv: Sequence[str],
        accounts: Sequence[str],
        reasons: Sequence[str],
        detail: str,
        now: datetime,
    ) -> tuple[Held, bool]:
        """Keep MESSAGE; (the entry, True), or (the entry already there, False) for the same tool, argv and
        message: a retry from the mail client never holds twice. QueueError leaves nothing behind."""
        if now.tzinfo is None:
            raise ValueError(f"naive datetime {now!r}: hold times are UTC")
        key = digest(tool, argv, message)
        with self._lock(".write.lock"):
            entries, _ = self._scan()
            for entry in entries:
                if entry.digest == key:
                    return entry, False
            with contextlib.suppress(OSError):  # tidying only
                self._clean_incomplete()
            when = now.astimezone(timezone.utc).replace(microsecond=0)
            subject, recipients = _headers(message)
            held = Held(
                id=self._new_id(when, key),
                tool=tool,
                argv=tuple(argv),
                accounts=tuple(accounts),
                reasons=tuple(reasons),
                detail=printable(detail, 500),
                held_at=when,
                size=len(message),
                digest=key,
                subject=subject,
                recipients=recipients,
                state=HELD,
            )
            eml, meta = self._paths(held.id)
            try:
                write_atomically(eml, message)
                write_atomically(meta, _encode(held))  # last: the commit marker
            except BaseException as exc:
                for path in (meta, eml):
                    with contextlib.suppress(OSError):
                        path.unlink()
                if isinstance(exc, OSError):
                    raise QueueError(f"{self.directory}: cannot hold the message: {_why(exc)}") from None
                raise
        return held, True

    def scan(self) -> tuple[builtins.list[Held], builtins.list[str]]:
        """The complete entries oldest first, and one line per entry that cannot be read (named by file)."""
        if not self.directory.is_dir():
            return [], []
        with self._lock(".write.lock"):
            return self._scan()

    def list(self) -> builtins.list[Held]:
        """The complete entries, oldest first; unreadable ones are left out (see `scan`)."""
        return self.scan()[0]

    def get(self, id: str) -> Held:
        if not _ID.fullmatch(id):
            raise _absent(id)
        meta = self._paths(id)[1]
        try:
            return _decode(meta.read_bytes(), id)
        except FileNotFoundError:
            raise _absent(id) from None
        except OSError as exc:
            raise QueueError(f"{meta}: cannot read: {_why(exc)}") from None
        except ValueError as exc:
            raise QueueError(f"{meta}: corrupt ({exc})") from None

    def message(self, held: Held) -> bytes:
        """The bytes held, checked against the digest taken when they were held."""
        eml = self._paths(held.id)[0]
        try:
            data = eml.read_bytes()
        except OSError as exc:
            raise QueueError(f"{eml}: cannot read the held message: {_why(exc)}") from None
        if digest(held.tool, held.argv, data) != held.digest:
            raise QueueError(f"{eml}: changed since it was held (digest mismatch); not sent")
        return data

    def drop(self, id: str, *, sent_at: datetime | None = None) -> Held:
        """Delete ID (dropped, or sent): the metadata first, so a crash leaves an ignored `.eml`.
        With `sent_at`, remember its digest: a later retry of the very same message (msmtpq resends
        what it queued once the wrapper succeeds) must not send it a second time."""
        with self._lock(".write.lock"):
            held = self.get(id)
            if sent_at is not None:
                self._remember_sent(held.digest, sent_at)
            self._remove(id)
        return held

    def already(self, message: bytes, tool: str, argv: Sequence[str], now: datetime, flushing: str = "") -> str | None:
        """Is this exact message being sent by a flush right now (other than `flushing`, the entry
        this very run is sending for the flush), or was it sent from the queue in the last
        SENT_MEMORY? Then sending it again would deliver it twice: says when/how, else None."""
        key = digest(tool, argv, message)
        if not self.directory.is_dir():
            return None
        with self._lock(".write.lock"):
            entries = self._scan()[0]
            if any(held.digest == key and held.state == SENDING and held.id != flushing for held in entries):
                return "it is being sent by `mailpin queue flush` right now"
            when = self._sent().get(key)
        if when is not None and timedelta(0) <= now - when <= SENT_MEMORY:
            return f"it was sent from mailpin's queue at {when:%Y-%m-%d %H:%M} UTC"
        return None

    def discard_matching(self, message: bytes, tool: str, argv: Sequence[str]) -> builtins.list[Held]:
        """The same message is being sent now, verified: its held copies go. Never one in state
        `sending` (a flush has claimed it; it is the flush's to finish)."""
        key = digest(tool, argv, message)
        if not self.directory.is_dir():
            return []
        gone = []
        with self._lock(".write.lock"):
            for held in self._scan()[0]:
                if held.digest == key and held.state == HELD:
                    self._remove(held.id)
                    gone.append(held)
        return gone

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Exclusive for a whole flush (waits for another flush to finish)."""
        with self._lock(".lock"):
            yield

    def mark(self, id: str, state: str) -> Held:
        """Rewrite ID's metadata atomically with STATE; UsageError when it is gone (dropped, sent)."""
        if state not in (HELD, SENDING):
            raise ValueError(f"unknown state {state!r}")
        with self._lock(".write.lock"):
            held = replace(self.get(id), state=state)
            try:
                write_atomically(self._paths(id)[1], _encode(held))
            except OSError as exc:
                raise QueueError(f"{self.directory}: cannot mark {id} {state}: {_why(exc)}") from None
        return held

    # -- inside the write lock ---------------------------------------------------------------------

    def _sent(self) -> dict[str, datetime]:
        try:
            raw = json.loads((self.directory / "sent.json").read_text(encoding="utf-8"))
            return {key: datetime.fromisoformat(when) for key, when in raw.items()}
        except (OSError, ValueError, AttributeError, TypeError, RecursionError):  # RecursionError: [[[[…
            return {}  # only a guard against duplicates: unreadable means no memory, not an error

    def _remember_sent(self, key: str, when: datetime) -> None:
        sent = {k: t for k, t in self._sent().items() if timedelta(0) <= when - t <= SENT_MEMORY}
        sent[key] = when
        data = json.dumps({k: t.isoformat() for k, t in sorted(sent.items())}, indent=1).encode("utf-8")
        with contextlib.suppress(OSError):  # the message is out; failing to remember it is not failing to send
            write_atomically(self.directory / "sent.json", data)

    def _paths(self, id: str) -> tuple[Path, Path]:
        return self.directory / f"{id}.eml", self.directory / f"{id}.json"

    def _scan(self) -> tuple[builtins.list[Held], builtins.list[str]]:
        entries, problems = [], []
        try:
            names = sorted(os.listdir(self.directory))
        except FileNotFoundError:
            return [], []
        except OSError as exc:
            raise QueueError(f"{self.directory}: cannot read the queue: {_why(exc)}") from None
        for name in names:
            id, _, ext = name.partition(".")
            if ext != "json" or not _ID.fullmatch(id):
                continue
            eml = self.directory / f"{id}.eml"
            try:
                held = self.get(id)
                size = eml.stat().st_size
            except MailpinError as exc:
                problems.append(str(exc))
                continue
            except OSError as exc:
                problems.append(f"{eml}: the message of {id} cannot be read: {_why(exc)}")
                continue
            if size != held.size:
                problems.append(f"{eml}: {size} bytes, {held.size} were held: truncated or changed")
                continue
            entries.append(held)
        return entries, problems  # oldest first: names start with the UTC time of the hold

    def _clean_incomplete(self) -> None:
        """Remove holds that did not finish (an `.eml` without `.json`) and stray temp files. Safe
        under the write lock: every writer holds it, so nothing here is still being written."""
        for name in os.listdir(self.directory):
            id, _, ext = name.partition(".")
            stray = name.startswith(".") and name.endswith(".tmp")
            if stray or (ext == "eml" and _ID.fullmatch(id) and not (self.directory / f"{id}.json").exists()):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.directory / name)

    def _new_id(self, when: datetime, key: str) -> str:
        for length in (8, 16, 64):  # longer only if another message had the same prefix in the same second
            id = f"{when:%Y%m%dT%H%M%SZ}-{key[:length]}"
            if not any(path.exists() for path in self._paths(id)):
                return id
        raise QueueError(f"{self.directory}: {id} exists already but is not this message")

    def _remove(self, id: str) -> None:
        eml, meta = self._paths(id)
        try:
            for path in (meta, eml):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
            sync_dir(self.directory)
        except OSError as exc:
            raise QueueError(f"{self.directory}: cannot remove {id}: {_why(exc)}") from None

    @contextlib.contextmanager
    def _lock(self, name: str) -> Iterator[None]:
        path = self.directory / name
        try:
            make_private_dirs(self.directory)
        except OSError as exc:
            raise QueueError(f"{self.directory}: cannot create the queue directory: {_why(exc)}") from None
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise QueueError(f"{path}: cannot open the queue's lock: {_why(exc)}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the flock


def _absent(id: str) -> UsageError:
    return UsageError(f"no held message {printable(id, 80)} (see `mailpin queue list`)")


def _why(error: OSError) -> str:
    reason = error.strerror or str(error)
    return f"{reason} ({error.filename})" if error.filename else reason


def _encode(held: Held) -> bytes:
    data: dict[str, Any] = {"version": QUEUE_VERSION, **asdict(held), "held_at": held.held_at.isoformat()}
    # A lone surrogate (an argument that was not UTF-8) is written as the JSON escape `\udcxx`.
    text = json.dumps(data, ensure_ascii=False, indent=1, allow_nan=False) + "\n"
    return text.encode("utf-8", "backslashreplace")


_TEXTS = ("tool", "detail", "digest", "subject", "state", "held_at")
_LISTS = ("argv", "accounts", "reasons", "recipients")


def _decode(data: bytes, id: str) -> Held:
    """ID's metadata, or ValueError saying what is wrong with it."""
    try:
        raw = json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError):
        raise ValueError("not JSON") from None
    if not isinstance(raw, dict) or raw.get("version") != QUEUE_VERSION:
        raise ValueError(f"not version {QUEUE_VERSION} metadata (written by a newer mailpin?)")
    for name in _TEXTS:
        if not isinstance(raw.get(name), str):
            raise ValueError(f"`{name}` is not a string")
    for name in _LISTS:
        if not isinstance(raw.get(name), list) or not all(isinstance(item, str) for item in raw[name]):
            raise ValueError(f"`{name}` is not a list of strings")
    size, held_at = raw.get("size"), datetime.fromisoformat(raw["held_at"])
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ValueError("`size` is not a byte count")
    if held_at.tzinfo is None or raw.get("id") != id or not _DIGEST.fullmatch(raw["digest"]):
        raise ValueError("`held_at`, `id` or `digest` is not what mailpin writes")
    if raw["state"] not in (HELD, SENDING):
        raise ValueError(f"unknown state {raw['state']!r}")
    lists: dict[str, Any] = {name: tuple(raw[name]) for name in _LISTS}
    return Held(id=id, size=size, held_at=held_at, **{name: raw[name] for name in _TEXTS[:-1]}, **lists)


def _headers(message: bytes) -> tuple[str, tuple[str, ...]]:
    """Subject (RFC 2047 decoded, escaped, ≤ 100 characters) and To/Cc addresses, for people only."""
    from email import message_from_bytes, policy
    from email.utils import getaddresses

    end = re.search(rb"\r?\n\r?\n", message[:_HEAD_LIMIT])
    head = message[: end.start() if end else _HEAD_LIMIT] + b"\n\n"
    # The email package registers most defects but has crashed on hostile headers before: a
    # listing's subject line is never worth losing the message over.
    try:
        parsed = message_from_bytes(head, policy=policy.default)
        subject = " ".join(str(parsed.get("subject", "")).split())
        pairs = getaddresses([str(value) for name in ("to", "cc") for value in parsed.get_all(name, [])])
    except Exception:
        return "", ()
    short = printable(subject, 99)  # 99 + "…" when cut
    recipients = tuple(printable(address, 200) for _, address in pairs if address)[:100]
    return short, recipients
