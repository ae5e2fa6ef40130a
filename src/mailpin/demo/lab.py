"""The demo's world: a temporary directory with its own HOME, a throwaway PKI, the two servers, the
msmtp and mbsync configs that point at them, and a way to run mailpin in there.

Every mailpin step runs as a separate process whose HOME and XDG directories are inside the
temporary directory: the user's configs, pins, queue and audit log are never read or written. The
desktop session (D-Bus, XDG_RUNTIME_DIR) is kept, so a block's notification shows for real.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from mailpin.demo import ca
from mailpin.demo.dns import DnsServer
from mailpin.demo.imap import ImapServer
from mailpin.demo.servers import Server
from mailpin.demo.smtp import SmtpServer

STEP_TIMEOUT = 30.0  # seconds for one mailpin command: a hang is a failed step, never a hung demo
# What the user's environment may say that would change what the demo's mailpin reads or trusts.
_DROPPED = ("EMAIL", "SMTPSERVER", "MAILDIR", "NOTMUCH_CONFIG", "NOTMUCH_PROFILE", "SSL_CERT_FILE", "SSL_CERT_DIR")

_MESSAGE = b"""From: You <you@localhost>
To: A Friend <friend@example.org>
Subject: Hello through mailpin
Date: %s
Message-ID: <hello@mailpin.demo>

Hello! mailpin checked the server's TLS against its pin before msmtp connected.
.This line starts with a dot (SMTP dot-stuffing: it arrives as written).
"""

_INBOX = [
    b"From: mailpin demo <demo@localhost>\nTo: you@localhost\nSubject: Welcome to the demo inbox\nDate: %s\n"
    b"Message-ID: <welcome@mailpin.demo>\n\nmbsync fetched this over a session that mailpin verified.\n",
    b"From: mailpin demo <demo@localhost>\nTo: you@localhost\nSubject: A second message\nDate: %s\n"
    b"Message-ID: <second@mailpin.demo>\n\nNothing to see here.\n",
]


SRV = "_submissions._tcp.demo.example"  # where `mailpin upgrade` finds the demo's Implicit TLS port


def _dated(template: bytes) -> bytes:
    from email.utils import formatdate

    return template % formatdate(localtime=True).encode("ascii")


@dataclass(frozen=True)
class Ran:
    shown: str  # the command as a person would type it
    status: int
    stdout: str
    stderr: str


@dataclass
class Lab:
    root: Path
    home: Path
    environ: dict[str, str]
    mailpin: list[str]
    pki: ca.DemoPKI
    smtp: SmtpServer
    imap: ImapServer
    tools: dict[str, bool]  # msmtp / mbsync installed (a real binary, not a mailpin shim)
    signals: Signals
    dns: DnsServer

    @property
    def message(self) -> Path:
        return self.root / "hello.eml"

    @property
    def inbox(self) -> Path:
        return self.home / "Mail" / "demo" / "INBOX"

    def run(self, *args: str, stdin: Path | None = None) -> Ran:
        """One mailpin command, in its own process group: an interrupt, or a step that hangs, ends
        the whole group (a tunnel mbsync started included) before the command is reaped."""
        shown = command_line(args, stdin)
        proc: subprocess.Popen[bytes] | None = None
        with open(stdin or os.devnull, "rb") as source:
            try:
                with self.signals.held():  # an interrupt inside Popen() would lose the child's pid
                    proc = subprocess.Popen([*self.mailpin, *args], stdin=source, stdout=subprocess.PIPE,
                                            stderr=subprocess.PIPE, env=self.environ, cwd=self.root,
                                            start_new_session=True)  # fmt: skip
                out, err = proc.communicate(timeout=STEP_TIMEOUT)
            except subprocess.TimeoutExpired:
                out, err = b"", f"(no answer within {STEP_TIMEOUT:g} s)".encode()
            finally:
                if proc is not None and proc.poll() is None:
                    _end(proc)
        assert proc is not None
        return Ran(shown, proc.returncode, _text(out), _text(err))

    def synced(self) -> int:
        return sum(1 for box in ("new", "cur") if (self.inbox / box).is_dir() for _ in (self.inbox / box).iterdir())

    def last_block(self, account: str) -> dict[str, Any]:
        """The latest block of `account` in the demo's audit log: endpoint, reasons, detail."""
        from mailpin.state.audit import AuditLog

        path = Path(self.environ["XDG_STATE_HOME"]) / "mailpin" / "audit.log"
        blocks = [event for event in AuditLog(path).events(account) if event.get("event") == "blocked"]
        return blocks[-1] if blocks else {}

    def told(self, account: str) -> bool:
        """Did the block of `account` reach a desktop? (mailpin records a notification once it is shown.)"""
        import json

        try:
            state = json.loads((Path(self.environ["XDG_STATE_HOME"]) / "mailpin" / "notified.json").read_text())
        except (OSError, ValueError):
            return False
        return isinstance(state, dict) and account in state


def command_line(args: tuple[str, ...], stdin: Path | None) -> str:
    """The command as a person would type it."""
    return " ".join(["mailpin", *args]) + (f" < {stdin.name}" if stdin else "")


