"""Benchmark: `mailpin probe` against `openssl s_client` on the same lab endpoint, and start-up.

Starts the test lab (a real Dovecot for IMAP/POP3 and aiosmtpd for SMTP, both modes, on
127.0.0.1), then for each endpoint runs the two commands interleaved (A, B, A, B, …) so both see
the same machine load, and reports medians and the ratio. Both are whole commands, process start
included, since that is what a user or a hook pays. Also reports mailpin's import time.

    .venv/bin/python bench/probe_vs_openssl.py [--runs 15] [--out bench/results-probe.md]

This is a measurement, not a test: it prints figures and never fails on them.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _common import import_ms  # noqa: E402

from mailpin.model import Endpoint, Mode, Protocol  # noqa: E402
from mailpin.net.probe import probe  # noqa: E402
from mailpin.trust import anchors  # noqa: E402
from mailpin.trust.judge import Judge  # noqa: E402
from tests.lab.dovecot import Dovecot  # noqa: E402
from tests.lab.pki import TestPKI  # noqa: E402
from tests.lab.smtpd import SmtpServer  # noqa: E402

OPENSSL_STARTTLS = {"imap": "imap", "smtp": "smtp", "pop3": "pop3"}


def timed(argv: list[str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
    elapsed = (time.perf_counter() - started) * 1000
    if done.returncode != 0:
        raise RuntimeError(f"{argv[:3]} exited {done.returncode}: {done.stderr.decode()[-300:]}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results-probe.md")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="mailpin-bench-"))
    pki = TestPKI(work / "pki")
    dovecot, smtpd = Dovecot(work / "dovecot", pki), SmtpServer(pki)
    dovecot.start("good")
    smtpd.start("good")
    judge = Judge(anchors.locate(str(pki.ca_pem), {}), memo=None)
    try:
        endpoints = [
            ("imap", "implicit", dovecot.imaps_port),
            ("imap", "starttls", dovecot.imap_port),
            ("pop3", "implicit", dovecot.pop3s_port),
            ("pop3", "starttls", dovecot.pop3_port),
            ("smtp", "implicit", smtpd.smtps_port),
            ("smtp", "starttls", smtpd.submission_port),
        ]
        rows = []
        for protocol, mode, port in endpoints:
            mailpin = [sys.executable, "-m", "mailpin", "probe", f"127.0.0.1:{port}", "--protocol", protocol,
                       "--mode", mode, "--servername", "localhost", "--trust-file", str(pki.ca_pem),
                       "--json"]  # fmt: skip
            openssl = ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername", "localhost",
                       "-CAfile", str(pki.ca_pem), "-verify_return_error", "-brief"]  # fmt: skip
            if mode == "starttls":
                openssl += ["-starttls", OPENSSL_STARTTLS[protocol]]
            endpoint = Endpoint("127.0.0.1", port, Protocol(protocol), Mode(mode), "localhost")
            a, b, c = [], [], []
            timed(mailpin), timed(openssl)  # warm caches
            for _ in range(args.runs):
                a.append(timed(mailpin))
                b.append(timed(openssl))
                started = time.perf_counter()
                probe(endpoint, judge, now=lambda: datetime.now(timezone.utc))
                c.append((time.perf_counter() - started) * 1000)
            ma, mb, mc = statistics.median(a), statistics.median(b), statistics.median(c)
            rows.append((f"{protocol} {mode}", ma, mb, ma / mb, mc))
        python_pass = statistics.median(timed([sys.executable, "-c", "pass"]) for _ in range(args.runs))
        version = statistics.median(timed([sys.executable, "-m", "mailpin", "--version"]) for _ in range(args.runs))
        imports_version = import_ms(["-m", "mailpin", "--version"])
        imports_probe = import_ms(
            ["-m", "mailpin", "probe", f"127.0.0.1:{dovecot.imaps_port}", "--protocol", "imap", "--mode",
             "implicit", "--servername", "localhost", "--trust-file", str(pki.ca_pem)]
        )  # fmt: skip
    finally:
        smtpd.stop()
        dovecot.cleanup()

    lines = [
        "# mailpin probe vs openssl s_client (loopback, medians)",
        "",
        f"{args.runs} interleaved runs per endpoint, whole commands (process start included), "
        f"Python {sys.version.split()[0]}. The last column is the dialogue, handshake and chain validation "
        "alone (`mailpin.net.probe.probe`, no interpreter start or imports).",
        "",
        "| endpoint | mailpin probe ms | openssl s_client ms | ratio | probe() in-process ms |",
        "|---|---:|---:|---:|---:|",
        *(f"| {name} | {ma:.1f} | {mb:.1f} | {ratio:.2f}× | {mc:.1f} |" for name, ma, mb, ratio, mc in rows),
        "",
        "| start-up | ms |",
        "|---|---:|",
        f"| `python -c pass` | {python_pass:.1f} |",
        f"| `python -m mailpin --version` | {version:.1f} |",
        f"| imports of `mailpin --version` (-X importtime) | {imports_version:.1f} |",
        f"| imports of `mailpin probe` (-X importtime) | {imports_probe:.1f} |",
    ]
    text = "\n".join(lines) + "\n"
    args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
