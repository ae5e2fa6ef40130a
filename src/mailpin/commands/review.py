"""`mailpin review ACCOUNT`: the profile beside the live connection, and what changed, in words."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from mailpin.commands.check import overall
from mailpin.commands.verify import Outcome, Target, Verifier
from mailpin.env import Env
from mailpin.errors import ConfigError, ExitStatus, ProbeError
from mailpin.model import Profile
from mailpin.state.audit import AuditError
from mailpin.trust import policy


@dataclass(frozen=True)
class History:
    """From the audit log: how the pin has fared since it was made."""

    verified: int  # successful verifications since the pin
    blocked: int
    last_verified: datetime | None


@dataclass(frozen=True)
class Review:
    outcome: Outcome
    changes: tuple[str, ...]  # the change classified (policy.changes), empty when nothing changed
    history: History | None  # None when not pinned (or the audit log cannot be read)
    now: datetime


@dataclass(frozen=True)
class ReviewResult:
    reviews: tuple[Review, ...]
    audit_problems: tuple[str, ...] = ()

    @property
    def exit_status(self) -> ExitStatus:
        return overall([review.outcome for review in self.reviews])


def _history(verifier: Verifier, profile: Profile) -> History | None:
    verified = blocked = 0
    last: datetime | None = None
    try:
        events = verifier.audit.events(profile.account)
    except AuditError:
        return None  # the log informs a review; it never decides one
    for event in events:
        try:
            when = datetime.fromisoformat(event["time"])
        except (KeyError, TypeError, ValueError):
            continue
        if when.tzinfo is None or when < profile.pinned_at:
            continue
        if event.get("event") == "verified":
            verified += 1
            last = when
        elif event.get("event") == "blocked":
            blocked += 1
    return History(verified, blocked, last)


def _review(verifier: Verifier, target: Target) -> Review:
    now = verifier.env.now()
    profile = target.profile
    history = _history(verifier, profile) if profile is not None else None  # before this review's own check
    outcome = verifier.verify(target)
    if profile is not None and outcome.observation is None and outcome.error is None:
        # Blocked by the config alone, or a profile no config names any more (skipped): show the
        # pinned endpoint live anyway. The verdict stays what `check` says — for an orphan, probing
        # with a guessed trust store must not turn "skipped" into a block.
        try:
            observation = verifier.observe(profile.endpoint, target.account)
            outcome = Outcome(target, profile.endpoint, outcome.verdict, observation)
        except ProbeError as exc:
            outcome = Outcome(target, profile.endpoint, outcome.verdict, error=exc)
        except ConfigError:
            pass  # already reported in the verdict
    changes: tuple[str, ...] = ()
    if profile is not None and outcome.observation is not None:
        changes = tuple(policy.changes(profile, outcome.observation, now))
    verifier.record("review", target.key, status=outcome.verdict.status.value, reasons=list(outcome.verdict.reasons))
    return Review(outcome, changes, history, now)


def run(env: Env, names: Sequence[str]) -> ReviewResult:
    verifier = Verifier(env)
    targets, _ = verifier.targets(names)
    reviews = tuple(_review(verifier, target) for target in targets)
    return ReviewResult(reviews, tuple(verifier.audit_problems))
