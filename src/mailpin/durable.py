"""Files that must never be seen half-written: the pin store, held messages, shims (STYLE §8).

A temp file in the same directory, written whole with its final mode, fsynced, renamed over the
target, then the directory fsynced so the rename itself survives a crash: a reader sees the old
file or the new one, never a mix. Raises OSError; no temp file is left behind.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
from pathlib import Path

_TEMP_BYTES = 6  # random bytes in a default temp file's name, as hex


def write_atomically(path: Path, data: bytes, mode: int = 0o600, temp: Path | None = None) -> None:
    """`temp`: where to write first, on the same filesystem (a Maildir's tmp/); default beside `path`."""
    # os.urandom is what secrets.token_hex reads, without importing `secrets` (random, hmac) at start-up
    temp = temp or path.with_name(f".{path.name}.{os.urandom(_TEMP_BYTES).hex()}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        try:
            os.fchmod(fd, mode)  # exactly this mode, whatever the umask took away
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    sync_dir(path.parent)


def remove_stray_temps(path: Path) -> None:
    """Remove the default temp files of `path` (`.NAME.HEX.tmp`) that writers killed mid-write left
    behind. Only under the lock every writer of `path` holds: then none of them is being written."""
    stray = re.compile(rf"\.{re.escape(path.name)}\.[0-9a-f]{{{2 * _TEMP_BYTES}}}\.tmp")
    try:
        names = os.listdir(path.parent)
    except OSError:
        return  # the write that follows reports what is wrong with the directory
    for name in names:
        if stray.fullmatch(name):
            with contextlib.suppress(OSError):
                (path.parent / name).unlink()


def sync_dir(directory: Path) -> None:
    """Make renames and unlinks in `directory` durable. Some filesystems cannot sync a directory:
    the files are in place all the same."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)


def make_private_dirs(directory: Path) -> None:
    """Create DIRECTORY and its missing parents with mode 0700 (`mkdir(parents=True)` would give the
    parents the umask's default): mailpin's config and state are the user's alone."""
    for parent in reversed((directory, *directory.parents)):
        if not parent.is_dir():
            parent.mkdir(mode=0o700, exist_ok=True)
