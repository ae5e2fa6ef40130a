"""A real, standalone Dovecot (IMAP + POP3) on 127.0.0.1 for tests.

It runs with its own configuration file (``dovecot -c FILE -F``), its own ``base_dir`` and
``state_dir``, four listeners on free high ports (IMAPS, IMAP+STARTTLS, POP3S, POP3+STLS) and one
test user (``test`` / ``secret``) with a Maildir.  The served certificate can be switched at run
time with :meth:`Dovecot.serve`, which returns only once a fresh handshake shows the new leaf.

Dovecot refuses to run mail processes as root, so when the tests run as root the mailbox belongs
to a dedicated system user ``mailpin-test`` (created on first use).  Every path that a
non-root Dovecot process touches (base_dir, home, Maildir) lives in a separate tree made with
:func:`tempfile.mkdtemp` and opened up to 0755, because pytest's tmp directories are 0700 under
root; the configuration file, the certificate/key files and the logs stay in ``directory``.
"""

from __future__ import annotations

import contextlib
import grp
import itertools
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from .pki import TestPKI, free_port, served_leaf

INSTALL_HINT = "Debian: apt-get install dovecot-imapd dovecot-pop3d"
MAIL_USER = "mailpin-test"  # system user owning the mailbox when the tests run as root
# Services whose default configuration chroot()s (doveconf -d); login services are listed below.
_CHROOTED = ("anvil", "ipc", "old-stats", "aggregator", "director", "imap-urlauth-login", "submission-login")
_COUNTER = itertools.count()  # makes Maildir file names unique within this process


class DovecotUnavailable(RuntimeError):
    """Dovecot is not installed (or cannot be started) on this machine."""


def find_dovecot() -> str | None:
    """Path of the ``dovecot`` binary (it lives in /usr/sbin, often not on a user's PATH)."""
    return shutil.which("dovecot") or shutil.which("dovecot", path="/usr/sbin:/usr/local/sbin")


def _ensure_mail_user() -> pwd.struct_passwd:
    """The ``mailpin-test`` system user, created if missing (root only)."""
    try:
        return pwd.getpwnam(MAIL_USER)
    except KeyError:
        pass
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", MAIL_USER],
        check=True,
        capture_output=True,
    )
    return pwd.getpwnam(MAIL_USER)


