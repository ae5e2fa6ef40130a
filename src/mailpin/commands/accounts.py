"""`mailpin accounts [--for TOOL -- ARGS…]`: the accounts found, or the ones an invocation uses."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from mailpin.configs.discover import discover, for_invocation
from mailpin.env import Env
from mailpin.errors import ConfigError, ExitStatus
from mailpin.model import Account, Profile, Tool
from mailpin.state import settings
from mailpin.state.store import PinStore


@dataclass(frozen=True)
class AccountsResult:
    accounts: tuple[Account, ...]
    errors: tuple[ConfigError, ...] = ()
    invocation: tuple[str, ...] | None = None  # the tool argv, for --for
    profiles: Mapping[str, Profile] = field(default_factory=dict)  # pin state, by account key
    enforcement: Mapping[str, str] = field(default_factory=dict)  # how `mailpin run` holds the tool's session
    dormant: tuple[ConfigError, ...] = ()  # broken sections the tool reads only when named: told, not errors

    @property
    def exit_status(self) -> ExitStatus:
        return ExitStatus.CONFIG if self.errors else ExitStatus.OK


def run(env: Env, tool: str | None, argv: Sequence[str]) -> AccountsResult:
    profiles = PinStore.for_env(env).load()  # a corrupt store stops every command (exit 78)
    configured = settings.load(env)
    if tool is None:
        found = discover(env)
        how = _enforcement(found.accounts, profiles, configured)
        return AccountsResult(found.accounts, found.errors, None, profiles, how, found.dormant)
    which = Tool(tool)
    accounts = tuple(for_invocation(which, argv, env, env.read_stdin_bytes))
    return AccountsResult(accounts, (), (which.value, *argv), profiles, _enforcement(accounts, profiles, configured))


def _enforcement(
    accounts: Sequence[Account], profiles: Mapping[str, Profile], configured: settings.Settings
) -> dict[str, str]:
    from mailpin.run import enforce
    from mailpin.trust import policy

    how = {}
    for account in accounts:
        if policy.is_mailpin_tunnel(account):
            how[account.key] = "tunnel (in the config)"
        elif account.host is None or account.mode.value == "none":
            how[account.key] = "-"
        elif not configured.enforce_for(account.key) or not enforce.available():
            how[account.key] = "pre-flight check only"
        else:
            how[account.key] = enforce.describe(account, profiles.get(account.key), configured)
    return how
