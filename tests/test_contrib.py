"""contrib/: every snippet is exercised here, or its manual check is written in contrib/README.md.

The MUA and scheduler snippets are run the way their program runs them (ecosystem.md §1, §2): the command
line split as that program splits it (NeoMutt on spaces, aerc and alot like a shell line without a shell,
git send-email and goimapnotify through `sh -c`, Emacs as an argument list, msmtpq with MSMTP), pointed at
a recording stand-in for the shim that `mailpin hooks install` writes to ~/.local/bin. Where the program
itself is installed (git send-email, msmtpq, bash, zsh, fish, systemd-analyze, groff) the real one runs.
The completions and the man page must equal what the generators write from the argument parser now.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import ModuleType

import pytest

from mailpin.cli import build_parser
from tests.conftest import ROOT, need

CONTRIB = ROOT / "contrib"
UNITS = CONTRIB / "systemd"
MUA = CONTRIB / "mua"
COMPLETIONS = CONTRIB / "completions"
VENV_BIN = Path(sys.executable).parent
MESSAGE = b"From: Me <me@example.org>\r\nTo: You <you@example.org>\r\nSubject: hi\r\n\r\nbody\r\n"

# Stands in for a shim (or mailpin, notify-send): records its argv (NUL-separated) and stdin, then exits
# with the status in $RECORD/NAME.status (default 0).
RECORDER = """#!/bin/sh
case $1 in --version) exit 0 ;; esac  # as msmtp and the shim: no stdin read (msmtpq asks this first)
name=${0##*/}
printf '%s\\0' "$0" "$@" > "$RECORD/$name.argv"
cat > "$RECORD/$name.stdin"
[ -f "$RECORD/$name.status" ] && exit "$(cat "$RECORD/$name.status")"
exit 0
"""


class Recorder:
    def __init__(self, home: Path, tmp: Path) -> None:
        self.bin = home / ".local" / "bin"  # where `mailpin hooks install` puts the shims by default
        self.calls = tmp / "calls"
        self.bin.mkdir(parents=True)
        self.calls.mkdir()
        for name in ("msmtp", "mbsync", "mailpin", "notify-send"):
            path = self.bin / name
            path.write_text(RECORDER)
            path.chmod(0o755)

    def exit_with(self, name: str, status: int) -> None:
        (self.calls / f"{name}.status").write_text(str(status))

    def env(self, **extra: str) -> dict[str, str]:
        return {**os.environ, "RECORD": str(self.calls), **extra}

    def argv(self, name: str) -> list[str] | None:
        path = self.calls / f"{name}.argv"
        return path.read_bytes().decode().split("\0")[:-1] if path.exists() else None

    def stdin(self, name: str) -> bytes:
        return (self.calls / f"{name}.stdin").read_bytes()


@pytest.fixture
def rec(isolated_env: Path, tmp_path: Path) -> Recorder:
    return Recorder(isolated_env, tmp_path)


@pytest.fixture
def accounts(isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An ~/.msmtprc with two accounts, and this mailpin first on PATH (completions run `mailpin accounts`)."""
    rc = isolated_env / ".msmtprc"
    rc.write_text(
        "account work\nhost smtp.example.org\nport 465\ntls on\ntls_starttls off\nfrom me@example.org\n\n"
        "account personal\nhost mail.example.net\nport 587\ntls on\nfrom me@example.net\n"
    )
    rc.chmod(0o600)
    monkeypatch.setenv("PATH", f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', os.defpath)}")
    return rc


def _optional(program: str, manual: str) -> str:
    """A tool the test suite does not install: skip (naming the manual check) where it is missing."""
    found = shutil.which(program)
    if found is None:
        pytest.skip(f"{program} is not installed; manual check: {manual}")
    return found


def _load(script: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(script.removesuffix(".py"), CONTRIB / script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ------------------------------------------------------------------------------------ generated files


@pytest.mark.parametrize("script", ["gen_completions.py", "gen_man.py"])
def test_generated_files_equal_what_the_generator_writes_now(script: str) -> None:
    generator = _load(script)
    rendered = generator.render()
    assert rendered, script
    for path, text in rendered.items():
        assert path.read_text() == text, f"{path.relative_to(ROOT)} is stale: run python contrib/{script}"
    assert generator.main(["--check"]) == 0


def test_generators_cover_every_command_of_the_parser() -> None:
    argtree = _load("argtree.py")
    commands = [command.name for command in argtree.tree().walk()[1:]]
    assert "mailpin run" in commands and "mailpin hooks install" in commands and "mailpin queue flush" in commands
    bash = (COMPLETIONS / "mailpin.bash").read_text()
    fish = (COMPLETIONS / "mailpin.fish").read_text()
    man = (CONTRIB / "mailpin.1").read_text()
    for name in commands:
        path = name.removeprefix("mailpin ")
        assert f"'{path}')" in bash, name
        assert f"# {name}\n" in fish, name
        assert f'.SS "{name}"' in man.replace("\\-", "-"), name


def test_contrib_python_is_ruff_clean() -> None:
    ruff = str(VENV_BIN / "ruff") if (VENV_BIN / "ruff").exists() else need("ruff")
    scripts = sorted(str(path) for path in CONTRIB.glob("*.py"))
    for command in ([ruff, "check", *scripts], [ruff, "format", "--check", *scripts]):
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stdout + done.stderr


def test_readme_names_every_contrib_file() -> None:
    readme = (CONTRIB / "README.md").read_text()
    for path in sorted(CONTRIB.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.name != "README.md":
            assert path.name in readme, f"contrib/README.md does not mention {path.relative_to(CONTRIB)}"


# ------------------------------------------------------------------------------------ completions


def _bash_complete(lines: list[str]) -> list[list[str]]:
    bash = need("bash")
    script = [f"source {shlex.quote(str(COMPLETIONS / 'mailpin.bash'))}", "complete -p mailpin"]
    for line in lines:
        script += [
            f"COMP_LINE={shlex.quote(line)}; COMP_POINT=${{#COMP_LINE}}",
            '_mailpin; printf "%s\\n" "${COMPREPLY[*]}"',
        ]
    done = subprocess.run(
        [bash, "--norc", "--noprofile", "-c", "\n".join(script)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0 and not done.stderr, done.stderr
    out = done.stdout.splitlines()
    assert out[0] == "complete -F _mailpin mailpin"
    return [line.split() for line in out[1:]]


def test_bash_completion_loads_and_completes_from_the_parser_and_the_accounts(accounts: Path) -> None:
    queries = {
        "mailpin ch": ["check"],
        "mailpin hooks ": ["install", "status"],
        "mailpin init --level ": ["leaf", "key", "ca", "pkix"],
        "mailpin init --level=k": ["key"],  # readline replaces what follows the "="
        "mailpin probe --protocol ": ["imap", "smtp", "pop3"],
        "mailpin check --json ": ["msmtp:work", "work", "msmtp:personal", "personal"],
        "mailpin review msmtp:p": ["personal"],  # readline replaces what follows the ":"
        "mailpin run ": ["msmtp", "mbsync", "offlineimap", "mpop", "fetchmail", "getmail"],
        "mailpin run msmtp --": [],  # the tool's arguments are not mailpin's options
        "mailpin queue flush --f": ["--force"],
    }
    assert dict(zip(queries, _bash_complete(list(queries)), strict=True)) == queries


def test_zsh_completion_autoloads_through_compinit() -> None:
    zsh = need("zsh")
    lint = subprocess.run([zsh, "-n", str(COMPLETIONS / "_mailpin")], capture_output=True, text=True, check=False)
    assert lint.returncode == 0 and not lint.stderr, lint.stderr
    script = (
        f"fpath=({shlex.quote(str(COMPLETIONS))} $fpath); autoload -Uz compinit && compinit -u -D; "
        "print -r -- $_comps[mailpin]; autoload +X _mailpin && print -r -- loaded"
    )
    done = subprocess.run([zsh, "-f", "-c", script], capture_output=True, text=True, check=False)
    assert done.returncode == 0 and not done.stderr, done.stderr
    assert done.stdout.split() == ["_mailpin", "loaded"]


# Drives an interactive zsh in a pseudo-terminal: types each line and TAB, and records every match the
# completion functions add (compadd is wrapped to capture them, as zsh-capture-completion does).
ZPTY = r"""
zmodload zsh/zpty
out=$1; shift
zpty z zsh -f -i
zpty -w z "PS1= RPS1=; fpath=(${(q)COMPLETIONS} \$fpath); autoload -Uz compinit && compinit -u -D"
zpty -w z "__out=${(q)out}; bindkey '^I' complete-word; bindkey '^U' kill-whole-line"
zpty -w z 'compadd() {
  if [[ ${@[1,(i)(-|--)]} == *-(O|A|D)\ * ]]; then builtin compadd "$@"; return; fi
  local -a __hits; builtin compadd -A __hits "$@"
  (( $#__hits )) && print -rl -- "${(@)__hits/#/$IPREFIX}" >> $__out
  builtin compadd "$@"
}'
for line; do
  print -r -- "== $line" >> $out
  integer size=$(wc -c < $out) n=0 last=-1 now steady=0
  zpty -w -n z "$line"$'\t'
  while (( ++n < 250 )); do  # until matches came and nothing more for 60 ms (at most 5 s)
    sleep 0.02; now=$(wc -c < $out)
    if (( now > size && now == last )); then (( ++steady >= 3 )) && break; else steady=0; fi
    last=$now
  done
  zpty -w -n z $'\x15'
done
zpty -d z
"""


def _zsh_matches(tmp_path: Path, lines: list[str]) -> dict[str, list[str]]:
    """Every match each completion function adds after LINE<TAB>, in order (ZPTY above)."""
    zsh = need("zsh")
    harness = tmp_path / "harness.zsh"
    harness.write_text(ZPTY)
    out = tmp_path / "matches"
    out.touch()
    env = {**os.environ, "COMPLETIONS": str(COMPLETIONS)}
    done = subprocess.run(
        [zsh, "-f", str(harness), str(out), *lines], env=env, capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0, done.stderr
    found: dict[str, list[str]] = {line: [] for line in lines}
    for line in out.read_text().splitlines():
        if line.startswith("== "):
            current = found[line[3:]]
        else:
            current.append(line)
    return found


def test_zsh_completion_completes_in_an_interactive_shell(accounts: Path, tmp_path: Path) -> None:
    queries = {
        "mailpin ch": ["check"],
        "mailpin init --level ": ["leaf", "key", "ca", "pkix"],
        "mailpin check msmtp:": ["msmtp:work", "msmtp:personal"],
        "mailpin run ": ["msmtp", "mbsync", "offlineimap", "mpop", "fetchmail", "getmail"],
        "mailpin queue flush --f": ["--force"],
    }
    found = _zsh_matches(tmp_path, list(queries))
    assert {line: sorted(set(matches)) for line, matches in found.items()} == {
        line: sorted(matches) for line, matches in queries.items()
    }


def test_fish_completion_parses_and_completes(accounts: Path) -> None:
    fish = need("fish")
    path = str(COMPLETIONS / "mailpin.fish")
    lint = subprocess.run([fish, "--no-config", "-n", path], capture_output=True, text=True, check=False)
    assert lint.returncode == 0 and not lint.stderr, lint.stderr
    queries = {
        "mailpin ch": ["check"],
        "mailpin hooks ": ["install", "status"],
        "mailpin init --level ": ["ca", "key", "leaf", "pkix"],
        "mailpin probe --mode ": ["implicit", "starttls"],
        "mailpin tunnel msmtp:": ["msmtp:personal", "msmtp:work"],
        "mailpin check work ": ["msmtp:personal", "msmtp:work", "personal", "work"],
        "mailpin tunnel msmtp:work ": [],  # one ACCOUNT only
        "mailpin hooks install --": ["--bin", "--dry-run", "--help", "--json", "--notmuch"],
        "mailpin run ": ["fetchmail", "getmail", "mbsync", "mpop", "msmtp", "offlineimap"],
    }
    found = _fish(fish, {line: f"complete -C '{line}'" for line in queries})
    assert {line: sorted(matches) for line, matches in found.items()} == queries


def _fish(fish: str, commands: dict[str, str]) -> dict[str, list[str]]:
    """The completion script sourced, then each command: label -> its output lines (candidates, no descriptions)."""
    script = [f"source {COMPLETIONS / 'mailpin.fish'}"]
    for label, command in commands.items():
        script += [f"echo '== {label}'", command]
    done = subprocess.run([fish, "--no-config", "-c", "; ".join(script)], capture_output=True, text=True, check=False)
    assert done.returncode == 0 and not done.stderr, done.stderr
    found: dict[str, list[str]] = {}
    for line in done.stdout.splitlines():
        if line.startswith("== "):
            current = found.setdefault(line[3:], [])
        else:
            current.append(line.split("\t")[0])
    return found


# Held messages and an account name two tools share: what `queue flush <TAB>` and `check <TAB>` must offer.
# In a subject: JSON escapes its quotes, so it is no "id" member. Dated 1999: no ID the queue makes at the
# clock a test runs with can start like it (tests hold at any date).
FORGED = "19990101T000000Z-deadbeef"


@pytest.fixture
def held(accounts: Path) -> list[str]:
    """Four messages held in the real queue (as a blocked `mailpin run msmtp` holds them), and an mbsync
    account named `work` beside msmtp's, so that the bare name `work` belongs to two tools."""
    from mailpin.env import Env
    from mailpin.state.queue import Queue

    (accounts.parent / ".mbsyncrc").write_text(
        "IMAPAccount work\nHost imap.example.org\nUser me\nPass x\nSSLType IMAPS\n\n"
        "IMAPStore work-remote\nAccount work\n\nMaildirStore work-local\nPath ~/Mail/work/\n"
        "Inbox ~/Mail/work/INBOX\n\nChannel work\nFar :work-remote:\nNear :work-local:\n"
    )
    queue = Queue.for_env(Env.from_os())
    now = datetime.now(timezone.utc)
    ids = []
    for n in range(4):
        message = MESSAGE.replace(b"Subject: hi", f'Subject: "id": "{FORGED}",\r\n {n}'.encode())
        argv = ("-a", "work", "you@example.org")
        done = queue.hold(message, "msmtp", argv, ["msmtp:work"], ["ca-changed"], "blocked", now + timedelta(seconds=n))
        ids.append(done.held.id)
    listed = subprocess.run(["mailpin", "queue", "list", "--json"], capture_output=True, text=True, check=True)
    assert [entry["id"] for entry in json.loads(listed.stdout)["held"]] == ids and FORGED in listed.stdout
    return ids


def test_completions_take_the_held_id_shape_of_the_queue() -> None:
    from mailpin.state.queue import _ID

    generator = _load("gen_completions.py")
    assert _ID.pattern == generator.HELD_ID


def test_bash_completes_held_ids_and_each_account_name_once(held: list[str]) -> None:
    first = held[0]
    queries = {
        "mailpin queue flush ": held,
        f"mailpin queue flush {first} ": held,
        "mailpin queue flush --force ": held,
        "mailpin queue drop ": held,
        f"mailpin queue drop {first[:-3]}": [first],
        f"mailpin queue drop {FORGED[:8]}": [],  # the ID forged in a subject is not offered
        "mailpin check ": ["msmtp:work", "work", "msmtp:personal", "personal", "mbsync:work"],
        "mailpin tunnel w": ["work"],
    }
    assert dict(zip(queries, _bash_complete(list(queries)), strict=True)) == queries


def test_bash_completes_no_id_when_nothing_is_held(accounts: Path) -> None:
    assert _bash_complete(["mailpin queue flush ", "mailpin queue drop "]) == [[], []]


def test_zsh_completes_held_ids_and_each_account_name_once(held: list[str], tmp_path: Path) -> None:
    found = _zsh_matches(tmp_path, ["mailpin queue flush ", "mailpin queue drop ", "mailpin check "])
    assert sorted(set(found["mailpin queue flush "])) == sorted(found["mailpin queue drop "]) == sorted(held)
    accounts = found["mailpin check "]
    assert sorted(accounts) == sorted(["msmtp:work", "work", "msmtp:personal", "personal", "mbsync:work"])


def test_fish_completes_held_ids_and_each_account_name_once(held: list[str]) -> None:
    year = held[0][:4]  # the year of the clock under test, never a fixed one
    lines = ["mailpin queue flush ", f"mailpin queue flush --force {held[0]} ", f"mailpin queue drop {year}"]
    commands = {"names": "__mailpin_account_names", "ids": "__mailpin_held_ids"}
    found = _fish(need("fish"), commands | {line: f"complete -C '{line}'" for line in lines})
    assert found.pop("names") == ["msmtp:work", "work", "msmtp:personal", "personal", "mbsync:work"]
    assert found.pop("ids") == held
    assert found == dict.fromkeys(lines, sorted(held))


# ------------------------------------------------------------------------------------ man page


def test_man_page_renders_without_warnings() -> None:
    groff = need("groff")
    page = str(CONTRIB / "mailpin.1")
    done = subprocess.run([groff, "-man", "-Tutf8", "-ww", page], capture_output=True, check=False)
    assert done.returncode == 0 and not done.stderr, done.stderr.decode()
    text = re.sub(r".\x08", "", done.stdout.decode())  # drop overstrike bold/underline
    for section in ("NAME", "SYNOPSIS", "DESCRIPTION", "COMMANDS", "EXIT STATUS", "FILES", "SEE ALSO"):
        assert f"\n{section}\n" in text, section
    for words in ("mailpin check [--sync]", "--level leaf|key|ca|pkix", "mailpin run msmtp|mbsync|offlineimap"):
        assert words in " ".join(text.split()), words
    for reference in ("msmtp(1)", "mbsync(1)", "offlineimap(1)", "notmuch-hooks(5)"):
        assert reference in text, reference
    for status in ("69", "75", "78"):
        assert re.search(rf"^\s+{status}\s+\S", text, re.MULTILINE), status


def _man_text() -> str:
    """The man page as groff renders it, overstrikes dropped and lines joined."""
    groff = need("groff")
    done = subprocess.run([groff, "-man", "-Tutf8", str(CONTRIB / "mailpin.1")], capture_output=True, check=True)
    return " ".join(re.sub(r".\x08", "", done.stdout.decode()).split())


def _man_items(section: str) -> dict[str, str]:
    """The .TP items of one section of the page's source: tag (plain text) -> description (plain text)."""
    page = (CONTRIB / "mailpin.1").read_text()
    body = page.split(f".SH {section}\n", 1)[1].split("\n.SH ", 1)[0]

    def plain(roff: str) -> str:
        return re.sub(r"\\f[BIR]|\\&", "", roff).replace("\\-", "-")

    items = {}
    for item in body.split(".TP\n")[1:]:
        tag, _, description = item.partition("\n")
        items[plain(tag)] = plain(description.split("\n.PP")[0]).strip()
    return items


def test_man_page_describes_every_option() -> None:
    page = (CONTRIB / "mailpin.1").read_text()
    undescribed = []
    for item in page.split(".TP\n")[1:]:
        tag, _, description = item.partition("\n")
        if not description.split("\n")[0].strip():
            undescribed.append(tag)
    assert undescribed == []
    text = _man_text()
    assert "--protocol imap|smtp|pop3 the protocol to speak" in text
    assert "--mode implicit|starttls implicit: TLS from the first byte" in text


def test_man_page_exit_status_says_when_mail_is_held() -> None:
    statuses = _man_items("EXIT STATUS")
    assert list(statuses) == ["0", "1", "2", "69", "75", "78", "130"]
    assert "an outgoing message is held" in statuses["69"] and "an outgoing message is held" in statuses["75"]
    assert "held when the config was read but an account in it cannot be verified" in statuses["78"]
    assert "a config that cannot be read holds nothing" in statuses["78"]
    assert statuses["130"].startswith("interrupted (Ctrl-C). mailpin demo also on SIGTERM and SIGHUP")
    assert "mailpin demo" in statuses["1"]


def test_man_page_names_the_cache() -> None:
    environment, files = _man_items("ENVIRONMENT"), _man_items("FILES")
    assert "mailpin/chains/" in environment["XDG_CACHE_HOME"]
    assert "mailpin/versions.json" in environment["XDG_CACHE_HOME"]
    assert "chain memo" in files["$XDG_CACHE_HOME/mailpin/chains/"]
    assert "mbsync --version" in files["$XDG_CACHE_HOME/mailpin/versions.json"]


def test_the_statuses_that_hold_mail_are_the_man_pages(isolated_env: Path) -> None:
    """EXIT STATUS, against the real `mailpin run msmtp`: held on 75 and on an account's 78, not on a
    config msmtp would refuse (69 holds through the same `_hold`: tests/test_run_real.py)."""
    need("msmtp")  # mailpin run finds the real tool before it reads anything
    with socket.socket() as closed:  # a loopback port nobody listens on: unreachable, 75
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    rc = isolated_env / ".msmtprc"
    rc.write_text(
        f"account gone\nhost 127.0.0.1\nport {port}\ntls on\ntls_starttls off\nfrom me@example.org\n\n"
        f"account trust\nhost 127.0.0.1\nport {port}\ntls on\ntls_trust_file {isolated_env}/none.pem\n"
        "from me@example.org\n"
    )
    rc.chmod(0o600)

    def send(account: str) -> tuple[int, str]:
        argv = [sys.executable, "-m", "mailpin", "run", "msmtp", "-a", account, "you@example.org"]
        message = MESSAGE.replace(b"Subject: hi", f"Subject: via {account}".encode())  # not a retry of another
        done = subprocess.run(argv, input=message, capture_output=True, timeout=60, check=False)
        return done.returncode, done.stderr.decode()

    def held() -> int:
        argv = [sys.executable, "-m", "mailpin", "queue", "list", "--json"]
        return len(json.loads(subprocess.run(argv, capture_output=True, check=True).stdout)["held"])

    status, said = send("gone")
    assert (status, held()) == (75, 1) and "could not verify" in said and "message held as" in said
    status, said = send("trust")
    assert (status, held()) == (78, 2) and "cannot verify" in said and "message held as" in said
    rc.write_text(rc.read_text() + "no_such_command x\n")
    status, said = send("gone")
    assert (status, held()) == (78, 2) and "held" not in said


# ------------------------------------------------------------------------------------ systemd units

KNOWN_KEYS = {
    "Unit": {"Description", "Documentation", "OnFailure"},
    "Service": {"Type", "ExecStart", "ExecStartPost", "TimeoutStartSec", "TimeoutStopSec", "SuccessExitStatus"},
    "Timer": {"OnCalendar", "Persistent"},
    "Install": {"WantedBy"},
}


def _unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """A unit file as sections of KEY=VALUE lists; anything systemd would ignore with a warning fails."""
    sections: dict[str, dict[str, list[str]]] = {}
    section = ""
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        where = f"{path.name}:{number}"
        if not line or line.startswith(("#", ";")):
            continue
        assert not line.endswith("\\"), f"{where}: a continued line"
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            assert section in KNOWN_KEYS, f"{where}: section {line}"
            sections.setdefault(section, {})
            continue
        key, sep, value = line.partition("=")
        assert section and sep, f"{where}: not KEY=VALUE in a section"
        assert key in KNOWN_KEYS[section], f"{where}: {key}= in [{section}]"
        sections[section].setdefault(key, []).append(value)
    return sections


def test_systemd_units_are_well_formed_and_point_at_each_other() -> None:
    units = sorted(UNITS.iterdir())
    names = {path.name for path in units}
    assert {"mailpin-mbsync.service", "mailpin-mbsync.timer", "mailpin-notify@.service"} <= names
    assert {"mailpin-offlineimap.service", "mailpin-offlineimap.timer"} <= names
    run_parser = build_parser()
    for path in units:
        unit = _unit(path)
        header = path.read_text().split("\n[")[0]
        assert unit["Unit"]["Description"], path.name
        assert "~/.config/systemd/user/" in header and "systemctl --user" in header, path.name
        if path.suffix == ".timer":
            assert (UNITS / path.with_suffix(".service").name).exists(), path.name
            assert re.fullmatch(r"\*:0/\d+", unit["Timer"]["OnCalendar"][0]), path.name
            assert unit["Timer"]["Persistent"] == ["true"]
            assert unit["Install"]["WantedBy"] == ["timers.target"]
            assert "enable --now " + path.name in header
            continue
        assert unit["Service"]["Type"] == ["oneshot"], path.name
        (exec_start,) = unit["Service"]["ExecStart"]
        argv = shlex.split(exec_start)
        assert argv[0].startswith(("/", "%h/")), path.name  # the user manager's PATH lacks ~/.local/bin
        for target in unit["Unit"].get("OnFailure", []):
            template = re.sub(r"@[^.]*\.", "@.", target)
            assert template in names, f"{path.name}: OnFailure={target}"
        if "@" not in path.name:
            assert argv[0] == "%h/.local/bin/mailpin", path.name
            args = run_parser.parse_args(argv[1:])
            assert (args.command, args.tool) == ("run", path.stem.removeprefix("mailpin-")), path.name
            assert unit["Unit"]["OnFailure"] == ["mailpin-notify@%n.service"], path.name


def _notify_command(home: Path, failed: str) -> list[str]:
    """mailpin-notify@.service's ExecStart with the specifiers and $$ resolved as systemd does."""
    (line,) = _unit(UNITS / "mailpin-notify@.service")["Service"]["ExecStart"]
    return shlex.split(line.replace("%h", str(home)).replace("%i", failed).replace("$$", "$"))


@pytest.mark.parametrize(("status", "told"), [(69, False), (75, False), (0, True), (78, True)])
def test_notify_unit_tells_only_what_mailpin_did_not_tell_already(
    rec: Recorder, isolated_env: Path, status: int, told: bool
) -> None:
    command = _notify_command(isolated_env, "mailpin-mbsync.service")
    rec.exit_with("mailpin", status)
    env = rec.env(PATH=f"{rec.bin}{os.pathsep}{os.environ['PATH']}")
    done = subprocess.run(command, env=env, input=b"", capture_output=True, check=False)
    assert rec.argv("mailpin") == [str(rec.bin / "mailpin"), "check", "--sync", "--quiet"]
    notified = rec.argv("notify-send")
    if not told:
        assert done.returncode == 0 and notified is None
        return
    assert done.returncode == 0
    assert notified is not None and notified[1:] == [
        "--app-name=mailpin",
        "--urgency=critical",
        "mailpin-mbsync.service failed",
        "Not a TLS block: journalctl --user -u mailpin-mbsync.service",
    ]


def test_systemd_analyze_verifies_the_units(isolated_env: Path) -> None:
    analyze = _optional("systemd-analyze", "systemd-analyze --user verify contrib/systemd/* (contrib/README.md)")
    mailpin = isolated_env / ".local" / "bin" / "mailpin"  # verify wants ExecStart's program to exist
    mailpin.parent.mkdir(parents=True)
    mailpin.write_text("#!/bin/sh\n")
    mailpin.chmod(0o755)
    units = [str(path) for path in sorted(UNITS.iterdir())]
    done = subprocess.run(
        [analyze, "--user", "--man=no", "verify", *units], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr
    for path in UNITS.glob("*.timer"):
        (spec,) = _unit(path)["Timer"]["OnCalendar"]
        calendar = subprocess.run([analyze, "calendar", spec], capture_output=True, text=True, check=False)
        assert calendar.returncode == 0, calendar.stderr


# ------------------------------------------------------------------------------------ MUA snippets


def _value(path: Path, pattern: str) -> str:
    match = re.search(pattern, path.read_text(), re.MULTILINE)
    assert match is not None, f"{path.name}: no {pattern}"
    return match.group(1)


def test_snippets_name_the_shims_mailpin_hooks_install_writes(isolated_env: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mailpin", "hooks", "install", "--dry-run", "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    planned = json.loads(done.stdout)
    assert planned["bin_dir"] == str(isolated_env / ".local" / "bin")
    written = {Path(step["path"]).name for step in planned["steps"] if step["action"] == "write"}
    assert {"msmtp", "mbsync"} <= written
    named = set()
    for path in MUA.iterdir():
        named |= set(re.findall(r"(?:~|\$HOME|/home/you)/\.local/bin/([a-z]+)", path.read_text()))
    assert "msmtp" in named and named - {"mailpin"} <= written  # ~/.local/bin/mailpin: pipx, uv tool


def test_neomutt_sendmail_runs_the_shim_with_neomutts_arguments(rec: Recorder, isolated_env: Path) -> None:
    neomuttrc = MUA / "neomuttrc"
    sendmail = _value(neomuttrc, r'^set sendmail\s*=\s*"([^"]+)"')
    assert _value(neomuttrc, r"^set sendmail_wait\s*=\s*(\S+)") == "0"
    assert _value(neomuttrc, r"^set use_envelope_from\s*=\s*(\S+)") == "yes"
    # NeoMutt expands a leading ~ when the variable is set, then splits on spaces (strtok, no shell) and
    # appends -f <envelope> -- <recipients> (send/sendmail.c).
    if sendmail.startswith("~/"):
        sendmail = str(isolated_env) + sendmail[1:]
    argv = [*[word for word in sendmail.split(" ") if word], "-f", "me@example.org", "--", "you@example.org"]
    done = subprocess.run(argv, input=MESSAGE, env=rec.env(), check=False)
    assert done.returncode == 0
    assert rec.argv("msmtp") == [str(rec.bin / "msmtp"), "-f", "me@example.org", "--", "you@example.org"]
    assert rec.stdin("msmtp") == MESSAGE


def test_aerc_outgoing_runs_the_shim_with_the_recipients_appended(rec: Recorder, isolated_env: Path) -> None:
    outgoing = _value(MUA / "aerc-accounts.conf", r"^outgoing\s*=\s*(.+)$")
    assert "~" not in outgoing and "$" not in outgoing  # aerc runs it without a shell
    argv = shlex.split(outgoing.replace("/home/you", str(isolated_env)))  # go-opt SplitArgs, shell-like
    done = subprocess.run([*argv, "you@example.org"], input=MESSAGE, env=rec.env(), check=False)
    assert done.returncode == 0
    assert rec.argv("msmtp") == [str(rec.bin / "msmtp"), "--read-envelope-from", "you@example.org"]
    assert rec.stdin("msmtp") == MESSAGE  # aerc's CRLF line endings arrive as they were


def test_alot_sendmail_command_runs_the_shim(rec: Recorder, isolated_env: Path) -> None:
    command = _value(MUA / "alot-config", r"^\s*sendmail_command\s*=\s*(.+)$")
    assert "~" not in command and "$" not in command  # alot runs it without a shell
    argv = shlex.split(command.replace("/home/you", str(isolated_env)))  # alot's split_commandstring
    done = subprocess.run(argv, input=MESSAGE, env=rec.env(), check=False)
    assert done.returncode == 0
    assert rec.argv("msmtp") == [str(rec.bin / "msmtp"), "--account=work", "-t"]


def _emacs_settings() -> tuple[str, list[str], bool]:
    text = (MUA / "mailpin.el").read_text()
    program = re.search(r'sendmail-program \(expand-file-name "([^"]+)"\)', text)
    extra = re.search(r"message-sendmail-extra-arguments '\(([^)]*)\)", text)
    assert program and extra
    assert "message-send-mail-function #'message-send-mail-with-sendmail" in text
    return program.group(1), re.findall(r'"([^"]*)"', extra.group(1)), "message-sendmail-f-is-evil t" in text


def test_emacs_message_mode_runs_the_shim_with_message_els_arguments(rec: Recorder, isolated_env: Path) -> None:
    program, extra, f_is_evil = _emacs_settings()
    assert f_is_evil
    # message-send-mail-with-sendmail: -oi, the extra arguments, no -f (f-is-evil), -t; no shell.
    argv = [program.replace("~", str(isolated_env), 1), "-oi", *extra, "-t"]
    done = subprocess.run(argv, input=MESSAGE, env=rec.env(), check=False)
    assert done.returncode == 0
    assert rec.argv("msmtp") == [str(rec.bin / "msmtp"), "-oi", "--read-envelope-from", "-t"]


def test_emacs_loads_the_snippet(isolated_env: Path) -> None:
    emacs = _optional("emacs", "emacs --batch -l contrib/mua/mailpin.el (contrib/README.md)")
    show = (
        '(princ (format "%s\\n%S\\n%S" sendmail-program message-sendmail-extra-arguments message-sendmail-f-is-evil))'
    )
    done = subprocess.run(
        [emacs, "--batch", "-Q", "-l", "message", "-l", str(MUA / "mailpin.el"), "--eval", show],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [str(isolated_env / ".local/bin/msmtp"), '("--read-envelope-from")', "t"]


def _git_send_email() -> str:
    git = need("git")
    exec_path = subprocess.run([git, "--exec-path"], capture_output=True, text=True, check=True).stdout.strip()
    if not (Path(exec_path) / "git-send-email").exists():
        need("git-send-email")  # skips, or fails under CI=true (tests/run installs git-email)
    return git


def test_git_send_email_runs_the_shim_through_sendmailcmd(rec: Recorder, isolated_env: Path, tmp_path: Path) -> None:
    git = _git_send_email()
    repo = tmp_path / "repo"
    repo.mkdir()
    who = {"GIT_AUTHOR_NAME": "Me", "GIT_AUTHOR_EMAIL": "me@example.org"}
    who |= {"GIT_COMMITTER_NAME": "Me", "GIT_COMMITTER_EMAIL": "me@example.org"}
    # The snippet is the whole global git config here.
    env = rec.env(GIT_CONFIG_GLOBAL=str(MUA / "gitconfig"), GIT_CONFIG_NOSYSTEM="1", **who)
    (repo / "file").write_text("a change\n")
    for command in (["init", "-q"], ["add", "file"], ["commit", "-q", "-m", "a patch"]):
        subprocess.run([git, *command], cwd=repo, env=env, check=True)
    patch = subprocess.run(
        [git, "format-patch", "-1", "-o", str(tmp_path)], cwd=repo, env=env, capture_output=True, text=True, check=True
    ).stdout.strip()
    send = [git, "send-email", "--to=you@example.org", "--confirm=never", "--suppress-cc=all", "--quiet", patch]
    done = subprocess.run(send, cwd=repo, env=env, stdin=subprocess.DEVNULL, capture_output=True, check=False)
    assert done.returncode == 0, done.stderr.decode()
    assert rec.argv("msmtp") == [str(rec.bin / "msmtp"), "--read-envelope-from", "-i", "you@example.org"]
    assert b"Subject: [PATCH] a patch" in rec.stdin("msmtp")
    # A block: git send-email stops with the shim's status (and its stderr on the terminal).
    rec.exit_with("msmtp", 69)
    blocked = subprocess.run(send, cwd=repo, env=env, stdin=subprocess.DEVNULL, capture_output=True, check=False)
    assert blocked.returncode == 69
    # Below the shim's line git 2.39 prints a Perl error of its own (git's bug): the snippet says so, names
    # Debian's package, and quotes what this git prints, with or without the package.
    snippet = " ".join(line.lstrip("# ") for line in (MUA / "gitconfig").read_text().splitlines())
    assert "libemail-valid-perl" in snippet and "git's bug" in snippet
    said = blocked.stderr.decode().splitlines()
    perl = [line for line in said if " at /" in line and not line[:1].isspace()]  # not "\t...propagated at"
    for line in perl:
        quoted = "Can't locate Email/Valid.pm in @INC" if line.startswith("Can't locate") else "Died at"
        assert line.startswith(quoted) and quoted in snippet, line


MSMTPQ = ("/usr/libexec/msmtp/msmtpq/msmtpq", "/usr/share/doc/msmtp/examples/msmtpq/msmtpq", "/usr/bin/msmtpq")


def test_msmtpq_config_sets_msmtp_to_the_shim(isolated_env: Path) -> None:
    sh = need("sh")
    snippet = str(MUA / "msmtpq-config")
    done = subprocess.run(
        [sh, "-c", '. "$1"; printf %s "$MSMTP"', "sh", snippet], capture_output=True, text=True, check=True
    )
    assert done.stdout == str(isolated_env / ".local" / "bin" / "msmtp")


def test_msmtpq_sends_through_the_shim(rec: Recorder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MSMTP", raising=False)
    msmtpq = shutil.which("msmtpq") or next((path for path in MSMTPQ if os.access(path, os.X_OK)), None)
    if msmtpq is None:
        need("msmtpq")  # skips, or fails under CI=true (Debian's msmtp ships it in /usr/libexec)
    assert msmtpq is not None
    snippet = MUA / "msmtpq-config"
    queue = tmp_path / "queue"
    env = rec.env(EMAIL_CONN_TEST="x", MSMTPQ_Q=str(queue), MSMTPQ_LOG=str(tmp_path / "queue.log"))
    # The MUA's environment carries the snippet's line (an msmtpq that reads no config file, e.g. Debian 12's).
    with_env = ["bash", "-c", 'set -a; . "$1"; set +a; shift; exec "$@"', "-", str(snippet), msmtpq]
    done = subprocess.run([*with_env, "-a", "work", "you@example.org"], input=MESSAGE, env=env, check=False)
    assert done.returncode == 0
    assert rec.argv("msmtp") == [str(rec.bin / "msmtp"), "-a", "work", "you@example.org"]
    assert rec.stdin("msmtp") == MESSAGE
    assert not list(queue.glob("*.mail"))  # sent, not queued
    if "msmtpq/config" in Path(msmtpq).read_text():  # a newer msmtpq reads the file itself
        config = Path(os.environ["XDG_CONFIG_HOME"]) / "msmtpq" / "config"
        config.parent.mkdir(parents=True)
        config.write_text(snippet.read_text())
        (rec.calls / "msmtp.argv").unlink()
        done = subprocess.run([msmtpq, "-t"], input=MESSAGE, env=env, check=False)
        assert done.returncode == 0 and rec.argv("msmtp") == [str(rec.bin / "msmtp"), "-t"]


def test_goimapnotify_on_new_mail_runs_mailpin_through_sh(rec: Recorder) -> None:
    config = MUA / "goimapnotify.yaml"
    command = _value(config, r"^\s+onNewMail:\s*(.+)$").strip("'\"")
    assert "%s" not in command  # goimapnotify would put the mailbox name there
    text = config.read_text()
    assert re.search(r"^\s+tls: true$", text, re.MULTILINE) and re.search(r"rejectUnauthorized: true", text)
    # goimapnotify runs it as `sh -c COMMAND` (PrepareCommand).
    done = subprocess.run([need("sh"), "-c", command], env=rec.env(), stdin=subprocess.DEVNULL, check=False)
    assert done.returncode == 0
    argv = rec.argv("mailpin")
    assert argv is not None and argv[1:] == ["run", "mbsync", "work"]
    args = build_parser().parse_args(argv[1:])
    assert (args.command, args.tool, args.args) == ("run", "mbsync", ["work"])


# ------------------------------------------------------------------------------------ home-manager


def _nix_nesting_errors(text: str) -> list[str]:
    """Brackets, strings ("..." and ''...'' with ${} inside) and comments that do not nest: a syntax smoke
    test for a file no Nix evaluates here."""
    stack: list[tuple[str, str | None]] = [("code", None)]
    closers = {"{": "}", "[": "]", "(": ")"}
    i = 0
    while i < len(text):
        mode, closer = stack[-1]
        char = text[i]
        if mode == "code":
            if char == "#":
                end = text.find("\n", i)
                i = len(text) if end < 0 else end
                continue
            if text.startswith("/*", i):
                end = text.find("*/", i + 2)
                if end < 0:
                    return ["unclosed /* comment"]
                i = end + 2
                continue
            if char == '"':
                stack.append(("dq", None))
            elif text.startswith("''", i):
                stack.append(("ind", None))
                i += 1
            elif char in closers:
                stack.append(("code", closers[char]))
            elif char in "}])":
                if closer != char:
                    return [f"unexpected {char} at line {text.count(chr(10), 0, i) + 1}"]
                stack.pop()
        elif mode == "dq":
            if char == "\\":
                i += 1
            elif text.startswith("${", i):
                stack.append(("code", "}"))
                i += 1
            elif char == '"':
                stack.pop()
        elif text.startswith(("'''", "''$", "''\\"), i):
            i += 2
        elif text.startswith("''", i):
            stack.pop()
            i += 1
        elif text.startswith("${", i):
            stack.append(("code", "}"))
            i += 1
        i += 1
    return [] if stack == [("code", None)] else [f"unclosed {stack[-1][0]} {stack[-1][1] or ''}".strip()]


def test_home_manager_example_nests_and_matches_the_units() -> None:
    text = (CONTRIB / "home-manager" / "mailpin.nix").read_text()
    assert _nix_nesting_errors(text) == []
    assert _nix_nesting_errors("{ a = { b = 1; };") and _nix_nesting_errors("{ a = ''x${y''; }")  # it can fail
    assert "ILLUSTRATIVE" in text and "home-manager build" in text
    assert 'hooks.preNew = "${mailpin}/bin/mailpin check --sync --quiet";' in text
    assert 'home.sessionVariables.MSMTP = "${shims}/msmtp";' in text
    for name in ("mailpin-mbsync", '"mailpin-notify@"'):
        assert f"systemd.user.services.{name} = {{" in text, name
    assert "systemd.user.timers.mailpin-mbsync = {" in text
    for name in ("mailpin-mbsync", "mailpin-mpop"):
        assert f"systemd.user.timers.{name} = {{" in text, name
        service = _unit(UNITS / f"{name}.service")
        timer = _unit(UNITS / f"{name}.timer")
        assert f'OnCalendar = "{timer["Timer"]["OnCalendar"][0]}";' in text
        run = service["Service"]["ExecStart"][0].removeprefix("%h/.local/bin/mailpin")
        assert f'ExecStart = "${{mailpin}}/bin/mailpin{run}";' in text, name
        assert f'OnFailure = [ "{service["Unit"]["OnFailure"][0]}" ];' in text


def test_home_manager_example_parses_as_nix() -> None:
    nix = _optional("nix-instantiate", "home-manager build with contrib/home-manager/mailpin.nix (contrib/README.md)")
    done = subprocess.run(
        [nix, "--parse", str(CONTRIB / "home-manager" / "mailpin.nix")], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
