"""fetchmail (6.4, Debian 12: 6.4.37): its rc file and command line, read the way fetchmail reads them.

`fetchmail_syntax` and `fetchmail_grammar` read the rc file, `fetchmail_argv` the command line,
`fetchmail_account` one poll's connection. This module is fetchmail.c's `load_params` around them:
which file (`-f`, else $FETCHMAILHOME/fetchmailrc, else ~/.fetchmailrc), the same refusal of a file
others could read or write (rcfile_y.y `prc_filecheck`), which polls run (the rc file's non-`skip`
entries, or the servers named on the command line: by poll name or `aka`, or new ones), the
`defaults` record merged into every poll (`optmerge`), then the command line's options forced on
every poll of the run, then the checks that stop fetchmail before it polls anything. What the
config asks fetchmail to run (`plugin`, `preconnect`, `mda`) is never run here.

Accounts are one per server entry, named by its poll name; an entry whose users connect
differently (TLS options are per user in fetchmail) gives one account per way, the others named
`POLLNAME/USER`; a poll name used again is `POLLNAME#2`, `#3`, … . `skip` entries are accounts too,
used only when named on the command line.
"""

from __future__ import annotations

import os
import pwd
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from itertools import groupby
from pathlib import Path
from types import MappingProxyType

from mailpin.configs.fetchmail_account import resolve, run_problem, split_where
from mailpin.configs.fetchmail_argv import CLI, PATH_FIELDS, CommandLine, parse_argv
from mailpin.configs.fetchmail_grammar import Entry, RcFile, UserClause
from mailpin.configs.fetchmail_grammar import parse as parse_rc
from mailpin.configs.fetchmail_syntax import Setting, prependdir
from mailpin.env import Env
from mailpin.errors import ConfigError, ToolUsageError
from mailpin.model import Account

__all__ = ["CLI", "DAEMON", "CommandLine", "FetchmailConfig", "Poll", "config_paths", "load", "load_parsed",
           "needs_message", "parse", "parse_argv", "poll_interval", "querylist", "select", "select_parsed"]  # fmt: skip

DAEMON = (
    "fetchmail -d (daemon mode) polls forever from one process: mailpin verifies each run — run fetchmail "
    "from a timer instead (contrib/systemd)"
)
STDIN = (
    "-f - makes fetchmail read its rc file from standard input, which mailpin cannot read on fetchmail's behalf: "
    "name the file (fetchmail -f FILE)"
)
_LISTS = frozenset({"localdomains", "localnames", "mailboxes", "smtphunt", "domainlist", "antispam"})
_DEFAULTS_USERS = (
    "this `defaults` record has more than one user: fetchmail drops the first as the defaults and polls the "
    "others as a server whose name it has freed (undefined behaviour); give `defaults` one user at most"
)
_MULTIPLE_DEFAULTS = (
    'fetchmail: Error: multiple "defaults" records in config file, or "defaults" is not the first record.'
)


