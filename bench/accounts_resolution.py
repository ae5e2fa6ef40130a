"""Benchmark: how long mailpin takes to work out which accounts an invocation uses.

This is the part of every wrapped send/sync that runs before any network: reading the tool's
config and resolving its argv. Compared, interleaved, with the bare tool doing its own resolution
(`msmtp --pretend`, which reads the same config and picks the account, then exits), on a config of
20 accounts written to a temporary HOME. Whole commands, process start included; plus the
in-process cost of `configs.discover.for_invocation`.

    .venv/bin/python bench/accounts_resolution.py [--runs 21] [--out bench/results-accounts.md]
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from mailpin.configs.discover import for_invocation  # noqa: E402
from mailpin.env import Env  # noqa: E402
from mailpin.model import Tool  # noqa: E402

MESSAGE = b"From: Me <me19@example.org>\r\nTo: you@example.org\r\nSubject: x\r\n\r\nbody\r\n"


def write_configs(home: Path, count: int) -> None:
    lines = ["defaults", "tls on", "tls_trust_file /etc/ssl/certs/ca-certificates.crt", ""]
    for i in range(count):
        lines += [f"account acct{i}", f"host smtp{i}.example.org", f"from me{i}@example.org", "tls_starttls off", ""]
    lines.append("account default : acct0")
    (home / ".msmtprc").write_text("\n".join(lines) + "\n")
    (home / ".msmtprc").chmod(0o600)


def timed(argv: list[str], env: dict[str, str], stdin: bytes) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, input=stdin, capture_output=True, env=env, timeout=30)
    elapsed = (time.perf_counter() - started) * 1000
    if done.returncode != 0:
        raise RuntimeError(f"{argv[:4]} exited {done.returncode}: {done.stderr.decode()[-300:]}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--accounts", type=int, default=20)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results-accounts.md")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="mailpin-bench-home-"))
    write_configs(home, args.accounts)
    env = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config")}
    cases = [
        ("-a acct7 (named account)", ["-a", "acct7", "rcpt@example.org"]),
        ("--read-envelope-from -t (From header decides)", ["--read-envelope-from", "-t"]),
    ]
    rows = []
    for label, tool_args in cases:
        mailpin = [sys.executable, "-m", "mailpin", "accounts", "--for", "msmtp", "--", *tool_args]
        bare = ["msmtp", "--pretend", *tool_args]
        a, b, c = [], [], []
        timed(mailpin, env, MESSAGE), timed(bare, env, MESSAGE)
        for _ in range(args.runs):
            a.append(timed(mailpin, env, MESSAGE))
            b.append(timed(bare, env, MESSAGE))
            started = time.perf_counter()
            in_env = Env(environ=env, stdout=io.StringIO(), stderr=io.StringIO(), stdin=io.StringIO())
            for_invocation(Tool.MSMTP, tool_args, in_env, lambda: MESSAGE)
            c.append((time.perf_counter() - started) * 1000)
        ma, mb, mc = statistics.median(a), statistics.median(b), statistics.median(c)
        rows.append((label, ma, mb, ma / mb, mc))
    text = "\n".join(
        [
            "# Account resolution: mailpin vs the bare tool (medians)",
            "",
            f"msmtp config of {args.accounts} accounts, {args.runs} interleaved runs, whole commands "
            f"(process start included), Python {sys.version.split()[0]}. Last column: "
            "`for_invocation` in-process (read + parse + select, no interpreter start).",
            "",
            "| invocation | `mailpin accounts --for msmtp` ms | `msmtp --pretend` ms | ratio | in-process ms |",
            "|---|---:|---:|---:|---:|",
            *(f"| {label} | {ma:.1f} | {mb:.1f} | {r:.2f}× | {mc:.2f} |" for label, ma, mb, r, mc in rows),
        ]
    )
    args.out.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
