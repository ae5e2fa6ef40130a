"""Every tool at once: every account found, and the accounts one invocation will use."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from mailpin.env import Env
from mailpin.errors import ConfigError
from mailpin.model import Account, Tool

TYPE_CHECKING = False  # typing's own, without importing typing on every run (STYLE §10)
if TYPE_CHECKING:
    from typing import Any


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


def command_line(tool: Tool, argv: Sequence[str], posix: bool) -> Any:
    """The tool's own reading of its argv, what `load_parsed` and `select_parsed` take:
    `msmtp_argv.Invocation` (ConfigError where msmtp refuses it), `mbsync_argv.Invocation`, or the
    `CommandLine` of offlineimap, mpop, fetchmail or getmail. `posix`: POSIXLY_CORRECT is set (msmtp's
    and mpop's getopt stop at the first operand). Only msmtp's command-line module is imported for
    msmtp: `mailpin run msmtp` reads its argv before it connects (net/early.py)."""
    if tool is Tool.MSMTP:
        from mailpin.configs import msmtp_argv

        return msmtp_argv.parse_argv(argv, posix)
    if tool is Tool.MBSYNC:
        from mailpin.configs import mbsync_argv

        return mbsync_argv.parse_argv(argv)
    if tool is Tool.MPOP:  # glibc getopt, as msmtp's
        from mailpin.configs import mpop

        return mpop.parse_argv(argv, posix)
    if tool is Tool.FETCHMAIL:  # glibc getopt too
        from mailpin.configs import fetchmail

        return fetchmail.parse_argv(argv, posix)
    return reader(tool).parse_argv(argv)


def for_invocation(tool: Tool, argv: Sequence[str], env: Env, read_message: Callable[[], bytes]) -> list[Account]:
    """The accounts `tool argv…` would use — the same resolution `mailpin run` relies on.

    The argv is read once; the message (once) only when its From header decides msmtp's account.
    """
    module = reader(tool)
    command = command_line(tool, argv, "POSIXLY_CORRECT" in env.environ)
    config = module.load_parsed(command, env)
    message = read_message() if tool is Tool.MSMTP and module.message_decides(command) else None
    selected: list[Account] = module.select_parsed(config, command, message)
    return selected
