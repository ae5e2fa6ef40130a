"""`mailpin queue [list|flush|drop]`: the outgoing messages held when a send was blocked.

`flush` sends each one again through `mailpin run`, so through the same verification, exactly once:
under the queue's flush lock, an entry is marked `sending` on disk before the tool runs and removed
once it exited 0. An entry found `sending` was interrupted (crash, power loss, Ctrl-C) and may have
gone out; it is sent again only when named with `--force`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mailpin.env import Env
from mailpin.errors import ExitStatus, UsageError
from mailpin.net.replies import printable
from mailpin.queue import FLUSHING, HELD, SENDING, Held, Queue, QueueError

# Sends one held message: (exit status, the last line it wrote on stderr).
Sender = Callable[[Held, bytes], tuple[int, str]]


@dataclass(frozen=True)
class ListResult:
    held: tuple[Held, ...]
    problems: tuple[str, ...]  # entries that cannot be read, one line each, naming the file
    now: datetime


@dataclass(frozen=True)
class Flushed:
    held: Held
    outcome: str  # sent | blocked | unverified | failed | skipped (state sending) | gone (dropped meanwhile)
    status: int  # the send's exit status (0 for sent, skipped and gone)
    detail: str = ""


@dataclass(frozen=True)
class FlushResult:
    flushed: tuple[Flushed, ...]
    problems: tuple[str, ...] = ()

    @property
    def exit_status(self) -> int:
        """0 when everything tried was sent; else the worst: 69, then 75, then any other."""
        return max((item.status for item in self.flushed), key=_severity, default=0)


def _severity(status: int) -> int:
    return {0: 0, ExitStatus.BLOCKED: 3, ExitStatus.TEMPFAIL: 2}.get(status, 1)


def show(env: Env) -> ListResult:
    held, problems = Queue.for_env(env).scan()
    return ListResult(tuple(held), tuple(problems), env.now())


def drop(env: Env, ids: Sequence[str]) -> tuple[Held, ...]:
    queue = Queue.for_env(env)
    for id in ids:  # every ID known before anything goes
        queue.get(id)
    return tuple(queue.drop(id) for id in dict.fromkeys(ids))


def flush(env: Env, ids: Sequence[str] = (), force: bool = False, sender: Sender | None = None) -> FlushResult:
    """Send the held messages (all, or IDS), oldest first, one at a time."""
    if force and not ids:
        raise UsageError("--force sends again messages that may have gone out already: name them (ID…)")
    send = sender or run_sender(env)
    queue = Queue.for_env(env)
    flushed: list[Flushed] = []
    problems: list[str] = []
    with queue.locked():  # a second flush waits, then finds what this one sent gone
        if ids:
            named = {id: queue.get(id) for id in ids}
            entries = sorted(named.values(), key=lambda held: (held.held_at, held.id))
        else:
            entries, problems = queue.scan()
        for held in entries:
            if held.state == SENDING and not force:
                status = int(ExitStatus.USAGE) if ids else 0  # asked for by name and not sent: not a success
                flushed.append(Flushed(held, "skipped", status, _INTERRUPTED.format(id=held.id)))
                continue
            flushed.append(_send_one(queue, held, send, problems, env.now))
    return FlushResult(tuple(flushed), tuple(problems))


_INTERRUPTED = (
    "a flush started sending it and did not finish: it may have gone out; check the recipients' copy or your "
    "sent folder, then `mailpin queue flush --force {id}` or `mailpin queue drop {id}`"
)


def _send_one(queue: Queue, held: Held, send: Sender, problems: list[str], env_now: Callable[[], datetime]) -> Flushed:
    try:
        data = queue.message(held)
        claimed = queue.mark(held.id, SENDING)  # on disk before the tool runs: a crash leaves it `sending`
    except UsageError:
        return Flushed(held, "gone", 0, "dropped or sent meanwhile")
    except QueueError as exc:  # unreadable, or the disk refuses the mark: nothing was sent
        return Flushed(held, "failed", int(exc.exit_status), str(exc))
    status, line = send(claimed, data)  # an exception leaves it `sending`: it may have gone out
    try:
        if status == 0:
            queue.drop(held.id, sent_at=env_now())
        else:
            queue.mark(held.id, HELD)
    except UsageError:
        pass  # dropped while it was being sent
    except QueueError as exc:  # it stays `sending`: never sent twice without --force
        then = f"sent, but stays queued as `sending` ({exc}): `mailpin queue drop {held.id}`"
        if status:
            then = f"not sent, but stays queued as `sending` ({exc}): `mailpin queue flush --force {held.id}`"
        problems.append(f"{held.id} {then}")
    if status == 0:
        return Flushed(held, "sent", 0, line)
    if status == ExitStatus.BLOCKED:
        return Flushed(held, "blocked", status, f"still blocked: {line}" if line else "still blocked")
    if status == ExitStatus.TEMPFAIL:
        return Flushed(held, "unverified", status, f"could not verify: {line}" if line else "could not verify")
    failed = f"{held.tool} failed (status {status})"
    return Flushed(held, "failed", status, f"{failed}: {line}" if line else failed)


def run_sender(env: Env) -> Sender:
    """Send through `mailpin run TOOL ARGV…` in a child process, the message on its stdin."""
    from mailpin.hooks import this_mailpin

    command = this_mailpin(sys.argv[0], sys.executable)

    def send(held: Held, message: bytes) -> tuple[int, str]:
        # The child must not hold it again when still blocked: it is held already, as this ID.
        environ = {**env.environ, FLUSHING: held.id}
        argv = [*command, "run", held.tool, *held.argv]
        try:
            child = subprocess.Popen(
                argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=environ
            )
        except OSError as exc:  # nothing ran, nothing was sent
            return int(os.EX_OSERR), f"cannot run {sys.executable}: {exc.strerror or exc}"
        with child:
            out, err = child.communicate(message)
        return child.returncode, _last_line(err) or _last_line(out)

    return send


def _last_line(output: bytes) -> str:
    lines = [line for line in output.decode("utf-8", "replace").splitlines() if line.strip()]
    return printable(lines[-1].strip(), 300) if lines else ""


# -- rendering (text for people, JSON for scripts) ---------------------------------------------------


def _age(then: datetime, now: datetime) -> str:
    seconds = max(0, int((now - then).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _size(count: int) -> str:
    if count < 1000:
        return f"{count} B"
    return f"{count / 1000:.1f} kB" if count < 1_000_000 else f"{count / 1_000_000:.1f} MB"


def _subject(held: Held) -> str:
    return f'"{held.subject}"' if held.subject else "(no subject)"


def list_text(result: ListResult) -> str:
    if not result.held:
        return "no held messages"
    return "\n".join(
        "  ".join(
            (
                held.id,
                f"{_age(held.held_at, result.now):>4}",
                held.tool,
                ",".join(held.accounts) or "-",
                ",".join(held.reasons) or "-",
                _size(held.size),
                _subject(held),
                held.state,
            )
        )
        for held in result.held
    )


def held_json(held: Held) -> dict[str, Any]:
    return {
        "id": held.id,
        "tool": held.tool,
        "argv": list(held.argv),
        "accounts": list(held.accounts),
        "reasons": list(held.reasons),
        "detail": held.detail,
        "held_at": held.held_at.isoformat(),
        "size": held.size,
        "digest": held.digest,
        "subject": held.subject,
        "recipients": list(held.recipients),
        "state": held.state,
    }


def list_json(result: ListResult) -> dict[str, Any]:
    from mailpin.output import JSON_VERSION

    return {
        "version": JSON_VERSION,
        "held": [held_json(held) for held in result.held],
        "problems": list(result.problems),
    }


def flush_text(result: FlushResult) -> str:
    if not result.flushed:
        return "no held messages"
    return "\n".join(f"{item.held.id} {_subject(item.held)}: {_flush_line(item)}" for item in result.flushed)


def _flush_line(item: Flushed) -> str:
    if item.outcome == "sent":
        return "sent"
    if item.outcome == "gone":
        return "gone (dropped or sent meanwhile)"
    if item.outcome == "skipped":
        return f"not sent: {item.detail}"
    return f"{item.detail}; still held"


def flush_json(result: FlushResult) -> dict[str, Any]:
    from mailpin.output import JSON_VERSION

    items = [
        {"id": item.held.id, "outcome": item.outcome, "status": item.status, "detail": item.detail or None}
        for item in result.flushed
    ]
    return {
        "version": JSON_VERSION,
        "flushed": items,
        "problems": list(result.problems),
        "exit_status": result.exit_status,
    }


def drop_text(dropped: Sequence[Held]) -> str:
    return "\n".join(f"{held.id} {_subject(held)}: dropped" for held in dropped)
