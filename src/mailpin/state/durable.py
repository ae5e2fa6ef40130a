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


def foreign(path: Path, what: str) -> str | None:
    """What makes PATH (mailpin's own state: pins, settings, the queue) unfit to trust, with the fix —
    ssh's StrictModes: whoever can write it decides what mailpin accepts. None when it is fine or
    absent (the read that follows reports other trouble).

    The file (a symlink's target: dotfiles) must be owned by the user or root and not writable by
    group or others; so must the directory that holds it, unless that directory is sticky (others
    cannot replace what is in it: /nix/store, where home-manager puts a read-only file)."""
    import stat

    try:
        info = os.stat(path)
        real = Path(os.path.realpath(path))
        holder = os.stat(real.parent)
    except OSError:
        return None
    me = os.geteuid()
    if info.st_uid not in (me, 0):
        return f"{what} is owned by uid {info.st_uid}, not by you: `chown {me} {real}` if it is yours, else remove it"
    if info.st_mode & 0o022:
        return f"{what} can be changed by group or others (mode {stat.S_IMODE(info.st_mode):o}): `chmod go-w {real}`"
    if holder.st_uid not in (me, 0):
        return (
            f"{real.parent}, which holds {what}, is owned by uid {holder.st_uid}: move {what} to a directory of yours"
        )
    if holder.st_mode & 0o022 and not holder.st_mode & stat.S_ISVTX:
        return f"{real.parent}, which holds {what}, can be changed by group or others: `chmod go-w {real.parent}`"
    return None
