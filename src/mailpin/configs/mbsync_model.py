"""mbsync's config as values: its stores, channels and groups, and the accounts they connect with.

Kept apart from `mbsync`, which reads the file into these, so that `mbsync_argv`, which selects from
them, imports downwards only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mailpin.model import Account


@dataclass(frozen=True)
class Store:
    name: str
    line: int
    account: Account | None  # the IMAP account the store connects with; None for a MaildirStore


@dataclass(frozen=True)
class Channel:
    name: str
    line: int
    far: Store
    near: Store
    patterns: bool  # only a channel with Patterns may have its boxes named by a group or argv


@dataclass(frozen=True)
class Group:
    name: str
    line: int
    members: tuple[str, ...]  # "channel" or "channel:box[,box…]", as written


@dataclass(frozen=True)
class MbsyncConfig:
    accounts: tuple[Account, ...]  # every IMAPAccount and every IMAPStore with inline options, file order
    source: str  # the file read (none found: the legacy ~/.mbsyncrc, which both versions fall back to)
    stores: tuple[Store, ...] = ()  # store names are unique here: mbsync uses the first definition
    channels: tuple[Channel, ...] = ()  # file order, duplicates kept: `mbsync -a` runs every one
    groups: tuple[Group, ...] = ()
    # Files mbsync opens while reading the config (CertificateFile, ClientCertificate, ClientKey);
    # it refuses the config when one is unreadable. (keyword, line, expanded path), checked by load().
    local_files: tuple[tuple[str, int, str], ...] = ()
    found: bool = True  # False: no config file at all (mbsync itself would refuse to run)
    newer: tuple[tuple[int, str], ...] = ()  # (line, isync 1.4's refusal) of what only isync >= 1.5 takes
    data: bytes = field(default=b"", repr=False, compare=False)  # the file as read: what mbsync is handed
