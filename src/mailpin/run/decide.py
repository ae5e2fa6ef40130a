"""`mailpin run msmtp|mbsync|offlineimap [ARGS…]`: verify the accounts this very invocation will
use, then hand over to the real tool — or block, hold the outgoing message, and say why.

The decision is made here; `run.wrapper._run` prints it and either execs the tool (handover.exec_tool) or
exits with the block's status. Nothing here rewrites the tool's arguments or its message.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from mailpin.commands.check import overall
from mailpin.commands.verify import Outcome, Target, Verifier
from mailpin.configs.discover import reader
from mailpin.env import Env
from mailpin.errors import ExitStatus
from mailpin.model import Account, Profile, Status, Tool
from mailpin.net.early import Early
from mailpin.run.invocation import Invocation
from mailpin.state.settings import Settings

_PASS = {Status.VERIFIED, Status.PINNED, Status.SKIPPED}


@dataclass(frozen=True)
class Decision:
    # The invocation decided on, its config as read: the tool is handed these very bytes
    # (run/enforce.py), so a change to the file after it was verified has no effect on this run.
    invocation: Invocation
    outcomes: tuple[Outcome, ...]
    audit_problems: tuple[str, ...] = ()
    profiles: Mapping[str, Profile] = field(default_factory=dict)  # after this run's first-use pins

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


def decide(
    env: Env,
    tool: Tool,
    argv: Sequence[str],
    configured: Settings | None = None,
    message: bytes | None = None,
    keep: Callable[[Account], bool] | None = None,
    early: Early | None = None,
) -> Decision:
    """`decide_on` for `tool argv…`: the message `message` (a held one), else read if the tool would."""
    return decide_on(env, Invocation.parse(env, tool, argv).read_message(env, message), configured, keep, early)


def decide_on(
    env: Env,
    invocation: Invocation,
    configured: Settings | None = None,
    keep: Callable[[Account], bool] | None = None,
    early: Early | None = None,
) -> Decision:
    """Read the tool's config (once: the decision carries it), work out the accounts the invocation
    will use, verify them all at once (pinning an unpinned one on first use when the settings allow
    it). A broken config raises ConfigError (78): the tool would refuse it too, and the caller keeps
    the message."""
    verifier = Verifier(env, configured, keep, early)
    invocation = invocation.read_config(env)
    module = reader(invocation.tool)
    accounts = module.select_parsed(invocation.config, invocation.command, invocation.message)
    targets = [Target(account.key, account, verifier.profiles.get(account.key)) for account in accounts]
    outcomes = verifier.verify_all(targets, pin_first_use=True)
    problems = tuple(verifier.audit_problems)
    return Decision(invocation, tuple(outcomes), problems, dict(verifier.profiles))
