"""The wrapper's own entry: `mailpin run TOOL ARGS…` — what the shims exec.

Kept apart from argparse: every argument after the tool name belongs to the tool, untouched
(`--`, `-h`, `--version` included). Verified → this process becomes the real tool (exec) — except
for a mail program's retry of a held message, where the tool runs as a child so that the held copy
goes once the tool has accepted the message. Blocked → the message is held, one line per account
goes to stderr, and the status says why (DESIGN §4).
"""

from __future__ import annotations

from collections.abc import Sequence

from mailpin.env import Env
from mailpin.errors import ConfigError, MailpinError
from mailpin.model import Status, Tool
from mailpin.net.replies import printable

TYPE_CHECKING = False  # typing's own, without importing typing on every run (STYLE §10)
if TYPE_CHECKING:
    from mailpin.commands.verify import Outcome
    from mailpin.net.early import Early, Hints
    from mailpin.run.decide import Decision
    from mailpin.run.enforce import Plan
    from mailpin.run.invocation import Invocation


def main(tool_name: str, argv: Sequence[str], env: Env, hints: Hints, opened: Early | None) -> int:
    """HINTS: connect.json's for this command line; OPENED: what cli.main opened from them."""
    try:
        return _run(Tool(tool_name), list(argv), env, hints, opened)
    except MailpinError as exc:
        print(printable(f"mailpin: {exc}", 4000), file=env.stderr)  # a config's bytes cannot drive the terminal
        return int(exc.exit_status)
    except KeyboardInterrupt:
        return 130


def _run(tool: Tool, argv: list[str], env: Env, hints: Hints, opened: Early | None) -> int:
    from mailpin.run import handover

    depth = env.environ.get(handover.DEPTH, "0")
    if depth.isdigit() and int(depth) >= handover.MAX_DEPTH:
        raise ConfigError(
            tool.value,
            None,
            f"`mailpin run {tool.value}` runs itself in a loop: the tool it finds calls {tool.value} through "
            f"mailpin's shim again; name the real binary in the [tools] section of mailpin's config",
        )
    invocation, opened = _start(tool, argv, env, hints, opened)  # connecting while the rest is imported
    message = invocation.message
    try:
        from mailpin.run import enforce
        from mailpin.run.decide import decide_on
        from mailpin.state import settings

        # The real tool first: without it nothing can be sent, and the caller must keep the message.
        configured = settings.load(env)
        path = handover.find_tool(tool.value, env.environ, configured.tools.get(tool.value), configured.source or "")
        if tool is Tool.MSMTP and enforce.relayed_already(argv, env.environ):
            handover.exec_tool(tool.value, path, argv, message, env.environ)
        decision = decide_on(env, invocation, configured, keep=enforce.relays(configured), early=opened)
    finally:
        if opened is not None:
            opened.close()  # what the verifier did not take: a hint that no longer fits
    if decision.passed:
        _remember(hints, invocation, decision)
    for problem in decision.audit_problems:
        print(f"mailpin: {problem}", file=env.stderr)
    from mailpin.notify.alerts import announce

    if decision.passed:
        announce(env, decision.outcomes, configured.notify)  # clears the accounts that verified again
        if env.stderr.isatty():  # an expiry warning is for a person, not for cron's mail
            for outcome in decision.outcomes:
                for warning in outcome.verdict.warnings:
                    if outcome.verdict.status is not Status.SKIPPED:
                        print(f"mailpin: {printable(f'{outcome.target.key}: {warning}', 2000)}", file=env.stderr)
        plan = enforce.handed_over(env, decision, configured)
        if message is not None:
            status = _send_retry(env, tool, path, argv, plan, message)
            if status is not None:
                return status
        handover.exec_tool(tool.value, path, plan.argv, message, plan.tool_environ(env.environ))
    decision.close()
    held = _hold(env, decision) if message is not None else ""
    for outcome in decision.blocked:
        print(f"mailpin: {blocked_line(outcome, held)}", file=env.stderr)
    env.stderr.flush()  # the line first: a MUA shows it even if telling the desktop is slow
    announce(env, decision.outcomes, configured.notify, held, send=message is not None)
    return int(decision.exit_status)


def _start(
    tool: Tool, argv: Sequence[str], env: Env, hints: Hints, opened: Early | None
) -> tuple[Invocation, Early | None]:
    """The command line, read once, with the message when the tool reads one (msmtp in sendmail
    mode); and for msmtp, once the message is read, the connections its From: line's runs made,
    unless every run of the command line went to the same place and they are open already."""
    from mailpin.net import early
    from mailpin.run.invocation import Invocation

    invocation = Invocation.parse(env, tool, argv)
    if tool is not Tool.MSMTP:
        return invocation, opened
    invocation = invocation.read_message(env)
    if invocation.message is None:
        return invocation, opened
    return invocation, early.start(hints.of(early.sender(invocation.message)), opened)


