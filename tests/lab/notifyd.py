"""A private D-Bus session bus with a recording notification server, and two buses that never answer.

``NotifyDaemon`` starts its own ``dbus-daemon`` (a minimal session config: no service directories,
so nothing is activated behind the test's back) and, in a thread, a server that owns
``org.freedesktop.Notifications`` and records each ``Notify`` call. It answers
``GetServerInformation``/``GetCapabilities`` too, so ``notify-send`` works against it.

``DeafBus`` is a unix socket that listens and never accepts; ``StalledBus`` authenticates and then
never replies. Both stand for a session bus that exists but is wedged.

Everything stops what it started, by PID or by its own socket, and removes its directory.
"""

from __future__ import annotations

import os
import selectors
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from jeepney import HeaderFields, MessageType, new_error, new_method_return  # type: ignore[import-untyped]
from jeepney.bus_messages import message_bus  # type: ignore[import-untyped]
from jeepney.io.blocking import DBusConnection, open_dbus_connection  # type: ignore[import-untyped]

from . import stop_child

SERVICE = "org.freedesktop.Notifications"
_SAFE = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_/.\\*")
_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>{address}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""


def unix_address(path: Path) -> str:
    """``unix:path=...`` with the D-Bus address escaping (every byte outside a small set as %XX)."""
    raw = os.fsencode(path)
    return "unix:path=" + "".join(chr(b) if b in _SAFE else f"%{b:02x}" for b in raw)


def _jeepney_address(path: Path) -> str:
    """jeepney 0.9 unescapes %XX as one character per byte (not UTF-8): escape only ASCII for it."""
    return "unix:path=" + "".join(
        c if c.isalnum() or c in "-_/.\\*" or ord(c) > 127 else f"%{ord(c):02x}" for c in str(path)
    )


def short_tempdir(prefix: str = "mailpin-bus-") -> Path:
    """A directory under /tmp: a unix socket path must fit in 108 bytes, pytest's tmp_path may not."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))


def _clean(directory: Path, owned: bool, names: tuple[str, ...]) -> None:
    """Remove the directory if this lab made it, else only the files it put there."""
    if owned:
        shutil.rmtree(directory, ignore_errors=True)
        return
    for name in names:
        (directory / name).unlink(missing_ok=True)


class _Lab:
    """Context-manager plumbing shared by the buses here."""

    def start(self) -> Any:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Any:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class NotifyDaemon(_Lab):
    """A session bus at ``<directory>/bus`` and, unless ``serve=False``, a recording notification server.

    ``answer=False``: the server owns the name and records calls but never replies (a wedged server).
    """

    def __init__(
        self,
        directory: Path | None = None,
        *,
        program: str = "dbus-daemon",
        serve: bool = True,
        answer: bool = True,
    ) -> None:
        self._own_directory = directory is None
        self.directory = short_tempdir() if directory is None else directory
        self.socket_path = self.directory / "bus"
        self.address = ""  # as printed by dbus-daemon once it listens
        self._program = program
        self._serve = serve
        self._answer = answer
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: Any = None
        self._conn: DBusConnection | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._changed = threading.Condition()
        self._notes: list[dict[str, Any]] = []

    def start(self) -> NotifyDaemon:
        config = self.directory / "session.conf"
        config.write_text(_CONFIG.format(address=unix_address(self.socket_path)))
        self._log = open(self.directory / "dbus-daemon.log", "wb")  # noqa: SIM115 - closed in stop()
        # Own stdout pipe (for the address) and a log file: never the test runner's pipes.
        self._proc = subprocess.Popen(
            [self._program, "--nofork", f"--config-file={config}", "--print-address=1"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._log,
            start_new_session=True,
        )
        self.address = self._read_address(timeout=10.0)
        if self._serve:
            self._conn = open_dbus_connection(bus=_jeepney_address(self.socket_path))
            reply = self._conn.send_and_get_reply(message_bus.RequestName(SERVICE, 4), timeout=5.0)  # DO_NOT_QUEUE
            if reply.body != (1,):  # PRIMARY_OWNER
                raise RuntimeError(f"could not own {SERVICE}: {reply.body}")
            self._thread = threading.Thread(target=self._run, name="notifyd", daemon=True)
            self._thread.start()
        return self

    def notifications(self) -> list[dict[str, Any]]:
        with self._changed:
            return list(self._notes)

    def wait_for(self, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        """The notifications once there are at least `count`; TimeoutError (with what came) otherwise."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self._notes) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"{len(self._notes)} notification(s) in {timeout} s, wanted {count}: {self._notes}"
                    )
                self._changed.wait(left)
            return list(self._notes)

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(5.0)
            self._thread = None
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._proc is not None:
            stop_child(self._proc)  # our own child, by PID
            if self._proc.stdout is not None:
                self._proc.stdout.close()
            self._proc = None
        if self._log is not None:
            self._log.close()
            self._log = None
        _clean(self.directory, self._own_directory, ("session.conf", "dbus-daemon.log", "bus"))

    def log(self) -> str:
        path = self.directory / "dbus-daemon.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def _read_address(self, timeout: float) -> str:
        assert self._proc is not None and self._proc.stdout is not None
        deadline = time.monotonic() + timeout
        data = b""
        with selectors.DefaultSelector() as selector:
            selector.register(self._proc.stdout, selectors.EVENT_READ)
            while b"\n" not in data:
                left = deadline - time.monotonic()
                if left <= 0 or not selector.select(left):
                    raise RuntimeError(f"dbus-daemon printed no address in {timeout} s: {self.log()}")
                chunk = os.read(self._proc.stdout.fileno(), 4096)
                if not chunk:
                    raise RuntimeError(f"dbus-daemon exited ({self._proc.wait()}): {self.log()}")
                data += chunk
        return data.decode().strip()

    def _run(self) -> None:
        assert self._conn is not None
        while not self._stopping.is_set():
            try:
                message = self._conn.receive(timeout=0.05)
            except TimeoutError:
                continue
            except OSError:  # the daemon went away
                return
            if message.header.message_type is MessageType.method_call:
                self._handle(message)

    def _handle(self, message: Any) -> None:
        assert self._conn is not None
        fields = message.header.fields
        member = fields.get(HeaderFields.member)
        interface = fields.get(HeaderFields.interface)
        if interface not in (SERVICE, None):
            reply = new_error(message, "org.freedesktop.DBus.Error.UnknownInterface")
        elif member == "Notify":
            reply = new_method_return(message, "u", (self._record(message.body),))
        elif member == "GetServerInformation":
            reply = new_method_return(message, "ssss", ("mailpin-lab", "mailpin", "1.0", "1.2"))
        elif member == "GetCapabilities":
            reply = new_method_return(message, "as", (["body", "body-markup"],))
        elif member == "CloseNotification":
            reply = new_method_return(message)
        else:
            reply = new_error(message, "org.freedesktop.DBus.Error.UnknownMethod")
        if self._answer:
            self._conn.send(reply)

    def _record(self, body: tuple[Any, ...]) -> int:
        app_name, replaces_id, app_icon, summary, text, actions, hints, expire_timeout = body
        with self._changed:
            self._notes.append(
                {
                    "app_name": app_name,
                    "replaces_id": replaces_id,
                    "app_icon": app_icon,
                    "summary": summary,
                    "body": text,
                    "actions": list(actions),
                    "hints": {name: value for name, (_, value) in hints.items()},
                    "urgency": hints["urgency"][1] if "urgency" in hints else None,
                    "expire_timeout": expire_timeout,
                }
            )
            self._changed.notify_all()
            return len(self._notes)


