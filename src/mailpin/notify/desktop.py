"""Desktop notifications: the freedesktop D-Bus service directly, then ``notify-send``, then macOS.

A notification is a courtesy on top of a verdict, never part of it: every path shares one deadline,
and ``send`` returns "" instead of raising. Over SSH or from cron without a desktop that means no
notification, no error and no delay beyond the bound.

The D-Bus client does its own socket I/O and leaves the protocol (authentication, marshalling) to
jeepney: ``jeepney.io.blocking.open_dbus_connection`` bounds authentication (``auth_timeout``) but
then says Hello with no time limit, so a bus that authenticates and then stalls would hang the tool
mailpin stands in front of.
"""

from __future__ import annotations

import os
import stat
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import socket

# socket, subprocess, shutil and jeepney are imported where used: the wrapper imports this module on
# every run, and most runs notify nobody.

APP_NAME = "mailpin"
SERVICE = "org.freedesktop.Notifications"
OBJECT_PATH = "/org/freedesktop/Notifications"
RUN_USER = Path("/run/user")  # systemd-logind's per-user runtime directories (tests point this elsewhere)

_READ_LIMIT = 1 << 20  # the replies read here are tiny: stop listening to a peer that sends more
_MIN_SPAWN = 0.05  # seconds: not worth starting a program with less time than this left
# D-Bus spec, "Server Addresses": every byte outside this set must be written as %XX.
_ADDRESS_SAFE = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_/.\\*")
# osascript passes the arguments after the script to its run handler: no AppleScript quoting needed.
_APPLESCRIPT = (
    "on run argv",
    'display notification (item 2 of argv) with title "mailpin" subtitle (item 1 of argv)',
    "end run",
)


@dataclass(frozen=True)
class Note:
    """One desktop notification: a block is critical, "could not verify" is normal urgency."""

    summary: str  # "msmtp:work: certificate from a different CA"
    body: str  # several lines: host:port, what changed, the command to review
    critical: bool


def bus_address(environ: Mapping[str, str]) -> str | None:
    """The session bus: $DBUS_SESSION_BUS_ADDRESS, else the user's bus socket if there is one.

    systemd user services have DBUS_SESSION_BUS_ADDRESS; cron has neither it nor XDG_RUNTIME_DIR,
    but the per-user bus that systemd-logind's session starts is still at /run/user/$UID/bus, so
    a cron job finds it with nothing set in the crontab.
    """
    address = environ.get("DBUS_SESSION_BUS_ADDRESS", "")
    if address:
        return address
    for path in _bus_sockets(environ):
        if _users_socket(path):
            return "unix:path=" + _escape_address(os.fsencode(path))
    return None


def send(note: Note, environ: Mapping[str, str], timeout: float = 1.0) -> str:
    """Show `note` on the desktop; return how it went out ("dbus ADDRESS", "notify-send", ...) or "".

    Returns within about `timeout` seconds whatever the bus or the helper programs do, and never
    raises: a notification failure must not change a verdict or an exit status.
    """
    try:
        return _send(note, environ, time.monotonic() + timeout)
    except Exception:
        return ""


def paths(environ: Mapping[str, str], timeout: float = 1.0) -> list[tuple[str, bool, str]]:
    """For `mailpin doctor`: each way to notify considered here, whether it looks usable, and why.

    Sends nothing: D-Bus is asked only whether a notification server is there.
    """
    deadline = time.monotonic() + timeout
    found: list[tuple[str, bool, str]] = []
    address = bus_address(environ)
    if address is None:
        bus_ok, why = False, _no_bus(environ)
        found.append(("dbus", False, why))
    else:
        bus_ok, why = _probe(address, deadline, timeout)
        found.append((f"dbus {address}", bus_ok, why))
    if _which("notify-send", environ) is None:
        found.append(("notify-send", False, "not on PATH"))
    elif not bus_ok:
        found.append(("notify-send", False, "on PATH, but needs the same notification server as dbus"))
    else:
        found.append(("notify-send", True, "on PATH"))
    if sys.platform == "darwin":
        for program in ("terminal-notifier", "osascript"):
            on_path = _which(program, environ) is not None
            found.append((program, on_path, "on PATH" if on_path else "not on PATH"))
    return found


