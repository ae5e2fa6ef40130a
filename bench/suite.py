"""The cost of safety, in one run: regenerates bench/RESULTS.md and bench/results.png.

- one send, `mailpin run msmtp` vs bare msmtp, Implicit TLS and STARTTLS, per round-trip time;
- the timer sync, `mailpin run mbsync -a` vs bare `mbsync -a` over 1, 5 and 20 accounts, per RTT;
- `mailpin check` over 20 accounts vs over one, at 50 ms;
- the TCP connections the server sees per run, bare and wrapped (counted by the latency proxy);
- mbsync pulling 2,000 messages through `mailpin run` (the relay) vs its own TLS, and what the relay
  costs per MB (bench/tunnel_throughput.py);
- start-up: imports, CPU of one `run msmtp` and one `check` above a bare `python -c pass`, peak RSS;
- peers on the same endpoints: openssl s_client, gnutls-cli, msmtp --serverinfo, sslyze.

Real msmtp, mbsync, aiosmtpd and Dovecot on 127.0.0.1, behind bench/latency_proxy.py for the RTTs.
Every comparison interleaves A and B in this one run; medians; ratios B/A.

    bash bench/run                     # installs what it needs, then this with the defaults
    .venv/bin/python bench/suite.py [--runs 7] [--rtts 0,20,50,100] [--quick]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import latency_costs
import peers
from _common import (
    IMPORT_GROUPS,
    MAILPIN,
    MESSAGE,
    ROOT,
    Lab,
    import_groups,
    import_ms,
    lab,
    median_ms,
    timed,
    write_msmtprc,
)
from latency_costs import Pair

# Issue 19's goals: at 50 ms RTT a send ≤ 1.1× bare msmtp, `mbsync -a` (1, 5, 20 accounts, nothing
# new) ≤ 1.1× bare, a 2,000-message pull ≥ 0.95× mbsync's own TLS; CPU and memory of one invocation.
AIMS = {"send": 1.1, "sync": 1.1, "pull": 0.95, "cpu_ms": 60.0, "rss_mb": 40.0}
RELAY = "mailpin"  # the relay's process name: a fork of `mailpin run`, left behind when it becomes the tool
# The standard library that `mailpin run` cannot do without: TLS (ssl, socket, hashlib), its data model
# (dataclasses, datetime, pathlib, re), the caches and chain memo (json), the early connections
# (threading). Not configobj: a run whose settings and pins were read before takes configobj's reading
# from state/memo.py.
FLOOR = "re, ssl, socket, hashlib, datetime, pathlib, dataclasses, json, threading"


def startup(the_lab: Lab, runs: int) -> tuple[dict[str, float], list[tuple[str, float]]]:
    """CPU, imports and memory; and the slowest imports of one `run msmtp` (module, own ms)."""
    home, env = the_lab.home("startup")
    write_msmtprc(home, the_lab.pki.ca_pem, {"smtps": (the_lab.smtp.smtps_port, False)})
    timed([str(MAILPIN), "init", "--yes"], env)
    python = [timed([sys.executable, "-c", "pass"], env) for _ in range(runs)]
    # What any run path must import before a line of mailpin runs: the floor under its CPU.
    floor = [timed([sys.executable, "-c", f"import {FLOOR}"], env) for _ in range(runs)]
    version = [timed([sys.executable, "-m", "mailpin", "--version"], env) for _ in range(runs)]
    check = [timed([str(MAILPIN), "check", "msmtp:smtps"], env) for _ in range(runs)]
    send = [timed([str(MAILPIN), "run", "msmtp", "-a", "smtps", "-t"], env, MESSAGE) for _ in range(runs)]
    bare = [timed(["msmtp", "-a", "smtps", "-t"], env, MESSAGE) for _ in range(runs)]
    # The same `check` with an empty chain memo each time: cryptography's import and a full judgement.
    cold = []
    for i in range(runs):
        cold.append(timed([str(MAILPIN), "check", "msmtp:smtps"], {**env, "XDG_CACHE_HOME": str(home / f"cold{i}")}))
    groups, slowest = import_groups(["-m", "mailpin", "run", "msmtp", "-a", "smtps", "-t"], env, MESSAGE)
    cpu = statistics.median
    return {
        "python_cpu": cpu(s.cpu_ms for s in python),
        "floor_cpu": cpu(s.cpu_ms for s in floor),
        "version_cpu": cpu(s.cpu_ms for s in version),
        "check_cpu": cpu(s.cpu_ms for s in check),
        "check_cold_cpu": cpu(s.cpu_ms for s in cold),
        # `mailpin run` execs msmtp: its CPU includes msmtp's own, measured bare beside it
        "send_cpu": cpu(s.cpu_ms for s in send) - cpu(s.cpu_ms for s in bare),
        "check_wall": median_ms(check),
        "imports_version": import_ms(["-m", "mailpin", "--version"], env),
        "imports_check": import_ms(["-m", "mailpin", "check", "msmtp:smtps"], env),
        # the relay's share of a send (it is in send_cpu too): its TLS with msmtp and with the server
        "relay_cpu": cpu(s.left_cpu_ms(RELAY) for s in send),
        **{f"imports_send_{group}": ms for group, ms in groups.items()},
        "rss_check": max(s.rss_kb for s in check) / 1024,
        # the first send makes the relay's local certificate (state/local_cert.py, with cryptography): once
        "rss_send": max(s.rss_kb for s in send[1:]) / 1024,
        "rss_send_first": send[0].rss_kb / 1024,
        "cpu_send_first": send[0].cpu_ms - cpu(s.cpu_ms for s in bare),
        "rss_python": max(s.rss_kb for s in python) / 1024,
        "rss_msmtp": max(s.rss_kb for s in bare) / 1024,
    }, slowest


def tunnel(runs: int, quick: bool) -> tuple[str, float | None]:
    """bench/tunnel_throughput.py's own report, and its speed ratio (`mailpin run` vs mbsync's TLS)."""
    out = ROOT / "bench" / "results-tunnel.md"
    if quick:  # a smoke run leaves the last real report alone
        out = Path(tempfile.mkdtemp(prefix="mailpin-bench-")) / "results-tunnel.md"
    argv = [sys.executable, str(ROOT / "bench" / "tunnel_throughput.py"), "--runs", str(runs), "--out", str(out)]
    if quick:
        argv += ["--messages", "200", "--no-reference"]
    subprocess.run(argv, check=True, capture_output=True)
    text = out.read_text()
    match = re.search(r"moves mail at ([0-9.]+)×", text)
    return text, float(match.group(1)) if match else None


def pair_rows(pairs: list[Pair]) -> list[str]:
    lines = [
        "| case | RTT | bare | through mailpin | ratio | rounds | CPU added | connections bare / wrapped |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for p in pairs:
        low, high = p.spread
        bare, wrapped = p.connections
        lines.append(
            f"| {p.case} | {p.rtt_ms:g} ms | {p.a_ms:.0f} ms | {p.b_ms:.0f} ms | **{p.ratio:.2f}×** "
            f"| {low:.2f}–{high:.2f}× | {p.b_cpu_ms - p.a_cpu_ms:.0f} ms | {bare} / {wrapped} |"
        )
    return lines


def plot(sends: list[Pair], syncs: list[Pair], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for axis, pairs, title in (
        (left, sends, "one send (msmtp)"),
        (right, syncs, "timer sync (mbsync -a, nothing new)"),
    ):
        for case in dict.fromkeys(p.case for p in pairs):
            points = sorted((p.rtt_ms, p.ratio) for p in pairs if p.case == case)
            label = case.replace("send, ", "").replace("mbsync -a, ", "")
            axis.plot([x for x, _ in points], [y for _, y in points], marker="o", label=label)
        axis.axhline(1.0, color="grey", linewidth=0.8)
        axis.set_title(title)
        axis.set_xlabel("round-trip time (ms)")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    left.axhline(AIMS["send"], color="red", linestyle="--", linewidth=0.8, label="aim")
    right.axhline(AIMS["sync"], color="red", linestyle="--", linewidth=0.8, label="aim")
    left.set_ylabel("time through mailpin / bare tool")
    right.set_yscale("log")  # at 0 ms a sync is ~20 ms bare: ratios of 10× and of 1.2× on one axis
    fig.suptitle("mailpin's cost in front of the real tools (medians, interleaved runs)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--rtts", default="0,20,50,100")
    parser.add_argument("--counts", default="1,5,20")
    parser.add_argument("--quick", action="store_true", help="a smoke run: few runs, small counts, no files")
    parser.add_argument("--note", default="", help="a sentence for the report's header (e.g. what else ran)")
    args = parser.parse_args()
    rtts = [float(x) for x in args.rtts.split(",")]
    counts = [int(x) for x in args.counts.split(",")]
    runs = 2 if args.quick else args.runs
    started = dt.datetime.now(dt.timezone.utc)
    load = os.getloadavg()[0]
    with lab() as the_lab:
        sends = [pair for rtt in rtts for pair in latency_costs.send(the_lab, rtt, runs)]
        print("send done", file=sys.stderr)
        syncs = [pair for rtt in rtts for pair in latency_costs.sync(the_lab, rtt, counts, max(3, runs - 2))]
        print("sync done", file=sys.stderr)
        scale = latency_costs.check_scale(the_lab, 50, 20, runs)
        start, slowest = startup(the_lab, runs)
        peer_rows = peers.compare(the_lab, runs)
        print("peers done", file=sys.stderr)
    tunnel_text, tunnel_speed = tunnel(3 if args.quick else max(5, runs), args.quick)
    report = render(args, started, load, sends, syncs, scale, (start, slowest), peer_rows, tunnel_text, tunnel_speed)
    if args.quick:
        print(report)
        return 0
    (ROOT / "bench" / "RESULTS.md").write_text(report)
    plot(sends, syncs, ROOT / "bench" / "results.png")
    print(report)
    return 0


def reading(
    sends: list[Pair], syncs: list[Pair], start: dict[str, float], slowest: list[tuple[str, float]]
) -> list[str]:
    """Where the added time goes, from this run's own figures: mailpin's CPU, and round trips."""
    lines = ["## Why: where the added time goes", ""]
    for pair in [p for p in sends + syncs if p.rtt_ms == 50 and ("send" in p.case or "1 account" in p.case)]:
        added = pair.b_ms - pair.a_ms
        cpu = pair.b_cpu_ms - pair.a_cpu_ms  # mailpin's and its relay's (the tool's own is in both)
        waiting = added - cpu
        lines.append(
            f"- {pair.case} at 50 ms: +{added:.0f} ms = about {cpu:.0f} ms of CPU added (mailpin and its relay;"
            f" the relay's overlaps the tool's) {waiting:+.0f} ms otherwise ≈ {waiting / 50:+.1f} round trips."
            f" The server saw {pair.connections[1]} connection(s) per wrapped run, {pair.connections[0]} bare"
            + (
                ": mailpin's verified session is the tool's, no pre-flight connection and its round trips."
                if pair.connections[0] == pair.connections[1]
                else ": more than bare, a second connection somewhere (see the connection columns)."
            )
        )
    imports = sum(start[f"imports_send_{group}"] for group in (*IMPORT_GROUPS, "other"))
    own = start["send_cpu"] - start["python_cpu"] - start["relay_cpu"]  # imports and work, this process's
    groups = ", ".join(f"{group} {start[f'imports_send_{group}']:.0f} ms" for group in IMPORT_GROUPS)
    named = ", ".join(f"`{name}` {ms:.1f}" for name, ms in slowest)
    lines.append(
        f"- CPU at 0 ms, one send: `mailpin run msmtp` costs {start['send_cpu']:.0f} ms (msmtp's own CPU"
        f" taken out, the relay's left in): the interpreter's start {start['python_cpu']:.0f} ms"
        f" (`python -c pass`), the relay {start['relay_cpu']:.0f} ms (its TLS with msmtp's side and the"
        f" server's), and {own:.0f} ms of imports and work in `mailpin run` itself. `-X importtime` puts"
        f" {imports:.0f} ms on the imports alone (own times; it inflates them, so imports are most of the"
        f" {own:.0f} ms and the work — configs and pins read, the handshake and its judgement from the chain"
        f" memo, the local certificate, the fork — is the small rest): {groups}, other standard library"
        f" {start['imports_send_other']:.0f} ms; the slowest single modules (own ms): {named}."
    )
    floor = start["floor_cpu"] - start["python_cpu"]
    lines += [
        f"- The floor: importing only what any run path needs from the standard library"
        f" (`{FLOOR}`) costs {floor:.0f} ms above `python -c pass`, which leaves"
        f" {AIMS['cpu_ms'] - floor:.0f} ms of the {AIMS['cpu_ms']:.0f} ms aim for mailpin's own modules and work"
        f" (a send takes {start['send_cpu'] - start['floor_cpu']:.0f} ms for those).",
        "",
    ]
    return lines


def render(args, started, load, sends, syncs, scale, startup_, peer_rows, tunnel_text, tunnel_speed) -> str:  # type: ignore[no-untyped-def]
    start, slowest = startup_
    at50 = [p for p in sends if p.rtt_ms == 50]
    send_worst = max((p.ratio for p in at50), default=float("nan"))
    synced = [p for p in syncs if p.rtt_ms == 50]
    sync_worst = max((p.ratio for p in synced), default=float("nan"))
    counts = "/".join(p.case.rsplit(", ", 1)[1].split()[0] for p in synced) + " accounts"
    unequal = [p for p in sends + syncs if p.connections[0] != p.connections[1]]
    seen = "; ".join(
        f"{c}: {p.connections[0]} / {p.connections[1]}" for c, p in {p.case: p for p in sends + syncs}.items()
    )
    cpu_above = start["check_cpu"] - start["python_cpu"]
    send_above = start["send_cpu"] - start["python_cpu"]
    one = min((p for p in syncs if p.case.endswith(" 1 account")), key=lambda p: p.rtt_ms, default=None)
    sync_above = one.b_cpu_ms - one.a_cpu_ms if one else float("nan")
    rss = max(start["rss_check"], start["rss_send"], start["rss_send_first"])
    met = lambda ok: "met" if ok else "**missed**"  # noqa: E731
    git = ["git", "-C", str(ROOT)]
    commit = subprocess.run([*git, "describe", "--always"], capture_output=True, text=True).stdout.strip()
    changed = subprocess.run([*git, "status", "--porcelain", "--", "src"], capture_output=True, text=True).stdout
    source = f"{commit} ({f'src/ changed: {len(changed.splitlines())} files' if changed else 'src/ clean'})"
    lines = [
        "# The cost of safety: mailpin against the bare tools and its peers",
        "",
        f"Generated by `{shlex.join(['bash', 'bench/run', *sys.argv[1:]])}` (bench/suite.py) on"
        f" {started:%Y-%m-%d %H:%M} UTC, mailpin {source}, Python {platform.python_version()}, {os.cpu_count()}"
        f" CPUs, load average {load:.1f} at the start. Real msmtp, mbsync, aiosmtpd and Dovecot on 127.0.0.1;"
        " round-trip times injected by bench/latency_proxy.py (RTT/2 each way on every byte, connects charged"
        " one RTT), which also counts the connections the server sees. Medians of"
        f" {2 if args.quick else args.runs} interleaved runs (A, B alternating, order rotated; mbsync:"
        f" {max(3, (2 if args.quick else args.runs) - 2)}); ratio = B / A from the same run;"
        ' "rounds" is the lowest and highest round-by-round ratio; "CPU added" is B\'s CPU less A\'s, the relay'
        " included (this process is the subreaper of what `mailpin run` leaves beside the tool, and reaps it)."
        " Plot: results.png." + (f" {args.note}" if args.note else ""),
        "",
        "## Where we stand against the aims (issue 19)",
        "",
        "| aim | measured | |",
        "|---|---:|---|",
        f"| the server sees as many connections per run wrapped as bare | {seen} (bare / wrapped) "
        f"| {met(not unequal)} |",
        f"| a wrapped send at 50 ms RTT ≤ {AIMS['send']}× bare msmtp, Implicit TLS and STARTTLS |"
        f" {' / '.join(f'{p.ratio:.2f}×' for p in at50)} | {met(send_worst <= AIMS['send'])} |",
        f"| `mbsync -a`, nothing new, ≤ {AIMS['sync']}× bare (50 ms RTT) | "
        f"{' / '.join(f'{p.ratio:.2f}×' for p in synced)} ({counts}) | {met(sync_worst <= AIMS['sync'])} |",
        f"| a 2,000-message pull ≥ {AIMS['pull']}× mbsync's own TLS | "
        + (f"{tunnel_speed:.2f}× | {met(tunnel_speed >= AIMS['pull'])} |" if tunnel_speed else "n/a | |"),
        f"| mailpin's CPU ≤ {AIMS['cpu_ms']:.0f} ms above `python -c pass` | "
        f"{send_above:.0f} ms (`run msmtp`, one send, relay included); {sync_above:.0f} ms (`run mbsync -a`, one"
        f" account{f', {one.rtt_ms:g} ms RTT' if one else ''}); {cpu_above:.0f} ms (`check`, one account) "
        f"| {met(max(send_above, sync_above, cpu_above) <= AIMS['cpu_ms'])} |",
        f"| peak RSS ≤ {AIMS['rss_mb']:.0f} MB | {rss:.1f} MB at worst (the first `run msmtp`, which makes the"
        f" local certificate: {start['rss_send_first']:.1f} MB; later ones {start['rss_send']:.1f} MB; `check`"
        f" {start['rss_check']:.1f} MB) | {met(rss <= AIMS['rss_mb'])} |",
        "",
        *reading(sends, syncs, start, slowest),
        "## One send: `mailpin run msmtp -t` vs `msmtp -t`",
        "",
        *pair_rows(sends),
        "",
        "## The timer sync: `mailpin run mbsync -a` vs `mbsync -a`, nothing new",
        "",
        *pair_rows(syncs),
        "",
        "## `mailpin check`: 20 accounts vs one, 50 ms RTT (A = one account, B = twenty)",
        "",
        *pair_rows([scale]),
        "",
        "## Start-up and memory",
        "",
        "| | |",
        "|---|---:|",
        f"| `python -c pass`, CPU | {start['python_cpu']:.0f} ms |",
        f"| `mailpin --version`, CPU | {start['version_cpu']:.0f} ms |",
        f"| imports of `mailpin --version` (-X importtime) | {start['imports_version']:.0f} ms |",
        f"| imports of `mailpin check` | {start['imports_check']:.0f} ms |",
        f"| `mailpin check`, one account, loopback: CPU / wall | {start['check_cpu']:.0f} / "
        f"{start['check_wall']:.0f} ms |",
        f"| the same, chain memo empty (a full judgement): CPU | {start['check_cold_cpu']:.0f} ms |",
        f"| `mailpin run msmtp -t`, one send: CPU less msmtp's own (relay included) | {start['send_cpu']:.0f} ms |",
        f"| of which the relay | {start['relay_cpu']:.0f} ms |",
        f"| the first `run msmtp` of a state directory (it makes the local certificate): CPU / peak RSS |"
        f" {start['cpu_send_first']:.0f} ms / {start['rss_send_first']:.1f} MB |",
        f"| peak RSS: `python -c pass` / `check` / later `run msmtp` (mailpin, then msmtp in the same process) / bare"
        f" msmtp | {start['rss_python']:.1f} / {start['rss_check']:.1f} / {start['rss_send']:.1f} /"
        f" {start['rss_msmtp']:.1f} MB |",
        "",
        "## Peers on the same endpoint (loopback, whole commands; ratio = mailpin probe / peer)",
        "",
        *peers.table(peer_rows),
        "",
        "## mbsync pulling mail through `mailpin run` (bench/tunnel_throughput.py, its report)",
        "",
        *tunnel_text.split("\n", 2)[2:],
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