@dataclass(frozen=True)
class FetchmailConfig:
    """An rc file as fetchmail reads it, without command-line options (those are select's)."""

    accounts: tuple[Account, ...]  # every poll mailpin can verify, `skip` entries' included, file order
    source: str  # the rc file (when none was read: the one fetchmail would have read, or the command line)
    problems: tuple[tuple[str, ConfigError], ...] = ()  # (account, why) of polls a plain run makes
    dormant: tuple[tuple[str, ConfigError], ...] = ()  # the same for `skip` entries: told, never errors
    found: bool = True  # False: no rc file (fetchmail then polls only the servers named on its command line)
    entries: tuple[Entry, ...] = ()  # each poll/skip/defaults statement, where it is in `text` (to rewrite it)
    names: tuple[str | None, ...] = ()  # the account of each rc query (rc.queries); None: the defaults record
    skipped: frozenset[str] = frozenset()  # accounts of `skip` entries: polled only when named
    rc: RcFile = field(default_factory=lambda: RcFile((), ()), repr=False, compare=False)
    text: str = field(default="", repr=False)  # `data` decoded (UTF-8, surrogateescape): entries' offsets
    environ: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}), compare=False)
    cwd: str | None = None  # fetchmail's working directory: command-line paths are relative to it
    data: bytes = field(default=b"", repr=False, compare=False)  # the file as read: what fetchmail is handed

    @property
    def poll_interval(self) -> Setting | None:
        """`set daemon N` (the last one): a run without -d0 is a daemon when N is not 0."""
        return self.rc.globals.get("daemon")

    def entry(self, account: str) -> Entry | None:
        """The statement an account comes from (to rewrite it in memory)."""
        for query, name in zip(self.rc.queries, self.names, strict=True):
            if name == account:
                return self.entries[query.entry]
        return None

    def users(self, account: str) -> tuple[UserClause, ...]:
        """The user clauses of its entry that make this account (TLS options are per user in fetchmail,
        so an edit for this account goes at each of their `end`; `plugin` is the whole entry's)."""
        seen: dict[int, int] = {}
        out = []
        for query, name in zip(self.rc.queries, self.names, strict=True):
            position = seen[query.entry] = seen.get(query.entry, -1) + 1
            if name == account:
                out.append(self.entries[query.entry].users[position])
        return tuple(out)


@dataclass
class Poll:
    """One `struct query` on fetchmail's querylist, as load_params works on it: a user of a server
    entry (or a server named only on the command line), its members merged as far as `querylist`
    says. Members fetchmail defaults later (`ssl` off, `sslcertck` on, `proto auto`) stay absent."""

    pollname: str
    skip: bool
    fields: dict[str, Setting]
    aka: tuple[str, ...]
    index: int  # in rc.queries; -1: a server named only on the command line
    active: bool = False


def _merge(into: dict[str, Setting], source: Mapping[str, Setting], force: bool) -> None:
    """fetchmail.c `optmerge`: a member unset in `into` takes `source`'s (force: any member `source`
    sets); lists are taken when empty, or (force) appended to (`list_merge`)."""
    for member, setting in source.items():
        if member in _LISTS and force and member in into:
            old, new = into[member].value, setting.value
            if isinstance(old, tuple) and isinstance(new, tuple):
                into[member] = replace(setting, value=(*old, *new))
        elif force or member not in into:
            into[member] = setting


def _querylist(rc: RcFile, servers: Sequence[str], source: str) -> tuple[list[Poll], bool]:
    """load_params: the polls, which are active, the `defaults` record merged in and dropped."""
    polls = [Poll(q.pollname, q.skip, dict(q.fields), q.aka, i) for i, q in enumerate(rc.queries)]
    implicit = not servers
    for poll in polls:
        poll.active = implicit and not poll.skip
    for name in servers:
        matched = False
        for poll in polls:  # the poll name exactly, or an `aka` (str_in_list, case-blind)
            if poll.pollname == name or name.lower() in (aka.lower() for aka in poll.aka):
                poll.active = matched = True
        if not matched:  # a host known only from the command line: via is its name
            polls.append(Poll(name, False, {"via": Setting(name, CLI, name)}, (), -1, active=True))
    if polls and polls[0].pollname == "defaults":
        head = polls.pop(0)
        if head.index >= 0 and any(poll.index >= 0 and _entry(rc, poll) == _entry(rc, head) for poll in polls):
            # Its users share the server record's pollname, which load_params frees with the first:
            # fetchmail then polls a server whose name is freed memory (undefined behaviour).
            raise ConfigError(source, rc.entries[_entry(rc, head)].first_line, _DEFAULTS_USERS)
        for poll in polls:
            _merge(poll.fields, head.fields, force=False)
            poll.skip = poll.skip or head.skip  # FLAG_MERGE(server.skip)
    for poll in polls[1:]:
        if poll.pollname == "defaults":
            line = rc.entries[rc.queries[poll.index].entry].first_line if poll.index >= 0 else None
            raise ConfigError(source if poll.index >= 0 else CLI, line, _MULTIPLE_DEFAULTS)
    return polls, implicit


