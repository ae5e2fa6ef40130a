"""mbsync's command line, read the way isync's `main()` reads it (src/main.c, 1.4 and 1.5).

What matters to mailpin is which arguments are operands (channels, groups, or stores for
`--list-stores`), which option swallows the next argument (only `-c`/`--config`), and whether
mbsync stops before connecting anywhere (`-h`, `-v`, a bad option).  Everything else is a flag
that mbsync interprets and mailpin passes through untouched.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mailpin.configs.mbsync_model import Channel, MbsyncConfig, Store
from mailpin.errors import ConfigError, ToolUsageError
from mailpin.model import Account

# Flags that take no argument.  1.4: a l C R X F 0 n d f N L H q V D T v h (`main.c`);
# 1.5 adds o u g (Old / Upgrade / Gone), y (--dry-run), e (--ext-exit) and `-ls`.
_SYNC_LETTERS = "ndfNoug"  # -n -d -f -N (1.4), -o -u -g (1.5); -L/-H take a run of these
_BOX_OP_SUFFIX = "fmns-"  # -C/-R/-X take at most one: far / master / near / slave (`cop:` in main.c)

_LONG_FLAGS = frozenset(
    {
        "all",
        "list",
        "list-stores",
        "help",
        "version",
        "quiet",
        "verbose",
        "pull",
        "push",
        "full",
        "noop",
        "no-expunge",
        "no-create",
        "no-remove",
        "dry-run",  # 1.5
        "ext-exit",  # 1.5
    }
    | {f"debug{s}" for s in ("", "-crash", "-driver", "-driver-all", "-maildir", "-main", "-net", "-net-all", "-sync")}
    | {f"{op}{s}" for op in ("create", "remove", "expunge") for s in ("", "-far", "-near", "-master", "-slave")}
    | {
        f"{d}{op}"
        for d in ("", "pull-", "push-")
        for op in ("new", "renew", "delete", "flags", "old", "upgrade", "gone")  # 1.4 + 1.5 names
    }
)


@dataclass(frozen=True)
class Invocation:
    """What one `mbsync ARGV…` asks for, before the config is consulted."""

    config: str | None = None  # -c FILE / --config FILE / --config=FILE (the last one wins)
    all: bool = False  # -a / --all: every channel; operands are ignored
    list: bool = False  # -l / --list: still connects to both stores of each channel
    list_stores: bool = False  # isync 1.5 -ls / --list-stores: operands are store names
    exits_early: bool = False  # -h / -v: prints and exits without reading the config
    operands: tuple[str, ...] = ()
    error: str | None = None  # mbsync's own complaint about the command line, if any


def parse_argv(argv: Sequence[str]) -> Invocation:
    """Read `argv` (without argv[0]) as mbsync does: options end at the first operand or `--`.

    Options after the first operand are operands too (`mbsync work -V` looks for a channel
    named "-V"), as in `main.c`, which stops option parsing at the first non-option.
    """
    found: dict[str, bool] = {"all": False, "list": False, "list_stores": False}
    config: str | None = None
    index = 0

    def done(error: str | None = None, early: bool = False) -> Invocation:
        return Invocation(config, found["all"], found["list"], found["list_stores"], early, tuple(argv[index:]), error)

    while index < len(argv) and argv[index].startswith("-"):
        arg = argv[index]
        index += 1
        if arg == "--":
            break
        if arg.startswith("--"):
            name = arg[2:]
            if name == "config":
                if index >= len(argv):
                    return done("--config requires an argument.")
                config = argv[index]
                index += 1
            elif name.startswith("config="):
                config = name[len("config=") :]
            elif name in ("help", "version"):
                return done(early=True)
            elif name in _LONG_FLAGS:
                key = {"all": "all", "list": "list", "list-stores": "list_stores"}.get(name)
                if key:
                    found[key] = True
            else:
                return done(f"Unknown option '{arg}'")
            continue
        if arg == "-":
            return done("Invalid option '-'")
        letters = arg[1:]
        at = 0
        while at < len(letters):
            letter = letters[at]
            at += 1
            if letter == "a":
                found["all"] = True
            elif letter == "l":
                # 1.5: "-ls" is --list-stores; 1.4 would read it as -l -s and reject 's'.
                if letters[at : at + 1] == "s":
                    found["list_stores"] = True
                    at += 1
                else:
                    found["list"] = True
            elif letter == "c":
                # `-c` takes the NEXT argument; letters after it in this cluster are more flags.
                if index >= len(argv):
                    return done("-c requires an argument.")
                config = argv[index]
                index += 1
            elif letter in "CRX":
                at += 1 if letters[at : at + 1] and letters[at] in _BOX_OP_SUFFIX else 0
            elif letter in "LH" or letter in _SYNC_LETTERS:
                while at < len(letters) and letters[at] in _SYNC_LETTERS:
                    at += 1
            elif letter in "DT":
                # -D takes debug categories and -T test flags from the rest of the cluster.
                rest = letters[at:]
                allowed = "CdDmMnNs" if letter == "D" else "az0123456789j"
                bad = next((c for c in rest if c not in allowed), None)
                if bad is not None:
                    return done(f"Unknown -{letter} flag '{bad}'")
                at = len(letters)
            elif letter in ("v", "h"):
                return done(early=True)
            elif letter not in "F0qVye":
                return done(f"Unknown option '-{letter}'")
    return done()


# --- from the command line to the accounts: main.c (1.4), main_list.c (1.5 --list-stores) ----------


def select(config: MbsyncConfig, invocation: Invocation) -> list[Account]:
    """The IMAP accounts of the stores `mbsync ARGV…` opens: both sides of every selected channel."""
    if invocation.error is not None:
        raise ToolUsageError("mbsync command line", None, f"{invocation.error} (mbsync stops here)")
    if invocation.exits_early:
        return []  # -h / -v print and exit: nothing is opened
    where = config.source
    if not config.found:
        raise ConfigError(where, None, "no mbsync config file found; mbsync will not run without one")
    if invocation.list_stores:
        if not config.stores:
            raise ConfigError(where, None, "no stores are defined")
        names = invocation.operands  # main_list.c: no store named = every store
        stores = list(config.stores) if not names else [_store(config, name) for name in names]
        return _unique([store.account for store in stores])
    if not config.channels:
        raise ConfigError(where, None, "no channels are defined")
    if invocation.all:
        channels = list(config.channels)  # "Any Channel/Group specifications … are ignored"
    else:
        channels = [channel for operand in invocation.operands for channel in _channels(config, operand)]
    if not channels:
        raise ConfigError(where, None, "no channel specified: name a channel or group, or use -a")
    return _unique([store.account for channel in channels for store in (channel.far, channel.near)])


def _channels(config: MbsyncConfig, operand: str) -> list[Channel]:
    """A group (matched on the whole operand, which is how groups hide channels), or `channel[:box,…]`.

    mbsync reports an unknown name or a box list on a channel without Patterns, goes on with the
    other operands and exits 1; mailpin stops instead, before any of them is opened.
    """
    group = next((group for group in config.groups if group.name == operand), None)
    found: list[Channel] = []
    for spec in group.members if group is not None else (operand,):
        name, colon, _ = spec.partition(":")
        channel = next((channel for channel in config.channels if channel.name == name), None)
        if channel is None:
            member = f" (in group '{operand}')" if group is not None else ""
            raise ConfigError(config.source, None, f"no channel or group named '{name}' is defined{member}")
        if colon and not channel.patterns:
            problem = f"cannot override the mailbox of channel '{name}' ({spec}): the channel has no Patterns"
            raise ConfigError(config.source, channel.line, problem)
        found.append(channel)
    return found


def _store(config: MbsyncConfig, name: str) -> Store:
    store = next((store for store in config.stores if store.name == name), None)
    if store is None:
        raise ConfigError(config.source, None, f"no store named '{name}' is defined")
    return store


def _unique(accounts: list[Account | None]) -> list[Account]:
    unique: list[Account] = []
    for account in accounts:
        if account is not None and account not in unique:
            unique.append(account)
    return unique
