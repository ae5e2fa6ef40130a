"""Fault runs (issue 9): real processes killed at random points, a full disk, fifty sends at once, and
servers that flood — with the real aiosmtpd, the real msmtp through the shims, real mounts.

The bar: zero messages lost or sent twice; a pin file that is the old one or the new one, never
anything else; clear errors; bounded time and memory. Every test records what it observed with
``tests.lab.report.record("faults", …)`` before it asserts, for the tables of docs/SECURITY.md.

Randomness is seeded (``MAILPIN_FAULT_SEED``, default below); each failure names the seed and the
delay of the run that failed, so a failing run can be replayed.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import json
import os
import random
import re
import secrets
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from mailpin.env import Env
from mailpin.errors import ConfigError
from mailpin.state.store import PinStore
from tests.conftest import ROOT, need
from tests.lab import flood as floods
from tests.lab import hostile
from tests.lab.hostile import HostileServer
from tests.lab.report import record
from tests.test_pins_real import cli
from tests.test_run_real import mailpin_command, shim_env, write_msmtprc

SEED = int(os.environ.get("MAILPIN_FAULT_SEED", "20260909"))
SMTPS, SUBMISSION = "msmtp:smtps", "msmtp:submission"
MESSAGE_ID = re.compile(rb"^Message-ID: <([^>]+)>", re.MULTILINE | re.IGNORECASE)
BLOCKED, TEMPFAIL, CONFIG = 69, 75, 78
MB = 1024 * 1024


def rng(name: str) -> random.Random:
    """One seeded generator per test: a string seed hashes the same in every run (random's version 2)."""
    return random.Random(f"{SEED}/{name}")


def replay(name: str, **what: object) -> str:
    """How to replay a failing run: the seed and the run's own numbers."""
    detail = ", ".join(
        f"{key}={value:.4f}" if isinstance(value, float) else f"{key}={value}" for key, value in what.items()
    )
    return f"[{name}: MAILPIN_FAULT_SEED={SEED} {detail}]"


def spki_b64(pki: Any, variant: str) -> str:
    leaf = x509.load_der_x509_certificate(pki.cert(variant).leaf_der)
    spki = leaf.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


def store() -> PinStore:
    return PinStore.for_env(Env.from_os())


def lock_is_free(path: Path) -> bool:
    """Could the next command take the pin store's lock at once (no process left holding it)?"""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


def strays(directory: Path) -> list[str]:
    """Temp files a killed atomic write left behind (durable.write_atomically names them `.NAME.HEX.tmp`)."""
    return sorted(name for name in os.listdir(directory) if name.startswith(".") and name.endswith(".tmp"))


def message_ids(server: Any) -> Counter[str]:
    """How many times each Message-ID reached the real aiosmtpd (all tests' messages)."""
    found: Counter[str] = Counter()
    for _, _, content in server.received():
        match = MESSAGE_ID.search(content[:4096])
        if match:
            found[match.group(1).decode()] += 1
    return found


def make_message(mid: str, size: int) -> bytes:
    head = (
        f"From: Alice <alice@example.org>\nTo: you@example.org\nSubject: fault run {mid}\n"
        f"Date: Wed, 09 Sep 2026 09:09:09 +0000\nMessage-ID: <{mid}>\n\n"
    ).encode()
    room = size - len(head)
    line = b"%08d a line of a big message, held or sent but never lost and never twice"
    body = b"".join((line % number).ljust(79) + b"\n" for number in range(room // 80))
    return head + body + b"z" * (room - len(body))  # exactly `size` bytes


def mid_of(message: bytes) -> str:
    match = MESSAGE_ID.search(message[:4096])
    assert match is not None
    return match.group(1).decode()


def queue_listing() -> tuple[int, dict[str, Any]]:
    """`mailpin queue list --json` (in this process: the same code, without an interpreter start)."""
    code, out, err = cli("queue", "list", "--json")
    return code, (json.loads(out) if code == 0 else {"error": err})


def queue_dir() -> Path:
    return Env.from_os().state_home / "mailpin" / "queue"


def feed(stream: IO[bytes] | None, data: bytes) -> None:
    """The MUA writes the message (the wrapper may die while it does: that is the point)."""
    assert stream is not None
    try:
        stream.write(data)
    except OSError:  # BrokenPipeError: the wrapper was killed, or stopped reading
        pass
    finally:
        try:
            stream.close()
        except OSError:  # the rest of the buffer had nowhere to go: closed all the same
            pass


def killed_send(argv: list[str], env: dict[str, str], message: bytes, delay: float) -> tuple[int, bytes]:
    """Send like a MUA, SIGKILL the wrapper after `delay` seconds if it still runs: (status, stderr).
    A status of -9 is what a MUA sees as a failure (the child died on a signal)."""
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    stdin, proc.stdin = proc.stdin, None  # the feeder's: communicate() below only reads stderr
    writer = threading.Thread(target=feed, args=(stdin, message))
    writer.start()
    try:
        try:
            proc.wait(delay)
        except subprocess.TimeoutExpired:
            proc.kill()  # SIGKILL, to this PID only
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        writer.join(10)
    return proc.returncode, err


class Measured:
    """A command run under tests/lab/rusage.py: its peak RSS from os.wait4 in a small parent."""

    def __init__(self, argv: list[str], report: Path, timeout: float, **popen: Any) -> None:
        self.report = report
        launcher = [sys.executable, "-S", str(ROOT / "tests" / "lab" / "rusage.py"), str(report), str(timeout), "--"]
        self.proc = subprocess.Popen([*launcher, *argv], **popen)

    def pid(self, timeout: float = 10) -> int:
        """The command's own PID (the launcher's child)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.report.exists() and self.report.read_text().endswith("\n"):
                return int(self.report.read_text().splitlines()[0])
            time.sleep(0.005)
        raise TimeoutError("the launcher did not start the command")

    def result(self, timeout: float = 60) -> tuple[int, float, float]:
        """(exit status, peak RSS in MB, seconds from spawn to exit)."""
        self.proc.wait(timeout)
        data = json.loads(self.report.read_text().splitlines()[1])
        return data["status"], data["maxrss_mb"], data["seconds"]


@pytest.fixture
def lab_msmtp(isolated_env: Path, pki: Any, smtp_server: Any) -> Path:
    """msmtp accounts `smtps` (Implicit TLS, the default) and `submission` on the real aiosmtpd."""
    need("msmtp")
    write_msmtprc(isolated_env, pki.ca_pem, smtp_server.smtps_port, smtp_server.submission_port)
    return isolated_env


# -- 1. SIGKILL while writing the pin file --------------------------------------------------------

PIN_KILLS = 200


@pytest.fixture
def pin_writer(lab_msmtp: Path, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], bytes, bytes]]:
    """tests/lab/pinloop.py, ready, with states A (one account pinned) and B (two): (process, A, B)."""
    assert cli("init", "--yes", "--level", "key", SMTPS)[0] == 0
    a = store().path.read_bytes()
    assert cli("init", "--yes", SUBMISSION)[0] == 0
    b = store().path.read_bytes()
    assert a != b
    (tmp_path / "a.conf").write_bytes(a)
    (tmp_path / "b.conf").write_bytes(b)
    pins = store()
    argv = [sys.executable, "-m", "tests.lab.pinloop", str(pins.path), str(pins.lock_path)]
    argv += [str(tmp_path / "a.conf"), str(tmp_path / "b.conf")]
    proc = subprocess.Popen(argv, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        yield proc, a, b
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def ask(proc: subprocess.Popen[str], command: str) -> str:
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(command + "\n")
    proc.stdin.flush()
    return proc.stdout.readline().strip()


def test_sigkill_while_saving_the_pin_store_leaves_the_old_or_the_new_file(
    pin_writer: tuple[subprocess.Popen[str], bytes, bytes],
) -> None:
    proc, a, b = pin_writer
    pins = store()
    per_save = float(ask(proc, "calibrate 20"))
    random_ = rng("pins-sigkill")
    seen: Counter[str] = Counter()
    problems: list[str] = []
    for run in range(PIN_KILLS):
        delay = random_.uniform(0, 4 * per_save)  # most kills land inside a save: lock, read, write, rename
        pid = int(ask(proc, "writer"))
        time.sleep(delay)
        os.kill(pid, 9)
        status = int(ask(proc, f"reap {pid}"))
        if not (os.WIFSIGNALED(status) and os.WTERMSIG(status) == 9):
            problems.append(f"the writer died by itself (wait status {status}) {replay('pins', run=run, delay=delay)}")
        data = pins.path.read_bytes()
        kind = "A" if data == a else "B" if data == b else "other"
        seen[kind] += 1
        try:
            pins.load()
        except ConfigError as exc:
            problems.append(f"mailpin cannot read it: {exc} {replay('pins', run=run, delay=delay)}")
        if kind == "other":
            problems.append(f"pins.conf is neither A nor B ({len(data)} bytes) {replay('pins', run=run, delay=delay)}")
        if not lock_is_free(pins.lock_path):
            problems.append(f"the lock is still held after the kill {replay('pins', run=run, delay=delay)}")
    left = strays(pins.path.parent)
    ask(proc, "calibrate 2")  # two more saves (A, B): the next writer sweeps the killed writers' temp files
    if strays(pins.path.parent):
        problems.append(f"stray temp files survive the next save: {strays(pins.path.parent)[:3]}")
    # The next real command works at once, temp files or not: accept rewrites, check verifies.
    started = time.monotonic()
    accepted = subprocess.run([mailpin_command(), "accept", SMTPS], capture_output=True, timeout=60)
    took = time.monotonic() - started
    checked = subprocess.run([mailpin_command(), "check"], capture_output=True, timeout=60)
    if accepted.returncode != 0 or checked.returncode != 0:
        problems.append(
            f"after the kills: accept {accepted.returncode} {accepted.stderr!r}, check {checked.returncode}"
        )
    if took > 10:
        problems.append(f"accept after the kills took {took:.1f} s (a stuck lock?)")
    outcome = f"pins.conf A {seen['A']} / B {seen['B']} / other {seen['other']}; {len(left)} stray temp files"
    outcome += " (removed by the next save)"
    record(
        "faults",
        fault="sigkill-pin-save",
        runs=PIN_KILLS,
        outcome=f"{outcome}; lock free after every kill; then accept {accepted.returncode}, check {checked.returncode}",
        figure=f"{per_save * 1000:.1f} ms per save",
        passed=not problems,
    )
    assert not problems, problems[:5]
    assert seen["A"] and seen["B"], f"the kills never caught one of the states: {seen} (seed {SEED})"


ACCEPT_RUNS, INIT_RUNS = 20, 10


def timed(argv: list[str]) -> tuple[float, subprocess.CompletedProcess[bytes]]:
    started = time.monotonic()
    done = subprocess.run(argv, capture_output=True, timeout=60)
    return time.monotonic() - started, done


def test_sigkill_during_real_accept_and_init_leaves_old_or_new_pins(
    lab_msmtp: Path, pki: Any, smtp_server: Any
) -> None:
    assert cli("init", "--yes", "--level", "key", SMTPS)[0] == 0
    pins = store()
    old = pins.path.read_bytes()
    old_profiles = pins.load()
    smtp_server.serve("new-key")  # same CA, new key: accept re-pins, init pins the other accounts
    new_key = spki_b64(pki, "new-key")
    commands = {"accept": [mailpin_command(), "accept", SMTPS], "init": [mailpin_command(), "init", "--yes"]}
    # How long an unkilled run takes, and what it leaves: the delays are spread over that.
    runtime, new_keys = {}, {}
    for name, argv in commands.items():
        runtime[name], done = timed(argv)
        assert done.returncode == 0, done.stderr
        new_keys[name] = set(pins.load())
        pins.path.write_bytes(old)
    random_ = rng("accept-sigkill")
    plan = ["accept"] * ACCEPT_RUNS + ["init"] * INIT_RUNS
    random_.shuffle(plan)
    seen: Counter[str] = Counter()
    checks: Counter[int] = Counter()
    problems: list[str] = []
    for run, name in enumerate(plan):
        pins.path.write_bytes(old)  # every run starts from the old file
        delay = random_.uniform(0.2, 1.8) * runtime[name]  # a loaded machine runs slower than calibrated
        proc = subprocess.Popen(commands[name], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(delay)
        if proc.poll() is None:
            proc.kill()
        _, err = proc.communicate(timeout=60)
        where = replay(name, run=run, delay=delay, status=proc.returncode)
        if proc.returncode not in (0, -9):
            problems.append(f"{name} exited {proc.returncode}: {err!r} {where}")
        data = pins.path.read_bytes()
        try:
            profiles = pins.load()
        except ConfigError as exc:
            problems.append(f"torn pins.conf: {exc} {where}")
            seen["other"] += 1
            continue
        # init pins account by account, each in its own locked write: a kill between two leaves the
        # first ones pinned (whole), the others not yet — a state init itself passes through.
        smtps, others = profiles.get(SMTPS), {key: p for key, p in profiles.items() if key != SMTPS}
        fresh = all(profile.spki_sha256 == (new_key,) for profile in others.values())
        renewed = name == "accept" and not others and smtps is not None and smtps.spki_sha256 == (new_key,)
        added = name == "init" and smtps == old_profiles[SMTPS] and set(profiles) <= new_keys["init"] and fresh
        kind = "old" if data == old else "other" if not (renewed or added) else "new"
        if kind == "new" and name == "init" and set(profiles) != new_keys["init"]:
            kind = "partial"
        if kind == "other":
            problems.append(f"pins.conf is neither old nor new: {sorted(profiles)} {where}")
        seen[f"{name}-{kind}-{'killed' if proc.returncode == -9 else 'finished'}"] += 1
        seen[kind] += 1
        if proc.returncode == 0 and kind != "new":
            problems.append(f"{name} finished but pins.conf is {kind} {where}")
        if not lock_is_free(pins.lock_path):
            problems.append(f"the lock is held after the run {where}")
        code, _, said = cli("check")
        checks[code] += 1
        smtps_renewed = kind == "new" and name == "accept"
        if code not in (0, BLOCKED) or (code == 0) is not smtps_renewed:
            problems.append(f"check said {code} with pins.conf {kind}: {said.strip()!r} {where}")
    killed = sum(count for key, count in seen.items() if key.endswith("-killed"))
    outcome = (
        f"pins.conf old {seen['old']} / new {seen['new']} / init part-way (whole profiles) {seen['partial']} / "
        f"other {seen['other']} ({killed} killed); "
        f"check after: {', '.join(f'{code}×{n}' for code, n in sorted(checks.items()))}"
    )
    record(
        "faults",
        fault="sigkill-accept-init",
        runs=len(plan),
        outcome=outcome,
        figure=f"accept {runtime['accept']:.2f} s, init {runtime['init']:.2f} s unkilled",
        passed=not problems,
    )
    assert not problems, problems[:5]
    assert killed >= len(plan) // 5, f"too few runs were killed mid-way: {dict(seen)} (seed {SEED})"


# -- 2. SIGKILL while holding a message -----------------------------------------------------------

HOLD_RUNS = 40


def test_sigkill_while_holding_loses_nothing_and_flush_sends_each_once(
    lab_msmtp: Path, shims: Path, smtp_server: Any
) -> None:
    assert cli("init", "--yes")[0] == 0
    smtp_server.serve("foreign-ca")  # blocked: untrusted chain, CA changed
    env = shim_env(shims)
    argv = ["msmtp", "-oi", "-t"]
    random_ = rng("hold-sigkill")
    token = secrets.token_hex(4)
    sizes = [random_.randint(1 * MB, 3 * MB) for _ in range(HOLD_RUNS)]
    mids = [f"kill-{n}.{token}@example.org" for n in range(HOLD_RUNS)]
    size_of = dict(zip(mids, sizes, strict=True))
    # One unkilled run first: how long a blocked 3 MB send takes; the kills are spread over that.
    started = time.monotonic()
    status, err = killed_send(argv, env, make_message(f"calibrate.{token}@example.org", 3 * MB), 120)
    runtime = time.monotonic() - started
    assert status == BLOCKED and b"message held as" in err, err
    assert cli("queue", "drop", queue_listing()[1]["held"][0]["id"])[0] == 0
    problems: list[str] = []
    results: dict[str, tuple[int, bool]] = {}  # Message-ID -> (status, held afterwards)
    orphans = 0
    for run, (mid, size) in enumerate(zip(mids, sizes, strict=True)):
        delay = random_.uniform(0.2, 1.15) * runtime  # the start-up is the least interesting part
        message = make_message(mid, size)
        status, err = killed_send(argv, env, message, delay)
        where = replay("hold", run=run, delay=delay, size=size, status=status)
        code, listing = queue_listing()
        if code != 0:
            problems.append(f"queue list failed: {listing} {where}")
            continue
        held = {}
        for entry in listing["held"]:
            data = (queue_dir() / f"{entry['id']}.eml").read_bytes()
            found = mid_of(data)
            if found not in size_of or data != make_message(found, size_of[found]) or len(data) != entry["size"]:
                problems.append(f"held entry {entry['id']} is not byte-identical to what was sent {where}")
            if found in held:
                problems.append(f"{found} held twice {where}")
            held[found] = entry
        if listing["problems"]:
            problems.append(f"unreadable entries: {listing['problems']} {where}")
        results[mid] = (status, mid in held)
        if status == 0 or status not in (BLOCKED, -9):
            problems.append(f"the MUA got status {status}: {err!r} {where}")
        if status == BLOCKED and (mid not in held or b"message held as" not in err):
            problems.append(f"an unkilled blocked run did not hold its message: {err!r} {where}")
        orphans = max(orphans, len([n for n in os.listdir(queue_dir()) if n.endswith((".tmp", ".eml"))]) - len(held))
    held_mids = {mid for mid, (_, held) in results.items() if held}
    # The server is back to what was pinned: flush sends every held message, once.
    smtp_server.serve("good")
    before = message_ids(smtp_server)
    flushed = subprocess.run([mailpin_command(), "queue", "flush"], env=env, capture_output=True, timeout=300)
    after_flush = message_ids(smtp_server) - before
    # The MUA retries what got a failure status (every run here): mailpin sends what it did not
    # hold, and refuses to send again what its queue has sent already.
    for mid, size in zip(mids, sizes, strict=True):
        again = subprocess.run(argv, input=make_message(mid, size), env=env, capture_output=True, timeout=60)
        if again.returncode != 0:
            problems.append(f"the MUA's retry of {mid} failed: {again.returncode} {again.stderr!r}")
        elif (mid in held_mids) is not (b"not sent again" in again.stderr):
            problems.append(f"retry of {mid} (held: {mid in held_mids}): {again.stderr!r}")
    total = message_ids(smtp_server) - before
    if flushed.returncode != 0:
        problems.append(f"flush exited {flushed.returncode}: {flushed.stderr!r}")
    for mid in mids:
        if after_flush[mid] != (1 if mid in held_mids else 0):
            problems.append(f"{mid} (held: {mid in held_mids}) delivered {after_flush[mid]}× by the flush")
        if total[mid] != 1:
            problems.append(f"{mid} delivered {total[mid]}× in all (flush, then the MUA's retry)")
    killed = [mid for mid, (status, _) in results.items() if status == -9]
    killed_held = [mid for mid in killed if mid in held_mids]
    outcome = (
        f"killed {len(killed)} (held anyway {len(killed_held)}, not held {len(killed) - len(killed_held)}), "
        f"finished {len(results) - len(killed)} (all held); flush delivered {sum(after_flush.values())} of "
        f"{len(held_mids)} held; after the MUA's retries every message delivered exactly once: "
        f"{all(total[mid] == 1 for mid in mids)}; at most {orphans} unfinished .eml/.tmp left between runs"
    )
    record(
        "faults",
        fault="sigkill-hold",
        runs=HOLD_RUNS,
        outcome=outcome,
        figure=f"{runtime:.2f} s per blocked 3 MB send",
        passed=not problems,
    )
    assert not problems, problems[:5]
    assert len(killed) >= HOLD_RUNS // 5, f"too few runs were killed: {results} (seed {SEED})"


# -- 3. A full disk --------------------------------------------------------------------------------

_TMPFS: list[str] = []


def tmpfs_runner(scratch: Path) -> list[str]:
    """The command that runs `sh -c SCRIPT` in a private mount namespace (nothing leaks if the test
    dies): as root `unshare --mount`, else a user namespace (`unshare -rm`). Skipped if neither
    can mount a tmpfs — on a developer machine; with CI=true that fails."""
    if _TMPFS:
        return _TMPFS
    need("unshare")
    probe_dir = scratch / "tmpfs-probe"
    probe_dir.mkdir(exist_ok=True)
    options = [["--mount"], ["--map-root-user", "--mount"]] if os.geteuid() == 0 else [["--map-root-user", "--mount"]]
    tried = []
    for option in options:
        argv = ["unshare", *option, "--propagation", "private", "sh", "-c", 'mount -t tmpfs -o size=4k tmpfs "$1"']
        done = subprocess.run([*argv, "sh", str(probe_dir)], capture_output=True, timeout=30)
        if done.returncode == 0:
            _TMPFS.extend(["unshare", *option, "--propagation", "private"])
            return _TMPFS
        tried.append(f"{' '.join(option)}: {done.stderr.decode(errors='replace').strip()}")
    message = f"cannot mount a tmpfs in a private namespace ({'; '.join(tried)})"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message} (CI=true: required)", pytrace=False)
    pytest.skip(message)


HOLD_SCRIPT = """
mount -t tmpfs -o "size=$1,mode=0700" tmpfs "$2" || exit 111
msmtp -oi -t < "$3" 2> "$4/stderr"
echo $? > "$4/status"
"$MAILPIN" queue list --json > "$4/list.json" 2> "$4/list.stderr"
ls -A "$2/queue" > "$4/files" 2>/dev/null
cp -a "$2/queue" "$4/queue" 2>/dev/null
exit 0
"""
# The message is 200,000 bytes: 49 pages of 4 KiB, its metadata one more. Around 196k the message
# itself fits and its metadata does not; 1m holds it easily.
FULL_SIZES = ("4k", "128k", "188k", "192k", "196k", "200k", "204k", "208k", "1m")


def test_a_full_state_disk_holds_whole_or_fails_clearly(lab_msmtp: Path, shims: Path, smtp_server: Any) -> None:
    """A tmpfs of SIZE on $XDG_STATE_HOME/mailpin (audit log, queue): the blocked message is held
    whole, or the send fails with one clear line and leaves no piece of it in the queue."""
    runner = tmpfs_runner(lab_msmtp.parent)
    assert cli("init", "--yes")[0] == 0
    smtp_server.serve("foreign-ca")
    state = Env.from_os().state_home / "mailpin"
    message = make_message(f"full.{secrets.token_hex(4)}@example.org", 200_000)
    source = lab_msmtp.parent / "message.eml"
    source.write_bytes(message)
    problems: list[str] = []
    seen: Counter[str] = Counter()
    lines: dict[str, str] = {}
    for size in FULL_SIZES:
        out = lab_msmtp.parent / f"full-{size}"
        out.mkdir()
        done = subprocess.run(
            [*runner, "sh", "-c", HOLD_SCRIPT, "sh", size, str(state), str(source), str(out)],
            env=shim_env(shims),
            capture_output=True,
            timeout=60,
        )
        if done.returncode != 0:
            problems.append(f"tmpfs {size}: the namespace script failed: {done.stderr!r}")
            continue
        status = int((out / "status").read_text())
        err = (out / "stderr").read_text()
        listing = json.loads((out / "list.json").read_text())
        files = (out / "files").read_text().split()
        pieces = [name for name in files if not name.endswith(".lock")]
        said = [line for line in err.splitlines() if line.strip()]
        if listing["held"]:
            seen["held"] += 1
            held = listing["held"][0]
            copy = (out / "queue" / f"{held['id']}.eml").read_bytes()
            if (
                status != BLOCKED
                or copy != message
                or sorted(pieces) != sorted([f"{held['id']}.eml", f"{held['id']}.json"])
            ):
                problems.append(f"tmpfs {size}: held, but status {status}, files {files}")
        else:
            seen["not held"] += 1
            lines[size] = err.strip()
            if status not in (BLOCKED, TEMPFAIL):  # a failure status: the MUA keeps its copy
                problems.append(f"tmpfs {size}: not held, and status {status}")
            if pieces:
                problems.append(f"tmpfs {size}: not held, yet the queue holds {pieces}")
            if len(said) != 1 or "NOT held" not in err or "No space left on device" not in err:
                problems.append(f"tmpfs {size}: not one clear line: {said}")
            elif str(state / "queue") not in err or "mail program still has it" not in err:
                problems.append(f"tmpfs {size}: the line names neither the queue nor what happens: {said}")
        if listing["problems"]:
            problems.append(f"tmpfs {size}: queue list reports {listing['problems']}")
    example = next(iter(lines.values()), "")
    example = example[example.find("NOT held") :] if "NOT held" in example else example
    record(
        "faults",
        fault="full-disk-queue",
        runs=len(FULL_SIZES),
        outcome=f"held whole {seen['held']} / not held, clear line, nothing left {seen['not held']}: {example[:160]}",
        figure="200 kB message, tmpfs " + "–".join((FULL_SIZES[0], FULL_SIZES[-1])),
        passed=not problems,
    )
    assert not problems, problems
    assert seen["held"] and seen["not held"], seen


ACCEPT_SCRIPT = """
mount -t tmpfs -o size=64k,mode=0700 tmpfs "$1" || exit 111
cp -a "$2/." "$1/"
dd if=/dev/zero of="$1/filler" bs=4096 2>/dev/null
"$MAILPIN" accept msmtp:smtps > /dev/null 2> "$3/accept.stderr"
echo $? > "$3/accept.status"
cat "$1/pins.conf" > "$3/pins.after"
ls -A "$1" > "$3/files"
"$MAILPIN" check > /dev/null 2> "$3/check.stderr"
echo $? > "$3/check.status"
exit 0
"""


def test_accept_on_a_full_config_disk_fails_clearly_and_keeps_the_pins(
    lab_msmtp: Path, shims: Path, smtp_server: Any
) -> None:
    runner = tmpfs_runner(lab_msmtp.parent)
    assert cli("init", "--yes")[0] == 0
    config = store().path.parent
    saved, out = lab_msmtp.parent / "saved-config", lab_msmtp.parent / "full-config"
    saved.mkdir()
    out.mkdir()
    old = store().path.read_bytes()
    (saved / "pins.conf").write_bytes(old)
    done = subprocess.run(
        [*runner, "sh", "-c", ACCEPT_SCRIPT, "sh", str(config), str(saved), str(out)],
        env=shim_env(shims),
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    status, err = int((out / "accept.status").read_text()), (out / "accept.stderr").read_text()
    after = (out / "pins.after").read_bytes()
    left = [name for name in (out / "files").read_text().split() if name not in ("pins.conf", "filler")]
    checked = int((out / "check.status").read_text())
    said = [line for line in err.splitlines() if line.strip()]
    problems = []
    if status != CONFIG or len(said) != 1 or "No space left on device" not in err or "pins.conf" not in err:
        problems.append(f"accept: status {status}, said {said}")
    if after != old:
        problems.append("pins.conf changed")
    if left:
        problems.append(f"left behind: {left}")
    if checked != 0:
        problems.append(f"check with the old pins: {checked} {(out / 'check.stderr').read_text()!r}")
    record(
        "faults",
        fault="full-disk-pins",
        runs=1,
        outcome=f"accept {status}: {err.strip()[:160]}; pins.conf {'intact' if after == old else 'CHANGED'}; "
        f"check after {checked}",
        figure="tmpfs 64k, filled",
        passed=not problems,
    )
    assert not problems, problems


# -- 4. Fifty wrapped sends at once ----------------------------------------------------------------

CONCURRENT = 50


def fifty_at_once(env: dict[str, str], messages: list[bytes]) -> list[tuple[int, bytes]]:
    procs = [
        subprocess.Popen(["msmtp", "-oi", "-t"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, env=env)
        for _ in messages
    ]  # fmt: skip
    feeders = []
    for proc, message in zip(procs, messages, strict=True):
        stdin, proc.stdin = proc.stdin, None  # the feeder's: communicate() below only reads stderr
        feeders.append(threading.Thread(target=feed, args=(stdin, message)))
        feeders[-1].start()
    results = []
    for proc in procs:
        _, err = proc.communicate(timeout=180)
        results.append((proc.returncode, err))
    for feeder in feeders:
        feeder.join(10)
    return results


def test_fifty_wrapped_sends_at_once_are_each_delivered_once(lab_msmtp: Path, shims: Path, smtp_server: Any) -> None:
    assert cli("init", "--yes")[0] == 0
    token = secrets.token_hex(4)
    mids = [f"fifty-{n}.{token}@example.org" for n in range(CONCURRENT)]
    before = message_ids(smtp_server)
    started = time.monotonic()
    results = fifty_at_once(shim_env(shims), [make_message(mid, 20_000) for mid in mids])
    took = time.monotonic() - started
    got = message_ids(smtp_server) - before
    statuses = Counter(status for status, _ in results)
    counts = Counter(got[mid] for mid in mids)
    failed = [(status, err) for status, err in results if status != 0]
    record(
        "faults",
        fault="fifty-sends",
        runs=CONCURRENT,
        outcome=f"exit {dict(statuses)}; delivered once {counts[1]}, never {counts[0]}, twice or more "
        f"{sum(n for k, n in counts.items() if k > 1)}",
        figure=f"{took:.1f} s for all",
        passed=not failed and counts[1] == CONCURRENT,
    )
    assert not failed, failed[:3]
    assert counts[1] == CONCURRENT, {mid: got[mid] for mid in mids if got[mid] != 1}


def test_fifty_blocked_sends_at_once_are_held_then_two_racing_flushes_send_each_once(
    lab_msmtp: Path, shims: Path, smtp_server: Any
) -> None:
    assert cli("init", "--yes")[0] == 0
    smtp_server.serve("foreign-ca")
    env = shim_env(shims)
    token = secrets.token_hex(4)
    mids = [f"held-{n}.{token}@example.org" for n in range(CONCURRENT)]
    messages = [make_message(mid, 20_000) for mid in mids]
    results = fifty_at_once(env, messages)
    statuses = Counter(status for status, _ in results)
    code, listing = queue_listing()
    held: dict[str, list[bytes]] = {}
    for entry in listing.get("held", []):
        data = (queue_dir() / f"{entry['id']}.eml").read_bytes()
        held.setdefault(mid_of(data), []).append(data)
    intact = len([mid for mid, message in zip(mids, messages, strict=True) if held.get(mid) == [message]])
    smtp_server.serve("good")
    before = message_ids(smtp_server)
    started = time.monotonic()
    flushes = [
        subprocess.Popen([mailpin_command(), "queue", "flush", "--json"], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
        for _ in range(2)
    ]  # fmt: skip
    flushed = [(proc.communicate(timeout=300), proc.returncode) for proc in flushes]
    took = time.monotonic() - started
    got = message_ids(smtp_server) - before
    counts = Counter(got[mid] for mid in mids)
    sent_by = [sum(1 for item in json.loads(out)["flushed"] if item["outcome"] == "sent") for (out, _), _ in flushed]
    passed = (
        statuses == Counter({BLOCKED: CONCURRENT})
        and code == 0
        and len(listing["held"]) == CONCURRENT
        and intact == CONCURRENT
        and all(status == 0 for _, status in flushed)
        and counts[1] == CONCURRENT
    )
    record(
        "faults",
        fault="fifty-blocked-then-racing-flushes",
        runs=CONCURRENT,
        outcome=f"exit {dict(statuses)}; held {len(listing.get('held', []))} distinct, intact {intact}; "
        f"flushes sent {sent_by[0]} + {sent_by[1]}; delivered once {counts[1]}, never {counts[0]}, "
        f"twice or more {sum(n for k, n in counts.items() if k > 1)}",
        figure=f"{took:.1f} s for the racing flushes",
        passed=passed,
    )
    assert statuses == Counter({BLOCKED: CONCURRENT}), [err for status, err in results if status != BLOCKED][:3]
    assert code == 0 and len(listing["held"]) == CONCURRENT and intact == CONCURRENT, listing
    assert all(status == 0 for _, status in flushed), flushed
    assert counts[1] == CONCURRENT, {mid: got[mid] for mid in mids if got[mid] != 1}


# -- 5. Servers that flood -------------------------------------------------------------------------

DEADLINE = 3.0  # the verification deadline given to mailpin in these runs (seconds)
RSS_BOUND = 100.0  # MB: generous; a Python process running mailpin takes a few tens


FLOOD_CASES = (
    "smtp-endless-line",
    "smtp-endless-ehlo",
    "imap-endless-capability",
    "imap-untagged-flood",
    "smtp-post-tls-endless-line",
    "imap-post-tls-flood",
)


def flood_script(case: str, flood: floods.Flood) -> tuple[hostile.Script, str]:
    """The server of CASE, and its protocol (every one is a STARTTLS port)."""
    return {
        "smtp-endless-line": (floods.endless_line(flood, b"220 "), "smtp"),
        "smtp-endless-ehlo": (floods.endless_ehlo(flood), "smtp"),
        "imap-endless-capability": (floods.endless_capability(flood), "imap"),
        "imap-untagged-flood": (floods.untagged_flood(flood), "imap"),
        "smtp-post-tls-endless-line": (floods.after_starttls("smtp", flood, b"250-" + b"Y" * 8000), "smtp"),
        "imap-post-tls-flood": (floods.after_starttls("imap", flood, b"* 1 EXISTS\r\n"), "imap"),
    }[case]


@pytest.mark.parametrize("case", FLOOD_CASES)
def test_a_flooding_server_costs_bounded_time_and_memory(
    isolated_env: Path, tmp_path: Path, pki: Any, case: str
) -> None:
    flood = floods.Flood()
    script, protocol = flood_script(case, flood)
    good = pki.cert("good")
    with HostileServer(script, chain_pem=good.chain_pem, key_pem=good.key_pem) as server:
        argv = [mailpin_command(), "probe", f"127.0.0.1:{server.port}", "--protocol", protocol, "--mode", "starttls"]
        argv += ["--servername", "localhost", "--trust-file", str(pki.ca_pem), "--timeout", str(DEADLINE), "--json"]
        run = Measured(argv, tmp_path / "rusage", DEADLINE + 30, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        out, _ = run.proc.communicate(timeout=DEADLINE + 60)  # the JSON is small
        status, peak, took = run.result()
    reasons = json.loads(out)["reasons"] if out else []
    passed = status == BLOCKED and took < DEADLINE + 1 and peak < RSS_BOUND
    record(
        "faults",
        fault=f"flood-{case}",
        runs=1,
        outcome=f"probe exit {status} {reasons} after {took:.2f} s; server sent {flood.sent / MB:.2f} MB",
        figure=f"{peak:.1f} MB peak RSS",
        passed=passed,
    )
    assert status == BLOCKED and reasons == ["protocol-error"], (status, out)
    assert took < DEADLINE + 1, f"took {took:.2f} s"
    assert peak < RSS_BOUND, f"peak RSS {peak:.1f} MB"


def test_check_of_a_pinned_account_against_a_post_tls_flood(isolated_env: Path, tmp_path: Path, pki: Any) -> None:
    """`mailpin check` (its deadline from mailpin's config) on a pinned Implicit TLS account whose
    server floods its greeting over TLS: blocked within the deadline, memory bounded. (Verification
    reads the greeting, never the capabilities, so the greeting is where a flood meets it.)"""
    need("msmtp")
    good = pki.cert("good")
    flood = floods.Flood()
    rig = HostileServer(hostile.benign("smtp"), chain_pem=good.chain_pem, key_pem=good.key_pem, implicit_tls=True)
    with rig as server:
        write_msmtprc(isolated_env, pki.ca_pem, server.port, 1)
        settings = isolated_env / ".config" / "mailpin" / "config"
        settings.parent.mkdir(parents=True, exist_ok=True)
        settings.write_text(f"timeout = {DEADLINE:g}\n")
        assert cli("init", "--yes", SMTPS)[0] == 0
        server.script = floods.over_tls(flood, b"220-flood\r\n", b"220-FLOOD " + b"Z" * 100 + b"\r\n")
        argv = [mailpin_command(), "check", SMTPS]
        run = Measured(argv, tmp_path / "rusage", DEADLINE + 30, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        err, _ = run.proc.communicate(timeout=DEADLINE + 60)
        status, peak, took = run.result()
    passed = status == BLOCKED and took < DEADLINE + 1 and peak < RSS_BOUND
    record(
        "faults",
        fault="flood-check-post-tls",
        runs=1,
        outcome=f"check exit {status} after {took:.2f} s: {err.decode(errors='replace').strip()[:120]}",
        figure=f"{peak:.1f} MB peak RSS",
        passed=passed,
    )
    assert status == BLOCKED and b"protocol-error" in err, err
    assert took < DEADLINE + 1 and peak < RSS_BOUND, (took, peak)


def rss_now(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a live process, in MB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def read_exactly(fd: int, count: int, timeout: float) -> int:
    """Read and discard `count` bytes from `fd` (what a tool does with a flood); returns the bytes read."""
    done, deadline = 0, time.monotonic() + timeout
    while done < count and time.monotonic() < deadline:
        data = os.read(fd, min(1 << 20, count - done))
        if not data:
            break
        done += len(data)
    return done


def settled(flood: floods.Flood, quiet: float = 0.3, timeout: float = 10) -> int:
    """Wait until the server can send no more (the tunnel stopped reading): its count stands still."""
    deadline, last = time.monotonic() + timeout, -1
    while time.monotonic() < deadline:
        if flood.sent == last:
            return last
        last = flood.sent
        time.sleep(quiet)
    return flood.sent


@contextlib.contextmanager
def flooding_imaps(home: Path, pki: Any, flood: floods.Flood, pattern: bytes) -> Iterator[HostileServer]:
    """An Implicit TLS IMAP server, pinned as `mbsync:lab` while benign, then flooding `pattern`."""
    good = pki.cert("good")
    with HostileServer(
        hostile.benign("imap"), chain_pem=good.chain_pem, key_pem=good.key_pem, implicit_tls=True
    ) as server:
        (home / ".mbsyncrc").write_text(
            f"IMAPAccount lab\nHost localhost\nPort {server.port}\nUser test\nPass secret\nSSLType IMAPS\n"
            f"CertificateFile {pki.ca_pem}\nSystemCertificates no\n"
        )
        assert cli("init", "--yes", "mbsync:lab")[0] == 0
        server.script = floods.over_tls(flood, b"* OK flood\r\n", pattern)
        yield server


def test_the_tunnel_under_a_post_tls_flood_to_a_tool_that_does_not_read(
    isolated_env: Path, tmp_path: Path, pki: Any
) -> None:
    """`mailpin tunnel` between a server flooding over TLS and a tool that reads 1 MB, stops, reads
    up to 50 MB, stops: the tunnel stops reading when the tool does (back-pressure), and its memory
    does not grow with what was flooded."""
    flood = floods.Flood()
    with flooding_imaps(isolated_env, pki, flood, b"* 1 EXISTS\r\n* 2 RECENT\r\n"):
        run = Measured(
            [mailpin_command(), "tunnel", "mbsync:lab"],
            tmp_path / "rusage",
            120,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        proc = run.proc
        assert proc.stdout is not None and proc.stdin is not None and proc.stderr is not None
        tunnel = run.pid()
        try:
            first = read_exactly(proc.stdout.fileno(), MB, 30)
            stalled_1 = settled(flood)
            rss_1, _ = rss_now(tunnel)
            total = first + read_exactly(proc.stdout.fileno(), 50 * MB - first, 60)
            stalled_50 = settled(flood)
            rss_50, hwm_50 = rss_now(tunnel)
            # The tool goes away: the tunnel must end (a broken pipe), whatever is still buffered.
            proc.stdin.close()
            proc.stdout.close()
            status, peak, _ = run.result()
        finally:
            if proc.poll() is None:
                os.kill(tunnel, 9)
                proc.wait()
        err = proc.stderr.read()
        proc.stderr.close()
    ahead_1, ahead_50 = stalled_1 - first, stalled_50 - total  # what was in flight when the tool stopped reading
    growth = rss_50 - rss_1
    passed = total >= 50 * MB and growth < 5 and peak < RSS_BOUND and ahead_50 < 16 * MB
    record(
        "faults",
        fault="flood-tunnel",
        runs=1,
        outcome=f"tool read {first / MB:.0f} MB then {total / MB:.0f} MB; server ahead by {ahead_1 / MB:.1f} / "
        f"{ahead_50 / MB:.1f} MB when the tool stopped; RSS {rss_1:.1f} → {rss_50:.1f} MB; exit {status}",
        figure=f"{peak:.1f} MB peak RSS (VmHWM {hwm_50:.1f} MB)",
        passed=passed,
    )
    assert total >= 50 * MB, (total, err)
    assert growth < 5, f"RSS grew {growth:.1f} MB between 1 MB and 50 MB flooded"
    assert ahead_50 < 16 * MB, f"{ahead_50 / MB:.1f} MB in flight: the tunnel did not stop reading"
    assert peak < RSS_BOUND, f"peak RSS {peak:.1f} MB"


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def test_the_tunnel_ends_when_the_tool_hangs_up_on_a_flood(isolated_env: Path, pki: Any) -> None:
    """The tool closes the tunnel's stdin (its LOGOUT sent) and reads nothing more, while the server
    floods: the tunnel must give up after its linger (2 s), not wait — or spin — for a reader."""
    flood = floods.Flood()
    with flooding_imaps(isolated_env, pki, flood, b"* 1 EXISTS\r\n"):
        argv = [mailpin_command(), "tunnel", "mbsync:lab"]
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        assert proc.stdin is not None and proc.stdout is not None
        try:
            read_exactly(proc.stdout.fileno(), MB, 30)
            settled(flood)
            proc.stdin.close()  # the tool hangs up its side, and reads no more
            started = cpu_seconds(proc.pid)
            try:
                status: int | None = proc.wait(4)
            except subprocess.TimeoutExpired:
                status = None
            burnt = None if status is not None else cpu_seconds(proc.pid) - started
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()
    record(
        "faults",
        fault="flood-tunnel-tool-hangs-up",
        runs=1,
        outcome="tunnel ended after the linger"
        if status is not None
        else f"tunnel still running 4 s later, {burnt:.1f} s of CPU burnt in them",
        figure="" if burnt is None else f"{burnt / 4 * 100:.0f} % of a core",
        passed=status is not None,
    )
    assert status is not None, f"the tunnel did not end; it used {burnt:.1f} s of CPU in 4 s"
