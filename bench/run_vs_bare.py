"""Benchmark: `mailpin run` in front of the real tools vs the bare tools, in one run, interleaved.

- one send: `mailpin run msmtp -t` vs `msmtp -t`, Implicit TLS and STARTTLS (the lab aiosmtpd);
- the timer case: `mailpin run mbsync -a` vs `mbsync -a` with nothing new, over 1 and 10 accounts
  (the lab Dovecot, one IMAPS account per channel).

Loopback only (no network latency): the ratio is mailpin's own cost — start-up, config reading,
one verification handshake per account (concurrent), the audit log — on top of the tool's.

    .venv/bin/python bench/run_vs_bare.py [--runs 11] [--out bench/results-run.md]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.lab.dovecot import Dovecot  # noqa: E402
from tests.lab.pki import TestPKI  # noqa: E402
from tests.lab.smtpd import SmtpServer  # noqa: E402

MAILPIN = [sys.executable, "-m", "mailpin", "run"]
MESSAGE = b"From: alice@example.org\nTo: you@example.org\nSubject: bench\n\nHello.\n"


def timed(argv: list[str], env: dict[str, str], stdin: bytes = b"") -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, input=stdin, capture_output=True, env=env, timeout=120)
    elapsed = (time.perf_counter() - started) * 1000
    if done.returncode != 0:
        raise RuntimeError(f"{argv} exited {done.returncode}: {done.stderr.decode()[-400:]}")
    return elapsed


def msmtprc(home: Path, ca: Path, smtps: int, submission: int) -> None:
    (home / ".msmtprc").write_text(
        f"defaults\ntls on\ntls_trust_file {ca}\nhost localhost\n\n"
        f"account smtps\nport {smtps}\ntls_starttls off\nfrom alice@example.org\n\n"
        f"account submission\nport {submission}\ntls_starttls on\nfrom bob@example.org\n"
    )
    (home / ".msmtprc").chmod(0o600)


def mbsyncrc(home: Path, ca: Path, port: int, count: int) -> None:
    blocks = []
    for i in range(count):
        box = home / "Mail" / f"a{i}"
        box.mkdir(parents=True, exist_ok=True)
        blocks.append(
            f"IMAPAccount a{i}\nHost localhost\nPort {port}\nUser test\nPass secret\nSSLType IMAPS\n"
            f"CertificateFile {ca}\nSystemCertificates no\n\nIMAPStore a{i}-remote\nAccount a{i}\n\n"
            f"MaildirStore a{i}-local\nPath {box}/\nInbox {box}/INBOX\n\n"
            f"Channel a{i}\nFar :a{i}-remote:\nNear :a{i}-local:\nPatterns INBOX\nCreate Near\nSync Pull\n"
        )
    (home / ".mbsyncrc").write_text("\n".join(blocks))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=11)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results-run.md")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mailpin-bench-run-"))
    pki = TestPKI(work / "pki")
    smtp, dovecot = SmtpServer(pki), Dovecot(work / "dovecot", pki)
    smtp.start("good")
    dovecot.start("good")
    msmtp, mbsync = shutil.which("msmtp"), shutil.which("mbsync")
    assert msmtp and mbsync, "msmtp and mbsync must be installed"
    rows: list[tuple[str, float, float]] = []
    try:
        for label, count in (("send", 0), ("mbsync 1", 1), ("mbsync 10", 10)):
            home = work / f"home-{label.replace(' ', '')}"
            home.mkdir()
            env = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config")}
            env["XDG_STATE_HOME"] = str(home / ".local" / "state")
            if count == 0:
                msmtprc(home, pki.ca_pem, smtp.smtps_port, smtp.submission_port)
                cases = {
                    "msmtp send, Implicit TLS": (
                        [msmtp, "-a", "smtps", "-t"],
                        [*MAILPIN, "msmtp", "-a", "smtps", "-t"],
                    ),
                    "msmtp send, STARTTLS": (
                        [msmtp, "-a", "submission", "-t"],
                        [*MAILPIN, "msmtp", "-a", "submission", "-t"],
                    ),
                }
            else:
                mbsyncrc(home, pki.ca_pem, dovecot.imaps_port, count)
                timed([mbsync, "-a"], env)  # first sync: creates the local boxes; later runs find nothing new
                cases = {
                    f"mbsync -a, {count} account{'s' * (count > 1)}, nothing new": (
                        [mbsync, "-a"],
                        [*MAILPIN, "mbsync", "-a"],
                    )
                }
            timed([sys.executable, "-m", "mailpin", "init", "--yes"], env)
            for name, (bare, wrapped) in cases.items():
                samples: dict[str, list[float]] = {"bare": [], "wrapped": []}
                for _ in range(args.runs):  # interleaved: drift hits both alike
                    samples["bare"].append(timed(bare, env, MESSAGE))
                    samples["wrapped"].append(timed(wrapped, env, MESSAGE))
                rows.append((name, statistics.median(samples["bare"]), statistics.median(samples["wrapped"])))
    finally:
        smtp.stop()
        dovecot.cleanup()
    lines = [
        "# `mailpin run` vs the bare tools (loopback)",
        "",
        f"Medians of {args.runs} interleaved runs, whole commands, {os.cpu_count()} CPUs; lab aiosmtpd and Dovecot on",
        "127.0.0.1 (no network latency: the difference is mailpin's own work plus one verification handshake",
        "per account, run concurrently). Generated by `bench/run_vs_bare.py`.",
        "",
        "| case | bare | through mailpin | ratio | added |",
        "|---|---:|---:|---:|---:|",
        *(
            f"| {name} | {bare:.0f} ms | {wrapped:.0f} ms | {wrapped / bare:.2f}× | +{wrapped - bare:.0f} ms |"
            for name, bare, wrapped in rows
        ),
        "",
    ]
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
