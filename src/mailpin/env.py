"""The process environment, passed down instead of read from globals (STYLE §7)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from mailpin import xdg

TYPE_CHECKING = False  # typing's own, without importing typing on every run (STYLE §10)
if TYPE_CHECKING:
    from typing import TextIO


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class Env:
    environ: Mapping[str, str]
    stdout: TextIO
    stderr: TextIO
    stdin: TextIO
    now: Callable[[], datetime] = field(default=_utcnow)

    @classmethod
    def from_os(cls) -> Env:
        return cls(environ=dict(os.environ), stdout=sys.stdout, stderr=sys.stderr, stdin=sys.stdin)

    def read_stdin_bytes(self) -> bytes:
        """The whole of stdin, as bytes (a message must be replayed byte for byte)."""
        buffer = getattr(self.stdin, "buffer", None)
        if buffer is not None:
            data: bytes = buffer.read()
            return data
        return self.stdin.read().encode("utf-8", "surrogateescape")

    @property
    def home(self) -> Path:
        return Path(xdg.home(self.environ))

    def _xdg(self, variable: str, default: str) -> Path:
        return Path(xdg.base(self.environ, variable, default))

    @property
    def config_home(self) -> Path:
        return self._xdg("XDG_CONFIG_HOME", ".config")

    @property
    def state_home(self) -> Path:
        return self._xdg("XDG_STATE_HOME", ".local/state")

    @property
    def cache_home(self) -> Path:
        return self._xdg("XDG_CACHE_HOME", ".cache")
