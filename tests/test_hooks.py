"""The shims and their installer, with real files, the real /bin/sh and the real notmuch.

The shims' mailpin is a stand-in here (a script that records its argv, stdin and exits as told):
what is under test is that the shims hand everything over unchanged and that `notmuch new`
indexes only when the hook's check passes. The end-to-end run with `mailpin check --sync` lives
with the wrapper's tests.
"""

from __future__ import annotations

import io
import json
import os
import shlex
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from mailpin import hooks
from mailpin.cli import main
from mailpin.commands import hooks as hooks_command
from mailpin.env import Env
from mailpin.run.handover import is_shim
from tests.conftest import need

ROOT = Path(__file__).resolve().parent.parent
REPO_HOOKS = ROOT / "hooks"

# What MUAs and scripts hand a sendmail: empty arguments, spaces, quotes, globs, `--`, newlines.
TRICKY: list[str | bytes] = [
    "-oi", "-t", "", "a b", "  lead", "it's", '"dq"', "--", "-f", "x@example.org", "--from=a b@c",
    "$HOME", "*", "`id`", "back\\slash", "new\nline", "é", "-", b"\xff\xfe not utf-8",
]  # fmt: skip
MESSAGE = b"From: a@example.org\r\nTo: b@example.org\r\nSubject: t\r\n\r\nbody \x00\xff\r\n.\r\n"

RECORDER = """\
#!{python}
import os, sys
with open(os.environ["RECORD"], "wb") as out:
    out.write(b"\\0".join(os.fsencode(arg) for arg in sys.argv[1:]))
with open(os.environ["RECORD"] + ".stdin", "wb") as out:
    out.write(sys.stdin.buffer.read())
sys.exit(int(os.environ.get("RECORD_STATUS", "0")))
"""


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    env = Env.from_os()
    env.stdout, env.stderr, env.stdin = out, err, io.StringIO()
    code = main(list(argv), env)
    return code, out.getvalue(), err.getvalue()


