"""What mailpin adds on a network with latency: one send, the timer sync, `check` over many accounts.

Each case gets its own home, its accounts pointing at the lab servers *through* a latency proxy
(bench/latency_proxy.py) with the given round-trip time, pinned with `mailpin init --yes` over that
very path. Bare and wrapped runs alternate; medians and their ratio come from the same run. The
proxy counts the connections the server sees in each run (issue 19: as many wrapped as bare).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from _common import MAILPIN, MESSAGE, Lab, Sample, interleaved, median_ms, timed, write_mbsyncrc, write_msmtprc
from latency_proxy import LatencyProxy


@dataclass(frozen=True)
class Pair:
    """One comparison: A (bare, or the reference) and B (through mailpin), same run, interleaved."""

    case: str
    rtt_ms: float
    a: list[Sample]
    b: list[Sample]

    @property
    def a_ms(self) -> float:
        return median_ms(self.a)

    @property
    def b_ms(self) -> float:
        return median_ms(self.b)

    @property
    def ratio(self) -> float:
        return self.b_ms / self.a_ms

    @property
    def spread(self) -> tuple[float, float]:
        """Lowest and highest round-by-round ratio B/A."""
        rounds = [b.wall_ms / a.wall_ms for a, b in zip(self.a, self.b, strict=True)]
        return min(rounds), max(rounds)

    @property
    def a_cpu_ms(self) -> float:
        return statistics.median(sample.cpu_ms for sample in self.a)

    @property
    def b_cpu_ms(self) -> float:
        return statistics.median(sample.cpu_ms for sample in self.b)

    @property
    def connections(self) -> tuple[str, str]:
        """Connections the server saw per run, A and B: "1", or a range when runs differed."""
        return _span(self.a), _span(self.b)


def _span(samples: Sequence[Sample]) -> str:
    seen = sorted({s.connections for s in samples if s.connections is not None})
    return "—" if not seen else f"{seen[0]}" if len(seen) == 1 else f"{seen[0]}–{seen[-1]}"


def counted(proxy: LatencyProxy, run: Callable[[], Sample]) -> Callable[[], Sample]:
    """`run`, its sample carrying how many connections the proxy accepted meanwhile."""

    def again() -> Sample:
        before = proxy.accepted()
        sample = run()
        return replace(sample, connections=proxy.accepted() - before)

    return again


def send(lab: Lab, rtt_ms: float, runs: int) -> list[Pair]:
    """`msmtp -t` vs `mailpin run msmtp -t`, Implicit TLS and STARTTLS."""
    ports = [lab.smtp.smtps_port, lab.smtp.submission_port]
    with LatencyProxy(rtt_ms, ports) as proxy:
        home, env = lab.home(f"send-{rtt_ms:g}")
        write_msmtprc(
            home,
            lab.pki.ca_pem,
            {"smtps": (proxy.port(ports[0]), False), "submission": (proxy.port(ports[1]), True)},
        )
        timed([str(MAILPIN), "init", "--yes"], env)
        pairs = []
        for account, mode in (("smtps", "Implicit TLS"), ("submission", "STARTTLS")):
            bare = ["msmtp", "-a", account, "-t"]
            wrapped = [str(MAILPIN), "run", *bare]
            got = interleaved(
                {
                    "a": counted(proxy, lambda bare=bare: timed(bare, env, MESSAGE)),
                    "b": counted(proxy, lambda w=wrapped: timed(w, env, MESSAGE)),
                },
                runs,
            )
            pairs.append(Pair(f"send, {mode}", rtt_ms, got["a"], got["b"]))
    return pairs


def sync(lab: Lab, rtt_ms: float, counts: list[int], runs: int) -> list[Pair]:
    """`mbsync -a` vs `mailpin run mbsync -a`, nothing new to fetch (the timer case). Wrapped, mbsync
    reaches each account through the session mailpin verified (its Tunnel joined to the relay)."""
    port = lab.dovecot.imaps_port
    pairs = []
    with LatencyProxy(rtt_ms, [port]) as proxy:
        for count in counts:
            home, env = lab.home(f"sync-{rtt_ms:g}-{count}")
            write_mbsyncrc(home, lab.pki.ca_pem, proxy.port(port), count)
            timed(["mbsync", "-a"], env)  # the first sync creates the local boxes; later runs find nothing new
            timed([str(MAILPIN), "init", "--yes"], env)
            got = interleaved(
                {
                    "a": counted(proxy, lambda env=env: timed(["mbsync", "-a"], env)),
                    "b": counted(proxy, lambda env=env: timed([str(MAILPIN), "run", "mbsync", "-a"], env)),
                },
                runs,
            )
            label = f"{count} account{'s' * (count > 1)}"
            pairs.append(Pair(f"mbsync -a, {label}", rtt_ms, got["a"], got["b"]))
    return pairs


def check_scale(lab: Lab, rtt_ms: float, count: int, runs: int) -> Pair:
    """`mailpin check` of one account (A) vs of ``count`` accounts (B): verifications run concurrently."""
    port = lab.smtp.smtps_port
    with LatencyProxy(rtt_ms, [port]) as proxy:
        home, env = lab.home(f"check-{rtt_ms:g}")
        accounts = {f"a{i}": (proxy.port(port), False) for i in range(count)}
        write_msmtprc(home, lab.pki.ca_pem, accounts)
        timed([str(MAILPIN), "init", "--yes"], env)
        got = interleaved(
            {
                "a": lambda: timed([str(MAILPIN), "check", "msmtp:a0"], env),
                "b": lambda: timed([str(MAILPIN), "check"], env),
            },
            runs,
        )
    return Pair(f"check, 1 vs {count} accounts", rtt_ms, got["a"], got["b"])
