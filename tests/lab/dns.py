"""A real DNS server for the lab: Debian's dnsmasq on 127.0.0.1, answering from the lab's records only.

It serves the SRV records a test gives it (`_submissions._tcp.example.org` → `localhost:PORT`, and
the "." record that says a service is not offered), and answers NXDOMAIN for every other name in the
lab's domains (`--local`): no upstream, no /etc/hosts, nothing from the machine's own resolver. mailpin
is pointed at it with `[dns] nameservers = 127.0.0.1@PORT`; the tests never use the system's resolver.
"""

from __future__ import annotations

import getpass
import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from . import stop_child
from .pki import free_port

DOMAINS = ("example.org", "example.net", "example.com")
SBIN = "/usr/sbin"


def dnsmasq() -> str | None:
    return shutil.which("dnsmasq", path=f"{SBIN}:/usr/bin:/sbin:/bin")


class DnsServer:
    """`srv`: (owner name, target, port, priority, weight); target "." (or None) for "not offered"."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def nameserver(self) -> str:
        return f"127.0.0.1@{self.port}"

    def serve(self, srv: Sequence[tuple[str, str | None, int, int, int]] = ()) -> None:
        """(Re)start with exactly these records."""
        self.stop()
        binary = dnsmasq()
        assert binary is not None, "dnsmasq is not installed"
        lines = [f"local=/{domain}/" for domain in DOMAINS]
        for name, target, port, priority, weight in srv:
            lines.append(
                f"srv-host={name}" if target in (None, ".") else f"srv-host={name},{target},{port},{priority},{weight}"
            )
        conf = self.directory / "dnsmasq.conf"
        self.directory.mkdir(parents=True, exist_ok=True)
        conf.write_text("\n".join(lines) + "\n")
        for _ in range(5):
            self.port = free_port()
            self._process = subprocess.Popen(
                [binary, "--keep-in-foreground", f"--conf-file={conf}", f"--port={self.port}",
                 "--listen-address=127.0.0.1", "--bind-interfaces", "--no-resolv", "--no-hosts", "--no-poll",
                 f"--user={getpass.getuser()}", "--pid-file=", "--log-facility=-", "--cache-size=0"],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            )  # fmt: skip
            if self._answers():
                return
            self.stop()
        raise RuntimeError("dnsmasq did not start")

    def _answers(self) -> bool:
        import dns.exception
        import dns.resolver

        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = ["127.0.0.1"]
        resolver.nameserver_ports = {"127.0.0.1": self.port}
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                return False  # the port was taken meanwhile, or it refused its config
            try:
                resolver.resolve("probe.example.org", "A", lifetime=0.5, raise_on_no_answer=False)
                return True
            except dns.resolver.NXDOMAIN:
                return True  # its own answer for a lab domain: it is up
            except dns.exception.DNSException:
                time.sleep(0.05)
        return False

    def stop(self) -> None:
        if self._process is not None:
            stop_child(self._process)
            if self._process.stderr is not None:
                self._process.stderr.close()
            self._process = None
