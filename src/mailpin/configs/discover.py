"""All three tools at once: every account found, and the accounts one invocation will use."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from mailpin.env import Env
from mailpin.errors import ConfigError
from mailpin.model import Account, Tool


def reader(tool: Tool) -> Any:
    """The config reader module of `tool` (imported on demand: a wrapper needs only one)."""
    return importlib.import_module(f"mailpin.configs.{tool.value}")


@dataclass(frozen=True)
class Discovery:
    accounts: tuple[Account, ...]
    errors: tuple[ConfigError, ...]  # one per broken config; the other tools' accounts still count
    dormant: tuple[ConfigError, ...] = ()  # problems of sections the tool reads only when named (told, not errors)


def discover(env: Env, tools: Sequence[Tool] = tuple(Tool)) -> Discovery:
    """Every account in the configs each tool would read by default (no command-line overrides)."""
    accounts: list[Account] = []
    errors: list[ConfigError] = []
    dormant: list[ConfigError] = []
    for tool in tools:
        try:
            config = reader(tool).load([], env)
        except ConfigError as exc:
            errors.append(exc)
            continue
        accounts.extend(config.accounts)
        # Accounts the tool itself would refuse (the rest of the file still works for it).
        errors.extend(problem for _, problem in getattr(config, "problems", ()))
        dormant.extend(problem for _, problem in getattr(config, "dormant", ()))
    return Discovery(tuple(accounts), tuple(errors), tuple(dormant))


def for_invocation(tool: Tool, argv: Sequence[str], env: Env, read_message: Callable[[], bytes]) -> list[Account]:
    """The accounts `tool argv…` would use — the same resolution `mailpin run` relies on.

    The message is read (once) only when the argv lets its From header decide the account.
    """
    module = reader(tool)
    config = module.load(argv, env)
    message = read_message() if module.needs_message(argv) else None
    selected: list[Account] = module.select(config, argv, message)
    return selected
