"""The demo's DNS server: UDP on 127.0.0.1, answering the SRV records it is given, NXDOMAIN otherwise.

Real DNS messages (dnspython reads the question and writes the answer), so that `mailpin upgrade`
looks the record up exactly as it would on a real network, through its `[dns] nameservers` setting.
"""

from __future__ import annotations

import socket
import threading


class DnsServer:
    def __init__(self, records: dict[str, tuple[str, int]]) -> None:
        """RECORDS: owner name (e.g. `_submissions._tcp.demo.example`) → (target host, port)."""
        self.records = records
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.settimeout(0.1)
        self.port: int = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="demo-dns", daemon=True)
        self.errors: list[str] = []

    def start(self) -> DnsServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2.0)
        self._sock.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                query, client = self._sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                self._sock.sendto(self._answer(query), client)
            except Exception as exc:  # a malformed question must not end the server; the demo reports it
                self.errors.append(f"dns: {exc}")

    def _answer(self, wire: bytes) -> bytes:
        import dns.message
        import dns.rcode
        import dns.rdatatype
        import dns.rrset

        query = dns.message.from_wire(wire)
        response = dns.message.make_response(query)
        question = query.question[0]
        name = question.name.to_text(omit_final_dot=True).lower()
        found = self.records.get(name)
        if found is None:
            response.set_rcode(dns.rcode.NXDOMAIN)
        elif question.rdtype == dns.rdatatype.SRV:
            target, port = found
            response.answer.append(dns.rrset.from_text(question.name, 60, "IN", "SRV", f"0 1 {port} {target}."))
        return response.to_wire()