def _entry(rc: RcFile, poll: Poll) -> int:
    return rc.queries[poll.index].entry


def _source(rc: RcFile, poll: Poll, source: str) -> str:
    if poll.index < 0:
        return CLI
    return f"{source}:{rc.entries[rc.queries[poll.index].entry].first_line}"


def _outcome(poll: Poll, name: str, source: str, environ: Mapping[str, str]) -> Account | ConfigError:
    problem = run_problem(poll.fields, poll.pollname, source)
    if problem is not None:
        return problem
    try:
        return resolve(poll.fields, poll.pollname, name, source, environ)
    except ConfigError as exc:
        return exc


# The members that decide how a poll connects, with fetchmail's DEFAULT() for the flags.
_CONNECTION = (("via", None), ("protocol", None), ("service", None), ("plugin", None), ("use_ssl", False),
               ("sslcertck", True), ("sslproto", None), ("sslcertfile", None), ("sslcertpath", None),
               ("sslcommonname", None), ("sslfingerprint", None), ("sslcert", None), ("sslkey", None))  # fmt: skip


def _profile(poll: Poll) -> tuple[object, ...]:
    """What makes two users of one entry one account: the same effective connection members. The
    command line forces a member on every poll alike, so users alike here stay alike in any run."""
    return tuple(poll.fields[member].value if member in poll.fields else default for member, default in _CONNECTION)


def parse(
    text: str,
    source: str,
    home: str,
    *,
    environ: Mapping[str, str] | None = None,
    cwd: str | None = None,
) -> FetchmailConfig:
    """Every poll of an rc file, as a plain `fetchmail` (no options) would make it. `home` is unused:
    fetchmail expands no `~`; relative file names are relative to the rc file's directory."""
    del home
    rc = parse_rc(text, source)
    env = MappingProxyType(dict(environ or {}))
    polls, _ = _querylist(rc, (), source)
    names: list[str | None] = [None] * len(rc.queries)
    taken: set[str] = set()
    accounts: list[Account] = []
    problems: list[tuple[str, ConfigError]] = []
    dormant: list[tuple[str, ConfigError]] = []
    skipped: set[str] = set()
    for _, group in groupby(polls, key=lambda poll: rc.queries[poll.index].entry):
        base = ""
        ways: dict[object, str] = {}
        for poll in group:
            where = _source(rc, poll, source)
            outcome = _outcome(poll, "", where, env)
            key = _profile(poll)
            if key not in ways:
                remote = poll.fields.get("remotename")
                wanted = poll.pollname if not ways else f"{base}/{remote.value if remote else 'user'}"
                name = _unique(wanted, taken)
                base = base or name
                ways[key] = name
                if poll.skip:
                    skipped.add(name)
                if isinstance(outcome, ConfigError):
                    (dormant if poll.skip else problems).append((name, outcome))
                else:
                    accounts.append(replace(outcome, name=name))
            names[poll.index] = ways[key]
    return FetchmailConfig(
        tuple(accounts), source, tuple(problems), tuple(dormant), entries=rc.entries, names=tuple(names),
        skipped=frozenset(skipped), rc=rc, text=text, environ=env, cwd=cwd,
    )  # fmt: skip


def _unique(wanted: str, taken: set[str]) -> str:
    name, count = wanted, 1
    while name in taken:
        count += 1
        name = f"{wanted}#{count}"
    taken.add(name)
    return name


# --- which file, read how ---------------------------------------------------------------------------


def default_rcfile(environ: Mapping[str, str]) -> str:
    """env.c `envquery`: home is $HOME_ETC, else $HOME, else the passwd entry, made absolute (realpath);
    $FETCHMAILHOME (absolute too) replaces it, and then the file has no leading dot."""
    if "HOME_ETC" in environ:
        home = environ["HOME_ETC"]
    elif "HOME" in environ:
        home = environ["HOME"]
    else:
        home = pwd.getpwuid(os.getuid()).pw_dir
    home = _realpath(home, "Cannot find absolute path for user's home directory.")
    fmhome = environ.get("FETCHMAILHOME")
    if fmhome is None:
        return f"{home.rstrip('/')}/.fetchmailrc"
    fmhome = _realpath(fmhome, "Cannot find absolute path for fetchmail's home directory.")
    return f"{fmhome.rstrip('/')}/fetchmailrc"