class DeafBus(_Lab):
    """A unix socket at ``<directory>/bus`` that listens and never accepts: connect works, nothing answers."""

    def __init__(self, directory: Path | None = None) -> None:
        self._own_directory = directory is None
        self.directory = short_tempdir() if directory is None else directory
        self.socket_path = self.directory / "bus"
        self.address = unix_address(self.socket_path)
        self._sock: socket.socket | None = None

    def start(self) -> DeafBus:
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.bind(str(self.socket_path))
        self._sock.listen(8)
        return self

    def stop(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        _clean(self.directory, self._own_directory, ("bus",))


class StalledBus(_Lab):
    """A unix socket at ``<directory>/bus`` that accepts, says OK to authentication, then never replies."""

    def __init__(self, directory: Path | None = None) -> None:
        self._own_directory = directory is None
        self.directory = short_tempdir() if directory is None else directory
        self.socket_path = self.directory / "bus"
        self.address = unix_address(self.socket_path)
        self.received = bytearray()  # everything the clients sent after authenticating
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None

    def start(self) -> StalledBus:
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.bind(str(self.socket_path))
        self._sock.listen(8)
        self._thread = threading.Thread(target=self._run, name="stalled-bus", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(5.0)
            self._thread = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        _clean(self.directory, self._own_directory, ("bus",))

    def _run(self) -> None:
        assert self._sock is not None
        clients: dict[socket.socket, bytearray] = {}
        with selectors.DefaultSelector() as selector:
            selector.register(self._sock, selectors.EVENT_READ)
            try:
                while not self._stopping.is_set():
                    for key, _ in selector.select(0.05):
                        sock: socket.socket = key.fileobj  # type: ignore[assignment]
                        if sock is self._sock:
                            client, _ = sock.accept()
                            clients[client] = bytearray()
                            selector.register(client, selectors.EVENT_READ)
                            continue
                        data = sock.recv(4096)
                        if not data:
                            selector.unregister(sock)
                            clients.pop(sock).clear()
                            sock.close()
                            continue
                        pending = clients[sock]
                        if b"\r\n" not in pending:
                            pending += data
                            if b"\r\n" in pending:  # the AUTH line: accept it, then go silent
                                sock.sendall(b"OK 0123456789abcdef0123456789abcdef\r\n")
                        else:
                            self.received += data
            finally:
                for client in clients:
                    client.close()
