"""`mailpin accounts [--for TOOL -- ARGS…]`: the accounts found, or the ones an invocation uses."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from mailpin.configs.discover import discover, for_invocation
from mailpin.env import Env
from mailpin.errors import ConfigError, ExitStatus
from mailpin.model import Account, Profile, Tool
from mailpin.store import PinStore


@dataclass(frozen=True)
class AccountsResult:
    accounts: tuple[Account, ...]
    errors: tuple[ConfigError, ...] = ()
    invocation: tuple[str, ...] | None = None  # the tool argv, for --for
    profiles: Mapping[str, Profile] = field(default_factory=dict)  # pin state, by account key

    @property
    def exit_status(self) -> ExitStatus:
        return ExitStatus.CONFIG if self.errors else ExitStatus.OK


def run(env: Env, tool: str | None, argv: Sequence[str]) -> AccountsResult:
    profiles = PinStore.for_env(env).load()  # a corrupt store stops every command (exit 78)
    if tool is None:
        found = discover(env)
        return AccountsResult(found.accounts, found.errors, profiles=profiles)
    which = Tool(tool)
    accounts = for_invocation(which, argv, env, env.read_stdin_bytes)
    return AccountsResult(tuple(accounts), (), (which.value, *argv), profiles)
