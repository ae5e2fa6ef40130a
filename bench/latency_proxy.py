"""A TCP proxy on 127.0.0.1 that puts a network round-trip time between a client and a lab server.

Loopback has no latency, so it hides what a verification costs on a real network: every extra
round trip (a second connection, a second handshake) is free there. This proxy models a path with
round-trip time RTT and no bandwidth limit:

- **connect**: the kernel completes the client's TCP handshake with the proxy at once, so the proxy
  charges it instead: it opens the upstream connection RTT/2 after accepting (the SYN travelling),
  and nothing reaches the client before one RTT has passed (the SYN-ACK coming back). A server that
  speaks first (SMTP, IMAP greeting) is heard after one RTT, as on a real network; a client that
  speaks first (Implicit TLS ClientHello) is heard by the server after RTT + RTT/2.
- **data**: every byte is delivered RTT/2 after it was read, in order, in both directions;
  half-closes (EOF) travel the same way.

It also counts the connections it accepts — every connection the server sees, since nothing else
reaches it — and tells the count on SIGUSR1 (one line, ``accepted N``, on stdout): a wrapped tool
that opens a second connection per account shows up here.

Use it from Python (``with LatencyProxy(rtt_ms=50, targets=[port]) as proxy: proxy.port(port)``,
``proxy.accepted()``: a subprocess, so its event loop never competes with the lab servers' threads
for the GIL) or from a shell::

    python bench/latency_proxy.py --rtt 50 --to 127.0.0.1:4465 --to 127.0.0.1:4993
    # prints one line "listening 127.0.0.1:4465=127.0.0.1:PORT ..." and proxies until killed
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from types import TracebackType

HOST = "127.0.0.1"
CHUNK = 65536
_RUNNING: set[asyncio.Task[None]] = set()
_ACCEPTED = [0]


async def _pump(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    delay: float,
    not_before: float,
) -> None:
    """Forward reader → writer, each chunk delay seconds after it was read, never before not_before."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def deliver() -> None:
        while True:
            due, data = await queue.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            try:
                if not data:
                    if writer.can_write_eof():
                        writer.write_eof()
                    return
                writer.write(data)
                await writer.drain()
            except OSError:  # the other side is gone: nothing more to deliver
                return

    sender = asyncio.create_task(deliver())
    while True:
        try:
            data = await reader.read(CHUNK)
        except OSError:  # reset: pass it on as an end of stream
            data = b""
        queue.put_nowait((max(loop.time() + delay, not_before), data))
        if not data:
            break
    await sender


async def _handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter, target: int, rtt: float) -> None:
    loop = asyncio.get_running_loop()
    accepted = loop.time()
    try:
        await asyncio.sleep(rtt / 2)  # the SYN on its way to the server
        server_r, server_w = await asyncio.open_connection(HOST, target)
    except OSError:
        client_w.close()
        return
    # Client bytes sent before the handshake "completed" (accepted + RTT) leave only then.
    up = _pump(client_r, server_w, rtt / 2, accepted + rtt + rtt / 2)
    down = _pump(server_r, client_w, rtt / 2, accepted + rtt)
    with contextlib.suppress(OSError):
        await asyncio.gather(up, down)
    for writer in (client_w, server_w):
        writer.close()


async def serve(targets: Sequence[int], rtt_ms: float) -> None:
    rtt = rtt_ms / 1000
    servers, mapping = [], []
    for target in targets:

        async def handler(r: asyncio.StreamReader, w: asyncio.StreamWriter, target: int = target) -> None:
            _ACCEPTED[0] += 1
            task = asyncio.current_task()
            assert task is not None
            _RUNNING.add(task)  # the stream protocol's own reference goes when the peer does
            try:
                await _handle(r, w, target, rtt)
            finally:
                _RUNNING.discard(task)

        server = await asyncio.start_server(handler, HOST, 0, backlog=512)
        servers.append(server)
        mapping.append((target, server.sockets[0].getsockname()[1]))
    asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, lambda: print(f"accepted {_ACCEPTED[0]}", flush=True))
    print("listening " + " ".join(f"{HOST}:{t}={HOST}:{p}" for t, p in mapping), flush=True)
    await asyncio.gather(*(server.serve_forever() for server in servers))


class LatencyProxy:
    """Runs the proxy in a subprocess for ``targets`` (ports on 127.0.0.1); ``port(target)`` is where
    to connect instead. ``rtt_ms == 0`` still proxies (same code path, no delay)."""

    def __init__(self, rtt_ms: float, targets: Sequence[int]) -> None:
        self.rtt_ms = rtt_ms
        self.targets = list(targets)
        self._ports: dict[int, int] = {}
        self._process: subprocess.Popen[str] | None = None

    def __enter__(self) -> LatencyProxy:
        argv = [sys.executable, __file__, "--rtt", str(self.rtt_ms)]
        for target in self.targets:
            argv += ["--to", f"{HOST}:{target}"]
        self._process = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
        assert self._process.stdout is not None
        line = self._process.stdout.readline().split()
        if not line or line[0] != "listening":
            self.__exit__(None, None, None)
            raise RuntimeError("latency proxy did not start")
        for pair in line[1:]:
            target, listen = pair.split("=")
            self._ports[int(target.rsplit(":", 1)[1])] = int(listen.rsplit(":", 1)[1])
        return self

    def port(self, target: int) -> int:
        return self._ports[target]

    def accepted(self) -> int:
        """Connections accepted so far, over all targets."""
        assert self._process is not None and self._process.stdout is not None
        self._process.send_signal(signal.SIGUSR1)
        line = self._process.stdout.readline().split()
        if len(line) != 2 or line[0] != "accepted":
            raise RuntimeError(f"latency proxy answered {line!r} to SIGUSR1")
        return int(line[1])

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rtt", type=float, required=True, help="round-trip time in milliseconds")
    parser.add_argument("--to", action="append", required=True, metavar="127.0.0.1:PORT", help="a target (repeat)")
    args = parser.parse_args()
    targets = []
    for item in args.to:
        host, _, port = item.rpartition(":")
        if host not in ("", HOST):
            parser.error(f"targets are on {HOST} only: {item}")
        targets.append(int(port))
    # Stopped by its parent with SIGTERM: leave at once, open connections and all (no pending-task noise).
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(targets, args.rtt))
    return 0


if __name__ == "__main__":
    sys.exit(main())
