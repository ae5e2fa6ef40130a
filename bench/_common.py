"""What the benchmarks share: the lab servers, a throwaway home per case, timed commands with their
CPU time and peak memory, interleaved runs, and the tools' config files.

What a command leaves behind is counted as its own: `mailpin run` forks its relay beside the tool
and the tool does not wait for it (nor mbsync for its Tunnel's `cat`), so this process makes itself
their subreaper (Linux prctl) and reaps them after each command, their CPU added to the command's.

Every comparison runs A and B alternately in one run (the order rotates each round), so drift in the
machine's load hits both alike; the figure reported is a ratio of medians from that one run.
"""

from __future__ import annotations

import ctypes
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.lab.dovecot import Dovecot  # noqa: E402
from tests.lab.pki import TestPKI  # noqa: E402
from tests.lab.smtpd import SmtpServer  # noqa: E402

MAILPIN = Path(sys.executable).parent / "mailpin"  # the venv's entry script, as a user's shim runs it
MESSAGE = b"From: alice@example.org\nTo: you@example.org\nSubject: bench\n\nHello.\n"


@dataclass(frozen=True)
class Sample:
    wall_ms: float
    cpu_ms: float  # user + system of the command, everything it waited for and everything it left behind
    rss_kb: int  # peak resident set of the largest process it waited for (ru_maxrss)
    left: tuple[tuple[str, float], ...] = ()  # what it left behind: (process name, CPU ms), e.g. the relay
    connections: int | None = None  # TCP connections the server side saw (bench/latency_proxy.py counts)

    def left_cpu_ms(self, name: str) -> float:
        return sum(cpu for comm, cpu in self.left if comm == name)


@dataclass(frozen=True)
class Lab:
    work: Path
    pki: TestPKI
    smtp: SmtpServer
    dovecot: Dovecot
    pycache: Path

    def home(self, name: str) -> tuple[Path, dict[str, str]]:
        """A fresh home directory and the environment that points HOME and XDG into it."""
        home = self.work / name
        home.mkdir()
        env = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config")}
        env["XDG_STATE_HOME"] = str(home / ".local" / "state")
        env["XDG_RUNTIME_DIR"] = str(home / "run")
        (home / "run").mkdir(mode=0o700)
        env.pop("DBUS_SESSION_BUS_ADDRESS", None)  # no desktop notifications from a benchmark
        # Byte-code cached as in an installed mailpin, outside the repository's tree.
        env["PYTHONPYCACHEPREFIX"] = str(self.pycache)
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        return home, env


@contextmanager
def lab() -> Iterator[Lab]:
    """The lab PKI, aiosmtpd (SMTPS + submission) and Dovecot on 127.0.0.1, in a temporary directory."""
    adopt_orphans()
    work = Path(tempfile.mkdtemp(prefix="mailpin-bench-"))
    pki = TestPKI(work / "pki")
    smtp, dovecot = SmtpServer(pki), Dovecot(work / "dovecot", pki)
    smtp.start("good")
    dovecot.start("good")
    try:
        yield Lab(work, pki, smtp, dovecot, work / "pycache")
    finally:
        smtp.stop()
        dovecot.cleanup()


GNU_TIME = "/usr/bin/time"  # Debian's `time`: a small parent, so ru_maxrss is the command's own


def timed(argv: Sequence[str], env: dict[str, str] | None = None, stdin: bytes = b"", timeout: float = 600) -> Sample:
    """Run argv to completion; its wall time, CPU time and peak RSS. A non-zero exit is an error.

    Peak RSS comes from GNU time, not from our own wait4: Linux carries the spawning process's
    high-water RSS over exec into the child's ru_maxrss, so a child of this Python process would
    never report less than this process's size.
    """
    with tempfile.NamedTemporaryFile("r", prefix="mailpin-bench-rss-") as report:
        command = [GNU_TIME, "-q", "-f", "%M", "-o", report.name, *argv]
        present = children()
        started = time.perf_counter()
        done = subprocess.run(command, env=env, input=stdin, capture_output=True, timeout=timeout)
        wall = (time.perf_counter() - started) * 1000
        left = reap_orphans(present)
        cpu = _children_cpu_ms()
        lines = report.read().split()
    if done.returncode != 0:
        said = (done.stdout + done.stderr).decode(errors="replace")[-600:]
        raise RuntimeError(f"{list(argv)[:4]} exited {done.returncode}: {said}")
    return Sample(wall, cpu, int(lines[-1]) if lines else 0, left)


_PR_SET_CHILD_SUBREAPER = 36  # <linux/prctl.h>


