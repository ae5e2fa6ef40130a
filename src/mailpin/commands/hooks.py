"""`mailpin hooks install|status`: put the shims in front of the real tools, and say what runs."""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mailpin import hooks
from mailpin.env import Env
from mailpin.errors import ConfigError, ExitStatus
from mailpin.output import JSON_VERSION
from mailpin.run.handover import find_tool, is_shim


@dataclass(frozen=True)
class ToolShim:
    tool: str
    path: Path
    action: str  # hooks.Step.action
    runs: str | None  # what the bare name runs on PATH once the shim is in place
    real: str | None  # the real tool the shim hands over to
    problem: str | None  # why there is none

    @property
    def first(self) -> bool:
        return self.runs == str(self.path)


@dataclass(frozen=True)
class InstallResult:
    bin_dir: Path
    command: tuple[str, ...]  # what the shims run as mailpin
    steps: tuple[hooks.Step, ...]
    tools: tuple[ToolShim, ...]
    warnings: tuple[str, ...] = ()
    hook_dir: Path | None = None  # notmuch's, with --notmuch
    advice: str = ""  # the notmuch hook is managed read-only elsewhere: what to put there instead
    dry_run: bool = False
    # A read-only (home-manager) hook is not an error the user made: exit 0, with the advice.
    exit_status: ExitStatus = ExitStatus.OK


@dataclass(frozen=True)
class ToolStatus:
    tool: str
    runs: str | None  # the file the bare name runs, first on PATH
    shim: bool
    command: tuple[str, ...] | None  # the mailpin command that shim runs
    real: str | None
    problems: tuple[str, ...] = ()


@dataclass(frozen=True)
class HookStatus:
    directory: Path | None
    state: str  # "mailpin", "other", "absent", "unknown" (notmuch missing or unconfigured)
    chained: Path | None = None  # the user's hook that runs after mailpin's check
    read_only: bool = False
    problems: tuple[str, ...] = ()
    note: str = ""  # why the state is unknown


@dataclass(frozen=True)
class StatusResult:
    tools: tuple[ToolStatus, ...]
    notmuch: HookStatus
    exit_status: ExitStatus = ExitStatus.OK  # a report: what is wrong is in `problems`

    @property
    def problems(self) -> tuple[str, ...]:
        return (*(problem for tool in self.tools for problem in tool.problems), *self.notmuch.problems)


def install(env: Env, bin_dir: str | None, *, notmuch: bool, dry_run: bool, command: Sequence[str]) -> InstallResult:
    directory = _bin_dir(env, bin_dir)
    if os.path.lexists(directory) and not directory.is_dir():
        raise ConfigError(str(directory), None, "not a directory: choose another with --bin DIR")
    steps = [] if directory.is_dir() else [hooks.Step("mkdir", directory)]
    shims = [hooks.plan_file(directory / tool, hooks.render(tool, command)) for tool in hooks.TOOLS]
    refused = [str(step.path) for step in shims if step.action == "refuse"]
    if refused:
        problem = "not a mailpin shim, so nothing was installed: move it away, or choose another --bin DIR"
        raise ConfigError(", ".join(refused), None, problem)
    steps += shims
    hook_dir, advice = None, ""
    if notmuch:
        hook_dir = hooks.notmuch_hook_dir(env.environ, env.home)
        plan = hooks.plan_pre_new(hook_dir, hooks.render("notmuch-pre-new", command))
        for step in plan.steps:
            if step.action == "refuse":
                problem = f"not mailpin's hook, and {step.aside} exists too: merge the two into one, then run again"
                raise ConfigError(str(step.path), None, problem)
        steps += plan.steps
        advice = plan.advice
    if not dry_run:
        hooks.apply(steps)
        _remember(env, directory)
    real = _RealTools.load(env)
    tools = tuple(
        ToolShim(tool, step.path, step.action, _runs(env, directory, tool), *real.find(tool))
        for tool, step in zip(hooks.TOOLS, shims, strict=True)
    )
    warnings = _warnings(env, directory, tools)
    return InstallResult(directory, tuple(command), tuple(steps), tools, warnings, hook_dir, advice, dry_run)


def _remembered(env: Env) -> Path:
    return env.state_home / "mailpin" / "shims-dir"


