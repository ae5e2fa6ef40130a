"""`mailpin accept ACCOUNT`: re-pin from the live connection, an explicit and informed act
(anchors.md lesson 8); nothing is ever re-pinned silently."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from mailpin.commands.init import Confirm, Proposal, propose
from mailpin.commands.verify import Target, Verifier
from mailpin.env import Env
from mailpin.errors import COULD_NOT_VERIFY, ExitStatus
from mailpin.model import Level, Profile
from mailpin.trust import policy


@dataclass(frozen=True)
class Accepted:
    proposal: Proposal
    previous: Profile | None
    profile: Profile | None  # None: not accepted
    note: str = ""


@dataclass(frozen=True)
class AcceptResult:
    items: tuple[Accepted, ...]
    audit_problems: tuple[str, ...] = ()

    @property
    def exit_status(self) -> ExitStatus:
        refused = [item for item in self.items if item.profile is None]
        broken = [item for item in refused if item.proposal.problem is not None]
        errors = [item.proposal.error for item in refused if item.proposal.error is not None]
        unreachable = [error for error in errors if error.reason in COULD_NOT_VERIFY]
        if len(refused) > len(broken) + len(unreachable):
            return ExitStatus.BLOCKED
        if unreachable:
            return ExitStatus.TEMPFAIL
        return ExitStatus.CONFIG if broken else ExitStatus.OK


def run(
    env: Env,
    names: Sequence[str],
    *,
    level: Level | None = None,
    add: bool = False,
    untrusted: bool = False,
    confirm: Confirm | None = None,
) -> AcceptResult:
    verifier = Verifier(env)
    targets, _ = verifier.targets(names)
    # Accept what the tool will use now: the config's endpoint; the pinned one if the config is gone.
    live = [target if target.account is not None else _orphan(target) for target in targets]
    items: list[Accepted] = []
    for target, proposal in zip(targets, propose(verifier, live, None), strict=True):
        previous, observation = target.profile, proposal.observation
        if observation is None:
            items.append(Accepted(proposal, previous, None, _why_not(proposal)))
            continue
        # The profile's own level stays unless --level says otherwise (never lowered by a default).
        wanted = level or (previous.level if previous else None) or verifier.settings.level_for(target.key)
        proposal = replace(proposal, level=policy.pin_level(wanted, observation))
        if not proposal.trusted and not (untrusted or (confirm is not None and confirm(proposal))):
            note = f"the certificate does not validate: confirm with `mailpin accept --accept-untrusted {target.key}`"
            items.append(Accepted(proposal, previous, None, note))
            continue
        certcheck = target.account.certcheck if target.account else True
        profile = verifier.pin(target.key, observation, wanted, add=add, event="accept", certcheck=certcheck)
        items.append(Accepted(proposal, previous, profile))
    return AcceptResult(tuple(items), tuple(verifier.audit_problems))


def _why_not(proposal: Proposal) -> str:
    if proposal.problem is not None:
        return str(proposal.problem)
    if proposal.error is not None:
        return str(proposal.error)
    account = proposal.target.account
    if account is not None and account.host is None:
        return f"connects through {account.transport or 'an endpoint mailpin cannot see'}: nothing to pin"
    return "the config asks for no TLS: there is nothing to pin"


def _orphan(target: Target) -> Target:
    """A pinned account no tool's config names any more: accept at the pinned endpoint."""
    from mailpin.model import Account, Tool

    profile = target.profile
    assert profile is not None
    tool, _, name = target.key.partition(":")
    account = Account(Tool(tool), name, profile.protocol, profile.host, profile.port, profile.mode, "pins.conf")
    return Target(target.key, account, profile)