def _send(note: Note, environ: Mapping[str, str], deadline: float) -> str:
    address = bus_address(environ)
    if address is not None:
        try:
            _notify_dbus(address, note, deadline)
            return f"dbus {address}"
        except Exception:
            pass  # notify-send may still get through (another D-Bus library, another transport)
        notify_send = _which("notify-send", environ)
        if notify_send is not None:
            argv = [notify_send, "-u", "critical" if note.critical else "normal", "-a", APP_NAME, "-i", _icon(note)]
            argv += ["-h", f"string:desktop-entry:{APP_NAME}"]
            # "--": a summary that starts with "-" is not an option.
            argv += ["--", note.summary, escape_markup(note.body)]
            if _run(argv, {**environ, "DBUS_SESSION_BUS_ADDRESS": address}, deadline):
                return "notify-send"
    if sys.platform == "darwin":
        terminal_notifier = _which("terminal-notifier", environ)
        if terminal_notifier is not None:
            argv = [terminal_notifier, "-title", APP_NAME, "-subtitle", note.summary, "-message", note.body]
            if _run(argv, environ, deadline):
                return "terminal-notifier"
        osascript = _which("osascript", environ)
        if osascript is not None:
            script = [arg for line in _APPLESCRIPT for arg in ("-e", line)]
            if _run([osascript, *script, note.summary, note.body], environ, deadline):
                return "osascript"
    return ""


def escape_markup(text: str) -> str:
    """Body text as literal text: the spec lets servers read a markup subset in the body."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _icon(note: Note) -> str:
    return "dialog-warning" if note.critical else "dialog-information"


def _notify_dbus(address: str, note: Note, deadline: float) -> None:
    from jeepney import DBusAddress, new_method_call  # type: ignore[import-untyped]

    hints = {"urgency": ("y", 2 if note.critical else 1), "desktop-entry": ("s", APP_NAME)}
    expire = 0 if note.critical else -1  # critical: never expire (the spec's advice); else the server's default
    args: tuple[object, ...] = (APP_NAME, 0, _icon(note), note.summary, escape_markup(note.body), [], hints, expire)
    with _Connection(address, deadline) as bus:
        target = DBusAddress(OBJECT_PATH, bus_name=SERVICE, interface=SERVICE)
        bus.call(new_method_call(target, "Notify", "susssasa{sv}i", args))


def _probe(address: str, deadline: float, timeout: float) -> tuple[bool, str]:
    """Is there a notification server on the bus at `address`? Starts nothing, shows nothing."""
    from jeepney import DBusAddress, new_method_call
    from jeepney.bus_messages import message_bus  # type: ignore[import-untyped]

    try:
        with _Connection(address, deadline) as bus:
            if bus.call(message_bus.NameHasOwner(SERVICE))[0]:
                target = DBusAddress(OBJECT_PATH, bus_name=SERVICE, interface=SERVICE)
                try:
                    name, vendor, version, _ = bus.call(new_method_call(target, "GetServerInformation"))
                except Exception:
                    return True, f"{SERVICE} has an owner"
                return True, f"notification server {name} {version} ({vendor})"
            if SERVICE in bus.call(message_bus.ListActivatableNames())[0]:
                return True, "a notification server is started on demand"
            return False, f"no notification server: nobody owns {SERVICE}"
    except TimeoutError:
        return False, f"the bus did not answer within {timeout:g} s"
    except OSError as error:
        return False, f"cannot reach the bus: {error.strerror or error}"
    except Exception as error:
        return False, f"cannot use the bus: {error}"


class _Connection:
    """A D-Bus client connection on a unix socket whose every step ends by one deadline."""

    def __init__(self, address: str, deadline: float) -> None:
        import socket

        from jeepney import Parser

        self._deadline = deadline
        self._parser = Parser()
        self._serial = 0
        self._received = 0
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self._bounded().connect(_unix_path(address))
            self._authenticate()
            from jeepney.bus_messages import message_bus

            self.call(message_bus.Hello())  # D-Bus spec, "Message Bus": Hello must be the first call
        except BaseException:
            self._sock.close()
            raise

    def __enter__(self) -> _Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self._sock.close()

    def call(self, message: Any) -> tuple[Any, ...]:
        """Send a method call; return the reply's arguments (jeepney raises DBusErrorResponse on an error)."""
        from jeepney import HeaderFields
        from jeepney.wrappers import unwrap_msg  # type: ignore[import-untyped]

        self._serial += 1
        self._bounded().sendall(message.serialise(serial=self._serial))
        while True:
            for reply in self._parser.feed(self._recv()):
                if reply.header.fields.get(HeaderFields.reply_serial) == self._serial:
                    return tuple(unwrap_msg(reply))
                # Anything else (the NameAcquired signal after Hello) is not ours to handle.

    def _authenticate(self) -> None:
        from jeepney.auth import BEGIN, Authenticator  # type: ignore[import-untyped]

        # D-Bus spec, "Authentication Protocol": a NUL byte, AUTH EXTERNAL <uid>, wait for OK, BEGIN.
        auth = Authenticator()
        for line in auth:
            self._bounded().sendall(line)
            auth.feed(self._recv())
        self._bounded().sendall(BEGIN)

    def _recv(self) -> bytes:
        data = self._bounded().recv(4096)
        if not data:
            raise ConnectionResetError("the bus closed the connection")
        self._received += len(data)
        if self._received > _READ_LIMIT:
            raise ConnectionError("the bus sent more than a notification needs")
        return data

    def _bounded(self) -> socket.socket:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the bus did not answer in time")
        self._sock.settimeout(left)
        return self._sock


