"""Held outgoing messages: a send that was blocked is kept here until `mailpin queue flush` (DESIGN §2.4).

`$XDG_STATE_HOME/mailpin/queue/` holds two files per message, both 0600 and each written atomically:
`ID.eml`, the exact bytes msmtp would have read on stdin (never altered), then `ID.json`, the
metadata. The `.json` is the commit marker: written last on hold, removed first on drop or send, so
an `.eml` alone is a hold that did not finish (the wrapper died; it exited non-zero, so the mail
client still has the message) and is ignored, then removed by the next hold.

Held once, sent once. A held message is the same message as a mail program's retry of it
(identity.py: the Message-ID with the envelope, or the text without the fields a program
regenerates), so:
- a retry that is blocked again is not held twice: it replaces the held copy (the newest bytes are
  what the user last asked to send — they may have edited it in the compose screen);
- a retry that is verified is sent by the tool directly, and its held copies go once the tool has
  accepted it (`claim_matching`, then `settle`): a later flush cannot send it again;
- a send is never suppressed because it resembles one sent before — with one exception, which says
  why: a send with the Message-ID and envelope of a message that a flush delivered in the last
  DELIVERED_WINDOW (`delivered`).

Two locks (flock, so they bind threads with their own descriptors as well as processes):
`.write.lock` for a moment around every change of the directory (so holds deduplicate, and a
discard and a flush cannot both claim one message), and `.lock` while messages are being sent from
the queue (a whole flush, or a mail program's retry of a held message), so two senders never send
the same entry. Order: `.lock`, then `.write.lock`.

A message goes `held` → `sending` (written to disk, under `.lock`, before the tool runs) → removed
once sent, or back to `held` when the send was refused. Only a holder of `.lock` marks an entry
`sending`, so an entry found `sending` by a holder of `.lock` was interrupted and may have gone out:
only an explicit `flush --force ID`, or the mail program's own successful retry, sends it again.
"""

from __future__ import annotations

import builtins
import contextlib
import fcntl
import hashlib
import json
import os
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from mailpin.env import Env
from mailpin.errors import ExitStatus, MailpinError, UsageError
from mailpin.net.replies import printable
from mailpin.state import queue_dir
from mailpin.state.durable import foreign, make_private_dirs, sync_dir, write_atomically
from mailpin.state.identity import Identity, identify

QUEUE_VERSION = 2  # 2: identity keys and Message-ID (version 1 entries are read, their identity computed)
HELD, SENDING = "held", "sending"
# A mail program told "held" keeps the message and may send it again: neomutt leaves it in the
# compose screen, msmtpq re-runs its own queue, a user presses send right after `mailpin queue
# flush`. A send with the Message-ID and envelope of a message a flush delivered within this window
# is that retry: it went out already, and it exits 0 "not sent again". Later, sending the same
# Message-ID again is the user's decision and goes out: a repeated Message-ID is folded into one
# message by the recipients' programs (RFC 5322 §3.6.4), a swallowed send is lost. Without a
# Message-ID (cron) nothing is ever suppressed.
DELIVERED_WINDOW = timedelta(minutes=10)
_ID = re.compile(r"[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8,64}")
_DIGEST = re.compile(r"[0-9a-f]{64}")
_KEY = re.compile(r"(mid|text):[0-9a-f]{64}")
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
    digest: str  # of tool, argv and the exact bytes: checked before the message is sent
    subject: str  # informational: decoded, control characters escaped, at most 100 characters
    recipients: tuple[str, ...]  # informational: To and Cc from the headers
    state: str  # HELD, or SENDING (a flush started and did not finish: it may have gone out)
    message_id: str = ""  # informational: the Message-ID, "" when there is none
    identity: tuple[str, ...] = ()  # identity.py keys: a retry of this message shares one


@dataclass(frozen=True)
class Hold:
    """What `Queue.hold` did: `new`, `already` (these very bytes are held), `replaced` (an older copy
    of the same message was; `replaced` names it), or `sending` (a flush is sending the same message
    right now: not held again; if that send fails, it stays held as `held.id`)."""

    held: Held
    how: str
    replaced: tuple[str, ...] = ()


def digest(tool: str, argv: Sequence[str], message: bytes) -> str:
    # sha256 over: tool NUL, the number of arguments in decimal NUL, each argument followed by NUL,
    # then the message bytes. No argument holds a NUL (argv cannot), so the encoding is unambiguous.
    parts = [tool, str(len(argv)), *argv]
    if any("\0" in part for part in parts):
        raise ValueError("a tool name or argument with a NUL character")
    head = b"".join(part.encode("utf-8", "surrogateescape") + b"\0" for part in parts)
    return hashlib.sha256(head + message).hexdigest()


