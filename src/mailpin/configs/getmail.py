"""getmail (getmail6 6.18, Debian 12): its command line, its getmaildir and rc files, read the way
`/usr/bin/getmail` `main` reads them, and the rc files its `go()` then connects for.

A getmail account is one rc file: `getmail:NAME`, NAME being the rc file as getmail finds it in its
getmaildir (`getmail:getmailrc`, `getmail:work.rc`, also for `-r ~/.getmail/work.rc`); an rc file
outside the getmaildir can only be named without ambiguity by its absolute path
(`getmail:/home/alice/rc/work`: getmail's own label, the base name, may be shared by two). One rc file
is read by `getmail_rc`.
"""

from __future__ import annotations

import glob
import optparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from mailpin.configs.getmail_rc import Context, Rc, expand_user_vars, read
from mailpin.configs.optparse_tool import ArgvError, OptionParser, Stopped
from mailpin.env import Env
from mailpin.errors import ConfigError, ToolUsageError
from mailpin.model import Account

RCFILE = "getmailrc"  # main(): defaults['rcfile']
_NO_DIR = ("Could not find the getmail configuration directory.  mkdir ~/.config/getmail/ or specify an alternate "
           "directory with the --getmaildir option.")  # fmt: skip


# --- the command line, parsed by the same optparse table as main() -----------------------------------


@dataclass(frozen=True)
class CommandLine:
    """getmail's command line as main() reads it (`options` None when it stops or is refused)."""

    options: optparse.Values | None
    stops: bool = False  # --help / --version: printed, then exit before anything is read
    error: str | None = None  # getmail refuses the command line (optparse, or a stray argument)

    @property
    def rcfile(self) -> list[str]:
        """-r/--rcfile, in order (append): each joined to the getmaildir; none: the getmaildir decides."""
        return list(self.options.rcfile) if self.options is not None else []

    @property
    def getmaildir(self) -> str | None:
        """-g/--getmaildir as given (main() expands it with expand_user_vars)."""
        return self.options.getmaildir if self.options is not None else None

    @property
    def dump(self) -> bool:
        """--dump: reads every rc file, prints them and exits: connects nowhere."""
        return bool(self.options is not None and self.options.dump_config)

    @property
    def store_keyring(self) -> bool:
        """--store-password-in-keyring: stores the first rc file's password and exits: connects nowhere."""
        return bool(self.options is not None and getattr(self.options, "store_keyring", False))

    @property
    def idle(self) -> str:
        return str(self.options.idle) if self.options is not None else ""


def parse_argv(argv: Sequence[str], keyring: bool | None = None) -> CommandLine:
    """`keyring`: whether getmail's Python has the `keyring` module, which adds an option
    (None: look where Debian's python3 finds it)."""
    try:
        return CommandLine(_options(argv, _has_keyring() if keyring is None else keyring))
    except Stopped:
        return CommandLine(None, stops=True)
    except ArgvError as exc:
        return CommandLine(None, error=str(exc))


def _has_keyring() -> bool:
    # getmail does `import keyring` (python3-keyring is not among getmail6's dependencies); the
    # gnomekeyring option needs a Python 2 module, never there for Debian's getmail6.
    where = ("/usr/lib/python3/dist-packages", "/usr/local/lib/python3*/dist-packages",
             os.path.expanduser("~/.local/lib/python3*/site-packages"))  # fmt: skip
    return any(glob.glob(os.path.join(place, "keyring", "__init__.py")) for place in where)


def _options(argv: Sequence[str], keyring: bool) -> optparse.Values:
    """main()'s reading of argv (optparse's abbreviations and all)."""
    options, args = _parser(keyring).parse_args(list(argv))
    if args:  # main(): getmailOperationError, before anything is read
        raise ArgvError(f"unknown argument(s) {args} ; try --help")
    return options


def _parser(keyring: bool) -> OptionParser:
    """main()'s OptionParser, option for option."""
    parser = OptionParser(version="getmail")
    parser.add_option("-g", "--getmaildir", dest="getmaildir", action="store")
    parser.add_option("-r", "--rcfile", dest="rcfile", action="append", default=[])
    parser.add_option("--dump", dest="dump_config", action="store_true", default=False)
    parser.add_option("--trace", dest="trace", action="store_true", default=False)
    parser.add_option("-i", "--idle", dest="idle", action="store", default="")
    if keyring:
        parser.add_option("--store-password-in-keyring", dest="store_keyring", action="store_true", default=False)
    parser.add_option("-s", "--searchset", dest="override_imap", action="append")
    overrides = optparse.OptionGroup(parser, "Overrides")
    overrides.add_option("-v", "--verbose", dest="override_verbose", action="count")
    overrides.add_option("--fingerprint", dest="override_fingerprint", action="store_true")
    overrides.add_option("-q", "--quiet", dest="override_verbose", action="store_const", const=0)
    overrides.add_option("-d", "--delete", dest="override_delete", action="store_true")
    overrides.add_option("-l", "--dont-delete", dest="override_delete", action="store_false")
    overrides.add_option("-a", "--all", dest="override_read_all", action="store_true")
    overrides.add_option("-n", "--new", dest="override_read_all", action="store_false")
    overrides.add_option("--to-oldmail-on-each-mail", dest="override_to_oldmail_on_each_mail", action="store_true")
    parser.add_option_group(overrides)
    return parser