def _unix_path(address: str) -> str | bytes:
    """The first unix socket in a D-Bus address list ("unix:path=/run/user/1000/bus;...")."""
    from urllib.parse import unquote_to_bytes

    for entry in address.split(";"):
        transport, _, params = entry.partition(":")
        if transport != "unix":
            continue
        for param in params.split(","):
            key, _, value = param.partition("=")
            if key == "path":
                return unquote_to_bytes(value)
            if key == "abstract":
                return b"\0" + unquote_to_bytes(value)
    raise ValueError(f"no unix socket in the D-Bus address {address!r}")


def _escape_address(raw: bytes) -> str:
    return "".join(chr(byte) if byte in _ADDRESS_SAFE else f"%{byte:02x}" for byte in raw)


def _bus_sockets(environ: Mapping[str, str]) -> list[Path]:
    sockets = []
    runtime_dir = environ.get("XDG_RUNTIME_DIR", "")
    if os.path.isabs(runtime_dir):  # XDG Base Directory spec: relative values are invalid, ignore them
        sockets.append(Path(runtime_dir) / "bus")
    sockets.append(RUN_USER / str(os.getuid()) / "bus")
    return sockets


def _users_socket(path: Path) -> bool:
    """A socket of this user's own, checked as libdbus checks $XDG_RUNTIME_DIR/bus
    (dbus-sysdeps-unix.c, _dbus_lookup_user_bus): lstat, owned by getuid(), S_IFSOCK. A bus that
    someone else put there (another user's, or a link to one) would be told the account and the
    server of every block."""
    try:
        found = path.lstat()
    except (OSError, ValueError):
        return False
    return found.st_uid == os.getuid() and stat.S_ISSOCK(found.st_mode)


def _no_bus(environ: Mapping[str, str]) -> str:
    unset = "empty" if "DBUS_SESSION_BUS_ADDRESS" in environ else "unset"
    looked = ", ".join(
        f"{path} is not a socket of yours" if os.path.lexists(path) else f"no {path}" for path in _bus_sockets(environ)
    )
    if not os.path.isabs(environ.get("XDG_RUNTIME_DIR", "")):
        looked = "no $XDG_RUNTIME_DIR/bus, " + looked
    return f"no session bus: DBUS_SESSION_BUS_ADDRESS {unset}, {looked}"


def _which(program: str, environ: Mapping[str, str]) -> str | None:
    import shutil

    return shutil.which(program, path=environ.get("PATH", os.defpath))


def _run(argv: list[str], environ: Mapping[str, str], deadline: float) -> bool:
    """Run a notifier to completion within the deadline; True when it says it worked."""
    import subprocess

    left = deadline - time.monotonic()
    if left < _MIN_SPAWN:
        return False
    io = subprocess.DEVNULL  # never the tool's stdin (a message) or its stdout (a protocol)
    try:
        done = subprocess.run(argv, stdin=io, stdout=io, stderr=io, env=dict(environ), timeout=left, check=False)
    except subprocess.TimeoutExpired:  # run() has killed and reaped it
        return False
    except (OSError, ValueError, subprocess.SubprocessError):  # not runnable, or text argv cannot carry (NUL)
        return False
    return done.returncode == 0
