"""Carry verified sessions to the tool: the connection mailpin judged is the one that carries the
login and the mail — no second connection for an attacker (or a load balancer) to treat differently.

One `Relay` per `mailpin run`, in a process of its own beside the tool, holds every session that
run verified and moves bytes between each and the tool's side of it:

- msmtp connects to a private unix socket (`--socket`) and speaks TLS to mailpin's local
  certificate (`--tls-fingerprint`): its own authentication (SASL mechanisms, `passwordeval`, OAuth
  tokens) is unchanged, and the relay passes the bytes on to the server's verified session;
- mbsync `Tunnel` / offlineimap `transporttunnel` run a shell that claims the account's slot and
  joins its two FIFOs with `cat` — no Python start per account (see `run/enforce.py`).

Everything is non-blocking with one bounded buffer per direction: a side that stops reading only
pauses the other direction's reads, never the whole relay, and memory stays bounded. A readable TLS
socket may carry only housekeeping (TLS 1.3 session tickets): reads that yield nothing are normal.
No timeout while both sides are open: an IMAP IDLE may last hours.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from mailpin.model import Mode, Protocol

_CHUNK = 65536
_LIMIT = 1 << 18  # bytes buffered per direction before that direction's reads pause
_LINGER = 2.0  # after the tool's side closes: seconds to pass on what the server still says (its BYE)
_PIPE_SIZE = 1 << 20  # FIFO capacity asked for: fewer wake-ups on a bulk FETCH (Linux caps it for us)
_IN, _OUT = select.POLLIN | select.POLLPRI, select.POLLOUT
_GONE = select.POLLHUP | select.POLLERR | select.POLLNVAL


# After mailpin's own STARTTLS the server says nothing more (RFC 3501 §6.2.1, RFC 2595 §4, RFC 3207
# §4.2): the tool still expects a greeting, then asks for the capabilities again itself. After an
# Implicit TLS handshake the server's own greeting is still unread and goes through untouched.
_GREETINGS = {
    Protocol.IMAP: b"* OK mailpin: TLS verified against the pinned profile\r\n",
    Protocol.POP3: b"+OK mailpin: TLS verified against the pinned profile\r\n",
    Protocol.SMTP: b"220 mailpin: TLS verified against the pinned profile\r\n",
}


def greeting_for(protocol: Protocol, mode: Mode) -> bytes:
    return _GREETINGS[protocol] if mode is Mode.STARTTLS else b""


class Side:
    """One end of a link, non-blocking: `read` returns b"" once closed, None when nothing is there now."""

    rfd: int
    wfd: int
    want_write_to_read = False  # TLS: a read waits on the socket becoming writable (renegotiation)
    # The tool still writes after the server's last words (its TLS close_notify): its side stays open
    # until it closes it, or for `_LINGER` seconds. mpop does not ignore SIGPIPE: a close before its
    # close_notify would kill it after a fetch that went well.
    closes_last = False

    def read(self) -> bytes | None:
        raise NotImplementedError

    def write(self, data: bytes | bytearray | memoryview) -> int:
        raise NotImplementedError

    def pending(self) -> bool:
        return False

    def close(self) -> None:
        raise NotImplementedError


class TlsSide(Side):
    """A TLS session: the server's verified one, or the tool's local one (msmtp, mpop)."""

    closes_last = True

    def __init__(self, sock: ssl.SSLSocket) -> None:
        sock.setblocking(False)
        self.sock = sock
        self.rfd = self.wfd = sock.fileno()

    def read(self) -> bytes | None:
        self.want_write_to_read = False
        try:
            return self.sock.recv(_CHUNK)
        except ssl.SSLWantReadError:
            return None
        except ssl.SSLWantWriteError:
            self.want_write_to_read = True
            return None
        except (ssl.SSLError, OSError):
            return b""  # reset, or a TLS alert: the session is over either way

    def write(self, data: bytes | bytearray | memoryview) -> int:
        try:
            return self.sock.send(data[:_CHUNK])
        except (ssl.SSLWantWriteError, ssl.SSLWantReadError):
            return 0
        except (ssl.SSLError, OSError):
            raise BrokenPipeError from None

    def pending(self) -> bool:
        return self.sock.pending() > 0

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


class FdSide(Side):
    """Two descriptors: the tool's bytes come in on one and go out on the other (FIFOs, pipes, or
    `mailpin tunnel`'s stdin and stdout, which are not the relay's to close: `owned=False`)."""

    def __init__(self, rfd: int, wfd: int, owned: bool = True) -> None:
        self.rfd, self.wfd, self.owned = rfd, wfd, owned
        self.blocking = {fd: os.get_blocking(fd) for fd in {rfd, wfd}}
        for fd in self.blocking:
            os.set_blocking(fd, False)

    def read(self) -> bytes | None:
        try:
            return os.read(self.rfd, _CHUNK)
        except BlockingIOError:
            return None
        except OSError:
            return b""

    def write(self, data: bytes | bytearray | memoryview) -> int:
        try:
            return os.write(self.wfd, data[:_CHUNK])
        except BlockingIOError:
            return 0

    def close(self) -> None:
        for fd, blocking in self.blocking.items():
            with contextlib.suppress(OSError):
                if self.owned:
                    os.close(fd)
                else:
                    os.set_blocking(fd, blocking)


@dataclass
class Link:
    """One verified server session and, once it has come, the tool's side of it. `greeting`: what the
    tool hears first (mailpin's own after STARTTLS, see `greeting_for`; the server's after Implicit TLS)."""

    name: str
    server: Side | None
    greeting: bytes = b""
    tool: Side | None = None
    to_server: bytearray = field(default_factory=bytearray)
    to_tool: bytearray = field(default_factory=bytearray)
    server_open: bool = True
    tool_open: bool = True
    linger: float | None = None
    done: bool = False

    def __post_init__(self) -> None:
        self.to_tool += self.greeting

    def interests(self) -> Iterator[tuple[int, int]]:
        if self.done:
            return
        server, tool = self.server, self.tool
        if server is not None and self.server_open:
            events = _IN if len(self.to_tool) < _LIMIT else 0
            if self.to_server or server.want_write_to_read:
                events |= _OUT
            if events:
                yield server.rfd, events
        if tool is None:
            return
        if self.tool_open and len(self.to_server) < _LIMIT:
            yield tool.rfd, _IN
        if self.to_tool:
            yield tool.wfd, _OUT

    def step(self, ready: dict[int, int]) -> None:
        """Move what can be moved now; called after each poll with every descriptor's events."""
        server, tool = self.server, self.tool
        if tool is not None and self.tool_open and (ready.get(tool.rfd, 0) & (_IN | _GONE) or tool.pending()):
            self._from_tool(tool)
        if server is not None and self.server_open and (ready.get(server.rfd, 0) or server.pending()):
            self._from_server(server)
        if server is not None and self.to_server and self.server_open:
            try:
                while self.to_server:
                    sent = server.write(self.to_server)
                    if not sent:
                        break
                    del self.to_server[:sent]
            except BrokenPipeError:
                self.server_open = False
        if tool is not None and self.to_tool:
            try:
                while self.to_tool:  # as much as the tool's side takes now
                    sent = tool.write(self.to_tool)
                    if not sent:
                        break
                    del self.to_tool[:sent]
                    if self.linger is not None:  # the tool still reads the server's last words
                        self.linger = time.monotonic() + _LINGER
            except (BrokenPipeError, ConnectionError):
                self.finish()  # the tool has gone away: nobody left to tell
                return
        self._settle()

    def _from_tool(self, tool: Side) -> None:
        while len(self.to_server) < _LIMIT:
            data = tool.read()
            if data is None:
                return
            if not data:  # the tool is done (its LOGOUT / QUIT sent) or died: the server's last words, then stop
                self.tool_open, self.linger = False, time.monotonic() + _LINGER
                return
            self.to_server += data

    def _from_server(self, server: Side) -> None:
        # Everything TLS has for the tool now (every record already received, not one per wake-up:
        # a bulk FETCH costs a few large writes, not thousands of small ones).
        while len(self.to_tool) < _LIMIT:
            data = server.read()
            if data is None:
                return
            if not data:
                self.server_open = False
                return
            self.to_tool += data

    def _settle(self) -> None:
        if self.tool is None:
            return  # not yet claimed: the session waits (its greeting buffered) for the tool
        if not self.server_open and not self.to_tool:
            if not (self.tool_open and self.tool.closes_last):
                self.finish()
                return
            self.to_server.clear()  # nobody to send it to: read until the tool closes its side
            if self.linger is None:
                self.linger = time.monotonic() + _LINGER
        if self.linger is not None and time.monotonic() >= self.linger:
            # The tool closed its side and took nothing for `_LINGER` seconds: whatever is still
            # pending or still coming (a server flooding a tool that stopped reading) goes nowhere.
            self.finish()

    def finish(self) -> None:
        self.done = True
        for side in (self.server, self.tool):
            if side is not None:
                side.close()

    def wait(self) -> float | None:
        """Seconds until this link must be looked at again without any event."""
        if self.done or self.linger is None:
            return None
        return max(0.0, self.linger - time.monotonic())