class ForeignQueue(QueueError):
    """The queue directory is not the user's alone (durable.foreign): a message held there could be
    read or replaced by another user. 78, with the fix."""

    exit_status = ExitStatus.CONFIG


class Busy(QueueError):
    """Another sender (a flush) holds the queue for longer than a mail program should wait."""


class Queue:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @classmethod
    def for_env(cls, env: Env) -> Queue:
        return cls(queue_dir.directory(env.state_home))

    def hold(
        self,
        message: bytes,
        tool: str,
        argv: Sequence[str],
        accounts: Sequence[str],
        reasons: Sequence[str],
        detail: str,
        now: datetime,
    ) -> Hold:
        """Keep MESSAGE, once per message (see the module's docstring). QueueError leaves the queue as
        it was: a replaced copy goes only after its replacement is complete on disk."""
        if now.tzinfo is None:
            raise ValueError(f"naive datetime {now!r}: hold times are UTC")
        key = digest(tool, argv, message)
        identity = identify(tool, argv, message)
        with self._lock(".write.lock"):
            same = [entry for entry in self._scan()[0] if identity.same(entry.identity)]
            for entry in same:
                if entry.digest == key:
                    return Hold(entry, "already")
            sending = [entry for entry in same if entry.state == SENDING]
            if sending and self._sender_running():
                return Hold(sending[0], "sending")
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
                message_id=printable(identity.message_id, 200),
                identity=identity.keys,
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
            # Older copies of the same message give way to this one; one left `sending` by an
            # interrupted send stays (it may have gone out: the user decides).
            replaced = tuple(entry.id for entry in same if entry.state == HELD)
            for id in replaced:
                with contextlib.suppress(MailpinError):  # it stays as well: flush sends one, then drops the other
                    self._remove(id)
        return Hold(held, "replaced" if replaced else "new", replaced)

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
        eml, meta = self._paths(id)
        try:
            held = _decode(meta.read_bytes(), id)
            if not held.identity:  # version 1: computed from the message held
                found = identify(held.tool, held.argv, eml.read_bytes())
                held = replace(held, identity=found.keys, message_id=printable(found.message_id, 200))
            return held
        except FileNotFoundError:
            raise _absent(id) from None
        except OSError as exc:
            raise QueueError(f"{exc.filename or meta}: cannot read: {_why(exc)}") from None
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

    def drop(self, id: str) -> Held:
        """Delete ID without sending it: the metadata first, so a crash leaves an ignored `.eml`."""
        with self._lock(".write.lock"):
            held = self.get(id)
            self._remove(id)
        return held

    def idle(self) -> bool:
        return queue_dir.idle(self.directory)

    def matching(self, identity: Identity) -> builtins.list[Held]:
        """The entries holding the same message (any state), oldest first; [] when there is no queue."""
        if not self.directory.is_dir():
            return []
        return [entry for entry in self.scan()[0] if identity.same(entry.identity)]

    def delivered(self, identity: Identity, now: datetime) -> datetime | None:
        """When a flush delivered a message with this Message-ID and envelope, if within
        DELIVERED_WINDOW of `now`: then this send is a retry of it. None without a Message-ID."""
        key = identity.mid_key
        if key is None or not self.directory.is_dir():
            return None
        with self._lock(".write.lock"):
            delivered = self._delivered()
            if all(now - when > DELIVERED_WINDOW for when in delivered.values()):
                with contextlib.suppress(OSError):  # all past: sends need not look again (`idle`)
                    (self.directory / "sent.json").unlink()
        when = delivered.get(key)
        return when if when is not None and timedelta(0) <= now - when <= DELIVERED_WINDOW else None

    @contextlib.contextmanager
    def locked(self, wait: float | None = None) -> Iterator[None]:
        """Exclusive while sending from the queue. Waits for another sender to finish; with `wait`,
        at most that many seconds, then Busy."""
        with self._lock(".lock", wait):
            yield

    def claim(self, id: str, force: bool = False) -> Held:
        """Mark ID `sending`, under `.lock` (the caller's), if it is `held` — or, with `force`, left
        `sending` by an interrupted send. UsageError when it is gone; QueueError when the disk refuses."""
        with self._lock(".write.lock"):
            held = self.get(id)
            if held.state == SENDING and not force:
                raise QueueError(f"{id} is marked {SENDING}: an interrupted send (see `mailpin queue list`)")
            return self._mark(held, SENDING)

    def claim_matching(self, identity: Identity) -> builtins.list[Held]:
        """Under `.lock` (the caller's): mark `sending` every entry of this message — held ones, and
        ones an interrupted send left `sending` — for a mail program's retry that is about to be
        sent. Returns them as they were, for `settle`."""
        claimed = []
        with self._lock(".write.lock"):
            for entry in self._scan()[0]:
                if identity.same(entry.identity):
                    if entry.state == HELD:
                        self._mark(entry, SENDING)
                    claimed.append(entry)
        return claimed

    def settle(self, claimed: Sequence[Held], sent: bool, now: datetime, by_flush: bool = False) -> builtins.list[str]:
        """After the tool ran for the claimed entries: sent → they go, with every other entry of the
        same message; `by_flush` also remembers the Message-ID (see `delivered`). Not sent → each
        goes back to the state it had. Returns the IDs removed. QueueError when the disk refuses."""
        removed: builtins.list[str] = []
        with self._lock(".write.lock"):
            if not sent:
                for entry in claimed:
                    with contextlib.suppress(UsageError):  # dropped meanwhile
                        self._mark(self.get(entry.id), entry.state)
                return removed
            keys = {key for entry in claimed for key in entry.identity}
            ids = {entry.id for entry in claimed}
            for entry in self._scan()[0]:
                if entry.id in ids or not keys.isdisjoint(entry.identity):
                    self._remove(entry.id)
                    removed.append(entry.id)
            if by_flush:
                self._remember_delivered([key for key in keys if key.startswith("mid:")], now)
        return removed

    def mark(self, id: str, state: str) -> Held:
        """Rewrite ID's metadata atomically with STATE; UsageError when it is gone (dropped, sent)."""
        if state not in (HELD, SENDING):
            raise ValueError(f"unknown state {state!r}")
        with self._lock(".write.lock"):
            return self._mark(self.get(id), state)

    # -- inside the write lock ---------------------------------------------------------------------

    def _mark(self, held: Held, state: str) -> Held:
        marked = replace(held, state=state)
        try:
            write_atomically(self._paths(held.id)[1], _encode(marked))
        except OSError as exc:
            raise QueueError(f"{self.directory}: cannot mark {held.id} {state}: {_why(exc)}") from None
        return marked

    def _sender_running(self) -> bool:
        """Does someone hold `.lock` (a flush, a retry being sent)? Never waits."""
        try:
            with self._lock(".lock", 0):
                return False
        except Busy:
            return True

    def _delivered(self) -> dict[str, datetime]:
        try:
            raw = json.loads((self.directory / "sent.json").read_text(encoding="utf-8"))
            found = {key: datetime.fromisoformat(when) for key, when in raw.items()}
        except (OSError, ValueError, AttributeError, TypeError, RecursionError):  # RecursionError: [[[[…
            return {}  # only a guard against duplicates: unreadable means no memory, not an error
        # Version 1 kept whole-message digests here: never an identity key, so never a match.
        return {key: when for key, when in found.items() if _KEY.fullmatch(key) and when.tzinfo is not None}

    def _remember_delivered(self, keys: Sequence[str], when: datetime) -> None:
        if not keys:
            return
        kept = {k: t for k, t in self._delivered().items() if timedelta(0) <= when - t <= DELIVERED_WINDOW}
        kept.update(dict.fromkeys(keys, when))
        data = json.dumps({k: t.isoformat() for k, t in sorted(kept.items())}, indent=1).encode("utf-8")
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
    def _lock(self, name: str, wait: float | None = None) -> Iterator[None]:
        path = self.directory / name
        try:
            make_private_dirs(self.directory)
        except OSError as exc:
            raise QueueError(f"{self.directory}: cannot create the queue directory: {_why(exc)}") from None
        unfit = foreign(self.directory, "the queue directory")
        if unfit:
            raise ForeignQueue(f"{self.directory}: {unfit}")
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise QueueError(f"{path}: cannot open the queue's lock: {_why(exc)}") from None
        try:
            if wait is None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            else:
                _flock_within(fd, wait, path)
            yield
        finally:
            os.close(fd)  # releases the flock


def _flock_within(fd: int, wait: float, path: Path) -> None:
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise Busy(f"{path}: mailpin queue flush is sending held messages; try again in a minute") from None
            time.sleep(0.05)


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
    if not isinstance(raw, dict) or raw.get("version") not in (1, QUEUE_VERSION):
        raise ValueError(f"not version 1 or {QUEUE_VERSION} metadata (written by a newer mailpin?)")
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
    message_id, identity = raw.get("message_id", ""), raw.get("identity", [])
    if raw["version"] > 1 and not (
        isinstance(message_id, str)
        and isinstance(identity, list)
        and identity
        and all(isinstance(key, str) and _KEY.fullmatch(key) for key in identity)
    ):
        raise ValueError("`message_id` or `identity` is not what mailpin writes")
    texts = {name: raw[name] for name in _TEXTS[:-1]}
    return Held(id=id, size=size, held_at=held_at, **texts, **lists, message_id=message_id, identity=tuple(identity))


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