def _remember(env: Env, directory: Path) -> None:
    """Where the shims went, so that a later `hooks install --notmuch` (no --bin) updates them there
    instead of writing a second set to ~/.local/bin."""
    from mailpin.state.durable import make_private_dirs, write_atomically

    try:
        make_private_dirs(_remembered(env).parent)
        write_atomically(_remembered(env), os.fsencode(directory) + b"\n")
    except OSError:
        pass  # only a convenience: without it, the default directory is used next time


def _bin_dir(env: Env, given: str | None) -> Path:
    from mailpin.run.handover import is_shim

    if not given:
        # Where an earlier install put the shims, while they are still there; else the default.
        try:
            remembered = os.fsdecode(_remembered(env).read_bytes().rstrip(b"\n"))
        except OSError:
            remembered = ""
        if os.path.isabs(remembered) and is_shim(os.path.join(remembered, hooks.TOOLS[0])):
            return Path(remembered)
        return env.home / ".local" / "bin"
    if given == "~" or given.startswith("~/"):
        given = str(env.home) + given[1:]
    return Path(os.path.abspath(given))


def _runs(env: Env, directory: Path, tool: str) -> str | None:
    """What the bare name will run: the shim, unless the directory is not on PATH or comes later."""
    position = hooks.path_index(str(directory), env.environ)
    other = hooks.first_on_path(tool, env.environ, skip=str(directory))
    if position is not None and (other is None or position < other[0]):
        return str(directory / tool)
    return other[1] if other else None


def _warnings(env: Env, directory: Path, tools: Sequence[ToolShim]) -> tuple[str, ...]:
    fix = f'`export PATH="{directory}:$PATH"`'
    if hooks.path_index(str(directory), env.environ) is None:
        return (
            f"{directory} is not on PATH: add {fix} to your shell profile (and to cron jobs and systemd units), "
            f"or call the shims by their full path (e.g. `set sendmail={directory / 'msmtp'}` in a MUA)",
        )
    return tuple(
        f"{directory} comes after {os.path.dirname(tool.runs)} on PATH, so `{tool.tool}` runs {tool.runs} unchecked: "
        f"put it first ({fix}), or call {tool.path} by its full path"
        for tool in tools
        if tool.runs is not None and not tool.first
    )


@dataclass(frozen=True)
class _RealTools:
    """The real tools as `mailpin run` finds them: named in mailpin's settings, else on PATH."""

    environ: Mapping[str, str]
    configured: Mapping[str, str]
    source: str
    error: ConfigError | None = None

    @classmethod
    def load(cls, env: Env) -> _RealTools:
        from mailpin.state import settings

        try:
            return cls(env.environ, settings.load(env).tools, str(settings.path(env)))
        except ConfigError as exc:
            return cls(env.environ, {}, "", exc)

    def find(self, tool: str) -> tuple[str | None, str | None]:
        """The real `tool`, or None and why not."""
        if self.error is not None:
            return None, str(self.error)
        try:
            return find_tool(tool, self.environ, self.configured.get(tool), self.source), None
        except ConfigError as exc:
            return None, str(exc)


def status(env: Env) -> StatusResult:
    real_tools = _RealTools.load(env)
    tools = []
    for tool in hooks.TOOLS:
        found = hooks.first_on_path(tool, env.environ)
        runs = found[1] if found else None
        shim = runs is not None and is_shim(runs)
        command = hooks.shim_command(runs) if runs and shim else None
        real, problem = real_tools.find(tool)
        problems = [problem] if problem and shim else []  # no shim, no tool: nothing of mailpin's is broken
        if command and os.path.isabs(command[0]) and not hooks.runnable(command[0]):
            problems.append(f"{runs} runs {command[0]}, which is gone: run `mailpin hooks install` again")
        tools.append(ToolStatus(tool, runs, shim, command, real, tuple(problems)))
    return StatusResult(tuple(tools), _hook_status(env))


