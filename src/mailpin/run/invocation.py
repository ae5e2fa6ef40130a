"""One `mailpin run TOOL ARGV…`, read once (STYLE "One Invocation"): the tool's own reading of its
command line, the message it reads on stdin, and its config as read — the bytes the tool is handed
(run/enforce.py). The accounts, the verification and the plan all take this value; nothing after
it reads the argv or the config file again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from mailpin.env import Env
from mailpin.errors import ConfigError
from mailpin.model import Tool

TYPE_CHECKING = False  # typing's own, without importing typing on every run (STYLE §10)
if TYPE_CHECKING:
    from typing import Any


@dataclass(frozen=True)
class Invocation:
    tool: Tool
    argv: tuple[str, ...]
    # The tool's reading of argv (configs/discover.command_line); None when msmtp refuses it.
    command: Any
    posix: bool  # POSIXLY_CORRECT is set: msmtp's getopt stops at the first recipient
    # Why msmtp refuses the command line: raised where msmtp would, before any config is read.
    refused: ConfigError | None = None
    message: bytes | None = None  # what the tool reads on stdin (or a held message), to replay or hold
    # The config as read (configs/TOOL.load_parsed), bytes included; None until `read_config`.
    config: Any = field(default=None, repr=False, compare=False)

    @classmethod
    def parse(cls, env: Env, tool: Tool, argv: Sequence[str]) -> Invocation:
        """The command line, read as the tool reads it (nothing else is read)."""
        from mailpin.configs.discover import command_line

        posix = "POSIXLY_CORRECT" in env.environ  # glibc getopt: set at all, even empty
        try:
            return cls(tool, tuple(argv), command_line(tool, argv, posix), posix)
        except ConfigError as exc:
            return cls(tool, tuple(argv), None, posix, refused=exc)

    @property
    def reads_message(self) -> bool:
        """Does the tool read a message on stdin? Only msmtp, in sendmail mode: reading stdin for
        `msmtp --version` would hang on a terminal or steal the caller's input. A command line msmtp
        refuses: no (it refuses before reading anything)."""
        return self.tool is Tool.MSMTP and self.command is not None and self.command.mode == "sendmail"

    def read_message(self, env: Env, held: bytes | None = None) -> Invocation:
        """With the message: `held` (a message from mailpin's queue), else stdin when the tool reads it."""
        message = held if held is not None or not self.reads_message else env.read_stdin_bytes()
        return replace(self, message=message)

    def read_config(self, env: Env) -> Invocation:
        """With the tool's config as read; ConfigError where the tool would refuse it or its command line."""
        if self.refused is not None:
            raise self.refused
        from mailpin.configs.discover import reader

        return replace(self, config=reader(self.tool).load_parsed(self.command, env))
