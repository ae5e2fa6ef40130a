"""Start the relay of one `mailpin run` (net/relay.py) beside the tool, on the sessions just verified.

The relay is a fork of this process, made just before it becomes the tool (exec): the tool keeps
this pid, its exit status and its signals, and the relay holds every verified session, watching
the tool's process so that it ends with it. What the tool is told (msmtp's `--socket`, the
Tunnel / transporttunnel commands) names paths in a directory only the user can enter, made here
before the fork, so nothing the tool does can race the relay's start.
"""

from __future__ import annotations

import contextlib
import os
import shlex
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

TYPE_CHECKING = False  # typing's own, without importing typing on every run (STYLE §10)
if TYPE_CHECKING:
    from mailpin.commands.verify import Outcome
    from mailpin.env import Env
    from mailpin.net.relay import Link, Watch
    from mailpin.state.local_cert import LocalIdentity
    from mailpin.state.settings import Settings


def supported() -> bool:
    """Linux: FIFOs, a pidfd or /proc to watch the tool, and in-memory files for the configs."""
    return hasattr(os, "memfd_create") and hasattr(os, "mkfifo") and os.path.isdir("/proc/self/fd")


def private_dir(environ: Mapping[str, str]) -> str:
    """A fresh directory only the user can enter: in $XDG_RUNTIME_DIR (a tmpfs that logout clears)
    when there is one of the user's, else in the temp directory. Short: a unix socket's path has
    108 bytes at most."""
    runtime = environ.get("XDG_RUNTIME_DIR", "")
    base = None
    with contextlib.suppress(OSError):
        info = os.stat(runtime) if runtime else None
        if info is not None and info.st_uid == os.geteuid() and not info.st_mode & 0o077:
            base = runtime
    if base is None or len(base) > _SOCKET_ROOM:  # (msmtp's socket would not fit in sockaddr_un there)
        import tempfile  # `random` and more at import: only when there is no runtime directory to use

        return tempfile.mkdtemp(prefix="mailpin-")
    while True:  # mkdtemp's way, without its imports: a random name, made only if it is new, 0700
        path = os.path.join(base, f"mailpin-{os.urandom(4).hex()}")
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            continue
        return path


_SOCKET_ROOM = 80  # bytes of a base directory that leave room for "/mailpin-XXXXXXXX/smtp" in 108


@dataclass
class Relayed:
    """The relay being prepared: what it will hold, and the directory its paths are in."""

    directory: str
    links: list[Link] = field(default_factory=list)
    watches: list[Watch] = field(default_factory=list)

    def socket_for(self, outcome: Outcome, identity: LocalIdentity) -> str:
        """msmtp's and mpop's way in (`--socket`, or `socket` in mpop's config): the path it connects to."""
        from mailpin.net.relay import LocalTls

        link = _link(outcome)
        path = os.path.join(self.directory, f"tls{len(self.links)}")  # one per account (mpop -a: several)
        self.links.append(link)
        self.watches.append(LocalTls(link, path, identity.server_context()))
        return path

    def tunnel_for(self, outcome: Outcome, fallback: Sequence[str], reopen: Callable[[], Link | None]) -> str:
        """The Tunnel / transporttunnel command of one account: it claims the account's slot and
        joins it to the tool with `cat`; a second connection of the tool to the same account (the
        slot already claimed) runs `fallback` (`mailpin tunnel`, which verifies its own)."""
        from mailpin.net.relay import FifoSlot

        index = len(self.links)
        link = _link(outcome)
        slot = FifoSlot(link, self.directory, index, reopen)
        self.links.append(link)
        self.watches.append(slot)
        claim, up, down = (shlex.quote(path) for path in (slot.claim, slot.up, slot.down))
        # set -C: `>` refuses an existing file, so one shell only ever gets the slot (POSIX sh, no
        # extra process; `true`, not `:`: a redirection that fails on a special built-in ends the
        # shell). The "." tells the relay the tunnel has the slot. Each side closes the FIFO it does
        # not use, so the relay sees the tool's end as the end of the session; when the server's side
        # ends, the reading `cat` ($$ after exec) is stopped, since the tool waits for its connection
        # to close after a LOGOUT and that cat holds it open.
        joined = f"exec 3>{up} 4<{down}; printf . >&3; {{ cat <&4; kill $$; }} 3>&- 2>/dev/null & exec cat >&3 4<&-"
        return f"set -C; if {{ true >{claim}; }} 2>/dev/null; then {joined}; fi; exec {shlex.join(fallback)}"

    def start(self, watch_pid: int) -> None:
        """Fork the relay; this process goes on to become (or run) the tool."""
        import sys

        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the relay
            status = 1
            try:
                _serve(self, watch_pid)
                status = 0
            except BaseException:  # the relay's last words, then out of this process
                import traceback

                traceback.print_exc()
            finally:
                sys.stderr.flush()
                os._exit(status)  # never back into mailpin's run: that would start the tool again
        for link in self.links:  # the relay's now; this process keeps no copy that would hold them open
            if link.server is not None:
                link.server.close()
        for watch in self.watches:
            watch.release()

    def abandon(self) -> None:
        """Nothing is relayed (a block): close what was prepared and remove the directory."""
        for link in self.links:
            link.finish()
        for watch in self.watches:
            watch.close()
        _remove(self.directory)