def without_rcfiles(argv: Sequence[str], keyring: bool | None = None) -> list[str]:
    """argv (one getmail accepts) without its -r/--rcfile options, every other token as it was: the
    hand-over names each rc file itself. optparse's way of reading tokens: `--name[=value]` by exact
    name or unique prefix, short options clustered (`-vr FILE`, `-rFILE`), a value in the same token
    or the next, and `--` ending the options."""
    parser = _parser(_has_keyring() if keyring is None else keyring)
    out: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--" or not arg.startswith("-") or arg == "-":
            out += argv[i:]  # getmail refuses operands: nothing else can follow an accepted `--`
            break
        if arg.startswith("--"):
            name, eq, _ = arg.partition("=")
            option = parser._long_opt[parser._match_long_opt(name)]
            span = 2 if option.takes_value() and not eq else 1
            if option.dest != "rcfile":
                out += argv[i : i + span]
            i += span
            continue
        kept, span = "-", 1
        for at in range(1, len(arg)):
            option = parser._short_opt["-" + arg[at]]
            if not option.takes_value():
                kept += arg[at]
                continue
            span = 1 if arg[at + 1 :] else 2  # the value: the rest of this token, else the next one
            if option.dest != "rcfile":
                kept += arg[at:]
                out += [kept, *argv[i + 1 : i + span]]
                kept = ""
            break
        if kept not in ("", "-"):
            out.append(kept)
        i += span
    return out


# --- the getmaildir and the rc files ------------------------------------------------------------------


@dataclass(frozen=True)
class GetmailConfig:
    accounts: tuple[Account, ...]  # one per rc file read that resolves: this run's, in getmail's order, then others
    source: str  # the getmaildir (when none was found: the one getmail would have created)
    getmaildir: str | None = None  # as main() resolved it (None: getmail stops, see `problems`/`found`)
    given_getmaildir: str | None = None  # the -g it was loaded for
    directory_problem: ConfigError | None = None  # why getmail stops before it reads any rc file
    run: tuple[str, ...] = ()  # the rc paths getmail reads without -r (getmailrc, or the directory's listing)
    rcfiles: tuple[Rc, ...] = ()  # every file read as an rc file, by the path getmail opens (select looks -r up here)
    # Why getmail stops: (NAME, error) for an rc file of this run, ("getmaildir", error) for the directory.
    problems: tuple[tuple[str, ConfigError], ...] = ()
    # Problems of rc files in the getmaildir that this run does not read (getmail reads them only for -r NAME).
    dormant: tuple[tuple[str, ConfigError], ...] = ()
    found: bool = True  # False: no getmaildir at all (getmail itself stops)
    # The bytes of each file read, by the path getmail opens (os.path.join(getmaildir, -r FILE)): what getmail is
    # handed instead (`-r /proc/self/fd/N`, in the order select returns; the getmaildir stays: its state is there).
    data: Mapping[str, bytes] = field(default_factory=lambda: MappingProxyType({}), repr=False, compare=False)


def _resolve_dir(command: CommandLine, env: Env) -> tuple[str | None, ConfigError | None, bool]:
    """main(): -g (expand_user_vars), else $XDG_CONFIG_HOME/getmail, else ~/.getmail, whichever exists;
    then it must exist, be a directory, and be writable. (getmaildir, why getmail stops, found)."""
    environ = env.environ
    given = command.getmaildir
    if given is None:
        if "HOME" not in environ:  # os.environ["HOME"]: getmail stops with a KeyError
            return None, ConfigError("getmail", None, "HOME is not set: getmail cannot find its getmaildir"), True
        home = environ["HOME"]
        candidates = (os.path.join(environ.get("XDG_CONFIG_HOME", os.path.join(home, ".config")), "getmail"),
                      os.path.join(home, ".getmail"))  # fmt: skip
        found = next((path for path in candidates if os.path.exists(path)), None)
        if found is None:
            return None, ConfigError(candidates[0], None, _NO_DIR), False
        path, kind = found, "Default"
    else:
        path, kind = expand_user_vars(given, environ), "Specified"
    for fails, why in (
        (not os.path.exists(path), "does not exist - create"),
        (not os.path.isdir(path), "is not a directory - fix"),
        (not os.access(path, os.W_OK), "is not writable - fix permissions"),
    ):
        if fails:
            problem = f'{kind} config/data dir "{path}" {why} or specify alternate directory with --getmaildir option'
            return path, ConfigError(path, None, problem), True
    return path, None, True


