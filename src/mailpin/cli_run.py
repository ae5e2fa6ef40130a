"""The wrapper's own entry: `mailpin run TOOL ARGS…` — what the shims exec.

Kept apart from argparse: every argument after the tool name belongs to the tool, untouched
(`--`, `-h`, `--version` included). Verified → this process becomes the real tool (exec). Blocked
→ the message is held, one line per account goes to stderr, and the status says why (DESIGN §4).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from mailpin.env import Env
from mailpin.errors import MailpinError
from mailpin.model import Status, Tool

if TYPE_CHECKING:
    from mailpin.commands.run import Decision
    from mailpin.commands.verify import Outcome


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

    # The real tool first: without it nothing can be sent, and the caller must keep the message.
    configured = settings.load(env)
    path = wrap.find_tool(tool.value, env.environ, configured.tools.get(tool.value), configured.source or "")
    decision = run.decide(env, tool, argv)
    for problem in decision.audit_problems:
        print(f"mailpin: {problem}", file=env.stderr)
    if decision.passed:
        if decision.message is not None:
            _forget_held_copies(env, tool, argv, decision.message)
        if env.stderr.isatty():  # an expiry warning is for a person, not for cron's mail
            for outcome in decision.outcomes:
                for warning in outcome.verdict.warnings:
                    if outcome.verdict.status is not Status.SKIPPED:
                        print(f"mailpin: {outcome.target.key}: {warning}", file=env.stderr)
        wrap.exec_tool(path, argv, decision.message, env.environ)
    held = _hold(env, decision) if decision.message is not None else ""
    for outcome in decision.blocked:
        print(f"mailpin: {_blocked_line(outcome, held)}", file=env.stderr)
    return int(decision.exit_status)


def _blocked_line(outcome: Outcome, held: str) -> str:
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
    if env.environ.get("MAILPIN_NO_HOLD"):
        return "the message stays held"  # `mailpin queue flush` is retrying a held message
    from mailpin.queue import Queue

    assert decision.message is not None
    reasons = tuple(dict.fromkeys(reason for outcome in decision.blocked for reason in outcome.verdict.reasons))
    detail = "; ".join(f"{outcome.target.key}: {outcome.verdict.detail}" for outcome in decision.blocked)
    held, new = Queue.for_env(env).hold(
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


def _forget_held_copies(env: Env, tool: Tool, argv: Sequence[str], message: bytes) -> None:
    """A message that was held and is now sent by the MUA's own retry must not go out twice."""
    from mailpin.queue import Queue

    try:
        Queue.for_env(env).discard_matching(message, tool.value, argv)
    except MailpinError as exc:
        print(f"mailpin: {exc}", file=env.stderr)
