"""The wrapper's own entry: `mailpin run TOOL ARGS…` — what the shims exec.

Kept apart from argparse: every argument after the tool name belongs to the tool, untouched
(`--`, `-h`, `--version` included). Verified → this process becomes the real tool (exec). Blocked
→ the message is held, one line per account goes to stderr, and the status says why (DESIGN §4).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from mailpin.env import Env
from mailpin.errors import ConfigError, MailpinError
from mailpin.model import Status, Tool

if TYPE_CHECKING:
    from mailpin.commands.run import Decision
    from mailpin.commands.verify import Outcome
    from mailpin.queue import Queue
    from mailpin.settings import Settings


def main(tool_name: str, argv: Sequence[str], env: Env) -> int:
    try:
        return _run(Tool(tool_name), list(argv), env)
    except MailpinError as exc:
        print(f"mailpin: {exc}", file=env.stderr)
        return int(exc.exit_status)
    except KeyboardInterrupt:
        return 130


def _run(tool: Tool, argv: list[str], env: Env) -> int:
    from mailpin import settings, wrap
    from mailpin.commands import run

    depth = env.environ.get(wrap.DEPTH, "0")
    if depth.isdigit() and int(depth) >= wrap.MAX_DEPTH:
        raise ConfigError(
            tool.value,
            None,
            f"`mailpin run {tool.value}` runs itself in a loop: the tool it finds calls {tool.value} through "
            f"mailpin's shim again; name the real binary in the [tools] section of mailpin's config",
        )
    # The real tool first: without it nothing can be sent, and the caller must keep the message.
    configured = settings.load(env)
    path = wrap.find_tool(tool.value, env.environ, configured.tools.get(tool.value), configured.source or "")
    decision = run.decide(env, tool, argv, configured)
    for problem in decision.audit_problems:
        print(f"mailpin: {problem}", file=env.stderr)
    from mailpin.notify.alerts import announce

    if decision.passed:
        announce(env, decision.outcomes, configured.notify)  # clears the accounts that verified again
        if decision.message is not None:
            duplicate = _already_sent(env, tool, argv, decision.message)
            if duplicate:
                print(f"mailpin: not sent again: {duplicate}", file=env.stderr)
                return 0  # the MUA's (or msmtpq's) retry of a message that went out from the queue
            _forget_held_copies(env, tool, argv, decision.message)
        if env.stderr.isatty():  # an expiry warning is for a person, not for cron's mail
            for outcome in decision.outcomes:
                for warning in outcome.verdict.warnings:
                    if outcome.verdict.status is not Status.SKIPPED:
                        print(f"mailpin: {outcome.target.key}: {warning}", file=env.stderr)
        held_to = _enforcement(env, tool, argv, decision, configured)
        wrap.exec_tool(tool.value, path, held_to, decision.message, env.environ)
    held = _hold(env, decision) if decision.message is not None else ""
    for outcome in decision.blocked:
        print(f"mailpin: {blocked_line(outcome, held)}", file=env.stderr)
    env.stderr.flush()  # the line first: a MUA shows it even if telling the desktop is slow
    announce(env, decision.outcomes, configured.notify, held)
    return int(decision.exit_status)


def _enforcement(env: Env, tool: Tool, argv: list[str], decision: Decision, configured: Settings) -> list[str]:
    """The tool's arguments with the additions that hold its own session to the profile (enforce.py)."""
    import sys

    from mailpin import enforce
    from mailpin.configs.discover import reader

    if not enforce.available():
        return argv  # no in-memory files here (macOS): the pre-flight check alone
    held = [
        o for o in decision.outcomes
        if o.verdict.status in (Status.VERIFIED, Status.PINNED) and o.target.account is not None
        and configured.enforce_for(o.target.key) and o.target.key in decision.profiles
    ]  # fmt: skip
    if not held:
        return argv
    if tool is Tool.MSMTP:
        outcome = held[0]
        assert outcome.observation is not None
        return enforce.msmtp(argv, decision.profiles[outcome.target.key], outcome.observation, env.environ).argv
    from mailpin.hooks import this_mailpin  # mbsync and offlineimap call `mailpin tunnel` back

    accounts = [o.target.account for o in held if o.target.account is not None]
    paths = reader(tool).config_paths(argv, env)
    mailpin = this_mailpin(sys.argv[0], sys.executable)
    if tool is Tool.MBSYNC:
        return enforce.mbsync(argv, accounts, paths[0], mailpin).argv if paths else argv
    return enforce.offlineimap(argv, accounts, mailpin, paths[0] if paths else None).argv


def blocked_line(outcome: Outcome, held: str) -> str:
    verdict, key = outcome.verdict, outcome.target.key
    what = {Status.UNVERIFIED: "could not verify", Status.CONFIG_ERROR: "cannot verify"}.get(verdict.status, "blocked")
    why = verdict.detail or "; ".join(verdict.warnings)
    reasons = f" [{', '.join(verdict.reasons)}]" if verdict.reasons else ""
    line = f"{key} {what}: {why}{reasons}; {held or 'nothing was sent'}"
    if outcome.target.profile is not None:
        line += f"; review: mailpin review {key}"
    return line


def _hold(env: Env, decision: Decision) -> str:
    """Hold the blocked message (never lost); returns what to tell the user about it."""
    from mailpin.queue import FLUSHING, SENDING, Queue, QueueError, digest

    assert decision.message is not None
    queue = Queue.for_env(env)
    flushing = env.environ.get(FLUSHING, "")
    if flushing:  # `mailpin queue flush` retries a held message: it stays held, as that ID
        try:
            held = queue.get(flushing)
            if held.state == SENDING and held.digest == digest(decision.tool.value, decision.argv, decision.message):
                return f"the message stays held as {held.id}"
        except MailpinError:
            pass  # not what the flush said it was sending: hold it like any other
    try:
        return _held_text(env, queue, decision)
    except QueueError as exc:  # the status still says "not sent", so the MUA keeps its copy
        return f"NOT held ({exc}): your mail program still has it — send it again once that is fixed"


def _held_text(env: Env, queue: Queue, decision: Decision) -> str:
    assert decision.message is not None
    reasons = tuple(dict.fromkeys(reason for outcome in decision.blocked for reason in outcome.verdict.reasons))
    detail = "; ".join(f"{outcome.target.key}: {outcome.verdict.detail}" for outcome in decision.blocked)
    held, new = queue.hold(
        decision.message,
        decision.tool.value,
        decision.argv,
        tuple(outcome.target.key for outcome in decision.blocked),
        reasons,
        detail,
        env.now(),
    )
    again = "" if new else " (already held: not held twice)"
    return f"message held as {held.id}{again} — send it after review with `mailpin queue flush {held.id}`"


def _already_sent(env: Env, tool: Tool, argv: Sequence[str], message: bytes) -> str | None:
    from mailpin.queue import FLUSHING, Queue

    try:
        return Queue.for_env(env).already(message, tool.value, argv, env.now(), env.environ.get(FLUSHING, ""))
    except MailpinError:
        return None  # a guard against duplicates only: an unreadable queue sends as usual


def _forget_held_copies(env: Env, tool: Tool, argv: Sequence[str], message: bytes) -> None:
    """A message that was held and is now sent by the MUA's own retry must not go out twice."""
    from mailpin.queue import Queue

    try:
        Queue.for_env(env).discard_matching(message, tool.value, argv)
    except MailpinError as exc:
        print(f"mailpin: {exc}", file=env.stderr)
