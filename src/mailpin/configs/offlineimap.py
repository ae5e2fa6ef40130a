"""offlineimap (offlineimap3): its config and command line, read the way offlineimap reads them.

offlineimap reads its config with `configparser` (`offlineimap/CustomConfig.py`: `SafeConfigParser`,
i.e. `[DEFAULT]` and `%(name)s` BasicInterpolation), so mailpin does too (`offlineimap_parsed`),
replays the edits `offlineimap/init.py` makes from the command line (`-k`, `--dry-run`, `-o`,
`-q`, `-f`), and then resolves each account with the rules of `repository/IMAP.py`,
`repository/Gmail.py` and `imapserver.py` (Debian 12: offlineimap3 0.0~git20211018); that last step
is `offlineimap_account`.
What the config asks offlineimap to evaluate as Python (`pythonfile`, `remotehosteval`,
`remoteporteval`) is never executed here.
"""

from __future__ import annotations

import configparser
import optparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType

from mailpin.configs.offlineimap_account import Context, resolve_all
from mailpin.configs.offlineimap_parsed import Parsed
from mailpin.configs.optparse_tool import ArgvError, OptionParser, Stopped
from mailpin.env import Env
from mailpin.errors import ConfigError, ToolUsageError
from mailpin.model import Account

UIS = ("ttyui", "basic", "quiet", "syslog", "machineui", "blinkenlights")  # ui/__init__.py UI_LIST


@dataclass(frozen=True)
class OfflineimapConfig:
    accounts: tuple[Account, ...]  # every [Account X] whose remote IMAP/Gmail repository resolves, file order
    source: str  # the file read (when none was found: the one offlineimap would have complained about)
    general_accounts: str | None = None  # `[general] accounts` as offlineimap reads it
    problems: tuple[tuple[str, ConfigError], ...] = ()  # (account, why offlineimap would fail on it)
    # Problems of [Account X] sections that [general] accounts leaves out: offlineimap reads them only
    # for `-a X`, so they are told, never errors (a `mailpin run offlineimap -a X` still refuses them).
    dormant: tuple[tuple[str, ConfigError], ...] = ()
    found: bool = True  # False: no config file at all (offlineimap itself would abort)
    text: str = ""  # select() replays the command line on a fresh parser of this text, as offlineimap does
    home: str = ""
    environ: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}), compare=False)
    cwd: str | None = None  # relative sslcacertfile paths are relative to offlineimap's working directory
    data: bytes = field(default=b"", repr=False, compare=False)  # the file as read: what offlineimap is handed
    files: bool = False  # the files it names are checked as offlineimap opens them (load: this machine's)


def _account_names(parser: configparser.ConfigParser) -> list[str]:
    # accounts.getaccountlist + CustomConfig.getsectionlist: "Account X" sections, names lstripped.
    return [section[len("Account ") :].lstrip() for section in parser.sections() if section.startswith("Account ")]


# --- the command line, parsed by the same optparse table as offlineimap/init.py ---------------------


@dataclass(frozen=True)
class CommandLine:
    """offlineimap's command line as its init.py reads it (`options` None when it stops or refuses)."""

    options: optparse.Values | None
    stops: bool = False  # --help / --version: printed, then exit before any config is read
    error: str | None = None  # optparse's complaint: offlineimap refuses the command line

    @property
    def edits(self) -> list[str]:
        """The `-k [SECTION:]OPTION=VALUE` edits, in order ([] if it does not parse: offlineimap would
        refuse it, and mailpin's select() has already said so)."""
        return list(self.options.configoverride or ()) if self.options is not None else []


def parse_argv(argv: Sequence[str]) -> CommandLine:
    try:
        return CommandLine(_options(argv))
    except Stopped:
        return CommandLine(None, stops=True)
    except ArgvError as exc:
        return CommandLine(None, error=str(exc))


def _options(argv: Sequence[str]) -> optparse.Values:
    """offlineimap's options (init.py `__parse_cmd_options`), with optparse's own abbreviation rules."""
    parser = OptionParser(version="offlineimap")
    for flag, dest in (
        ("-V", "version"), ("--dry-run", "dryrun"), ("--info", "diagnostics"), ("-1", "singlethreading"),
        ("-s", "syslog"), ("-o", "runonce"), ("-q", "quick"), ("--migrate-fmd5-using-nametrans", "migrate_fmd5"),
        ("--mbnames-prune", "mbnames_prune"),
    ):  # fmt: skip
        parser.add_option(flag, action="store_true", dest=dest, default=False)
    for flag, dest in (
        ("-P", "profiledir"), ("-a", "accounts"), ("-c", "configfile"), ("-d", "debugtype"), ("-l", "logfile"),
        ("-f", "folders"), ("-u", "interface"), ("--delete-folder", "deletefolder"),
    ):  # fmt: skip
        parser.add_option(flag, dest=dest)
    parser.add_option("-k", dest="configoverride", action="append")
    options, _ = parser.parse_args(list(argv))
    return options