def _realpath(path: str, problem: str) -> str:
    try:
        if not path:
            raise FileNotFoundError(path)
        return os.path.realpath(path, strict=True)
    except OSError:
        raise ConfigError(path or '""', None, f"{problem} (fetchmail exits)") from None


def _rcfile(command: CommandLine, env: Env) -> str:
    if command.rcfile is None:
        return default_rcfile(env.environ)
    if command.rcfile == "-":
        raise ConfigError(CLI, None, STDIN)
    return prependdir(command.rcfile, os.getcwd())  # options.c: -f relative to the working directory


def config_paths(argv: Sequence[str], env: Env) -> list[Path]:
    """The rc file `fetchmail ARGV` reads, if there is one (none is no error to fetchmail)."""
    command = parse_argv(argv, "POSIXLY_CORRECT" in env.environ)
    path = _rcfile(command, env)
    return [Path(path)] if path and os.path.exists(path) else []


def _secure(path: str, st: os.stat_result) -> None:
    """rcfile_y.y `prc_filecheck`: a regular file, not readable, writable (or executable) by group or
    others — group execute is not checked — and owned by fetchmail's effective user."""
    if not stat.S_ISREG(st.st_mode):
        raise ConfigError(path, None, f"File {path} must be a regular file.")
    if st.st_mode & (stat.S_IRGRP | stat.S_IWGRP | stat.S_IROTH | stat.S_IWOTH | stat.S_IXOTH):
        raise ConfigError(path, None, f"File {path} must have no more than -rwx------ (0700) permissions.")
    if st.st_uid != os.geteuid():
        raise ConfigError(path, None, f"File {path} must be owned by you.")