def _remember(hints: Hints, invocation: Invocation, decision: Decision) -> None:
    """Where this run's verified sessions connected: the next run of it opens them at its start."""
    from mailpin.net import early

    endpoints = [(o.endpoint.host, o.endpoint.port) for o in decision.outcomes if o.session and o.endpoint]
    if endpoints:
        hints.remember(early.sender(invocation.message), endpoints)


def blocked_line(outcome: Outcome, held: str) -> str:
    verdict, key = outcome.verdict, outcome.target.key
    what = {Status.UNVERIFIED: "could not verify", Status.CONFIG_ERROR: "cannot verify"}.get(verdict.status, "blocked")
    line = f"{key} {what}: {verdict.why_and_reasons}"
    if outcome.target.profile is not None:
        line += f"; review: mailpin review {key}"
    line = f"{line}; {held or 'nothing was sent'}"
    return printable(line, limit=None)  # one line on a terminal, whatever a server put in it


RETRY_WAIT = 30.0  # seconds a mail program's retry of a held message waits for a running flush


def _send_retry(env: Env, tool: Tool, path: str, argv: Sequence[str], plan: Plan, message: bytes) -> int | None:
    """A verified send that is a retry of a message in mailpin's queue: sent once. None when the
    queue has nothing of it (the caller execs the tool, as for any send); else the status to exit
    with, after the tool ran as a child and the held copies were settled (state/queue.py)."""
    from mailpin.state import queue_dir

    if queue_dir.idle(queue_dir.directory(env.state_home)):
        return None  # nothing held: the queue (and the message identity) is not even imported
    from mailpin.run import handover
    from mailpin.state.identity import identify
    from mailpin.state.queue import Queue, QueueError

    queue = Queue.for_env(env)
    identity = identify(tool.value, argv, message)  # the caller's arguments, as held
    try:
        if queue.delivered(identity, env.now()) is None and not queue.matching(identity):
            return None
    except QueueError as exc:  # cannot tell: send, as the tool alone would
        print(f"mailpin: {exc} (sending anyway)", file=env.stderr)
        return None
    with queue.locked(RETRY_WAIT):  # Busy (75) after that: not sent, the mail program keeps it
        when = queue.delivered(identity, env.now())
        if when is not None:
            print(
                f"mailpin: not sent again: <{printable(identity.message_id, 200)}> went out from mailpin's queue at "
                f"{when:%H:%M:%S} UTC (`mailpin queue flush`); this is your mail program's retry of it",
                file=env.stderr,
            )
            return 0
        claimed = queue.claim_matching(identity)
        if not claimed:
            return None
        try:
            environ = plan.tool_environ(env.environ)
            status = handover.run_tool(tool.value, path, plan.argv, message, environ, plan.keep_fds)
        except BaseException:  # the tool could not be started: nothing went out
            queue.settle(claimed, False, env.now())
            raise
        ids = " ".join(entry.id for entry in claimed)
        try:
            queue.settle(claimed, status == 0, env.now())
        except QueueError as exc:
            then = f"`mailpin queue drop {ids}`" if status == 0 else f"`mailpin queue flush --force {ids}`"
            print(f"mailpin: {exc}: it stays in the queue marked sending; {then}", file=env.stderr)
            return status
    if status == 0 and env.stderr.isatty():
        print(f"mailpin: sent; the copy held as {ids} is no longer in mailpin's queue", file=env.stderr)
    return status


def _hold(env: Env, decision: Decision) -> str:
    """Hold the blocked message (never lost); returns what to tell the user about it."""
    from mailpin.state.queue import Queue, QueueError

    invocation = decision.invocation
    assert invocation.message is not None
    reasons = tuple(dict.fromkeys(reason for outcome in decision.blocked for reason in outcome.verdict.reasons))
    detail = "; ".join(f"{outcome.target.key}: {outcome.verdict.detail}" for outcome in decision.blocked)
    accounts = tuple(outcome.target.key for outcome in decision.blocked)
    try:
        done = Queue.for_env(env).hold(
            invocation.message, invocation.tool.value, invocation.argv, accounts, reasons, detail, env.now()
        )
    except QueueError as exc:  # the status still says "not sent", so the MUA keeps its copy
        return f"NOT held ({exc}): your mail program still has it — send it again once that is fixed"
    id = done.held.id
    if done.how == "sending":
        return f"the same message is being sent by `mailpin queue flush` now; if that fails, it stays held as {id}"
    how = {"already": " (already held)", "replaced": f" (replacing the older copy {' '.join(done.replaced)})"}
    return (
        f"message held as {id}{how.get(done.how, '')}, safe in mailpin's queue; sending it again from your mail "
        f"program is harmless (held once, sent once); then `mailpin queue flush {id}`"
    )