def _replay(cfg: Parsed, opts: optparse.Values) -> tuple[tuple[str, str], ...]:
    """What init.py does to the config before any account runs; returns the -k edits by section."""
    parser, edits = cfg.parser, []
    for arg in opts.configoverride or ():
        if "=" not in arg:
            raise ValueError(f"-k {arg}: expected [section:]option=value")
        key, value = arg.split("=", 1)
        section = "general"
        if ":" in key:
            name, key = key.split(":", 1)
            section = name.replace("_", " ")  # init.py: -k Repository_work:… means [Repository work]
        try:
            parser.set(section, key, value)
        except configparser.NoSectionError:
            raise ValueError(f"-k {arg}: there is no [{section}] section") from None
        edits.append((section, f"-k {arg}"))
    ui = cfg.get("general", "ui", "ttyui") or ""
    ui = (ui if opts.interface is None else opts.interface).split(".")[-1]
    if not opts.diagnostics and ui.lower() not in UIS:
        raise ValueError(f"UI {ui!r} does not exist, choose one of: {', '.join(UIS)}")
    if not parser.has_section("general"):
        raise ValueError("there is no [general] section")
    if opts.dryrun:
        parser.set("general", "dry-run", "True")
    if not parser.has_option("general", "dry-run"):
        parser.set("general", "dry-run", "False")
    names = _account_names(parser)
    if opts.runonce:
        for name in names:
            parser.remove_option("Account " + name, "autorefresh")
    if opts.quick:
        for name in names:
            parser.set("Account " + name, "quick", "-1")
    if opts.folders:
        for name in names:
            remote = "Repository " + parser.get("Account " + name, "remoterepository")
            parser.set(remote, "folderfilter", f"lambda f: f in {opts.folders.split(',')}")
            parser.set(remote, "folderincludes", "[]")
    for option in ("socktimeout", "maxsyncaccounts"):
        cfg.integer("general", option)
    debug = "imap,maildir,thread" if (opts.debugtype or "").lower() == "all" else opts.debugtype
    single = opts.singlethreading or bool(opts.profiledir)
    single = single or bool(debug and not ("thread" in debug.split(",") and not single))
    if not single:  # init.py sizes each repository's thread pool from maxconnections
        for section in parser.sections():
            if section.startswith("Repository "):
                cfg.integer(section, "maxconnections")
    return tuple(edits)


def _active(cfg: Parsed, opts: optparse.Values) -> list[str]:
    """init.py `_get_activeaccounts`: -a overrides [general] accounts (which must exist all the same)."""
    listed = cfg.get("general", "accounts")
    if listed is None:
        raise cfg.error("general", "", "[general] has no accounts option (offlineimap requires it, even with -a)")
    names = [name.lstrip() for name in (opts.accounts or listed).split(",")]
    known = _account_names(cfg.parser)
    for name in names:
        if name not in known:
            problem = f"account {name!r} does not exist; valid accounts: {', '.join(known) or 'none'}"
            if opts.accounts:
                raise ConfigError(cfg.source, None, f"offlineimap -a {opts.accounts}: {problem}")
            raise cfg.error("general", "accounts", f"[general] accounts: {problem}")
    return list(dict.fromkeys(names))


# --- the module contract ----------------------------------------------------------------------------


def parse(
    text: str,
    source: str,
    home: str,
    *,
    environ: Mapping[str, str] | None = None,
    cwd: str | None = None,
    files: bool = False,
) -> OfflineimapConfig:
    """Every account of an offlineimap config, as offlineimap would resolve it without command-line
    edits; `files`: check the files it names exist, as offlineimap does on this machine."""
    cfg = Parsed(text, source)
    ctx = Context(home, MappingProxyType(dict(environ or {})), cwd, files=files)
    accounts, problems = resolve_all(cfg, _account_names(cfg.parser), ctx)
    try:
        general = cfg.get("general", "accounts")
    except ConfigError as exc:
        general, problems = None, (*problems, ("[general]", exc))
    synced = {name.lstrip() for name in general.split(",")} if general is not None else set()
    dormant = tuple(
        (name, ConfigError(exc.source, exc.line, f"{exc.problem} (not in [general] accounts: offlineimap reads it only "
                           f"for `-a {name}`)"))
        for name, exc in problems if name != "[general]" and name not in synced
    )  # fmt: skip
    problems = tuple(problem for problem in problems if problem[0] == "[general]" or problem[0] in synced)
    mbnames = _mbnames_problem(cfg)
    if mbnames is not None:
        problems = (*problems, ("[mbnames]", mbnames))
    return OfflineimapConfig(
        tuple(accounts), source, general, problems, dormant=dormant, text=text, home=home, environ=ctx.environ, cwd=cwd,
        files=files,
    )  # fmt: skip


