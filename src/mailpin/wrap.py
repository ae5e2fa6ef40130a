"""Hand over to the real tool: find it — never one of mailpin's own shims — and replace this process
with it, same arguments, same environment, same stdin bytes. After `exec` the tool's exit status
and the signals sent to it (Ctrl-C in a terminal, SIGTERM from systemd) are its own, untouched.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NoReturn

from mailpin.errors import ConfigError

SHIM_MARKER = b"mailpin-shim"  # every shim mailpin writes carries it near the top
DEPTH = "MAILPIN_RUN_DEPTH"  # how many `mailpin run`s this process descends from: a loop guard
MAX_DEPTH = 2  # a wrapper (msmtpq) configured as the real tool may call the shim once; a third time is a loop
_OURS = ("MAILPIN_FLUSHING",)  # variables mailpin sets for its own children, never the tool's business


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


def callers_environ(environ: Mapping[str, str]) -> dict[bytes, bytes]:
    """The environment this process was started with, byte for byte. Python may have added to its
    own (LC_CTYPE=C.UTF-8 when the locale is C — cron, systemd): the tool gets the caller's. Linux
    keeps the original in /proc/self/environ; elsewhere the current one is the best there is."""
    try:
        with open("/proc/self/environ", "rb") as handle:
            pairs = [item.partition(b"=") for item in handle.read().split(b"\0") if item]
        return {name: value for name, _, value in pairs}
    except OSError:
        return {os.fsencode(name): os.fsencode(value) for name, value in environ.items()}


def exec_tool(name: str, path: str, argv: Sequence[str], stdin: bytes | None, environ: Mapping[str, str]) -> NoReturn:
    """Become the real tool, `name` as its argv[0] (what the caller ran). `stdin` is the message read
    to choose the account, replayed byte for byte; None leaves stdin as it is (a sync reads nothing
    the wrapper consumed)."""
    if stdin is not None:
        fd = _stdin_from(stdin)
        os.dup2(fd, 0)
        os.close(fd)
    tool_environ = callers_environ(environ)
    for variable in _OURS:
        tool_environ.pop(variable.encode(), None)
    depth = environ.get(DEPTH, "0")
    tool_environ[DEPTH.encode()] = str(int(depth) + 1 if depth.isdigit() else 1).encode()
    # Python ignores SIGPIPE and SIGXFSZ for itself; ignored dispositions survive exec, and the tool
    # (and what it starts: passwordeval, a Tunnel) must get the defaults its caller gave it.
    for number in (signal.SIGPIPE, signal.SIGXFSZ):
        signal.signal(number, signal.SIG_DFL)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(path, [name, *argv], tool_environ)


def real_tool_name(path: str) -> str:
    return Path(path).name
