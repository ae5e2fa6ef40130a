"""`mailpin init [--yes] [ACCOUNT…]`: probe every account and pin it on first use, asking first.

Trust on first use is only as good as the first use (anchors.md lesson 11): the user is shown
exactly what would be pinned, a chain that validates may be pinned with `--yes`, and a certificate
that does not validate is pinned only on an explicit, per-account confirmation — and then at `key`
level, never `ca`/`pkix` (RFC 8314 §5.3: an unvalidated certificate is not confidentiality).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

from mailpin.commands.verify import Target, Verifier, endpoint_of
from mailpin.env import Env
from mailpin.errors import COULD_NOT_VERIFY, ConfigError, ExitStatus, ProbeError
from mailpin.model import Endpoint, Level, Observation, Profile
from mailpin.trust import policy


@dataclass(frozen=True)
class Proposal:
    """What pinning one account would record, before anything is written."""

    target: Target
    endpoint: Endpoint | None
    observation: Observation | None = None
    error: ProbeError | None = None
    level: Level | None = None  # the level it would get
    problem: ConfigError | None = None  # the account's own files cannot be used (its trust file)

    @property
    def trusted(self) -> bool:
        return self.observation is not None and not self.observation.chain.reasons


Confirm = Callable[[Proposal], bool]


@dataclass(frozen=True)
class Item:
    proposal: Proposal
    outcome: (
        str  # pinned | already-pinned | declined | needs-confirmation | not-asked | failed | skipped | config-error
    )
    note: str = ""
    profile: Profile | None = None


@dataclass(frozen=True)
class InitResult:
    items: tuple[Item, ...]
    errors: tuple[ConfigError, ...] = ()
    audit_problems: tuple[str, ...] = ()
    offer: str = ""  # a suggestion for this user's setup (the notmuch alert)
    could_move: tuple[tuple[str, str], ...] = ()  # (account, HOST:PORT): Implicit TLS works there (setup/hint.py)

    @property
    def exit_status(self) -> ExitStatus:
        failures = [item.proposal.error for item in self.items if item.outcome == "failed"]
        if any(item.outcome == "needs-confirmation" for item in self.items) or any(
            error is not None and error.reason not in COULD_NOT_VERIFY for error in failures
        ):
            return ExitStatus.BLOCKED
        if failures:
            return ExitStatus.TEMPFAIL
        broken = any(item.outcome == "config-error" for item in self.items)
        return ExitStatus.CONFIG if self.errors or broken else ExitStatus.OK


def named(key: str, names: Collection[str]) -> bool:
    """Does `key` (TOOL:NAME) answer to one of `names` (TOOL:NAME or a bare NAME)?"""
    return key in names or key.partition(":")[2] in names


def propose(verifier: Verifier, targets: Sequence[Target], level: Level | None) -> list[Proposal]:
    """Probe the endpoints the tools' configs name, concurrently, and say what would be pinned."""

    def one(target: Target) -> Proposal:
        assert target.account is not None
        endpoint = endpoint_of(target.account)
        if endpoint is None:
            return Proposal(target, None)
        try:
            observation = verifier.observe(endpoint, target.account)
        except ProbeError as exc:
            return Proposal(target, endpoint, error=exc)
        except ConfigError as exc:
            return Proposal(target, endpoint, problem=exc)
        wanted = level or verifier.settings.level_for(target.key)
        return Proposal(target, endpoint, observation, level=policy.pin_level(wanted, observation))

    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=max(1, min(16, len(targets)))) as pool:
        return list(pool.map(one, targets))


def run(
    env: Env,
    names: Sequence[str],
    *,
    yes: bool,
    accept_untrusted: Collection[str] = (),
    level: Level | None = None,
    confirm: Confirm | None = None,
) -> InitResult:
    """`confirm` asks the user (on a TTY); None means nobody can be asked."""
    verifier = Verifier(env)
    targets, errors = verifier.targets(names)
    items: list[Item] = []
    fresh: list[Target] = []
    for target in targets:
        if target.account is None:
            continue  # a profile whose account is gone: nothing to set up
        if target.profile is not None:
            note = f"already pinned at level {target.profile.level.value} on {target.profile.pinned_at:%Y-%m-%d}"
            items.append(Item(Proposal(target, target.profile.endpoint), "already-pinned", note, target.profile))
        else:
            fresh.append(target)
    for proposal in propose(verifier, fresh, level):
        items.append(_decide(verifier, proposal, yes=yes, accept_untrusted=accept_untrusted, confirm=confirm))
    order = {target.key: index for index, target in enumerate(targets)}
    items.sort(key=lambda item: order[item.proposal.target.key])
    from mailpin.setup.hint import could_move

    moves = tuple(could_move(verifier, targets))
    return InitResult(tuple(items), errors, tuple(verifier.audit_problems), _notmuch_offer(env, verifier), moves)


def _notmuch_offer(env: Env, verifier: Verifier) -> str:
    """A notmuch user may want blocks in the inbox too (cron and timers have no one watching stderr)."""
    if verifier.settings.notify.notmuch:
        return ""
    candidates = [env.environ.get("NOTMUCH_CONFIG", ""), str(env.home / ".notmuch-config")]
    profile = env.environ.get("NOTMUCH_PROFILE") or "default"
    candidates.append(str(env.config_home / "notmuch" / profile / "config"))
    if not any(path and os.path.isfile(path) for path in candidates):
        return ""
    where = env.config_home / "mailpin" / "config"
    return f"you use notmuch: `[notify]` / `notmuch = yes` in {where} also puts an alert in your inbox on a block"


def _decide(
    verifier: Verifier, proposal: Proposal, *, yes: bool, accept_untrusted: Collection[str], confirm: Confirm | None
) -> Item:
    key, observation = proposal.target.key, proposal.observation
    if proposal.endpoint is None:
        account = proposal.target.account
        assert account is not None
        why = f"connects through {account.transport}" if account.host is None else "the config asks for no TLS"
        return Item(proposal, "skipped", f"{why}: nothing to pin")
    if proposal.problem is not None:
        return Item(proposal, "config-error", str(proposal.problem))
    if observation is None:
        return Item(proposal, "failed", str(proposal.error))
    if proposal.trusted:
        agreed = yes or (confirm is not None and confirm(proposal))
    elif named(key, accept_untrusted):
        agreed = True
    else:
        # Never on --yes alone: an untrusted certificate needs this account named, or a person.
        agreed = confirm is not None and confirm(proposal)
    if not agreed:
        if not proposal.trusted and confirm is None:
            return Item(proposal, "needs-confirmation", f"does not validate: pin it with --accept-untrusted {key}")
        if confirm is None:
            return Item(proposal, "not-asked", "run `mailpin init --yes` to pin it")
        return Item(proposal, "declined", "not pinned")
    account = proposal.target.account
    profile = verifier.pin(key, observation, proposal.level, certcheck=account is None or account.certcheck)
    return Item(proposal, "pinned", f"at level {profile.level.value}", profile)