def _listing(getmaildir: str) -> list[str]:
    """main() without -r and without getmailrc: every entry of the getmaildir, in os.listdir's order."""
    return [
        name for name in os.listdir(getmaildir)
        if not name.startswith("oldmail-") and not name.endswith(".json") and not name.startswith(".")
    ]  # fmt: skip


def _name(path: str, getmaildir: str) -> str:
    """The account name of the rc file getmail opens at `path` (the getmaildir joined with `-r FILE` or a
    listed name): relative to the getmaildir when inside it, else absolute (never cwd-relative)."""
    path = os.path.abspath(path)
    inside = os.path.relpath(path, os.path.abspath(getmaildir))
    return path if inside in (".", "..") or inside.startswith("../") else inside


def config_paths(argv: Sequence[str], env: Env) -> list[Path]:
    """The rc files getmail would read, in its order ([] when it finds no getmaildir)."""
    command = parse_argv(argv)
    getmaildir, problem, _ = _resolve_dir(command, env)
    if getmaildir is None or problem is not None:
        return []
    try:
        return [Path(path) for path in _run_paths(command.rcfile, getmaildir)]
    except OSError:
        return []


def _run_paths(rcfile: Sequence[str], getmaildir: str) -> list[str]:
    if rcfile:
        return [os.path.join(getmaildir, name) for name in rcfile]
    if os.path.exists(os.path.join(getmaildir, RCFILE)):
        return [os.path.join(getmaildir, RCFILE)]
    return [os.path.join(getmaildir, name) for name in _listing(getmaildir)]


def load(argv: Sequence[str], env: Env) -> GetmailConfig:
    return load_parsed(parse_argv(argv), env)


def load_parsed(command: CommandLine, env: Env) -> GetmailConfig:
    """The rc files `command` makes getmail read, read (and, without -r, the getmaildir's other rc files)."""
    usable = command if command.options is not None else parse_argv([], keyring=False)
    getmaildir, problem, found = _resolve_dir(usable, env)
    source = getmaildir or (problem.source if problem is not None else "getmail")
    if getmaildir is None or problem is not None:
        problems = (("getmaildir", problem),) if problem is not None and found else ()
        return GetmailConfig((), source, getmaildir, usable.getmaildir, problem, problems=problems, found=found)
    ctx = Context(getmaildir, MappingProxyType(dict(env.environ)), os.getcwd(), files=True)
    try:
        default = _run_paths([], getmaildir)  # without -r
        run = _run_paths(usable.rcfile, getmaildir)
    except OSError as exc:  # os.listdir: getmail stops with the same error
        problem = ConfigError(getmaildir, None, f"cannot list the getmaildir: {exc.strerror or exc}")
        problems = (("getmaildir", problem),)
        return GetmailConfig((), getmaildir, getmaildir, usable.getmaildir, problem, problems=problems)
    others: list[str] = []
    if not usable.rcfile and default == [os.path.join(getmaildir, RCFILE)]:
        others = [path for path in (os.path.join(getmaildir, name) for name in _listing(getmaildir))
                  if path not in run and os.path.isfile(path)]  # fmt: skip
    rcs: dict[str, Rc] = {}
    data: dict[str, bytes] = {}
    for path in [*run, *others]:
        if path not in rcs:
            rcs[path], raw = _read(path, _name(path, getmaildir), ctx)
            if raw is not None:
                data[path] = raw
    dormant = [rcs[path] for path in others if rcs[path].retriever]  # a log, a note: no rc file, never read
    # `-r work -r ~/.getmail/work`: two paths, one rc file (and one account) for mailpin.
    mine: dict[str, Rc] = {}
    for path in run:
        mine.setdefault(rcs[path].name, rcs[path])
    return GetmailConfig(
        accounts=tuple(rc.account for rc in (*mine.values(), *dormant) if rc.account is not None),
        source=getmaildir,
        getmaildir=getmaildir,
        given_getmaildir=usable.getmaildir,
        run=tuple(default),
        rcfiles=tuple((*rcs.values(),)),
        problems=tuple((rc.name, error) for rc in mine.values() if (error := rc.problem or rc.refusal) is not None),
        dormant=tuple(
            (rc.name, _dormant(rc.name, error)) for rc in dormant if (error := rc.problem or rc.refusal) is not None
        ),
        data=MappingProxyType(data),
    )


