"""Hand over to the real tool: find it — never one of mailpin's own shims — and replace this process
with it, same arguments, same environment, same stdin bytes. After `exec` the tool's exit status
and the signals sent to it (Ctrl-C in a terminal, SIGTERM from systemd) are its own, untouched.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from mailpin.errors import ConfigError

TYPE_CHECKING = False  # typing's own, without importing typing on every run (STYLE §10)
if TYPE_CHECKING:
    from typing import NoReturn

SHIM_MARKER = b"mailpin-shim"  # every shim mailpin writes carries it near the top
DEPTH = "MAILPIN_RUN_DEPTH"  # how many `mailpin run`s this process descends from: a loop guard
MAX_DEPTH = 2  # a wrapper (msmtpq) configured as the real tool may call the shim once; a third time is a loop


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
    """`environ` (this process's, as Env read it), byte for byte, less what Python added to it:
    PEP 538 sets LC_CTYPE=C.UTF-8 when the locale is C (cron, systemd), and the tool must get the
    caller's locale. Linux keeps what this process was started with in /proc/self/environ."""
    tool_environ = {os.fsencode(name): os.fsencode(value) for name, value in environ.items()}
    try:
        with open("/proc/self/environ", "rb") as handle:
            started = {item.partition(b"=")[0] for item in handle.read().split(b"\0") if item}
    except OSError:
        return tool_environ  # elsewhere the current one is the best there is
    if b"LC_CTYPE" not in started:
        tool_environ.pop(b"LC_CTYPE", None)
    return tool_environ


def _tool_environ(environ: Mapping[str, str]) -> dict[bytes, bytes]:
    tool_environ = callers_environ(environ)
    depth = environ.get(DEPTH, "0")
    tool_environ[DEPTH.encode()] = str(int(depth) + 1 if depth.isdigit() else 1).encode()
    return tool_environ


def exec_tool(name: str, path: str, argv: Sequence[str], stdin: bytes | None, environ: Mapping[str, str]) -> NoReturn:
    """Become the real tool, `name` as its argv[0] (what the caller ran). `stdin` is the message read
    to choose the account, replayed byte for byte; None leaves stdin as it is (a sync reads nothing
    the wrapper consumed)."""
    if stdin is not None:
        fd = _stdin_from(stdin)
        os.dup2(fd, 0)
        os.close(fd)
    tool_environ = _tool_environ(environ)
    # Python ignores SIGPIPE and SIGXFSZ for itself; ignored dispositions survive exec, and the tool
    # (and what it starts: passwordeval, a Tunnel) must get the defaults its caller gave it.
    for number in (signal.SIGPIPE, signal.SIGXFSZ):
        signal.signal(number, signal.SIG_DFL)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(path, [name, *argv], tool_environ)


_FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)


def run_tool(
    name: str,
    path: str,
    argv: Sequence[str],
    stdin: bytes,
    environ: Mapping[str, str],
    keep_fds: Sequence[int] = (),
    stderr: int | None = None,
) -> int:
    """Run the real tool as a child, as `exec_tool` would become it, and wait: for when mailpin has
    something to do once the tool has accepted the message (a held copy to remove). The signals
    that would have reached the tool (Ctrl-C, systemd's SIGTERM) are passed on, and mailpin waits
    for it to finish. Returns its exit status; killed by signal N: 128 + N, as a shell says."""
    import subprocess
    import threading

    fd = _stdin_from(stdin)
    previous = {}

    def forward(number: int, _frame: object) -> None:
        with contextlib.suppress(ProcessLookupError):
            child.send_signal(number)

    try:
        # restore_signals: SIGPIPE and SIGXFSZ back to their defaults in the child, as in exec_tool.
        child = subprocess.Popen(
            [name, *argv], executable=path, stdin=fd, stderr=stderr, env=_tool_environ(environ),
            pass_fds=tuple(keep_fds), restore_signals=True,
        )  # fmt: skip
    except OSError as exc:
        raise ConfigError(path, None, f"cannot run {name}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    try:
        if threading.current_thread() is threading.main_thread():  # where Python lets handlers be set
            for number in _FORWARDED:
                previous[number] = signal.signal(number, forward)
        status = child.wait()
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    return 128 - status if status < 0 else status


def real_tool_name(path: str) -> str:
    return Path(path).name
