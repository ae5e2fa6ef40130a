"""The audit log: one JSON object per line, every decision mailpin made (DESIGN §2.4, §4).

Appends only. Each record is one `write` of one whole line to a file opened with O_APPEND, under
an exclusive flock, so records from concurrent mailpin runs (a mail client sending while mbsync
syncs) never interleave. Reading skips a line that is not JSON (the torn tail of a crash) rather
than failing: the log explains decisions, it never makes them.
"""

from __future__ import annotations

import fcntl
import json
import os
from datetime import datetime, timezone
from pathlib import Path

from mailpin.env import Env
from mailpin.errors import ExitStatus, MailpinError
from mailpin.state.durable import make_private_dirs

TYPE_CHECKING = False  # typing's own, without importing typing on every run (STYLE §10)
if TYPE_CHECKING:
    from typing import Any


class AuditError(MailpinError):
    """The audit log cannot be written (or read): names the file and the OS error."""

    exit_status = ExitStatus.CONFIG

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


class AuditLog:
    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def for_env(cls, env: Env) -> AuditLog:
        return cls(env.state_home / "mailpin" / "audit.log")

    def record(self, event: str, account: str, when: datetime, **fields: object) -> None:
        """Append one record: `{"time", "event", "account", **fields}` (fields must be JSON values)."""
        if "time" in fields:
            raise TypeError("record() got a field named 'time', which would hide when it happened")
        if when.tzinfo is None:
            raise ValueError(f"naive datetime {when!r}: audit times are UTC")
        entry = {"time": when.astimezone(timezone.utc).isoformat(), "event": event, "account": account, **fields}
        text = _shown_safely(json.dumps(entry, ensure_ascii=False, separators=(",", ":"), allow_nan=False)) + "\n"
        # A lone surrogate (a name read with surrogateescape) cannot be UTF-8: written as the JSON
        # escape `\udcxx` it reads back as the same string.
        data = text.encode("utf-8", "backslashreplace")
        try:
            make_private_dirs(self.path.parent)
            # O_RDWR, not O_WRONLY: the last byte is read back below.
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise AuditError(self.path, f"cannot write the audit log: {_why(exc, self.path)}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # O_APPEND alone does not keep a short write's rest together
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                data = b"\n" + data  # a crash's torn line stays its own (skipped) line, not glued to this one
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        except OSError as exc:
            raise AuditError(self.path, f"cannot write the audit log: {_why(exc, self.path)}") from None
        finally:
            os.close(fd)  # releases the flock

    def events(self, account: str | None = None) -> list[dict[str, Any]]:
        """The records in order (all, or ACCOUNT's); no log is no records."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise AuditError(self.path, f"cannot read the audit log: {_why(exc, self.path)}") from None
        found = []
        for line in data.split(b"\n"):
            try:
                entry = json.loads(line.decode("utf-8"))
            except (ValueError, RecursionError):  # the torn last line of a crash, bytes that are not UTF-8
                continue
            if isinstance(entry, dict) and (account is None or entry.get("account") == account):
                found.append(entry)
        return found


def _shown_safely(text: str) -> str:
    """JSON text a person can `tail` on a terminal: json escapes C0 controls already, but not C1
    controls (CSI) or bidi overrides, which a server can put into a certificate name. Those become
    JSON escapes, which read back as the same string."""
    return "".join(char if char.isprintable() else json.dumps(char)[1:-1] for char in text)


def _why(error: OSError, path: Path) -> str:
    """The OS error, and the file it was about when that is not the log itself (a parent directory)."""
    reason = error.strerror or str(error)
    return f"{reason} ({error.filename})" if error.filename and str(error.filename) != str(path) else reason