def _end(proc: subprocess.Popen[bytes]) -> None:
    """Kill the command's process group. Its leader is not reaped yet, so the group id is still ours."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        proc.kill()
    proc.communicate()


class Signals:
    """Ctrl-C, SIGTERM and SIGHUP (a closed terminal) raise KeyboardInterrupt, so that everything is
    cleaned up on the way out — but never while a command is being started (`held`)."""

    NUMBERS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    def __init__(self) -> None:
        self.holding = False
        self.pending = False

    def handle(self, signum: int, frame: FrameType | None) -> None:
        if self.holding:
            self.pending = True
        else:
            raise KeyboardInterrupt

    @contextmanager
    def held(self) -> Iterator[None]:
        self.holding = True
        try:
            yield
        finally:
            self.holding = False
        if self.pending:
            self.pending = False
            raise KeyboardInterrupt

    @contextmanager
    def installed(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield  # signal handlers can only be set from the main thread (and only it gets signals)
            return
        previous = {number: signal.signal(number, self.handle) for number in self.NUMBERS}
        try:
            yield
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)


def _text(data: bytes) -> str:
    return data.decode("utf-8", "replace").rstrip("\n")


def _environ(user: Mapping[str, str], home: Path) -> dict[str, str]:
    environ = {name: value for name, value in user.items() if name not in _DROPPED and not name.startswith("MAILPIN")}
    environ.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_STATE_HOME=str(home / ".local" / "state"),
        XDG_CACHE_HOME=str(home / ".cache"),
        XDG_DATA_HOME=str(home / ".local" / "share"),
    )
    return environ


def _installed(tool: str, environ: Mapping[str, str]) -> bool:
    from mailpin.errors import ConfigError
    from mailpin.run.handover import find_tool

    try:
        find_tool(tool, environ)
    except ConfigError:
        return False
    return True


def _write_configs(lab: Lab) -> None:
    trust, home = lab.pki.trust_file, lab.home
    msmtprc = home / ".msmtprc"
    msmtprc.touch(mode=0o600)  # it holds a password: msmtp refuses a file others can read
    msmtprc.write_text(
        "# mailpin demo: a throwaway account on a server that lives for a few seconds\n"
        f"defaults\ntls on\ntls_trust_file {trust}\n\n"
        f"account demo\nhost localhost\nport {lab.smtp.ports['implicit']}\ntls_starttls off\n"
        "auth plain\nuser demo\npassword demo\nfrom you@localhost\n\naccount default : demo\n\n"
        "# an old account: STARTTLS on 587's stand-in, as a tutorial once said\n"
        f"account old\nhost localhost\nport {lab.smtp.ports['starttls']}\ntls_starttls on\n"
        "auth plain\nuser demo\npassword demo\nfrom old@demo.example\n"
    )
    settings = home / ".config" / "mailpin" / "config"
    settings.parent.mkdir(parents=True, mode=0o700)
    settings.write_text(
        f"# the demo's own DNS server (SRV records for demo.example)\n[dns]\nnameservers = 127.0.0.1@{lab.dns.port}\n"
    )
    (home / "Mail" / "demo").mkdir(parents=True)
    (home / ".mbsyncrc").write_text(
        "# mailpin demo: a throwaway account on a server that lives for a few seconds\n"
        f"IMAPAccount demo\nHost localhost\nPort {lab.imap.ports['starttls']}\nUser demo\nPass demo\n"
        f"SSLType STARTTLS\nCertificateFile {trust}\nSystemCertificates no\n\n"
        "IMAPStore demo-remote\nAccount demo\n\n"
        f"MaildirStore demo-local\nPath {home}/Mail/demo/\nInbox {home}/Mail/demo/INBOX\n\n"
        "Channel demo\nFar :demo-remote:\nNear :demo-local:\nPatterns INBOX\nCreate Near\nSync Pull\nSyncState *\n"
    )
    lab.message.write_bytes(_dated(_MESSAGE))


@contextmanager
def opened(user: Mapping[str, str], keep: bool = False) -> Iterator[Lab]:
    """The demo's world, torn down on the way out whatever happened (Ctrl-C included): servers
    stopped, and the temporary directory removed unless `keep`."""
    signals = Signals()
    with signals.installed():
        yield from _opened(user, keep, signals)


def _opened(user: Mapping[str, str], keep: bool, signals: Signals) -> Iterator[Lab]:
    from mailpin.hooks import this_mailpin

    root = Path(tempfile.mkdtemp(prefix="mailpin-demo-"))
    servers: list[Server] = []
    dns: DnsServer | None = None
    try:
        home = root / "home"
        home.mkdir(mode=0o700)
        pki = ca.make(root / "pki")
        smtp = SmtpServer(pki)
        servers.append(smtp.start())
        imap = ImapServer(pki, [_dated(message).replace(b"\n", b"\r\n") for message in _INBOX])
        servers.append(imap.start())
        dns = DnsServer({SRV: ("localhost", smtp.ports["implicit"])}).start()
        environ = _environ(user, home)
        tools = {tool: _installed(tool, environ) for tool in ("msmtp", "mbsync")}
        lab = Lab(root, home, environ, this_mailpin(sys.argv[0], sys.executable), pki, smtp, imap, tools, signals, dns)
        _write_configs(lab)
        yield lab
    finally:
        with signals.held():  # a second Ctrl-C must not cut the clean-up short
            for server in servers:
                server.stop()
            if dns is not None:
                dns.stop()
            if not keep:
                _remove(root)


def _remove(root: Path) -> None:
    for _ in range(3):  # a child that is still exiting may be writing its last file
        shutil.rmtree(root, ignore_errors=True)
        if not root.exists():
            return
        time.sleep(0.1)