def executable(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    path.chmod(0o755)
    return path


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def run(argv: list[str | bytes] | list[str], stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(argv, input=stdin, capture_output=True, timeout=60, check=False)


@dataclass
class Recorder:
    script: Path
    record: Path

    def argv(self) -> list[bytes]:
        return self.record.read_bytes().split(b"\0")

    def stdin(self) -> bytes:
        return Path(f"{self.record}.stdin").read_bytes()


@pytest.fixture
def recorder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Recorder:
    """A stand-in for mailpin that records its arguments and stdin (exit status: $RECORD_STATUS)."""
    record = tmp_path / "record"
    monkeypatch.setenv("RECORD", str(record))
    monkeypatch.delenv("RECORD_STATUS", raising=False)
    return Recorder(executable(tmp_path / "stand-in" / "mailpin", RECORDER.format(python=sys.executable)), record)


def encoded(args: list[str | bytes]) -> list[bytes]:
    return [os.fsencode(arg) for arg in args]


def install(bin_dir: Path, command: list[str], notmuch: bool = False) -> hooks_command.InstallResult:
    return hooks_command.install(Env.from_os(), str(bin_dir), notmuch=notmuch, dry_run=False, command=command)


# --- the templates ------------------------------------------------------------------------------


def test_repo_hooks_are_exactly_what_the_package_renders() -> None:
    assert sorted(path.name for path in REPO_HOOKS.iterdir()) == sorted([*hooks.TEMPLATES, "README.md"])
    for name in hooks.TEMPLATES:
        path = REPO_HOOKS / name
        assert path.read_text(encoding="utf-8") == hooks.render(name), f"hooks/{name} differs from hooks.py"
        assert path.read_bytes().startswith(b"#!/bin/sh\n")
        assert mode(path) & 0o111 == 0o111, f"hooks/{name} is not executable"
        assert is_shim(str(path)), f"hooks/{name}: no mailpin-shim marker where `mailpin run` looks"
        assert run(["/bin/sh", "-n", str(path)]).returncode == 0


@pytest.mark.parametrize("tool", hooks.TOOLS)
def test_repo_shim_hands_over_every_argument_and_stdin_unchanged(
    tool: str, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAILPIN", str(recorder.script))
    monkeypatch.setenv("RECORD_STATUS", "69")
    done = run([REPO_HOOKS / tool, *TRICKY], MESSAGE)  # type: ignore[list-item]
    assert done.returncode == 69  # mailpin's status is the shim's: it exec'd
    assert recorder.argv() == [b"run", tool.encode(), *encoded(TRICKY)]
    assert recorder.stdin() == MESSAGE  # the shim read none of it


def test_repo_shim_with_no_arguments_passes_none(recorder: Recorder, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILPIN", str(recorder.script))
    assert run([str(REPO_HOOKS / "mbsync")]).returncode == 0
    assert recorder.argv() == [b"run", b"mbsync"]


def test_repo_shim_without_mailpin_set_runs_the_one_on_path(
    recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MAILPIN", raising=False)
    monkeypatch.setenv("PATH", f"{recorder.script.parent}{os.pathsep}{os.environ['PATH']}")
    assert run([str(REPO_HOOKS / "msmtp"), "-a", "work"]).returncode == 0
    assert recorder.argv() == [b"run", b"msmtp", b"-a", b"work"]


@pytest.mark.parametrize("status", [0, 69, 75])
def test_repo_pre_new_hook_runs_the_sync_check_and_returns_its_status(
    status: int, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAILPIN", str(recorder.script))
    monkeypatch.setenv("RECORD_STATUS", str(status))
    assert run([str(REPO_HOOKS / "notmuch-pre-new")]).returncode == status
    assert recorder.argv() == [b"check", b"--sync", b"--quiet"]


# --- installing the tool shims --------------------------------------------------------------------


def test_install_writes_0755_shims_that_run_this_mailpin_by_absolute_path(tmp_path: Path) -> None:
    bin_dir = tmp_path / "fresh" / "bin"
    code, out, _ = cli("hooks", "install", "--bin", str(bin_dir))
    assert code == 0
    assert mode(bin_dir) == 0o755
    # Under pytest argv[0] is not the mailpin script: the entry script beside this Python is used.
    command = [str(Path(sys.executable).parent / "mailpin")]
    for tool in hooks.TOOLS:
        shim = bin_dir / tool
        assert mode(shim) == 0o755
        assert is_shim(str(shim))
        assert shim.read_text(encoding="utf-8").endswith(f'exec {shlex.join(command)} run {tool} "$@"\n')
        assert "${MAILPIN" not in shim.read_text(encoding="utf-8")
        assert f"wrote {shim}" in out
    assert not list(bin_dir.glob(".*"))  # no temporary files left behind
    # The command works with the PATH cron gives (none of ours on it).
    done = subprocess.run(
        [*command, "--version"], env={"PATH": "/nonexistent"}, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0
    assert done.stdout.startswith("mailpin ")


def test_installed_shim_quotes_its_command_and_hands_over_every_argument(tmp_path: Path, recorder: Recorder) -> None:
    odd = executable(tmp_path / "it's a dir" / "mail pin", recorder.script.read_text(encoding="utf-8"))
    install(tmp_path / "bin", [str(odd), "--opt=a b"])
    done = run([tmp_path / "bin" / "msmtp", *TRICKY], MESSAGE)  # type: ignore[list-item]
    assert done.returncode == 0, done.stderr
    assert recorder.argv() == [b"--opt=a b", b"run", b"msmtp", *encoded(TRICKY)]
    assert recorder.stdin() == MESSAGE


SAFE = "-P" if sys.version_info >= (3, 11) else "-I"  # `python -m` must not import from the current directory


def test_this_mailpin_is_the_entry_script_when_that_runs(tmp_path: Path) -> None:
    script = executable(tmp_path / "bin" / "mailpin", "#!/usr/bin/python3\nfrom mailpin.cli import main\n")
    assert hooks.this_mailpin(str(script), "/usr/bin/python3") == [str(script)]
    # `python -m mailpin`, a shim that happens to be called mailpin, a missing script: the interpreter
    main_py = str(ROOT / "src" / "mailpin" / "__main__.py")
    assert hooks.this_mailpin(main_py, "/v/bin/python") == ["/v/bin/python", SAFE, "-m", "mailpin"]
    shim = executable(tmp_path / "shims" / "mailpin", hooks.render("msmtp"))
    assert hooks.this_mailpin(str(shim), "/v/bin/python") == ["/v/bin/python", SAFE, "-m", "mailpin"]
    assert hooks.this_mailpin("mailpin", "/v/bin/python") == ["/v/bin/python", SAFE, "-m", "mailpin"]


@pytest.mark.parametrize("kind", ["script", "link to the real tool", "directory"])
def test_install_never_overwrites_a_file_that_is_not_a_shim(tmp_path: Path, kind: str) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    theirs = bin_dir / "mbsync"
    if kind == "script":
        executable(theirs, '#!/bin/sh\nexec /usr/bin/mbsync -c ~/.mbsyncrc-work "$@"\n')
    elif kind == "directory":
        theirs.mkdir()
    else:
        theirs.symlink_to(executable(tmp_path / "usr" / "mbsync", "#!/bin/sh\n"))
    before = theirs.read_bytes() if theirs.is_file() else None
    code, out, err = cli("hooks", "install", "--bin", str(bin_dir))
    assert code == 78
    assert err.count("\n") == 1
    assert str(theirs) in err
    assert out == ""
    assert sorted(path.name for path in bin_dir.iterdir()) == ["mbsync"]  # none written, not even msmtp
    assert (theirs.read_bytes() if theirs.is_file() else None) == before


def test_reinstall_replaces_an_older_shim_and_a_third_run_changes_nothing(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    old = executable(bin_dir / "msmtp", hooks.render("msmtp", ["/gone/venv/bin/python", "-m", "mailpin"]))
    old.chmod(0o700)
    code, out, _ = cli("hooks", "install", "--bin", str(bin_dir))
    assert code == 0
    assert f"replaced {old}" in out
    assert "/gone/venv" not in old.read_text(encoding="utf-8")
    assert mode(old) == 0o755
    inodes = {tool: (bin_dir / tool).stat().st_ino for tool in hooks.TOOLS}
    code, out, _ = cli("hooks", "install", "--bin", str(bin_dir))
    assert code == 0
    assert out.count("up to date:") == len(hooks.TOOLS)
    assert {tool: (bin_dir / tool).stat().st_ino for tool in hooks.TOOLS} == inodes  # not even rewritten


def test_dry_run_writes_nothing(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    code, out, _ = cli("hooks", "install", "--bin", str(bin_dir), "--dry-run")
    assert code == 0
    assert f"would create {bin_dir}" in out
    assert f"would write {bin_dir / 'msmtp'}" in out
    assert not bin_dir.exists()


@pytest.fixture
def real_tools(tmp_path: Path) -> Path:
    """Stand-ins for the real tools, in their own directory."""
    for tool in hooks.TOOLS:
        executable(tmp_path / "usr-bin" / tool, f"#!/bin/sh\necho real {tool}\n")
    return tmp_path / "usr-bin"


def test_path_order_shims_first_says_so(tmp_path: Path, real_tools: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{real_tools}")
    code, out, err = cli("hooks", "install", "--bin", str(bin_dir))
    assert code == 0
    assert err == ""
    assert f"{bin_dir} comes first on PATH" in out
    assert f"{bin_dir / 'msmtp'} → {real_tools / 'msmtp'}" in out  # the real tool the shim reaches


def test_path_order_shims_behind_the_real_tools_warns_with_the_fix(
    tmp_path: Path, real_tools: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    monkeypatch.setenv("PATH", f"{real_tools}{os.pathsep}{bin_dir}")
    code, out, err = cli("hooks", "install", "--bin", str(bin_dir))
    assert code == 0
    warnings = err.splitlines()
    assert len(warnings) == len(hooks.TOOLS)
    for tool, warning in zip(hooks.TOOLS, warnings, strict=True):
        assert warning.startswith(f"mailpin: warning: {bin_dir} comes after {real_tools} on PATH")
        assert f"`{tool}` runs {real_tools / tool} unchecked" in warning
        assert f'export PATH="{bin_dir}:$PATH"' in warning
    assert "comes first" not in out


def test_path_without_the_shims_dir_warns_once(
    tmp_path: Path, real_tools: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(real_tools))
    code, _, err = cli("hooks", "install")  # the default: ~/.local/bin
    bin_dir = Path(os.environ["HOME"]) / ".local" / "bin"
    assert code == 0
    assert (bin_dir / "msmtp").is_file()
    assert err.count("\n") == 1
    assert f"{bin_dir} is not on PATH" in err
    assert f'export PATH="{bin_dir}:$PATH"' in err
    assert f"set sendmail={bin_dir / 'msmtp'}" in err


def test_status_says_what_each_name_runs(
    tmp_path: Path, real_tools: Path, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    install(bin_dir, [str(recorder.script)])
    (bin_dir / "offlineimap").unlink()
    executable(bin_dir / "mbsync", hooks.render("mbsync", ["/gone/venv/bin/python", "-m", "mailpin"]))
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{real_tools}")
    code, out, err = cli("hooks", "status", "--json")
    assert code == 0
    tools = {item["tool"]: item for item in json.loads(out)["tools"]}
    assert tools["msmtp"] == {
        "tool": "msmtp",
        "runs": str(bin_dir / "msmtp"),
        "shim": True,
        "command": [str(recorder.script)],
        "real": str(real_tools / "msmtp"),
        "problems": [],
    }
    assert tools["offlineimap"]["runs"] == str(real_tools / "offlineimap")
    assert tools["offlineimap"]["shim"] is False
    assert "/gone/venv/bin/python, which is gone" in tools["mbsync"]["problems"][0]
    assert err == f"mailpin: {tools['mbsync']['problems'][0]}\n"
    code, out, _ = cli("hooks", "status")
    assert code == 0
    assert f"msmtp        {bin_dir / 'msmtp'}: mailpin shim running {recorder.script} → {real_tools / 'msmtp'}" in out
    assert f"offlineimap  {real_tools / 'offlineimap'}: not a shim (not checked)" in out


# --- notmuch --------------------------------------------------------------------------------------

USER_HOOK = '#!/bin/sh\necho "user pre-new $#" >> "$USER_LOG"\n'
HOOK_STUB = '#!/bin/sh\necho "$*" >> "$STUB_LOG"\nexit "${STUB_STATUS:-0}"\n'


def notmuch(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["notmuch", *args], capture_output=True, text=True, timeout=60, check=False)


@dataclass
class Notmuch:
    mail: Path
    config: Path
    stub: Path  # the hooks' "mailpin": logs its arguments to $STUB_LOG, exits $STUB_STATUS
    stub_log: Path
    user_log: Path

    @property
    def hooks(self) -> Path:
        return self.mail / ".notmuch" / "hooks"

    def deliver(self) -> None:
        (self.mail / "new" / "1700000000.1.test").write_bytes(b"From: a@example.org\nSubject: hi\n\nhello\n")

    def count(self) -> int:
        done = notmuch("count", "*")
        assert done.returncode == 0, done.stderr
        return int(done.stdout)

    def lines(self, log: Path) -> list[str]:
        return log.read_text(encoding="utf-8").splitlines() if log.exists() else []


def configure_notmuch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, index: bool) -> Notmuch:
    """A configured notmuch (through NOTMUCH_CONFIG, in the temporary home); `index`: with a database."""
    need("notmuch")
    for variable in ("NOTMUCH_PROFILE", "NOTMUCH_DATABASE", "MAILDIR"):
        monkeypatch.delenv(variable, raising=False)
    mail = tmp_path / "mail"
    for sub in ("cur", "new", "tmp"):
        (mail / sub).mkdir(parents=True)
    config = Path(os.environ["HOME"]) / ".notmuch-config"
    config.touch()
    monkeypatch.setenv("NOTMUCH_CONFIG", str(config))
    assert notmuch("config", "set", "database.path", str(mail)).returncode == 0
    if index:
        assert notmuch("new").returncode == 0  # creates the database
    stub = executable(tmp_path / "stub" / "mailpin", HOOK_STUB)
    monkeypatch.setenv("STUB_LOG", str(tmp_path / "stub.log"))
    monkeypatch.setenv("USER_LOG", str(tmp_path / "user.log"))
    return Notmuch(mail, config, stub, tmp_path / "stub.log", tmp_path / "user.log")


@pytest.fixture
def nm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Notmuch:
    return configure_notmuch(tmp_path, monkeypatch, index=True)


@pytest.mark.parametrize("verdict", [0, 69])
def test_pre_new_hook_chains_the_users_hook_and_gates_indexing(
    nm: Notmuch, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, verdict: int
) -> None:
    users = executable(nm.hooks / "pre-new", USER_HOOK).stat().st_ino
    result = install(tmp_path / "bin", [str(nm.stub)], notmuch=True)
    assert result.hook_dir == nm.hooks
    assert is_shim(str(nm.hooks / "pre-new"))
    assert mode(nm.hooks / "pre-new") == 0o755
    assert (nm.hooks / "pre-new.before-mailpin").read_text(encoding="utf-8") == USER_HOOK
    assert mode(nm.hooks / "pre-new.before-mailpin") == 0o755
    assert (nm.hooks / "pre-new.before-mailpin").stat().st_ino == users  # the user's file itself, moved

    nm.deliver()
    monkeypatch.setenv("STUB_STATUS", str(verdict))
    done = notmuch("new")
    assert nm.lines(nm.stub_log) == ["check --sync --quiet"]
    if verdict == 0:
        assert done.returncode == 0, done.stderr
        assert nm.count() == 1
        assert nm.lines(nm.user_log) == ["user pre-new 0"]  # notmuch passes hooks no arguments
    else:
        assert done.returncode != 0
        assert "status 69" in done.stderr
        assert nm.count() == 0  # nothing indexed
        assert nm.lines(nm.user_log) == []  # nor synced


def test_notmuch_after_an_install_elsewhere_updates_the_shims_there(nm: Notmuch, tmp_path: Path) -> None:
    """`hooks install --bin ~/bin`, then `hooks install --notmuch`: the hook is added and the shims stay
    where they went (updated there), with no second set in ~/.local/bin and no warning about it."""
    home = Path(os.environ["HOME"])
    chosen = home / "bin"
    code, _, err = cli("hooks", "install", "--bin", str(chosen))
    assert code == 0, err
    code, out, err = cli("hooks", "install", "--notmuch")
    assert code == 0, err
    assert is_shim(str(nm.hooks / "pre-new")) and is_shim(str(chosen / "msmtp"))
    assert not (home / ".local" / "bin").exists(), out
    assert ".local/bin" not in out + err, out + err
    # Once those shims are gone, the default place again.
    for tool in hooks.TOOLS:
        (chosen / tool).unlink()
    assert cli("hooks", "install")[0] == 0 and is_shim(str(home / ".local" / "bin" / "msmtp"))


def test_installing_twice_chains_the_users_hook_once(nm: Notmuch, tmp_path: Path) -> None:
    executable(nm.hooks / "pre-new", USER_HOOK)
    install(tmp_path / "bin", [str(nm.stub)], notmuch=True)
    second = install(tmp_path / "bin", [str(nm.stub)], notmuch=True)
    assert [step.action for step in second.steps if step.path.parent == nm.hooks] == ["unchanged"]
    code, out, _ = cli("hooks", "install", "--bin", str(tmp_path / "bin"), "--notmuch")  # another command: replaced
    assert code == 0
    assert f"replaced {nm.hooks / 'pre-new'}" in out
    assert sorted(path.name for path in nm.hooks.iterdir()) == ["pre-new", "pre-new.before-mailpin"]
    assert (nm.hooks / "pre-new.before-mailpin").read_text(encoding="utf-8") == USER_HOOK
    install(tmp_path / "bin", [str(nm.stub)], notmuch=True)
    assert notmuch("new").returncode == 0
    assert nm.lines(nm.user_log) == ["user pre-new 0"]
    assert nm.lines(nm.stub_log) == ["check --sync --quiet"]


def test_a_copy_of_mailpins_hook_is_never_chained_to_itself(nm: Notmuch, tmp_path: Path) -> None:
    executable(nm.hooks / "pre-new", USER_HOOK)
    executable(nm.hooks / "pre-new.before-mailpin", hooks.render("notmuch-pre-new", [str(nm.stub)]))
    install(tmp_path / "bin", [str(nm.stub)], notmuch=True)
    assert (nm.hooks / "pre-new.before-mailpin").read_text(encoding="utf-8") == USER_HOOK
    assert notmuch("new").returncode == 0
    assert nm.lines(nm.stub_log) == ["check --sync --quiet"]
    assert nm.lines(nm.user_log) == ["user pre-new 0"]


def test_hook_dir_from_notmuch_config(nm: Notmuch, tmp_path: Path) -> None:
    configured = tmp_path / "my hooks"
    assert notmuch("config", "set", "database.hook_dir", str(configured)).returncode == 0
    result = install(tmp_path / "bin", [str(nm.stub)], notmuch=True)
    assert result.hook_dir == configured
    assert is_shim(str(configured / "pre-new"))
    assert not nm.hooks.exists()
    assert notmuch("new").returncode == 0
    assert nm.lines(nm.stub_log) == ["check --sync --quiet"]  # notmuch ran it from there


@pytest.mark.parametrize("profile", [None, "work"])
def test_hook_dir_in_the_xdg_profile_when_notmuch_uses_it(
    nm: Notmuch, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, profile: str | None
) -> None:
    if profile:
        monkeypatch.setenv("NOTMUCH_PROFILE", profile)
    xdg_hooks = Path(os.environ["XDG_CONFIG_HOME"]) / "notmuch" / (profile or "default") / "hooks"
    xdg_hooks.mkdir(parents=True)
    result = install(tmp_path / "bin", [str(nm.stub)], notmuch=True)
    assert result.hook_dir == xdg_hooks
    assert is_shim(str(xdg_hooks / "pre-new"))
    assert notmuch("new").returncode == 0
    assert nm.lines(nm.stub_log) == ["check --sync --quiet"]


def test_a_config_in_the_xdg_profile_alone_keeps_the_hooks_beside_the_database(
    nm: Notmuch, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # home-manager's layout: $XDG_CONFIG_HOME/notmuch/default/config. notmuch takes hooks from
    # $XDG_CONFIG_HOME/notmuch/default/hooks only if that directory exists: creating it would
    # silently retire the user's other hooks beside the database.
    profile = Path(os.environ["XDG_CONFIG_HOME"]) / "notmuch" / "default"
    profile.mkdir(parents=True)
    (profile / "config").write_bytes(nm.config.read_bytes())
    monkeypatch.delenv("NOTMUCH_CONFIG")
    executable(nm.hooks / "post-new", '#!/bin/sh\necho post-new >> "$USER_LOG"\n')
    result = install(tmp_path / "bin", [str(nm.stub)], notmuch=True)
    assert result.hook_dir == nm.hooks
    assert not (profile / "hooks").exists()
    assert notmuch("new").returncode == 0
    assert nm.lines(nm.stub_log) == ["check --sync --quiet"]
    assert nm.lines(nm.user_log) == ["post-new"]


@pytest.mark.parametrize("xdg_hooks", [False, True])
def test_before_the_first_notmuch_new_the_hook_goes_where_notmuch_will_look(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, xdg_hooks: bool
) -> None:
    nm = configure_notmuch(tmp_path, monkeypatch, index=False)  # no database: notmuch cannot say where
    profile = Path(os.environ["XDG_CONFIG_HOME"]) / "notmuch" / "default"
    profile.mkdir(parents=True)
    (profile / "config").write_bytes(nm.config.read_bytes())
    monkeypatch.delenv("NOTMUCH_CONFIG")
    if xdg_hooks:
        (profile / "hooks").mkdir()
    result = install(tmp_path / "bin", [str(nm.stub)], notmuch=True)
    assert result.hook_dir == (profile / "hooks" if xdg_hooks else nm.hooks)
    assert not (profile / "hooks").exists() or xdg_hooks
    nm.deliver()
    done = notmuch("new")  # creates the database, runs the hook, indexes
    assert done.returncode == 0, done.stderr
    assert nm.lines(nm.stub_log) == ["check --sync --quiet"]
    assert nm.count() == 1


def test_read_only_linked_hook_is_left_alone_with_the_snippet_to_use(nm: Notmuch, tmp_path: Path) -> None:
    store = tmp_path / "store"
    theirs = executable(store / "hm-pre-new", USER_HOOK)
    theirs.chmod(0o555)
    store.chmod(0o555)
    try:
        nm.hooks.mkdir()
        (nm.hooks / "pre-new").symlink_to(theirs)
        code, out, _ = cli("hooks", "install", "--bin", str(tmp_path / "bin"), "--notmuch")
        assert code == 0
        snippet = 'programs.notmuch.hooks.preNew = "mailpin check --sync --quiet && <your current pre-new commands>";'
        assert snippet in out
        assert str(theirs) in out
        assert os.readlink(nm.hooks / "pre-new") == str(theirs)
        assert sorted(path.name for path in nm.hooks.iterdir()) == ["pre-new"]
        assert (tmp_path / "bin" / "msmtp").is_file()  # the shims are installed all the same
        code, out, _ = cli("hooks", "status")
        assert f"notmuch hook {nm.hooks / 'pre-new'}: not mailpin's (read-only)" in out
    finally:
        store.chmod(0o755)


def test_a_hook_and_a_taken_before_mailpin_name_stop_the_install(nm: Notmuch, tmp_path: Path) -> None:
    executable(nm.hooks / "pre-new", USER_HOOK)
    executable(nm.hooks / "pre-new.before-mailpin", "#!/bin/sh\necho older\n")
    code, _, err = cli("hooks", "install", "--bin", str(tmp_path / "bin"), "--notmuch")
    assert code == 78
    assert err.count("\n") == 1
    assert str(nm.hooks / "pre-new") in err
    assert (nm.hooks / "pre-new").read_text(encoding="utf-8") == USER_HOOK
    assert not (tmp_path / "bin").exists()  # nothing at all was written


def test_dry_run_moves_nothing(nm: Notmuch, tmp_path: Path) -> None:
    executable(nm.hooks / "pre-new", USER_HOOK)
    code, out, _ = cli("hooks", "install", "--bin", str(tmp_path / "bin"), "--notmuch", "--dry-run")
    assert code == 0
    assert f"would move {nm.hooks / 'pre-new'} to {nm.hooks / 'pre-new.before-mailpin'}" in out
    assert sorted(path.name for path in nm.hooks.iterdir()) == ["pre-new"]
    assert (nm.hooks / "pre-new").read_text(encoding="utf-8") == USER_HOOK


def test_status_reports_the_installed_and_chained_hook(nm: Notmuch, tmp_path: Path) -> None:
    code, out, _ = cli("hooks", "status", "--json")
    assert json.loads(out)["notmuch"]["pre_new"] == "absent"
    executable(nm.hooks / "pre-new", USER_HOOK)
    install(tmp_path / "bin", [str(nm.stub)], notmuch=True)
    code, out, _ = cli("hooks", "status", "--json")
    assert code == 0
    assert json.loads(out)["notmuch"] == {
        "hook_dir": str(nm.hooks),
        "pre_new": "mailpin",
        "chained": str(nm.hooks / "pre-new.before-mailpin"),
        "read_only": False,
        "problems": [],
        "note": None,
    }


def test_unconfigured_notmuch_is_a_config_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    need("notmuch")
    monkeypatch.setenv("NOTMUCH_CONFIG", str(tmp_path / "no-such-config"))
    code, _, err = cli("hooks", "install", "--bin", str(tmp_path / "bin"), "--notmuch")
    assert code == 78
    assert err == "mailpin: notmuch: not configured (no database.path): run `notmuch setup`, then install the hook\n"
    assert not (tmp_path / "bin").exists()


def test_missing_notmuch_is_a_config_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    code, _, err = cli("hooks", "install", "--bin", str(tmp_path / "bin"), "--notmuch")
    assert code == 78
    assert err == "mailpin: notmuch: not found on PATH (install notmuch to use its pre-new hook)\n"
    code, out, err = cli("hooks", "status")
    assert code == 0
    assert "pre-new      notmuch hook: unknown — notmuch not found on PATH" in out