def _remove(directory: str) -> None:
    """The relay's directory, and what is in it: sockets, FIFOs, claims and fetchmail's plugin scripts."""
    with contextlib.suppress(OSError):
        for name in os.listdir(directory):
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(directory, name))
        os.rmdir(directory)


def _link(outcome: Outcome) -> Link:
    import ssl

    from mailpin.net.relay import Link, TlsSide, greeting_for

    chan, endpoint = outcome.session, outcome.endpoint
    assert chan is not None and endpoint is not None and isinstance(chan.sock, ssl.SSLSocket)
    # STARTTLS: mailpin's own greeting (the server's came before TLS, and is not to be trusted or
    # replayed); Implicit TLS: the server's, as it sent it, read and judged before the tool started.
    greeting = greeting_for(endpoint.protocol, endpoint.mode) + chan.unread_for_tool()
    return Link(outcome.target.key, TlsSide(chan.sock), greeting)


def _serve(relayed: Relayed, watch_pid: int) -> None:
    from mailpin.net.relay import ProcessGone, Relay

    # The caller's stdin and stdout are the tool's: a relay that kept them would keep a pipe open
    # after the tool has exited (a MUA reading msmtp's output would wait). stderr stays, for what
    # the relay must say (a fresh session refused).
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.close(null)
    relay = Relay(ProcessGone(watch_pid))
    relay.links, relay.watches = relayed.links, relayed.watches
    try:
        relay.serve()
    finally:
        _remove(relayed.directory)


def reopen(env: Env, configured: Settings, outcome: Outcome) -> Callable[[], Link | None]:
    """For the relay: the account's session again, verified as the first was, when the first ended
    before the tool came for it (a server's login timeout while a long sync of other accounts ran).
    A block is told as `mailpin tunnel` tells it: one line on stderr (the tool shows its tunnel's),
    the desktop, the audit log."""
    target = outcome.target

    def again() -> Link | None:
        from mailpin.commands.verify import Target, Verifier
        from mailpin.notify.alerts import announce
        from mailpin.run.wrapper import blocked_line

        verifier = Verifier(env, configured, keep=lambda account: True)
        fresh = verifier.verify(Target(target.key, target.account, verifier.profiles.get(target.key)))
        announce(env, [fresh], configured.notify)
        if fresh.session is None:
            print(f"mailpin: {blocked_line(fresh, '')}", file=env.stderr, flush=True)
            return None
        return _link(fresh)

    return again