def _hook_status(env: Env) -> HookStatus:
    try:
        directory = hooks.notmuch_hook_dir(env.environ, env.home)
    except ConfigError as exc:
        return HookStatus(None, "unknown", note=exc.problem)
    hook, aside = directory / hooks.PRE_NEW, directory / hooks.CHAINED
    if not os.path.lexists(hook):
        return HookStatus(directory, "absent")
    read_only = hook.is_symlink() and hooks.read_only(str(hook))
    if not is_shim(str(hook)):
        return HookStatus(directory, "other", read_only=read_only)
    chained = aside if os.path.lexists(aside) else None
    problems = []
    command = hooks.shim_command(str(hook))
    if command and os.path.isabs(command[0]) and not hooks.runnable(command[0]):
        problems.append(f"{hook} runs {command[0]}, which is gone: run `mailpin hooks install --notmuch` again")
    return HookStatus(directory, "mailpin", chained, read_only, tuple(problems))


# --- rendering ----------------------------------------------------------------------------------

_DONE = {"mkdir": "created", "write": "wrote", "replace": "replaced", "remove": "removed", "chain": "wrote"}
_WOULD = {"mkdir": "would create", "write": "would write", "replace": "would replace", "remove": "would remove"}


def install_text(result: InstallResult) -> str:
    verbs = {**_WOULD, "chain": "would write"} if result.dry_run else _DONE
    real = {str(t.path): f"→ {t.real}" if t.real else f"(no real {t.tool} found)" for t in result.tools}
    lines = []
    for step in result.steps:
        if step.action == "chain":
            moved = "would move" if result.dry_run else "moved"
            lines.append(f"{moved} {step.path} to {step.aside} (it runs after mailpin's check)")
        verb = verbs.get(step.action, "up to date:")
        lines.append(f"{verb} {step.path} {real.get(str(step.path), '')}".rstrip())
    lines.append(f"the shims run: {shlex.join(result.command)} run TOOL")
    if all(tool.first for tool in result.tools):
        lines.append(f"{result.bin_dir} comes first on PATH: {', '.join(hooks.TOOLS)} run the shims")
    if result.advice:
        lines.append(result.advice)
    return "\n".join(lines)


def install_json(result: InstallResult) -> dict[str, Any]:
    return {
        "version": JSON_VERSION,
        "dry_run": result.dry_run,
        "bin_dir": str(result.bin_dir),
        "command": list(result.command),
        "steps": [{"action": s.action, "path": str(s.path), "aside": _str(s.aside)} for s in result.steps],
        "tools": [
            {
                "tool": t.tool,
                "shim": str(t.path),
                "runs": t.runs,
                "shim_first": t.first,
                "real": t.real,
                "problem": t.problem,
            }
            for t in result.tools
        ],
        "notmuch_hook_dir": _str(result.hook_dir),
        "advice": result.advice or None,
        "warnings": list(result.warnings),
    }


def status_text(result: StatusResult) -> str:
    lines = []
    for tool in result.tools:
        if tool.runs is None:
            lines.append(f"{tool.tool:<12} not found on PATH")
            continue
        reaches = f"→ {tool.real}" if tool.real else f"→ no real {tool.tool}"
        running = f" running {shlex.join(tool.command)}" if tool.command else ""
        via = f"mailpin shim{running} {reaches}"
        lines.append(f"{tool.tool:<12} {tool.runs}: {via if tool.shim else 'not a shim (not checked)'}")
    hook = result.notmuch
    states = {"mailpin": "mailpin's", "other": "not mailpin's", "absent": "none", "unknown": "unknown"}
    shown = states[hook.state] + (f", then {hook.chained.name}" if hook.chained else "")
    shown += " (read-only)" if hook.read_only else ""
    shown += f" — notmuch {hook.note}" if hook.note else ""
    where = f" {hook.directory / hooks.PRE_NEW}" if hook.directory else ""
    lines.append(f"{'pre-new':<12} notmuch hook{where}: {shown}")
    return "\n".join(lines)


def status_json(result: StatusResult) -> dict[str, Any]:
    hook = result.notmuch
    return {
        "version": JSON_VERSION,
        "tools": [
            {
                "tool": t.tool,
                "runs": t.runs,
                "shim": t.shim,
                "command": list(t.command) if t.command else None,
                "real": t.real,
                "problems": list(t.problems),
            }
            for t in result.tools
        ],
        "notmuch": {
            "hook_dir": _str(hook.directory),
            "pre_new": hook.state,
            "chained": _str(hook.chained),
            "read_only": hook.read_only,
            "problems": list(hook.problems),
            "note": hook.note or None,
        },
    }


def _str(path: Path | None) -> str | None:
    return None if path is None else str(path)
