"""Writing a tool's config that mailpin edited: atomically, with a dated backup, or not at all.

Never written (the patch is shown instead, and where to make the change):
- a file that is, or links into, storage mailpin cannot or must not write: read-only, or the nix
  store that home-manager links from;
- a file some tool renders from a template: chezmoi keeps its source beside the dotfiles
  (`~/.local/share/chezmoi/…dot_NAME[.tmpl]`), and a file holding `{{ … }}` is a template itself —
  an edit of what is rendered is gone at the next render;
- a file that changed since its bytes were read and shown (the user, a sync, another mailpin):
  refused, nothing written.
The backup (`FILE.mailpin-YYYYmmddTHHMMSSZ`) keeps the bytes as they were, with the file's mode; the
new bytes replace the file in one rename (state/durable.write_atomically), with its mode.
"""

from __future__ import annotations

import os
import stat
from datetime import datetime
from pathlib import Path


class WriteRefused(Exception):
    """The file is not written; the message says why and what to do instead."""


def unwritable(path: Path, data: bytes, home: Path) -> str | None:
    """Why PATH (holding DATA) must not be edited in place; None when it may be."""
    target = Path(os.path.realpath(path))
    if str(target).startswith("/nix/store/"):
        return f"{path} links into the nix store ({target}): change it in your home-manager configuration"
    if b"{{" in data and b"}}" in data:
        return f"{path} holds a template (`{{{{ … }}}}`): change its source"
    source = chezmoi_source(path, home)
    if source is not None:
        return f"{path} is managed by chezmoi: change {source}, then `chezmoi apply`"
    if not os.access(target, os.W_OK) or not os.access(target.parent, os.W_OK):
        return f"{target} is read-only for you"
    return None


def chezmoi_source(path: Path, home: Path) -> Path | None:
    """chezmoi's source of the dotfile PATH under HOME (its attribute prefixes and `.tmpl`), if any."""
    try:
        relative = path.relative_to(home)
    except ValueError:
        return None
    root = home / ".local" / "share" / "chezmoi"
    if not root.is_dir():
        return None
    current = root
    for part in relative.parts:
        name = f"dot_{part[1:]}" if part.startswith(".") else part
        matches = [
            entry for entry in (current.iterdir() if current.is_dir() else ()) if _chezmoi_name(entry.name) == name
        ]
        if not matches:
            return None
        current = matches[0]
    return current


_CHEZMOI_PREFIXES = ("create_", "modify_", "remove_", "run_", "encrypted_", "private_", "readonly_", "empty_",
                     "executable_", "symlink_", "exact_", "literal_")  # fmt: skip


def _chezmoi_name(name: str) -> str:
    name = name.removesuffix(".tmpl")
    changed = True
    while changed:
        changed = False
        for prefix in _CHEZMOI_PREFIXES:
            if name.startswith(prefix):
                name, changed = name[len(prefix) :], True
    return name


def replace(path: Path, before: bytes, after: bytes, now: datetime) -> Path:
    """Write AFTER over PATH if PATH still holds BEFORE; the backup of BEFORE, returned."""
    from mailpin.state.durable import write_atomically

    target = Path(os.path.realpath(path))  # a symlink (GNU stow) stays a symlink: write where it points
    try:
        current = target.read_bytes()
        mode = stat.S_IMODE(target.stat().st_mode)
    except OSError as exc:
        raise WriteRefused(f"cannot read {target} again: {exc.strerror or exc}") from None
    if current != before:
        raise WriteRefused(f"{path} changed since it was read; nothing written (run the command again)")
    backup = target.with_name(f"{target.name}.mailpin-{now.strftime('%Y%m%dT%H%M%SZ')}")
    try:
        write_atomically(backup, before, mode)
        write_atomically(target, after, mode)
    except OSError as exc:
        raise WriteRefused(f"cannot write {target}: {exc.strerror or exc}") from None
    return backup