def _read(path: str) -> bytes | None:
    """The rc file's bytes, refused as fetchmail refuses it; None: there is none (ENOENT)."""
    if path == "/dev/null":  # prc_filecheck: "special case useful for debugging purposes"
        return b""
    try:
        _secure(path, os.stat(path))  # stat, not lstat: a symbolic link is followed
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        raise ConfigError(path, None, "a directory on this path is missing (fetchmail exits)") from None
    except OSError as exc:
        raise ConfigError(path, None, f"cannot read: {exc.strerror or exc}") from None
    try:
        _secure(path, os.fstat(fd))  # what is read is what was checked
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError as exc:
        raise ConfigError(path, None, f"cannot read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)


def load(argv: Sequence[str], env: Env) -> FetchmailConfig:
    return load_parsed(parse_argv(argv, "POSIXLY_CORRECT" in env.environ), env)


def load_parsed(command: CommandLine, env: Env) -> FetchmailConfig:
    """The rc file `command` makes fetchmail read, read once. A command line that polls nothing
    (--help, -V, --configdump, --quit alone, or one fetchmail refuses) reads nothing."""
    cwd = os.getcwd()
    environ = MappingProxyType(dict(env.environ))
    if command.stops:
        return FetchmailConfig((), CLI, found=False, environ=environ, cwd=cwd)
    path = _rcfile(command, env)
    data = _read(path) if path else None
    if data is None:  # fetchmail goes on with the servers named on its command line alone
        return FetchmailConfig((), path or CLI, found=False, environ=environ, cwd=cwd)
    text = data.decode("utf-8", "surrogateescape")
    return replace(parse(text, path, str(env.home), environ=environ, cwd=cwd), data=data)


def needs_message(argv: Sequence[str]) -> bool:
    return False  # fetchmail's polls come from its rc file and command line, never from a message


def select(config: FetchmailConfig, argv: Sequence[str], message: bytes | None = None) -> list[Account]:
    return select_parsed(config, parse_argv(argv, "POSIXLY_CORRECT" in config.environ), message)


def select_parsed(config: FetchmailConfig, command: CommandLine, message: bytes | None = None) -> list[Account]:
    """The accounts `fetchmail ARGV` polls, the command line's options applied as fetchmail applies them."""
    del message
    if command.getopt_error is not None:
        raise ToolUsageError(CLI, None, f"{command.getopt_error} (fetchmail would print its usage and poll nothing)")
    if command.error is not None:
        raise ToolUsageError(CLI, None, f"fetchmail would refuse it: {command.error}")
    if command.help or command.version:
        return []  # usage / version information: printed, nothing polled
    polls, implicit = querylist(config, command)
    if command.configdump or command.quit_only:
        return []  # the settings printed / the running daemon stopped: nothing polled
    if not polls:
        raise ConfigError(config.source, None, "fetchmail: no mailservers have been specified.")
    _refuse_daemon(config, command)
    return _polled(config, polls, implicit)


def querylist(config: FetchmailConfig, command: CommandLine) -> tuple[list[Poll], bool]:
    """fetchmail.c `load_params` for this run: every poll (what --configdump prints), the `defaults`
    record and then the command line's options merged in, and its checks of the active polls, which
    stop fetchmail before it polls anything (ConfigError). Also whether no server was named."""
    polls, implicit = _querylist(config.rc, command.servers, config.source)
    overrides = {
        member: replace(setting, value=prependdir(str(setting.value), config.cwd or ""))
        if member in PATH_FIELDS else setting
        for member, setting in command.overrides.items()
    }  # fmt: skip
    idle, folders = 0, 0
    for poll in polls:
        _merge(poll.fields, overrides, force=True)  # optmerge(ctl, &cmd_opts, TRUE)
        if command.configdump or poll.active:
            problem = run_problem(poll.fields, poll.pollname, _source(config.rc, poll, config.source))
            if problem is not None:
                raise problem
            idle += bool(poll.fields.get("idle") and poll.fields["idle"].value)
            mailboxes = poll.fields.get("mailboxes")
            folders += len(mailboxes.value) if mailboxes and isinstance(mailboxes.value, tuple) else 1
    if idle and folders > 1:
        raise ConfigError(config.source, None, "fetchmail: Error: idle mode does not work for multiple folders or "
                          "accounts!")  # fmt: skip
    return polls, implicit


def poll_interval(config: FetchmailConfig, command: CommandLine) -> int:
    """run.poll_interval: `set daemon N`, unless -d N (N >= 0) says otherwise; -c never runs as a
    daemon (load_params). Not 0: fetchmail polls, sleeps and polls again, in one process."""
    if command.check:
        return 0
    if command.poll_interval is not None:
        return command.poll_interval
    daemon = config.poll_interval
    return daemon.value if daemon is not None and isinstance(daemon.value, int) else 0


def _refuse_daemon(config: FetchmailConfig, command: CommandLine) -> None:
    if not poll_interval(config, command):
        return
    daemon = config.poll_interval
    if command.poll_interval is not None or daemon is None:
        raise ToolUsageError(CLI, None, DAEMON)
    file, line = split_where(daemon.where)
    raise ConfigError(file, line, f"{daemon.text}: {DAEMON}")


def _polled(config: FetchmailConfig, polls: list[Poll], implicit: bool) -> list[Account]:
    out: dict[str, Account] = {}
    for poll in polls:
        if not poll.active or (implicit and poll.skip):
            continue
        if poll.index >= 0:
            name = config.names[poll.index] or poll.pollname
        elif poll.pollname in config.names:
            raise ConfigError(CLI, None, f"server {poll.pollname!r} is not in {config.source}, but mailpin names an "
                              "account of it so: name that server differently")  # fmt: skip
        else:
            name = poll.pollname
        if name not in out:
            out[name] = resolve(
                poll.fields, poll.pollname, name, _source(config.rc, poll, config.source), config.environ
            )
    return list(out.values())
