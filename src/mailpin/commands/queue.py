"""`mailpin queue [list|flush|drop]`: the outgoing messages held when a send was blocked.

`flush` sends each one again, in this process, through the same verification as `mailpin run`, and
exactly once: under the queue's send lock, an entry is marked `sending` on disk before the tool
runs and removed once the tool exited 0 — with every other entry of the same message (state/queue.py).
An entry found `sending` was interrupted (crash, power loss, Ctrl-C) and may have gone out; it is
sent again only when named with `--force`. Each outcome is reported as it happened: `sent` only
when the tool accepted the message.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mailpin.env import Env
from mailpin.errors import ExitStatus, MailpinError, RelayError, UsageError
from mailpin.net.replies import printable
from mailpin.state.queue import SENDING, Held, Queue, QueueError


@dataclass(frozen=True)
class Attempt:
    """One send of a held message: `sent` (the tool exited 0), `blocked`, `unverified` or `config`
    (mailpin did not run the tool: the status is mailpin's), `failed` (the tool ran and refused:
    its own status)."""

    outcome: str
    status: int
    detail: str = ""


Sender = Callable[[Held, bytes], Attempt]


@dataclass(frozen=True)
class ListResult:
    held: tuple[Held, ...]
    problems: tuple[str, ...]  # entries that cannot be read, one line each, naming the file
    now: datetime


@dataclass(frozen=True)
class Flushed:
    held: Held
    # sent | blocked | unverified | config | failed | skipped (state sending) | gone (sent or dropped meanwhile)
    outcome: str
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
    send = sender or tool_sender(env)
    queue = Queue.for_env(env)
    flushed: list[Flushed] = []
    problems: list[str] = []
    sent_as: dict[str, str] = {}  # ID -> the ID of the same message, sent by this flush
    with queue.locked():  # a second flush, or a mail program's retry, waits, then finds what this one sent gone
        if ids:
            named = {id: queue.get(id) for id in ids}
            entries = sorted(named.values(), key=lambda held: (held.held_at, held.id))
        else:
            entries, problems = queue.scan()
        for held in entries:
            if held.id in sent_as:
                flushed.append(Flushed(held, "gone", 0, f"the same message as {sent_as[held.id]}, sent just now"))
            elif held.state == SENDING and not force:
                status = int(ExitStatus.USAGE) if ids else 0  # asked for by name and not sent: not a success
                flushed.append(Flushed(held, "skipped", status, _INTERRUPTED.format(id=held.id)))
            else:
                item, removed = _send_one(queue, held, send, problems, env.now, force)
                flushed.append(item)
                sent_as.update(dict.fromkeys(removed, held.id))
    return FlushResult(tuple(flushed), tuple(problems))


_INTERRUPTED = (
    "a flush started sending it and did not finish: it may have gone out; check the recipients' copy or your "
    "sent folder, then `mailpin queue flush --force {id}` or `mailpin queue drop {id}`"
)


def _send_one(
    queue: Queue, held: Held, send: Sender, problems: list[str], now: Callable[[], datetime], force: bool
) -> tuple[Flushed, list[str]]:
    try:
        data = queue.message(held)
        claimed = queue.claim(held.id, force)  # on disk before the tool runs: a crash leaves it `sending`
    except UsageError:
        return Flushed(held, "gone", 0, "dropped or sent meanwhile"), []
    except QueueError as exc:  # unreadable, or the disk refuses the mark: nothing was sent
        return Flushed(held, "failed", int(exc.exit_status), str(exc)), []
    attempt = send(claimed, data)  # an exception leaves it `sending`: it may have gone out
    removed: list[str] = []
    try:
        removed = queue.settle([held], attempt.outcome == "sent", now(), by_flush=True)
    except QueueError as exc:  # it stays `sending`: never sent twice without --force
        then = f"sent, but stays queued as `sending` ({exc}): `mailpin queue drop {held.id}`"
        if attempt.outcome != "sent":
            then = f"not sent, but stays queued as `sending` ({exc}): `mailpin queue flush --force {held.id}`"
        problems.append(f"{held.id} {then}")
    return Flushed(held, attempt.outcome, attempt.status, attempt.detail), [id for id in removed if id != held.id]


_OUTCOMES = {ExitStatus.BLOCKED: "blocked", ExitStatus.TEMPFAIL: "unverified", ExitStatus.CONFIG: "config"}


def tool_sender(env: Env) -> Sender:
    """Send as `mailpin run TOOL ARGV…` would — verify the accounts, then the tool with the held
    bytes on stdin — but in this process, the tool as a child: what happened is known, not guessed
    from an exit status that the tool and mailpin share (msmtp's 69 and 75 are its own too)."""
    import tempfile

    from mailpin.model import Tool
    from mailpin.notify.alerts import announce
    from mailpin.run import enforce, handover
    from mailpin.run.decide import decide_on
    from mailpin.run.invocation import Invocation
    from mailpin.state import settings

    configured = settings.load(env)

    def send(held: Held, message: bytes) -> Attempt:
        tool = Tool(held.tool)
        try:
            path = handover.find_tool(
                tool.value, env.environ, configured.tools.get(tool.value), configured.source or ""
            )
            invocation = Invocation.parse(env, tool, held.argv).read_message(env, message)
            decision = decide_on(env, invocation, configured, keep=enforce.relays(configured))
        except MailpinError as exc:
            return Attempt(_OUTCOMES.get(exc.exit_status, "failed"), int(exc.exit_status), str(exc))
        for problem in decision.audit_problems:
            print(f"mailpin: {problem}", file=env.stderr)
        if not decision.passed:
            announce(env, decision.outcomes, configured.notify, f"the message stays held as {held.id}")
            why = "; ".join(f"{outcome.target.key}: {outcome.verdict.why_and_reasons}" for outcome in decision.blocked)
            return Attempt(_OUTCOMES.get(decision.exit_status, "failed"), int(decision.exit_status), why)
        announce(env, decision.outcomes, configured.notify)
        try:
            plan = enforce.handed_over(env, decision, configured)  # the verified session carries it too
        except RelayError as exc:
            return Attempt(_OUTCOMES[ExitStatus.TEMPFAIL], int(exc.exit_status), str(exc))
        try:
            with tempfile.TemporaryFile() as said:
                environ = plan.tool_environ(env.environ)
                status = handover.run_tool(tool.value, path, plan.argv, message, environ, plan.keep_fds, said.fileno())
                said.seek(0)
                text = said.read().decode("utf-8", "replace")
        except MailpinError as exc:
            return Attempt("failed", int(exc.exit_status), str(exc))
        finally:
            for fd in plan.keep_fds:
                os.close(fd)
        env.stderr.write(text)  # the tool's own words, as it would have said them
        if status == 0:
            return Attempt("sent", 0)
        last = _last_line(text)
        return Attempt("failed", status, f"{tool.value} failed (status {status})" + (f": {last}" if last else ""))

    return send


def _last_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
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
    rows = [
        (
            held.id,
            _age(held.held_at, result.now),
            held.tool,
            ",".join(held.accounts) or "-",
            ",".join(held.reasons) or "-",
            _size(held.size),
            held.state,
            _subject(held),  # last: as long as it is, nothing after it to push out of line
        )
        for held in result.held
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]) - 1)]
    right = {1, 5}  # age and size: numbers line up on the right
    lines = []
    for row in rows:
        cells = [
            cell.rjust(w) if i in right else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(row[:-1], widths, strict=True))
        ]
        lines.append("  ".join([*cells, row[-1]]))
    return "\n".join(lines)


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
        "message_id": held.message_id or None,
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
        return f"gone: {item.detail}"
    if item.outcome == "skipped":
        return f"not sent: {item.detail}"
    what = {"blocked": "blocked: ", "unverified": "could not verify: ", "config": "cannot verify: "}
    return f"{what.get(item.outcome, '')}{item.detail}; still held"


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
