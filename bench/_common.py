"""What the benchmarks share: the lab servers, a throwaway home per case, timed commands with their
CPU time and peak memory, interleaved runs, and the tools' config files.

Every comparison runs A and B alternately in one run (the order rotates each round), so drift in the
machine's load hits both alike; the figure reported is a ratio of medians from that one run.
"""

from __future__ import annotations

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
    cpu_ms: float  # user + system of the command and everything it waited for
    rss_kb: int  # peak resident set of the largest process it waited for (ru_maxrss)


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
        started = time.perf_counter()
        done = subprocess.run(command, env=env, input=stdin, capture_output=True, timeout=timeout)
        wall = (time.perf_counter() - started) * 1000
        cpu = _children_cpu_ms()
        lines = report.read().split()
    if done.returncode != 0:
        said = (done.stdout + done.stderr).decode(errors="replace")[-600:]
        raise RuntimeError(f"{list(argv)[:4]} exited {done.returncode}: {said}")
    return Sample(wall, cpu, int(lines[-1]) if lines else 0)


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


def write_mbsyncrc(
    home: Path,
    ca: Path,
    port: int,
    count: int,
    ssl_type: str = "IMAPS",
    *,
    tunnel: bool = False,
    name: str = ".mbsyncrc",
) -> Path:
    """``count`` accounts on one IMAP endpoint, one channel each (INBOX only, pull). With ``tunnel``,
    each account connects through `Tunnel "mailpin tunnel mbsync:aN"` (the tunnel reads the account's
    endpoint and trust from ~/.mbsyncrc, so write the direct one there)."""
    blocks = []
    for i in range(count):
        box = home / "Mail" / f"a{i}"
        box.mkdir(parents=True, exist_ok=True)
        how = f'Tunnel "{MAILPIN} tunnel mbsync:a{i}"\nSSLType None' if tunnel else f"SSLType {ssl_type}"
        blocks.append(
            f"IMAPAccount a{i}\nHost localhost\nPort {port}\nUser test\nPass secret\n{how}\n"
            f"CertificateFile {ca}\nSystemCertificates no\n\nIMAPStore a{i}-remote\nAccount a{i}\n\n"
            f"MaildirStore a{i}-local\nPath {box}/\nInbox {box}/INBOX\n\n"
            f"Channel a{i}\nFar :a{i}-remote:\nNear :a{i}-local:\nPatterns INBOX\nCreate Near\nSync Pull\n"
        )
    path = home / name
    path.write_text("\n".join(blocks))
    return path
