"""The error tree: every failure mailpin reports is one of these, rendered in one line.

Nothing below `cli.py` prints an error or exits; it raises one of these, and the boundary in
`cli.main` prints `str(error)` and returns `error.exit_status` (sysexits, as msmtp uses them).
"""

from __future__ import annotations

from enum import IntEnum


class ExitStatus(IntEnum):
    OK = 0
    USAGE = 2
    BLOCKED = 69  # EX_UNAVAILABLE: the live connection does not meet the profile / is an attack
    TEMPFAIL = 75  # EX_TEMPFAIL: could not verify (unreachable, timeout); the tool was not run
    CONFIG = 78  # EX_CONFIG


# Reason codes (DESIGN §4). Could-not-verify reasons map to 75, every other reason to 69.
COULD_NOT_VERIFY = frozenset({"unreachable", "timeout"})


class MailpinError(Exception):
    """Base class: a message for people and an exit status for scripts."""

    exit_status: ExitStatus = ExitStatus.BLOCKED

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UsageError(MailpinError):
    exit_status = ExitStatus.USAGE


class ConfigError(MailpinError):
    """A config file mailpin reads (its own or a tool's) is broken: names the file and line."""

    exit_status = ExitStatus.CONFIG

    def __init__(self, source: str, line: int | None, problem: str) -> None:
        where = f"{source}:{line}" if line is not None else source
        super().__init__(f"{where}: {problem}")
        self.source = source
        self.line = line
        self.problem = problem


class ToolUsageError(ConfigError):
    """The wrapped tool's own command line, which the tool itself would refuse (an unknown option, a
    missing argument): a usage error (exit 2), nothing verified and nothing run. A ConfigError in
    shape — it names the tool's command line as its source."""

    exit_status = ExitStatus.USAGE


class RelayError(MailpinError):
    """The verified session could not be handed to the tool (no room for the relay's directory, no
    process left to fork): the tool was not run, so nothing was sent — try again (75)."""

    exit_status = ExitStatus.TEMPFAIL


class ProbeError(MailpinError):
    """The dialogue or handshake with a server did not complete as a careful client requires.

    `reason` is a DESIGN §4 reason code; `where` is `host:port` once known. The exit status
    follows the reason: could-not-verify reasons are 75, everything else (attacks,
    downgrades, protocol violations) is 69.
    """

    def __init__(self, reason: str, detail: str, where: str = "") -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.where = where
        self.exit_status = ExitStatus.TEMPFAIL if reason in COULD_NOT_VERIFY else ExitStatus.BLOCKED

    def at(self, where: str) -> ProbeError:
        """Name the endpoint (the net layer knows the socket, the caller knows the name)."""
        self.where = where
        return self

    def __str__(self) -> str:
        prefix = f"{self.where}: " if self.where else ""
        return f"{prefix}{self.detail} [{self.reason}]"