class Watch:
    """Something the relay waits on besides its links (a listener, a FIFO slot, the tool's process):
    its descriptors and what to do when they are ready."""

    done = False

    def interests(self) -> Iterator[tuple[int, int]]:
        raise NotImplementedError

    def step(self, ready: dict[int, int]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self.done = True

    def release(self) -> None:
        """Close this process's copies of the descriptors (the relay's fork keeps its own)."""


class ProcessGone(Watch):
    """The tool's process: once it has exited, nothing is left to relay to (a pidfd where Linux has
    one; otherwise the relay's parent changing, checked once a second)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.fd: int | None = None
        with contextlib.suppress(AttributeError, OSError):
            self.fd = os.pidfd_open(pid)

    def interests(self) -> Iterator[tuple[int, int]]:
        if self.fd is not None:
            yield self.fd, _IN

    def step(self, ready: dict[int, int]) -> None:
        if (self.fd is not None and ready.get(self.fd)) or (self.fd is None and os.getppid() != self.pid):
            self.done = True

    def close(self) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.fd)
        self.done = True


class Relay:
    """The event loop: links plus the watches that attach tool sides to them."""

    def __init__(self, tool: ProcessGone) -> None:
        self.tool = tool
        self.links: list[Link] = []
        self.watches: list[Watch] = []

    def serve(self) -> None:
        """Until the tool has exited and every link is done (or the tool has exited: then nobody is
        left to deliver anything to)."""
        try:
            while not self.tool.done and not (self.links and all(link.done for link in self.links) and
                                              all(w.done for w in self.watches)):  # fmt: skip
                self._once()
        finally:
            for link in self.links:
                if not link.done:
                    link.finish()
            for watch in self.watches:
                watch.close()
            self.tool.close()

    def _once(self) -> None:
        poller = select.poll()
        wanted: dict[int, int] = {}
        parts: list[Link | Watch] = [*self.links, *self.watches, self.tool]
        for part in parts:
            for fd, events in part.interests():
                wanted[fd] = wanted.get(fd, 0) | events
        for fd, mask in wanted.items():
            poller.register(fd, mask)
        waits = [w for w in (link.wait() for link in self.links) if w is not None]
        timeout = min(waits) if waits else (None if self.tool.fd is not None else 1.0)
        if any(link.server is not None and link.server.pending() for link in self.links if not link.done):
            timeout = 0.0
        try:
            ready = dict(poller.poll(None if timeout is None else int(timeout * 1000) + 1))
        except InterruptedError:
            return
        self.tool.step(ready)
        for part in parts[:-1]:
            if not part.done:
                part.step(ready)


class FifoSlot(Watch):
    """An account's place for its Tunnel / transporttunnel (mbsync, offlineimap): two FIFOs in the
    relay's private directory. The tunnel's shell claims the slot (`set -C`: one claim, ever), opens
    `up` for writing and `down` for reading, says one byte ("."), and joins them to its stdin and
    stdout with `cat`. The relay keeps a writer of its own on `up` until that byte has come, so that
    "no writer yet" never reads as "the tunnel has closed"."""

    def __init__(self, link: Link, directory: str, index: int, reopen: Callable[[], Link | None]) -> None:
        self.link, self.reopen = link, reopen
        self.up, self.down = os.path.join(directory, f"{index}.up"), os.path.join(directory, f"{index}.down")
        self.claim = os.path.join(directory, f"{index}.claim")
        os.mkfifo(self.up, 0o600)
        os.mkfifo(self.down, 0o600)
        self.rfd = os.open(self.up, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        self.keep = os.open(self.up, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        # Read and write: the open never waits for the tunnel, and the FIFO outlives a reader that came and went.
        self.wfd = os.open(self.down, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        with contextlib.suppress(OSError):
            import fcntl

            fcntl.fcntl(self.wfd, getattr(fcntl, "F_SETPIPE_SZ", 1031), _PIPE_SIZE)
            fcntl.fcntl(self.rfd, getattr(fcntl, "F_SETPIPE_SZ", 1031), _PIPE_SIZE)

    def interests(self) -> Iterator[tuple[int, int]]:
        if not self.done:
            yield self.rfd, _IN

    def step(self, ready: dict[int, int]) -> None:
        if not ready.get(self.rfd):
            return
        try:
            hello = os.read(self.rfd, 1)
        except BlockingIOError:
            return
        os.close(self.keep)
        self.done = True
        if hello != b".":
            os.close(self.rfd)
            os.close(self.wfd)
            return
        link = self.link
        if link.server is None or not link.server_open:
            # The verified session ended while it waited for the tool (a server's login timeout
            # during a long sync of other accounts): a fresh one, verified as the first was.
            fresh = self.reopen()
            if fresh is None:  # blocked, or could not verify: the tunnel gets nothing and closes
                os.close(self.rfd)
                os.close(self.wfd)
                link.finish()
                return
            if link.server is not None:
                link.server.close()
            link.server, link.to_tool, link.server_open = fresh.server, fresh.to_tool, True
        link.tool = FdSide(self.rfd, self.wfd)

    def close(self) -> None:
        if not self.done:
            self.release()
        self.done = True

    def release(self) -> None:
        for fd in (self.rfd, self.keep, self.wfd):
            with contextlib.suppress(OSError):
                os.close(fd)


class LocalTls(Watch):
    """msmtp's way in: a private unix socket where mailpin is the TLS server, with the local
    certificate msmtp is told to expect (`--tls-fingerprint`). One connection is accepted, then the
    socket's name is removed."""

    def __init__(self, link: Link, path: str, context: ssl.SSLContext) -> None:
        self.link, self.path, self.context = link, path, context
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(path)
        self.listener.listen(1)
        self.listener.setblocking(False)
        self.tls: ssl.SSLSocket | None = None
        self.waiting = _IN

    def interests(self) -> Iterator[tuple[int, int]]:
        if self.done:
            return
        if self.tls is None:
            yield self.listener.fileno(), _IN
        else:
            yield self.tls.fileno(), self.waiting

    def step(self, ready: dict[int, int]) -> None:
        if self.tls is None:
            if not ready.get(self.listener.fileno()):
                return
            try:
                conn, _ = self.listener.accept()
            except BlockingIOError:
                return
            self._unlisten()
            conn.setblocking(False)
            self.tls = self.context.wrap_socket(conn, server_side=True, do_handshake_on_connect=False)
        elif not ready.get(self.tls.fileno()):
            return
        try:
            self.tls.do_handshake()
        except ssl.SSLWantReadError:
            self.waiting = _IN
            return
        except ssl.SSLWantWriteError:
            self.waiting = _OUT
            return
        except (ssl.SSLError, OSError):
            self.tls.close()  # not msmtp, or msmtp refusing our certificate: nothing was sent upstream
            self.link.finish()
            self.done = True
            return
        self.link.tool = TlsSide(self.tls)
        self.done = True

    def _unlisten(self) -> None:
        with contextlib.suppress(OSError):
            os.unlink(self.path)
        self.listener.close()

    def close(self) -> None:
        if not self.done and self.tls is None:
            self._unlisten()
        self.done = True

    def release(self) -> None:
        self.listener.close()