def adopt_orphans() -> None:
    """Make this process the subreaper of everything it starts: a process whose parent exits (the
    relay of `mailpin run` once the tool is gone) becomes this process's child, to be reaped here."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


def children() -> dict[int, str]:
    """This process's children now: pid -> name (comm)."""
    me, found = os.getpid(), {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:  # gone meanwhile
            continue
        comm, _, rest = stat.rpartition(")")  # the name may hold spaces and parentheses
        if int(rest.split()[1]) == me:
            found[int(entry.name)] = comm.partition("(")[2]
    return found


def reap_orphans(present: dict[int, str], timeout: float = 15) -> tuple[tuple[str, float], ...]:
    """Wait for the children that were not there before (`present`): what the last command left
    behind. Their names and CPU (ms); they end on their own once the tool has (the relay watches it)."""
    deadline = time.monotonic() + timeout
    reaped: list[tuple[str, float]] = []
    while orphans := {pid: name for pid, name in children().items() if pid not in present}:
        for pid, name in orphans.items():
            while (got := os.wait4(pid, os.WNOHANG))[0] == 0:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{name} (pid {pid}) left behind by the last command did not end")
                time.sleep(0.005)
            usage = got[2]
            reaped.append((name, (usage.ru_utime + usage.ru_stime) * 1000))
    return tuple(reaped)


_SPENT = [0.0]


def _children_cpu_ms() -> float:
    """CPU (user + system, ms) of the children reaped since the previous call."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = (usage.ru_utime + usage.ru_stime) * 1000
    spent, _SPENT[0] = total - _SPENT[0], total
    return spent


def import_ms(argv: Sequence[str], env: dict[str, str] | None = None) -> float:
    """Cumulative time of the top-level imports of `python -X importtime ARGV…` (ms)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", *argv], capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL
    )
    total = 0
    for line in done.stderr.splitlines():
        match = re.match(r"import time:\s+\d+ \|\s+(\d+) \|( *)(\S+)", line)
        if match and len(match.group(2)) == 1:  # top-level imports only: their cumulative times add up
            total += int(match.group(1))
    return total / 1000


IMPORT_GROUPS = ("mailpin", "cryptography", "configobj", "ssl")


def import_groups(
    argv: Sequence[str], env: dict[str, str], stdin: bytes = b""
) -> tuple[dict[str, float], list[tuple[str, float]]]:
    """Own import time (ms) of `python -X importtime ARGV…` by top-level package — mailpin's own
    modules, cryptography, configobj, ssl (with _ssl), and "other" (the rest of the standard library) —
    and the five modules that take longest of their own."""
    present = children()
    done = subprocess.run([sys.executable, "-X", "importtime", *argv], input=stdin, capture_output=True, env=env)
    reap_orphans(present)  # `mailpin run`'s relay, whose own imports are in the same stderr
    groups = dict.fromkeys((*IMPORT_GROUPS, "other"), 0.0)
    modules = []
    for line in done.stderr.decode(errors="replace").splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+\d+ \|\s*(\S+)", line)
        if match:
            own, name = int(match.group(1)) / 1000, match.group(2)
            top = name.split(".")[0].lstrip("_")
            groups[top if top in groups else "other"] += own
            modules.append((name, own))
    return groups, sorted(modules, key=lambda item: item[1], reverse=True)[:5]


def interleaved(cases: dict[str, Callable[[], Sample]], runs: int, warmup: int = 1) -> dict[str, list[Sample]]:
    """Run every case ``runs`` times, alternating (order rotated each round) after ``warmup`` rounds."""
    names = list(cases)
    samples: dict[str, list[Sample]] = {name: [] for name in names}
    for round_ in range(warmup + runs):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            sample = cases[name]()
            if round_ >= warmup:
                samples[name].append(sample)
    return samples


def median_ms(samples: Sequence[Sample]) -> float:
    return statistics.median(sample.wall_ms for sample in samples)


def write_msmtprc(home: Path, ca: Path, accounts: dict[str, tuple[int, bool]]) -> None:
    """accounts: name -> (port on 127.0.0.1, STARTTLS?); the certificate is for `localhost`."""
    lines = ["defaults", "tls on", f"tls_trust_file {ca}", "host localhost", ""]
    for name, (port, starttls) in accounts.items():
        lines += [f"account {name}", f"port {port}", f"tls_starttls {'on' if starttls else 'off'}"]
        lines += [f"from {name}@example.org", ""]
    path = home / ".msmtprc"
    path.write_text("\n".join(lines))
    path.chmod(0o600)


def write_mbsyncrc(home: Path, ca: Path, port: int, count: int, ssl_type: str = "IMAPS") -> Path:
    """``count`` accounts on one IMAP endpoint, one channel each (INBOX only, pull), in ~/.mbsyncrc."""
    blocks = []
    for i in range(count):
        box = home / "Mail" / f"a{i}"
        box.mkdir(parents=True, exist_ok=True)
        blocks.append(
            f"IMAPAccount a{i}\nHost localhost\nPort {port}\nUser test\nPass secret\nSSLType {ssl_type}\n"
            f"CertificateFile {ca}\nSystemCertificates no\n\nIMAPStore a{i}-remote\nAccount a{i}\n\n"
            f"MaildirStore a{i}-local\nPath {box}/\nInbox {box}/INBOX\n\n"
            f"Channel a{i}\nFar :a{i}-remote:\nNear :a{i}-local:\nPatterns INBOX\nCreate Near\nSync Pull\n"
        )
    path = home / ".mbsyncrc"
    path.write_text("\n".join(blocks))
    return path
