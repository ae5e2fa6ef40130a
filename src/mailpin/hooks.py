"""The shims and the notmuch pre-new hook: their text, where they go, and how they are written
without clobbering anything that is not mailpin's.

The templates live here, not only in the repository's `hooks/` (a wheel does not ship that
directory); a test checks that `hooks/` holds exactly what `render` gives with the default command.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from mailpin.errors import ConfigError
from mailpin.run.handover import is_shim
from mailpin.state.durable import write_atomically

TOOLS = ("msmtp", "mbsync", "offlineimap", "mpop", "fetchmail", "getmail")
PRE_NEW = "pre-new"
CHAINED = "pre-new.before-mailpin"  # the user's own pre-new hook, run after mailpin's check
TEMPLATES = (*TOOLS, "notmuch-pre-new")  # the files in the repository's hooks/
DEFAULT_COMMAND = '"${MAILPIN:-mailpin}"'  # hooks/ as shipped: $MAILPIN, else the mailpin on PATH

_TOOL_SHIM = """\
#!/bin/sh
# mailpin-shim for @TOOL@ (written by `mailpin hooks install`). `mailpin run` verifies the TLS profile
# of the account this invocation uses, then runs the real @TOOL@ with every argument and stdin unchanged;
# it never runs a file carrying the mailpin-shim marker, so it finds the real @TOOL@, never this file.
# Exit 69: blocked; 75: could not verify; 78: broken config; otherwise @TOOL@'s own status.
exec @MAILPIN@ run @TOOL@ "$@"
"""

_PRE_NEW = """\
#!/bin/sh
# mailpin-shim: notmuch pre-new hook (written by `mailpin hooks install --notmuch`).
# Verify the TLS profiles of the accounts a sync or fetch uses (mbsync, offlineimap, mpop, fetchmail,
# getmail) before `notmuch new` indexes: a non-zero status (69 blocked, 75 could not verify,
# 78 broken config) aborts `notmuch new`.
# Then run the pre-new hook this one replaced, kept beside it as pre-new.before-mailpin.
@MAILPIN@ check --sync --quiet || exit
case $0 in */*) hooks=${0%/*} ;; *) hooks=. ;; esac
if [ -e "$hooks/pre-new.before-mailpin" ]; then
    exec "$hooks/pre-new.before-mailpin" "$@"
fi
"""


def render(name: str, command: Sequence[str] | None = None) -> str:
    """The text of shim `name` (a tool, or "notmuch-pre-new") running `command` as mailpin."""
    mailpin = DEFAULT_COMMAND if command is None else shlex.join(command)
    if name == "notmuch-pre-new":
        text = _PRE_NEW
    elif name in TOOLS:
        text = _TOOL_SHIM.replace("@TOOL@", name)
    else:
        raise ValueError(f"no such shim: {name}")
    return text.replace("@MAILPIN@", mailpin)


def this_mailpin(argv0: str, executable: str) -> list[str]:
    """The absolute command that runs this mailpin: shims run from cron and systemd, where PATH is minimal.
    The `mailpin` entry script when that is what runs now, else this Python with `-m mailpin`."""
    if os.path.basename(argv0) == "mailpin":
        script = os.path.abspath(argv0)  # not resolved: pipx's ~/.local/bin link outlives upgrades
        if runnable(script) and not is_shim(script):
            return [script]
    if not executable:
        raise ConfigError("python", None, "cannot tell which Python runs mailpin (sys.executable is empty)")
    beside = os.path.join(os.path.dirname(os.path.abspath(executable)), "mailpin")
    if runnable(beside) and not is_shim(beside):
        return [beside]  # the venv's or pipx's entry script: it does not put the current directory on sys.path
    # `python -m` would put the current directory first on sys.path: a `mailpin/` there (a cloned repo
    # that git send-email runs in) would run instead. -P (3.11) drops it; -I on 3.10 (also drops user site).
    safe = "-P" if sys.version_info >= (3, 11) else "-I"
    return [os.path.abspath(executable), safe, "-m", "mailpin"]  # a venv's python is a link: keep the venv's


def shim_command(path: str) -> tuple[str, ...] | None:
    """The mailpin command a shim or hook file runs (what precedes `run` / `check`), if it says."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            lines = handle.read(4096).splitlines()
    except OSError:
        return None
    for line in lines:
        if line.lstrip().startswith("#"):
            continue
        try:
            words = shlex.split(line)
        except ValueError:
            continue
        words = words[1:] if words[:1] == ["exec"] else words
        for verb in ("run", "check"):
            if verb in words[1:]:
                return tuple(words[: words.index(verb, 1)])
    return None


def runnable(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


def path_dirs(environ: Mapping[str, str]) -> list[str]:
    return [directory or "." for directory in environ.get("PATH", os.defpath).split(os.pathsep)]


def path_index(directory: str, environ: Mapping[str, str]) -> int | None:
    """Where `directory` comes on PATH (however spelled), None when it is not there."""
    wanted = os.path.realpath(directory)
    for index, entry in enumerate(path_dirs(environ)):
        if os.path.realpath(entry) == wanted:
            return index
    return None


def first_on_path(tool: str, environ: Mapping[str, str], skip: str | None = None) -> tuple[int, str] | None:
    """The file the bare name `tool` runs (its PATH position and path), ignoring directory `skip`."""
    skipped = os.path.realpath(skip) if skip else None
    for index, directory in enumerate(path_dirs(environ)):
        candidate = os.path.join(directory, tool)
        if runnable(candidate) and (skipped is None or os.path.realpath(directory) != skipped):
            return index, candidate
    return None


def read_only(path: str) -> bool:
    """Is `path` (followed) somewhere mailpin must not change: the Nix store, a read-only mount, no
    write permission bits (root's access() says yes to everything), or not writable for this user?"""
    real = os.path.realpath(path)
    if real.startswith("/nix/store/"):  # home-manager links its files into the immutable store
        return True
    try:
        mode = os.stat(real).st_mode
        flags = os.statvfs(real).f_flag
    except OSError:
        return False
    return mode & 0o222 == 0 or bool(flags & os.ST_RDONLY) or not os.access(real, os.W_OK)


# --- notmuch -------------------------------------------------------------------------------------


def notmuch_hook_dir(environ: Mapping[str, str], home: Path) -> Path:
    """The directory `notmuch new` takes hooks from, asked of the real notmuch with the user's
    environment (NOTMUCH_CONFIG, NOTMUCH_PROFILE, NOTMUCH_DATABASE honoured)."""
    notmuch = shutil.which("notmuch", path=environ.get("PATH", os.defpath))
    if notmuch is None:
        raise ConfigError("notmuch", None, "not found on PATH (install notmuch to use its pre-new hook)")
    database = _config_get(notmuch, "database.path", environ)
    if not database:
        problem = "not configured (no database.path): run `notmuch setup`, then install the hook"
        raise ConfigError("notmuch", None, problem)
    # With a database, notmuch answers with the directory it chose (lib/open.cc `_choose_dir`).
    hook_dir = _config_get(notmuch, "database.hook_dir", environ)
    if hook_dir:
        return _absolute(hook_dir, home)
    # No database yet: the same choice by hand. The XDG directory counts only if `hooks` itself
    # exists there (notmuch stats it), so a config in $XDG_CONFIG_HOME/notmuch/<profile>/ alone
    # does not move the hooks away from the database.
    xdg = Path(environ.get("XDG_CONFIG_HOME") or home / ".config")
    profile = environ.get("NOTMUCH_PROFILE") or "default"
    candidate = _absolute(str(xdg / "notmuch" / profile / "hooks"), home)
    if candidate.is_dir():
        return candidate
    return _absolute(database, home) / ".notmuch" / "hooks"


def _absolute(path: str, home: Path) -> Path:
    return Path(path) if os.path.isabs(path) else home / path  # notmuch reads relative paths from HOME


def _config_get(notmuch: str, key: str, environ: Mapping[str, str]) -> str:
    try:
        done = subprocess.run(
            [notmuch, "config", "get", key],
            env=dict(environ),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="surrogateescape",
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ConfigError("notmuch", None, f"`notmuch config get {key}` failed: {exc}") from None
    if done.returncode != 0:
        said = done.stderr.strip().splitlines()
        problem = said[-1] if said else f"exit status {done.returncode}"
        raise ConfigError("notmuch", None, f"`notmuch config get {key}`: {problem}")
    lines = done.stdout.splitlines()
    return lines[0].strip() if lines else ""


# --- writing -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One change to the file system (or, in a dry run, one that would be made).

    action: "mkdir"; "write" (new file); "replace" (an older mailpin shim); "unchanged"; "chain"
    (the user's hook is kept as `aside` and ours takes its place); "refuse" (not ours: left alone)."""

    action: str
    path: Path
    text: str = ""
    aside: Path | None = None


def plan_file(path: Path, text: str) -> Step:
    """What writing mailpin's `text` to `path` means: a file that is not mailpin's is never replaced."""
    if not os.path.lexists(path):
        return Step("write", path, text)
    if not is_shim(str(path)):
        return Step("refuse", path)
    if not path.is_symlink() and _same(path, text):
        return Step("unchanged", path, text)
    return Step("replace", path, text)


def _same(path: Path, text: str) -> bool:
    try:
        return path.stat().st_mode & 0o7777 == 0o755 and path.read_text(encoding="utf-8") == text
    except (OSError, UnicodeDecodeError):
        return False


@dataclass(frozen=True)
class PreNewPlan:
    steps: tuple[Step, ...]
    advice: str = ""  # set when the hook is managed read-only elsewhere: what to write there instead


def plan_pre_new(directory: Path, text: str) -> PreNewPlan:
    """Install mailpin's pre-new hook in `directory`, chaining — never clobbering — the user's own."""
    hook, aside = directory / PRE_NEW, directory / CHAINED
    steps: list[Step] = []
    if not directory.is_dir():
        steps.append(Step("mkdir", directory))
    elif read_only(str(directory)):
        return PreNewPlan((), _advice(directory, hook))
    if os.path.lexists(hook) and hook.is_symlink() and read_only(str(hook)):
        ours = is_shim(str(hook))  # e.g. mailpin's hook linked in by Nix: installed, not ours to change
        return PreNewPlan((Step("unchanged", hook),) if ours else (), "" if ours else _advice(hook, hook))
    aside_taken = os.path.lexists(aside)
    if aside_taken and is_shim(str(aside)):
        steps.append(Step("remove", aside))  # a copy of mailpin's own hook there would run itself forever
        aside_taken = False
    if os.path.lexists(hook) and not is_shim(str(hook)):
        if aside_taken:
            return PreNewPlan((Step("refuse", hook, aside=aside),))
        return PreNewPlan((*steps, Step("chain", hook, text, aside)))
    return PreNewPlan((*steps, plan_file(hook, text)))


def _advice(where: Path, hook: Path) -> str:
    real = os.path.realpath(where)
    shown = f"{where} (a link to {real})" if real != str(where) else str(where)
    chained = " && <your current pre-new commands>" if os.path.lexists(hook) else ""
    return (
        f"{shown} is read-only, so mailpin left it alone; add the check where the hook is generated, "
        f'e.g. in home-manager:\n  programs.notmuch.hooks.preNew = "mailpin check --sync --quiet{chained}";'
    )


def make_dir(directory: Path) -> None:
    """Create `directory` (mode 0755: others run the shims in it) and its missing parents."""
    try:
        directory.mkdir(mode=0o755, parents=True, exist_ok=True)
        directory.chmod(0o755)
    except OSError as exc:
        raise ConfigError(str(directory), None, f"cannot create: {exc.strerror or exc}") from None


def write_executable(path: Path, text: str, aside: Path | None = None) -> None:
    """Write `text` to `path`, mode 0755, atomically (temp file + replace). With `aside`, the file
    at `path` is kept there first — as a second link, so `path` never goes missing in between."""
    moved = ""
    try:
        if aside is not None:
            moved = _set_aside(path, aside)
        write_atomically(path, text.encode("utf-8"), 0o755)
    except BaseException as exc:
        if aside is not None and moved:
            _undo_aside(path, aside, moved)
        if isinstance(exc, OSError):
            raise ConfigError(str(path), None, f"cannot write: {exc.strerror or exc}") from None
        raise


def _set_aside(path: Path, aside: Path) -> str:
    try:
        os.link(path, aside, follow_symlinks=False)  # fails if `aside` exists: nothing is clobbered
        return "linked"
    except FileExistsError:
        raise ConfigError(str(aside), None, "exists already: the hook was not moved") from None
    except OSError:  # no hard links here (or fs.protected_hardlinks): rename instead
        if os.path.lexists(aside):
            raise ConfigError(str(aside), None, "exists already: the hook was not moved") from None
        os.rename(path, aside)
        return "renamed"


def _undo_aside(path: Path, aside: Path, moved: str) -> None:
    with contextlib.suppress(OSError):
        if moved == "linked":
            os.unlink(aside)  # the original is still in place at `path`
        elif not os.path.lexists(path):
            os.rename(aside, path)  # put the user's hook back


def apply(steps: Sequence[Step]) -> None:
    for step in steps:
        if step.action == "mkdir":
            make_dir(step.path)
        elif step.action == "remove":
            try:
                step.path.unlink()
            except OSError as exc:
                raise ConfigError(str(step.path), None, f"cannot remove: {exc.strerror or exc}") from None
        elif step.action in ("write", "replace", "chain"):
            write_executable(step.path, step.text, step.aside)
