"""Who was told what, and when: the same account and reasons notify at most once per interval,
across processes (a timer, a MUA and a notmuch hook may all hit the same block). A new reason is
told at once; a verification that passes again clears the account, so the next block is told too.

State: `$XDG_STATE_HOME/mailpin/notified.json`, changed under an exclusive lock. It is only about
noise: a corrupt or unreadable state file means "tell again", never "stay silent".
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from mailpin.env import Env
from mailpin.state.durable import make_private_dirs, write_atomically

TYPE_CHECKING = False  # typing's own, without importing typing on every run (STYLE §10)
if TYPE_CHECKING:
    from typing import Any


class RateLimit:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock_path = path.with_name(path.name + ".lock")

    @classmethod
    def for_env(cls, env: Env) -> RateLimit:
        return cls(env.state_home / "mailpin" / "notified.json")

    def is_news(self, account: str, reasons: Sequence[str], kind: str, now: datetime, interval: float) -> bool:
        """Not told within `interval` with the same kind and reasons? (Call inside `locked()`.)"""
        last = self._read().get(account)
        if not (isinstance(last, dict) and last.get("kind") == kind and last.get("reasons") == list(reasons)):
            return True
        try:
            elapsed = (now - datetime.fromisoformat(str(last.get("at")))).total_seconds()
        except (TypeError, ValueError):
            return True
        return not 0 <= elapsed < interval

    def record(self, account: str, reasons: Sequence[str], kind: str, now: datetime) -> None:
        """It was told. (Call inside `locked()`.)"""
        state = self._read()
        state[account] = {"kind": kind, "reasons": list(reasons), "at": now.isoformat()}
        try:
            self._write(state)
        except OSError:
            pass  # only about noise: the worst case is being told again

    def clear(self, accounts: Sequence[str]) -> None:
        """These accounts verified again: their next block is news."""
        if not self.path.exists():
            return  # the common case on every verified run: nothing to read, nothing to lock
        with self.locked():
            state = self._read()
            if any(account in state for account in accounts):
                for account in accounts:
                    state.pop(account, None)
                self._write(state)

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Exclusive across processes. A state directory that cannot be used means no lock: the
        worst case is a notification told twice, never one not told."""
        try:
            make_private_dirs(self.path.parent)
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError:
            yield
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError):  # RecursionError: JSON nested too deep ([[[[…)
            return {}
        return data if isinstance(data, dict) else {}

    def _write(self, state: dict[str, Any]) -> None:
        write_atomically(self.path, json.dumps(state, indent=1, sort_keys=True).encode("utf-8"))