def _dormant(name: str, error: ConfigError) -> ConfigError:
    return ConfigError(error.source, error.line, f"{error.problem} (getmail reads this rc file only for `-r {name}`)")


def _read(path: str, name: str, ctx: Context) -> tuple[Rc, bytes | None]:
    """main(): the file must exist and be a file; open(path, 'r') reads it as text (UTF-8 here)."""
    if not os.path.exists(path):
        return Rc(name, path, problem=ConfigError(path, None, f"configuration file {path} does not exist")), None
    if not os.path.isfile(path):
        return Rc(name, path, problem=ConfigError(path, None, f"{path} is not a file")), None
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        return Rc(name, path, problem=ConfigError(path, None, f"cannot read: {exc.strerror or exc}")), None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        return Rc(name, path, problem=ConfigError(path, line, f"not UTF-8 text (byte {data[exc.start]:#04x})")), data
    return read(text, path, name, ctx), data


def parse(
    text: str,
    source: str,
    home: str,
    *,
    name: str | None = None,
    getmaildir: str | None = None,
    environ: Mapping[str, str] | None = None,
    cwd: str | None = None,
    files: bool = False,
) -> GetmailConfig:
    """One rc file's account, as getmail would resolve it (pure unless `files`: then the files it names
    are checked as getmail checks them)."""
    getmaildir = getmaildir or os.path.join(home, ".getmail")
    ctx = Context(getmaildir, MappingProxyType({"HOME": home, **(environ or {})}), cwd, files)
    rc = read(text, source, name or os.path.basename(source), ctx)
    error = rc.problem or rc.refusal
    return GetmailConfig(
        accounts=(rc.account,) if rc.account is not None else (),
        source=source,
        getmaildir=getmaildir,
        run=(source,),  # select(config, []) reads this rc file, as `getmail -r SOURCE` would
        rcfiles=(rc,),
        problems=((rc.name, error),) if error is not None else (),
    )


def needs_message(argv: Sequence[str]) -> bool:
    return False  # getmail's accounts come from its rc files and -r, never from a message


def select(config: GetmailConfig, argv: Sequence[str], message: bytes | None = None) -> list[Account]:
    return select_parsed(config, parse_argv(argv), message)


def select_parsed(config: GetmailConfig, command: CommandLine, message: bytes | None = None) -> list[Account]:
    """The accounts `getmail ARGV` connects to, in its order (an rc file given twice: once, the first time)."""
    if command.stops:
        return []
    if command.options is None:
        raise ToolUsageError("getmail command line", None, f"getmail would reject it: {command.error}")
    if command.store_keyring:
        return []  # main(): stores the first rc file's password, then exits before go()
    if config.directory_problem is not None:
        raise config.directory_problem
    if not config.found or config.getmaildir is None:
        raise ConfigError(config.source, None, _NO_DIR)
    if command.getmaildir != config.given_getmaildir:
        raise ConfigError(
            config.source, None, f"read for getmaildir {config.given_getmaildir}, not {command.getmaildir}"
        )
    known = {rc.path: rc for rc in config.rcfiles}
    paths = [os.path.join(config.getmaildir, name) for name in command.rcfile] or list(config.run)
    if any(path not in known for path in paths):
        missing = next(path for path in paths if path not in known)
        raise ConfigError(missing, None, "this rc file was not read: load the config with this command line")
    rcs = [known[path] for path in paths]
    for rc in rcs:  # main() reads every rc file before go() connects for the first
        if rc.problem is not None:
            raise rc.problem
    if command.dump:
        return []  # main(): --dump prints the configuration and exits before go()
    opts = command.options
    idle = command.idle if len(rcs) <= 1 else ""  # go(): "more than one config file given with --idle, ignoring"
    chosen: dict[str, Account] = {}
    for rc in rcs:
        read_all = rc.read_all if opts.override_read_all is None else opts.override_read_all
        delete = rc.delete if opts.override_delete is None else opts.override_delete
        if rc.fetch_size_skip or (read_all and not delete and idle):
            continue  # go(): "skipping", before it connects
        if rc.refusal is not None:
            raise rc.refusal
        if rc.account is not None:
            chosen.setdefault(rc.name, rc.account)
    return list(chosen.values())