# mbnames.py `MBNames.__init__`: when the section exists at all (even with `enabled = no`), each of
# these is read with config.get, and a missing one stops offlineimap before it syncs anything.
_MBNAMES_NEEDS = ("peritem", "header", "sep", "footer", "filename")


def _mbnames_problem(cfg: Parsed) -> ConfigError | None:
    if not cfg.parser.has_section("mbnames"):
        return None
    missing = [option for option in _MBNAMES_NEEDS if not cfg.parser.has_option("mbnames", option)]
    if not missing:
        return None
    return cfg.error(
        "mbnames", "", f"[mbnames] lacks {', '.join(missing)}: offlineimap stops before syncing when the section "
        f"lacks any of {', '.join(_MBNAMES_NEEDS)}, even with enabled = no (\"No option '{missing[0]}' in section: "
        "'mbnames'\"); add them or remove the section",
    )  # fmt: skip


def config_paths(argv: Sequence[str], env: Env) -> list[Path]:
    """init.py: -c FILE; else $XDG_CONFIG_HOME/offlineimap/config if it exists; else ~/.offlineimaprc."""
    return _paths(parse_argv(argv), env)


def _paths(command: CommandLine, env: Env) -> list[Path]:
    explicit = command.options.configfile if command.options is not None else None
    if explicit:  # `-c ''` counts as absent, like offlineimap's `if not options.configfile`
        return [Path(_expanduser(explicit, env))]
    # offlineimap takes any non-empty XDG_CONFIG_HOME as it is (no absolute-path rule).
    xdg = env.environ.get("XDG_CONFIG_HOME") or str(env.home / ".config")
    candidates = [Path(xdg, "offlineimap", "config"), env.home / ".offlineimaprc"]
    return [path for path in candidates if path.exists()][:1]


def _expanduser(path: str, env: Env) -> str:
    if path == "~" or path.startswith("~/"):
        return str(env.home) + path[1:]
    return os.path.expanduser(path)


def load(argv: Sequence[str], env: Env) -> OfflineimapConfig:
    return load_parsed(parse_argv(argv), env)


def load_parsed(command: CommandLine, env: Env) -> OfflineimapConfig:
    """The config file `command` makes offlineimap read, read."""
    paths = _paths(command, env)
    if not paths:
        return OfflineimapConfig((), str(env.home / ".offlineimaprc"), found=False, home=str(env.home))
    path = paths[0]
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(str(path), None, "no such file (offlineimap would abort)") from None
    except IsADirectoryError:
        raise ConfigError(str(path), None, "is a directory, not an offlineimap config file") from None
    except OSError as exc:
        raise ConfigError(str(path), None, f"cannot read: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(str(path), line, f"not UTF-8 text (byte {data[exc.start]:#04x})") from None
    parsed = parse(text, str(path), str(env.home), environ=env.environ, cwd=os.getcwd(), files=True)
    return replace(parsed, data=data)


def needs_message(argv: Sequence[str]) -> bool:
    return False  # offlineimap's accounts come from its config and -a, never from a message


def select(config: OfflineimapConfig, argv: Sequence[str], message: bytes | None = None) -> list[Account]:
    return select_parsed(config, parse_argv(argv), message)


def select_parsed(config: OfflineimapConfig, command: CommandLine, message: bytes | None = None) -> list[Account]:
    """The accounts `offlineimap ARGV` connects to, resolved after its command line edited the config."""
    if command.stops:
        return []
    if command.options is None:
        raise ToolUsageError("offlineimap command line", None, f"offlineimap would reject it: {command.error}")
    opts = command.options
    if opts.version:
        return []  # -V prints the version before reading the config
    if not config.found:
        raise ConfigError(config.source, None, "no offlineimap config file: offlineimap would abort")
    cfg = Parsed(config.text, config.source)
    try:
        edits = _replay(cfg, opts)
    except (configparser.Error, ValueError) as exc:
        message_ = exc.message if isinstance(exc, configparser.Error) else str(exc)
        raise ConfigError(config.source, None, f"offlineimap would fail before syncing: {message_}") from None
    if not opts.diagnostics and (opts.migrate_fmd5 or opts.mbnames_prune):
        return []  # init.run: these read only local state
    names = _active(cfg, opts)
    if not opts.diagnostics and not opts.deletefolder:
        problem = _mbnames_problem(cfg)  # init.py __sync: mbnames.init before the first connection
        if problem is not None:
            raise problem
    if not opts.diagnostics and opts.deletefolder:
        if len(names) != 1:
            raise ConfigError(config.source, None, "--delete-folder needs exactly one account (offlineimap -a NAME)")
        if cfg.boolean("general", "dry-run", False):
            return []  # accounts.deletefolder: a dry run only says what it would delete
    ctx = Context(config.home, config.environ, config.cwd, edits, config.files)
    accounts, problems = resolve_all(cfg, names, ctx)
    if problems:
        raise problems[0][1]
    return accounts
