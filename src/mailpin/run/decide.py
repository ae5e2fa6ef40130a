"""`mailpin run msmtp|mbsync|offlineimap [ARGS…]`: verify the accounts this very invocation will
use, then hand over to the real tool — or block, hold the outgoing message, and say why.

The decision is made here; `run.wrapper._run` prints it and either execs the tool (handover.exec_tool) or
exits with the block's status. Nothing here rewrites the tool's arguments or its message.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mailpin.commands.check import overall
from mailpin.commands.verify import Outcome, Target, Verifier
from mailpin.configs.discover import reader
from mailpin.env import Env
from mailpin.errors import ExitStatus
from mailpin.model import Account, Profile, Status, Tool
from mailpin.net.early import Early
from mailpin.state.settings import Settings

_PASS = {Status.VERIFIED, Status.PINNED, Status.SKIPPED}


@dataclass(frozen=True)
class Decision:
    tool: Tool
    argv: tuple[str, ...]
    outcomes: tuple[Outcome, ...]
    message: bytes | None  # what was read from stdin, to replay (or to hold)
    audit_problems: tuple[str, ...] = ()
    profiles: Mapping[str, Profile] = field(default_factory=dict)  # after this run's first-use pins
    # The tool's config as read for this decision (configs/TOOL.py `load`): the tool is handed these
    # very bytes (run/enforce.py), so a change to the file after it was verified has no effect on this run.
    config: Any = field(default=None, repr=False, compare=False)

    @property
    def passed(self) -> bool:
        return all(outcome.verdict.status in _PASS for outcome in self.outcomes)

    @property
    def exit_status(self) -> ExitStatus:
        return ExitStatus.OK if self.passed else overall(self.outcomes)

    def close(self) -> None:
        """Close the verified sessions nobody will use (a block: the tool does not run)."""
        for outcome in self.outcomes:
            if outcome.session is not None:
                outcome.session.close()

    @property
    def blocked(self) -> tuple[Outcome, ...]:
        return tuple(outcome for outcome in self.outcomes if outcome.verdict.status not in _PASS)


def reads_message(tool: Tool, argv: Sequence[str], posix: bool = False) -> bool:
    """Does the tool read a message on stdin? Only msmtp, in sendmail mode (configs/msmtp_argv.py)."""
    from mailpin.configs import msmtp_argv

    return tool is Tool.MSMTP and msmtp_argv.reads_message(argv, posix)


def decide(
    env: Env,
    tool: Tool,
    argv: Sequence[str],
    configured: Settings | None = None,
    message: bytes | None = None,
    keep: Callable[[Account], bool] | None = None,
    early: Early | None = None,
) -> Decision:
    """Read the message if the tool would (or take `message`: a held one), work out the accounts it
    will use, verify them all at once (pinning an unpinned one on first use when the settings allow
    it). A broken config raises ConfigError (78): the tool would refuse it too, and the caller keeps
    the message."""
    if message is None and reads_message(tool, argv, "POSIXLY_CORRECT" in env.environ):
        message = env.read_stdin_bytes()
    verifier = Verifier(env, configured, keep, early)
    module = reader(tool)
    config = module.load(argv, env)
    accounts = module.select(config, argv, message)
    targets = [Target(account.key, account, verifier.profiles.get(account.key)) for account in accounts]
    outcomes = verifier.verify_all(targets, pin_first_use=True)
    problems = tuple(verifier.audit_problems)
    return Decision(tool, tuple(argv), tuple(outcomes), message, problems, dict(verifier.profiles), config)
