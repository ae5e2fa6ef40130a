"""`mailpin review ACCOUNT`: the profile beside the live connection, and what changed, in words."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from mailpin import policy
from mailpin.commands.check import overall
from mailpin.commands.verify import Outcome, Target, Verifier
from mailpin.env import Env
from mailpin.errors import ExitStatus, ProbeError
from mailpin.model import Profile, Status


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
    history: History | None  # None when not pinned
    now: datetime


@dataclass(frozen=True)
class ReviewResult:
    reviews: tuple[Review, ...]
    audit_problems: tuple[str, ...] = ()

    @property
    def exit_status(self) -> ExitStatus:
        return overall([review.outcome for review in self.reviews])


def _history(verifier: Verifier, profile: Profile) -> History:
    verified = blocked = 0
    last: datetime | None = None
    for event in verifier.audit.events(profile.account):
        try:
            when = datetime.fromisoformat(event["time"])
        except (KeyError, TypeError, ValueError):
            continue
        if when < profile.pinned_at:
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
    if profile is None or target.account is None:
        # Not pinned, or no longer configured: show what is live there, decide as `check` would.
        outcome = verifier.verify(target)
        if profile is not None and outcome.observation is None:
            try:
                observation = verifier.observe(profile.endpoint, None)
            except ProbeError as exc:
                outcome = Outcome(target, profile.endpoint, policy.failed(profile, target.key, exc), error=exc)
            else:
                verdict = policy.evaluate(profile, observation, expiry_warning_days=0, now=now)
                outcome = Outcome(target, profile.endpoint, verdict, observation)
    else:
        outcome = verifier.verify(target)
        if outcome.observation is None and outcome.error is None and outcome.verdict.status is Status.BLOCKED:
            # The config asks for less than the profile: show the pinned endpoint live anyway.
            try:
                observation = verifier.observe(profile.endpoint, target.account)
                outcome = Outcome(target, profile.endpoint, outcome.verdict, observation)
            except ProbeError as exc:
                outcome = Outcome(target, profile.endpoint, outcome.verdict, error=exc)
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
