"""Hand over to the real tool: find it — never one of mailpin's own shims — and replace this process
with it, same arguments, same environment, same stdin bytes. After `exec` the tool's exit status
and the signals sent to it (Ctrl-C in a terminal, SIGTERM from systemd) are its own, untouched.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NoReturn

from mailpin.errors import ConfigError

SHIM_MARKER = b"mailpin-shim"  # every shim mailpin writes carries it near the top


def is_shim(path: str) -> bool:
    """Is `path` (or what it links to) one of mailpin's shims? Then running it would loop."""
    try:
        with open(path, "rb") as handle:
            return SHIM_MARKER in handle.read(1024)
    except OSError:
        return False


def _runnable(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


def find_tool(tool: str, environ: Mapping[str, str], configured: str | None = None, source: str = "") -> str:
    """The real `tool`: the one named in mailpin's settings, else the first on PATH that is not a shim."""
    if configured:
        path = os.path.expanduser(configured)
        if not _runnable(path):
            raise ConfigError(source or "mailpin config", None, f"tools/{tool} = {configured}: not an executable file")
        if is_shim(path):
            raise ConfigError(source or "mailpin config", None, f"tools/{tool} = {configured} is mailpin's own shim")
        return path
    for directory in environ.get("PATH", os.defpath).split(os.pathsep):
        candidate = os.path.join(directory or ".", tool)
        if _runnable(candidate) and not is_shim(candidate):
            return candidate
    raise ConfigError(
        "PATH",
        None,
        f"no {tool} found other than mailpin's shim: install {tool}, or name it in the [tools] section of "
        "mailpin's config",
    )


def _stdin_from(data: bytes) -> int:
    """A file descriptor reading `data` from its start: in memory where the kernel offers it."""
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("mailpin-message")
    else:  # pragma: no cover - macOS, BSD: an unlinked temporary file
        import tempfile

        fd, name = tempfile.mkstemp(prefix="mailpin-message-")
        os.unlink(name)
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def exec_tool(path: str, argv: Sequence[str], stdin: bytes | None, environ: Mapping[str, str]) -> NoReturn:
    """Become the real tool. `stdin` is the message read to choose the account, replayed byte for
    byte; None leaves stdin as it is (a sync reads nothing the wrapper consumed)."""
    if stdin is not None:
        fd = _stdin_from(stdin)
        os.dup2(fd, 0)
        os.close(fd)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(path, [path, *argv], dict(environ))


def real_tool_name(path: str) -> str:
    return Path(path).name
