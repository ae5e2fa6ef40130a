"""`mailpin check [ACCOUNT…]`: verify the live endpoints against their profiles; run nothing, pin nothing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mailpin.commands.verify import Outcome, Verifier
from mailpin.env import Env
from mailpin.errors import ConfigError, ExitStatus
from mailpin.model import Status


@dataclass(frozen=True)
class CheckResult:
    outcomes: tuple[Outcome, ...]
    errors: tuple[ConfigError, ...] = ()  # tool configs that could not be read
    audit_problems: tuple[str, ...] = ()
    told: tuple[str, ...] = ()  # notifications sent (desktop, notmuch)

    @property
    def exit_status(self) -> ExitStatus:
        return overall(self.outcomes, self.errors)


def overall(outcomes: Sequence[Outcome], errors: Sequence[ConfigError] = ()) -> ExitStatus:
    """DESIGN §4, the most severe first: any block is 69; else a broken config is 78 (it needs you:
    running again will not mend it); else anything that could not be verified is 75 (try later)."""
    statuses = {outcome.verdict.status for outcome in outcomes}
    if Status.BLOCKED in statuses:
        return ExitStatus.BLOCKED
    if errors or Status.CONFIG_ERROR in statuses:
        return ExitStatus.CONFIG
    return ExitStatus.TEMPFAIL if Status.UNVERIFIED in statuses else ExitStatus.OK


SYNC_TOOLS = ("mbsync:", "offlineimap:", "mpop:", "fetchmail:", "getmail:")  # the tools that fetch mail


def run(env: Env, names: Sequence[str], *, sync_only: bool = False) -> CheckResult:
    """`sync_only`: the accounts a mail sync or fetch uses (mbsync, offlineimap, mpop, fetchmail,
    getmail) — what a notmuch pre-new hook guards."""
    verifier = Verifier(env)
    targets, errors = verifier.targets(names)
    if sync_only:
        targets = [target for target in targets if target.key.startswith(SYNC_TOOLS)]
    outcomes = verifier.verify_all(targets)
    from mailpin.notify.alerts import announce

    told = announce(env, outcomes, verifier.settings.notify)
    return CheckResult(tuple(outcomes), errors, tuple(verifier.audit_problems), tuple(told))
