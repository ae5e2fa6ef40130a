"""`mailpin forget ACCOUNT`: remove profiles (like `ssh-keygen -R`); the next use pins afresh."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mailpin.commands.verify import Verifier
from mailpin.env import Env
from mailpin.errors import UsageError
from mailpin.model import Profile


@dataclass(frozen=True)
class ForgetResult:
    forgotten: tuple[Profile, ...]
    audit_problems: tuple[str, ...] = ()


def run(env: Env, names: Sequence[str]) -> ForgetResult:
    verifier = Verifier(env)
    targets, _ = verifier.targets(names)
    keys = [target.key for target in targets if target.profile is not None]
    if not keys:
        raise UsageError(f"not pinned: {', '.join(names)}")
    gone = verifier.forget(keys)
    for profile in gone:
        verifier.record(
            "forget", profile.account, endpoint=str(profile.endpoint), spki_sha256=list(profile.spki_sha256)
        )
    return ForgetResult(tuple(gone), tuple(verifier.audit_problems))