class Dovecot:
    """A Dovecot master process serving one test user; see the module docstring."""

    user: str = "test"
    password: str = "secret"

    def __init__(self, directory: Path, pki: TestPKI) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.pki = pki
        self.variant = "good"
        self.imaps_port = self.imap_port = self.pop3s_port = self.pop3_port = 0
        self.config = self.directory / "dovecot.conf"
        self.log = self.directory / "dovecot.log"  # Dovecot's own log_path
        self.console = self.directory / "dovecot.out"  # stdout/stderr of the master
        self.cert_file = self.directory / "cert.pem"
        self.key_file = self.directory / "key.pem"
        self._proc: subprocess.Popen[bytes] | None = None
        self._as_root = os.geteuid() == 0
        account = _ensure_mail_user() if self._as_root else pwd.getpwuid(os.geteuid())
        self._uid, self._gid = account.pw_uid, account.pw_gid
        # The tree non-root Dovecot processes must reach; see the module docstring.
        self.tree = Path(tempfile.mkdtemp(prefix="mailpin-dovecot-"))
        self.tree.chmod(0o755)
        link = self.directory / "tree"
        if not link.exists():
            link.symlink_to(self.tree)
        self.home = self.tree / "home"
        self.maildir = self.home / "Maildir"

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self, variant: str = "good") -> None:
        """Start Dovecot serving ``variant``; return once all four listeners accept connections."""
        binary = find_dovecot()
        if binary is None:
            raise DovecotUnavailable(f"dovecot is not installed ({INSTALL_HINT})")
        if self._proc is not None:
            raise RuntimeError("Dovecot already started")
        self._write_cert(variant)
        self._prepare_mailbox()
        # Ports are picked free and then bound by Dovecot: a rare race.  Retry with new ports.
        for attempt in range(3):
            self.imaps_port, self.imap_port, self.pop3s_port, self.pop3_port = self._four_ports()
            self._write_config()
            with self.console.open("ab") as out:
                self._proc = subprocess.Popen(
                    [binary, "-c", str(self.config), "-F"],
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # detached from the test runner's terminal and pipes
                )
            try:
                self._wait_listening(deadline=time.monotonic() + 10)
                return
            except RuntimeError:
                self.stop()
                if attempt == 2 or "Address already in use" not in self._log_tail():
                    raise

    def stop(self) -> None:
        """Terminate the Dovecot master (it stops its children) and wait; idempotent.

        Takes about 1 s once mail processes have run (the master lingers after its children).
        """
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def cleanup(self) -> None:
        """Stop Dovecot and remove the mkdtemp tree (base_dir, Maildir)."""
        self.stop()
        shutil.rmtree(self.tree, ignore_errors=True)

    # -- certificate switching ------------------------------------------------------------------

    def serve(self, variant: str, timeout: float = 5.0) -> None:
        """Serve ``variant`` from now on; block until fresh IMAPS and POP3S handshakes show its leaf."""
        if self._proc is None or self._proc.poll() is not None:
            raise RuntimeError("Dovecot is not running")
        wanted = self.pki.cert(variant).leaf_der
        self._write_cert(variant)
        # SIGHUP makes the master re-read its configuration (ssl_cert = <FILE is read anew) and
        # replace its login processes; connections accepted afterwards get the new certificate.
        self._proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            try:
                # Both login services are replaced on reload; check both Implicit TLS listeners.
                if served_leaf(self.imaps_port) == wanted and served_leaf(self.pop3s_port) == wanted:
                    return
                last = "old certificate still served"
            except OSError as exc:  # includes ssl.SSLError; the listener may be restarting
                last = exc
            time.sleep(0.02)
        problem = f"Dovecot did not serve {variant!r} within {timeout} s ({last})"
        raise TimeoutError(f"{problem}; {self._log_tail()}")

    # -- mail -----------------------------------------------------------------------------------

    def deliver(self, folder: str, message: bytes) -> None:
        """Put ``message`` into ``folder`` ("INBOX" or a Maildir++ folder like "Archive/2024")."""
        if folder.upper() == "INBOX":
            box = self.maildir
        else:
            box = self.maildir / ("." + folder.replace("/", "."))
            self._make_box(box)
            (box / "maildirfolder").touch()
            self._chown(box / "maildirfolder")
        self._make_box(box)
        seconds, nanos = divmod(time.time_ns(), 10**9)
        unique = f"{seconds}.M{nanos // 1000}P{os.getpid()}Q{next(_COUNTER)}.mailpin-lab"
        tmp = box / "tmp" / f"{unique},S={len(message)}"
        tmp.write_bytes(message)
        self._chown(tmp)
        tmp.rename(box / "new" / tmp.name)

    # -- internals ------------------------------------------------------------------------------

    def _write_cert(self, variant: str) -> None:
        """Atomically replace the served chain and key with those of ``variant``."""
        served = self.pki.cert(variant)
        for source, target in ((served.chain_pem, self.cert_file), (served.key_pem, self.key_file)):
            staging = target.with_suffix(".new")
            shutil.copyfile(source, staging)
            staging.chmod(0o600)  # read by Dovecot's config process, which runs as root (or as us)
            staging.replace(target)
        self.variant = variant

    def _chown(self, path: Path) -> None:
        if self._as_root:
            os.chown(path, self._uid, self._gid)

    def _make_box(self, box: Path) -> None:
        for sub in ("", "cur", "new", "tmp"):
            (box / sub).mkdir(mode=0o700, exist_ok=True)
            self._chown(box / sub)

    def _prepare_mailbox(self) -> None:
        self.tree.mkdir(mode=0o755, exist_ok=True)  # again, in case cleanup() removed it
        self.home.mkdir(mode=0o700, exist_ok=True)
        self._chown(self.home)
        self._make_box(self.maildir)
        passwd = self.tree / "passwd"
        # The test user, also by an address (a login whose domain holds SRV records: mailpin upgrade).
        logins = (self.user, f"{self.user}@example.org")
        passwd.write_text("".join(f"{login}:{{PLAIN}}{self.password}::::::\n" for login in logins))
        passwd.chmod(0o644)  # read by the auth processes; the password is public anyway

    @staticmethod
    def _four_ports() -> tuple[int, int, int, int]:
        ports: set[int] = set()
        while len(ports) < 4:
            ports.add(free_port())
        a, b, c, d = sorted(ports)
        return a, b, c, d

    def _write_config(self) -> None:
        current = pwd.getpwuid(os.geteuid()).pw_name
        # As root, Dovecot's own system users run login/internal processes; otherwise all is us.
        login_user = "dovenull" if self._as_root else current
        internal_user = "dovecot" if self._as_root else current
        # An unprivileged master cannot chroot(): switch it off for every service that uses it.
        no_chroot = login_chroot = ""
        if not self._as_root:
            no_chroot = "".join(f"service {name} {{\n  chroot =\n}}\n" for name in _CHROOTED)
            login_chroot = "\n  chroot ="
        self.config.write_text(
            f"""# Written by tests/lab/dovecot.py -- a throw-away Dovecot for mailpin's tests.
instance_name = mailpin-lab-{os.getpid()}-{self.tree.name}
base_dir = {self.tree}/run
state_dir = {self.tree}/state
protocols = imap pop3
listen = 127.0.0.1
log_path = {self.log}
info_log_path = {self.log}
default_login_user = {login_user}
default_internal_user = {internal_user}
default_internal_group = {grp.getgrgid(pwd.getpwnam(internal_user).pw_gid).gr_name}
first_valid_uid = {min(self._uid, 500)}
first_valid_gid = {min(self._gid, 1)}

ssl = yes
ssl_cert = <{self.cert_file}
ssl_key = <{self.key_file}
ssl_min_protocol = TLSv1.2
disable_plaintext_auth = no
auth_mechanisms = plain login
# Answer a wrong password without the 2 s default delay (Dovecot still batches failure
# replies on a 0.5 s timer), so tests of failed logins stay fast.
auth_failure_delay = 0

passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {self.tree}/passwd
}}
userdb {{
  driver = static
  args = uid={self._uid} gid={self._gid} home={self.home}
}}
mail_location = maildir:{self.maildir}
# Every lab account is the one test user from 127.0.0.1: the default of 10 sessions per user and
# IP is reached by `mbsync -a` over 20 accounts (bench/) and by concurrent tests.
protocol imap {{
  mail_max_userip_connections = 200
}}

# Auth penalty: after a failed login Dovecot delays the next login from the same IP by 2^n s (via
# anvil). Tests fail logins on purpose, so the auth process must not reach anvil's penalty socket.
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
{no_chroot}service imap-login {{{login_chroot}
  inet_listener imap {{
    port = {self.imap_port}
  }}
  inet_listener imaps {{
    port = {self.imaps_port}
    ssl = yes
  }}
}}
service pop3-login {{{login_chroot}
  inet_listener pop3 {{
    port = {self.pop3_port}
  }}
  inet_listener pop3s {{
    port = {self.pop3s_port}
    ssl = yes
  }}
}}
"""
        )

    def _wait_listening(self, deadline: float) -> None:
        pending = {self.imaps_port, self.imap_port, self.pop3s_port, self.pop3_port}
        while pending:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise RuntimeError(f"Dovecot exited with {self._proc.returncode}: {self._log_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"Dovecot ports {sorted(pending)} never accepted: {self._log_tail()}")
            for port in sorted(pending):
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                    pending.discard(port)
            if pending:
                time.sleep(0.01)

    def _log_tail(self, lines: int = 20) -> str:
        text = ""
        for path in (self.console, self.log):
            with contextlib.suppress(OSError):
                text += "".join(path.read_text(errors="replace").splitlines(keepends=True)[-lines:])
        return text.strip() or "(no log output)"
