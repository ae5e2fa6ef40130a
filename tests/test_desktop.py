"""Desktop notifications against a real session ``dbus-daemon`` and a recording notification server.

Every delivery test has a sibling where the bus is missing, deaf, stalled, or nobody serves
notifications, and ``send`` must then return "" quickly and never raise.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mailpin.notify import desktop
from mailpin.notify.desktop import Note, bus_address, paths, send
from tests.conftest import need
from tests.lab.notifyd import DeafBus, NotifyDaemon, StalledBus, short_tempdir

BLOCK = Note(
    summary="msmtp:work: certificate from a different CA",
    body="smtp.example.org:465\nissuer <Evil & Co> replaced Let's Encrypt\nreview: mailpin review work",
    critical=True,
)
UNVERIFIED = Note(summary="mbsync:home: could not verify", body="imap.example.org:993 timed out", critical=False)
BOUND = 1.5  # seconds: send()'s default timeout is 1.0, plus a little
PATH = os.environ.get("PATH", os.defpath)


@pytest.fixture
def no_system_user_bus(tmp_path: Path) -> Path:
    """Where /run/user lives for these tests (conftest's isolated_env points desktop.RUN_USER there)."""
    assert tmp_path / "run-user" == desktop.RUN_USER
    return desktop.RUN_USER


@pytest.fixture
def user_dir(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """This user's /run/user/$UID, made short (a socket path must fit in 108 bytes) and empty."""
    base = short_tempdir(prefix="mailpin-run-user-")
    monkeypatch.setattr(desktop, "RUN_USER", base)
    mine = base / str(os.getuid())
    mine.mkdir(mode=0o700)
    try:
        yield mine
    finally:
        shutil.rmtree(base, ignore_errors=True)


def timed(note: Note, environ: dict[str, str]) -> tuple[str, float]:
    started = time.monotonic()
    how = send(note, environ)
    return how, time.monotonic() - started


def empty_path_dir(tmp_path: Path) -> str:
    """A PATH with nothing on it (no notify-send)."""
    bare = tmp_path / "bare-bin"
    bare.mkdir(exist_ok=True)
    return str(bare)


# --- bus_address: where the session bus is -------------------------------------------------------


def test_bus_address_prefers_the_environment(tmp_path: Path) -> None:
    with DeafBus() as bus:
        environ = {"DBUS_SESSION_BUS_ADDRESS": "unix:path=/elsewhere", "XDG_RUNTIME_DIR": str(bus.directory)}
        assert bus_address(environ) == "unix:path=/elsewhere"
        # Empty is the same as unset (`export DBUS_SESSION_BUS_ADDRESS=` in a crontab).
        environ["DBUS_SESSION_BUS_ADDRESS"] = ""
        assert bus_address(environ) == f"unix:path={bus.socket_path}"


def test_bus_address_falls_back_to_run_user(tmp_path: Path, user_dir: Path) -> None:
    with DeafBus(user_dir):
        # No XDG_RUNTIME_DIR (cron), or a relative one (invalid per the XDG spec), or one without a bus.
        for environ in ({}, {"XDG_RUNTIME_DIR": "relative/dir"}, {"XDG_RUNTIME_DIR": str(tmp_path)}):
            assert bus_address(environ) == f"unix:path={user_dir}/bus"


def test_bus_address_takes_no_link_to_a_socket(user_dir: Path) -> None:
    """libdbus lstat()s $XDG_RUNTIME_DIR/bus: a link is not the user's bus, wherever it points."""
    with DeafBus() as bus:
        (user_dir / "bus").symlink_to(bus.socket_path)
        runtime = short_tempdir(prefix="mailpin-runtime-")
        try:
            (runtime / "bus").symlink_to(bus.socket_path)
            assert bus_address({"XDG_RUNTIME_DIR": str(runtime)}) is None
            assert bus_address({}) is None
            # What `mailpin doctor` says of it.
            assert f"{user_dir}/bus is not a socket of yours" in paths({"PATH": empty_path_dir(runtime)})[0][2]
        finally:
            shutil.rmtree(runtime, ignore_errors=True)
        # The socket itself is taken (the link was the only problem).
        assert bus_address({"XDG_RUNTIME_DIR": str(bus.directory)}) == bus.address


def test_bus_address_takes_only_a_socket_of_the_users_own(user_dir: Path) -> None:
    """Another user's socket at the place of this user's bus (libdbus: st_uid != getuid()) is not
    this user's bus: it would be told the account and the server of every block."""
    if os.getuid() != 0:
        pytest.skip("giving a socket to another user needs root (CI runs as root)")
    with DeafBus(user_dir) as bus:
        os.chown(bus.socket_path, 65534, -1, follow_symlinks=False)  # nobody
        assert bus_address({"XDG_RUNTIME_DIR": str(user_dir)}) is None
        assert bus_address({}) is None
        os.chown(bus.socket_path, os.getuid(), -1, follow_symlinks=False)
        assert bus_address({}) == bus.address


def test_bus_address_ignores_what_is_not_a_socket(tmp_path: Path, no_system_user_bus: Path) -> None:
    (tmp_path / "bus").write_text("not a socket")
    user_dir = no_system_user_bus / str(os.getuid())
    (user_dir / "bus").mkdir(parents=True)
    assert bus_address({"XDG_RUNTIME_DIR": str(tmp_path)}) is None
    assert bus_address({}) is None


@pytest.fixture
def odd_dir() -> Iterator[Path]:
    """A short directory whose name needs D-Bus address escaping (space, comma, "=", non-ASCII)."""
    directory = short_tempdir(prefix="mailpin bus,é=")
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def test_bus_address_escapes_the_path(odd_dir: Path) -> None:
    with DeafBus(odd_dir):
        address = bus_address({"XDG_RUNTIME_DIR": str(odd_dir)})
    assert address == "unix:path=" + str(odd_dir).replace(" bus,é=", "%20bus%2c%c3%a9%3d") + "/bus"


# --- send: delivered, with the right fields --------------------------------------------------------


@pytest.mark.real
def test_block_arrives_critical_with_markup_escaped(session_bus: NotifyDaemon) -> None:
    how, took = timed(BLOCK, {"PATH": PATH, "DBUS_SESSION_BUS_ADDRESS": session_bus.address})
    assert how == f"dbus {session_bus.address}"
    [note] = session_bus.wait_for(1)
    assert note["app_name"] == "mailpin"
    assert note["summary"] == "msmtp:work: certificate from a different CA"
    assert note["body"] == (
        "smtp.example.org:465\nissuer &lt;Evil &amp; Co&gt; replaced Let's Encrypt\nreview: mailpin review work"
    )
    assert note["urgency"] == 2
    assert note["hints"] == {"urgency": 2, "desktop-entry": "mailpin"}
    assert note["expire_timeout"] == 0
    assert note["app_icon"] == "dialog-warning"
    assert note["actions"] == []
    assert took < BOUND


@pytest.mark.real
def test_could_not_verify_arrives_normal(session_bus: NotifyDaemon) -> None:
    assert send(UNVERIFIED, {"PATH": PATH, "DBUS_SESSION_BUS_ADDRESS": session_bus.address}).startswith("dbus ")
    [note] = session_bus.wait_for(1)
    assert (note["summary"], note["body"]) == ("mbsync:home: could not verify", "imap.example.org:993 timed out")
    assert note["urgency"] == 1
    assert note["expire_timeout"] == -1
    assert note["app_icon"] == "dialog-information"


@pytest.mark.real
def test_each_send_is_one_notification(session_bus: NotifyDaemon) -> None:
    environ = {"PATH": PATH, "DBUS_SESSION_BUS_ADDRESS": session_bus.address}
    assert send(BLOCK, environ)
    assert send(UNVERIFIED, environ)
    time.sleep(0.2)
    assert [note["urgency"] for note in session_bus.notifications()] == [2, 1]


@pytest.mark.real
def test_from_cron_the_bus_is_found_in_xdg_runtime_dir(session_bus: NotifyDaemon) -> None:
    environ = {"PATH": PATH, "XDG_RUNTIME_DIR": str(session_bus.directory)}  # no DBUS_SESSION_BUS_ADDRESS
    how = send(BLOCK, environ)
    assert how == f"dbus unix:path={session_bus.socket_path}"
    assert session_bus.wait_for(1)[0]["summary"] == BLOCK.summary


@pytest.mark.real
def test_from_cron_the_bus_is_found_in_run_user(user_dir: Path) -> None:
    with NotifyDaemon(user_dir, program=need("dbus-daemon")) as bus:
        assert send(BLOCK, {"PATH": PATH}) == f"dbus unix:path={user_dir}/bus"
        assert bus.wait_for(1)[0]["urgency"] == 2


@pytest.mark.real
def test_a_runtime_dir_that_needs_address_escaping(odd_dir: Path) -> None:
    with NotifyDaemon(odd_dir, program=need("dbus-daemon")) as bus:
        how = send(BLOCK, {"PATH": PATH, "XDG_RUNTIME_DIR": str(odd_dir)})
        arrived = bus.wait_for(1)
    assert how.startswith("dbus unix:path=/tmp/mailpin%20bus%2c%c3%a9%3d")
    assert arrived[0]["summary"] == BLOCK.summary


# --- send: nothing reachable → "", quickly ---------------------------------------------------------


def test_no_bus_at_all_returns_nothing_at_once(tmp_path: Path) -> None:
    # Over SSH without a desktop: notify-send is installed, but there is no bus to send to.
    how, took = timed(BLOCK, {"PATH": PATH, "XDG_RUNTIME_DIR": str(tmp_path)})
    assert how == ""
    assert took < 0.5


@pytest.mark.parametrize("via", ["DBUS_SESSION_BUS_ADDRESS", "XDG_RUNTIME_DIR"])
def test_a_socket_nobody_accepts_on_returns_nothing_in_time(via: str) -> None:
    with DeafBus() as bus:
        value = bus.address if via == "DBUS_SESSION_BUS_ADDRESS" else str(bus.directory)
        how, took = timed(BLOCK, {"PATH": PATH, via: value})
    assert how == ""
    assert took < BOUND


def test_a_bus_that_authenticates_then_stalls_returns_nothing_in_time() -> None:
    # jeepney's open_dbus_connection would wait for the Hello reply forever here.
    with StalledBus() as bus:
        how, took = timed(BLOCK, {"PATH": PATH, "DBUS_SESSION_BUS_ADDRESS": bus.address})
        assert b"Hello" in bus.received  # it got as far as saying Hello
    assert how == ""
    assert took < BOUND


@pytest.mark.real
def test_a_bus_without_a_notification_server_returns_nothing_quickly() -> None:
    with NotifyDaemon(program=need("dbus-daemon"), serve=False) as bus:
        need("notify-send")  # the fallback is tried too, and fails the same way
        how, took = timed(BLOCK, {"PATH": PATH, "DBUS_SESSION_BUS_ADDRESS": bus.address})
    assert how == ""
    assert took < 0.5


@pytest.mark.real
def test_a_server_that_never_answers_returns_nothing_in_time() -> None:
    with NotifyDaemon(program=need("dbus-daemon"), answer=False) as bus:
        how, took = timed(BLOCK, {"PATH": PATH, "DBUS_SESSION_BUS_ADDRESS": bus.address})
        assert len(bus.wait_for(1)) == 1  # it was asked; it just never said so
    assert how == ""
    assert took < BOUND


def test_an_address_without_a_unix_socket_returns_nothing() -> None:
    for address in ("tcp:host=127.0.0.1,port=1", "garbage", "unix:tmpdir=/tmp"):
        how, took = timed(BLOCK, {"PATH": "", "DBUS_SESSION_BUS_ADDRESS": address})
        assert (how, took < 0.5) == ("", True), address


# --- notify-send, when D-Bus direct fails ------------------------------------------------------------


def broken_dbus(*args: object) -> None:
    raise RuntimeError("simulated: direct D-Bus failed")


@pytest.mark.real
def test_notify_send_takes_over_when_dbus_direct_fails(
    session_bus: NotifyDaemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    need("notify-send")
    monkeypatch.setattr(desktop, "_notify_dbus", broken_dbus)
    note = Note(summary="-work: a summary that looks like an option", body=BLOCK.body, critical=True)
    how = send(note, {"PATH": PATH, "DBUS_SESSION_BUS_ADDRESS": session_bus.address})
    assert how == "notify-send"
    [arrived] = session_bus.wait_for(1)
    assert arrived["app_name"] == "mailpin"
    assert arrived["summary"] == note.summary
    assert "&lt;Evil &amp; Co&gt;" in arrived["body"]
    assert arrived["urgency"] == 2
    assert arrived["hints"]["desktop-entry"] == "mailpin"
    assert arrived["app_icon"] == "dialog-warning"


@pytest.mark.real
def test_notify_send_is_given_the_bus_found_from_cron(monkeypatch: pytest.MonkeyPatch, user_dir: Path) -> None:
    need("notify-send")
    monkeypatch.setattr(desktop, "_notify_dbus", broken_dbus)
    with NotifyDaemon(user_dir, program=need("dbus-daemon")) as bus:
        # Neither DBUS_SESSION_BUS_ADDRESS nor XDG_RUNTIME_DIR: on its own notify-send has no bus (see
        # the next assertion), so the notification arriving shows mailpin passed on the address it found.
        alone = subprocess.run(["notify-send", "alone"], env={"PATH": PATH}, capture_output=True, timeout=5)
        assert alone.returncode != 0
        how = send(UNVERIFIED, {"PATH": PATH})
        assert how == "notify-send"
        [arrived] = bus.wait_for(1)
    assert (arrived["summary"], arrived["urgency"]) == (UNVERIFIED.summary, 1)


@pytest.mark.real
def test_no_notify_send_on_path_means_nothing(
    session_bus: NotifyDaemon, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(desktop, "_notify_dbus", broken_dbus)
    assert send(BLOCK, {"PATH": empty_path_dir(tmp_path), "DBUS_SESSION_BUS_ADDRESS": session_bus.address}) == ""
    time.sleep(0.2)
    assert session_bus.notifications() == []


# --- macOS: terminal-notifier, else osascript (argv checked with recording stand-ins) ----------------


def fake_program(directory: Path, name: str, record: Path) -> None:
    program = directory / name
    program.write_text(
        f"#!{sys.executable}\nimport json, sys\nopen({str(record)!r}, 'w').write(json.dumps(sys.argv[1:]))\n"
    )
    program.chmod(0o755)


@pytest.mark.parametrize("program", ["terminal-notifier", "osascript"])
def test_macos_programs_get_the_note_as_plain_arguments(
    program: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    record = tmp_path / "argv.json"
    fake_program(bin_dir, program, record)
    note = Note(summary='work: "quoted" \\ summary', body='line 1\nline "2" & <3>', critical=True)
    monkeypatch.setattr(sys, "platform", "darwin")
    assert send(note, {"PATH": str(bin_dir)}) == program
    argv: list[str] = json.loads(record.read_text())
    if program == "terminal-notifier":
        assert argv == ["-title", "mailpin", "-subtitle", note.summary, "-message", note.body]
    else:
        # The text goes in as run-handler arguments: nothing in it is AppleScript source.
        assert argv[-2:] == [note.summary, note.body]
        script = argv[:-2]
        assert script[::2] == ["-e"] * 3
        assert script[1] == "on run argv"
        assert note.summary not in " ".join(script)


def test_macos_programs_are_not_used_elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake_program(bin_dir, "osascript", tmp_path / "argv.json")
    monkeypatch.setattr(sys, "platform", "linux")
    assert send(BLOCK, {"PATH": str(bin_dir)}) == ""
    assert not (tmp_path / "argv.json").exists()


# --- paths(): what `mailpin doctor` reports, sending nothing ------------------------------------------


@pytest.mark.real
def test_paths_on_a_working_desktop(session_bus: NotifyDaemon) -> None:
    need("notify-send")
    found = paths({"PATH": PATH, "DBUS_SESSION_BUS_ADDRESS": session_bus.address})
    assert found == [
        (f"dbus {session_bus.address}", True, "notification server mailpin-lab 1.0 (mailpin)"),
        ("notify-send", True, "on PATH"),
    ]
    time.sleep(0.2)
    assert session_bus.notifications() == []  # asked, not shown


def test_paths_without_a_bus(tmp_path: Path) -> None:
    found = paths({"PATH": empty_path_dir(tmp_path)})
    assert found == [
        (
            "dbus",
            False,
            f"no session bus: DBUS_SESSION_BUS_ADDRESS unset, no $XDG_RUNTIME_DIR/bus, "
            f"no {desktop.RUN_USER}/{os.getuid()}/bus",
        ),
        ("notify-send", False, "not on PATH"),
    ]


@pytest.mark.real
def test_paths_on_a_bus_without_a_notification_server() -> None:
    need("notify-send")
    with NotifyDaemon(program=need("dbus-daemon"), serve=False) as bus:
        found = paths({"PATH": PATH, "DBUS_SESSION_BUS_ADDRESS": bus.address})
    assert found[0] == (
        f"dbus {bus.address}",
        False,
        "no notification server: nobody owns org.freedesktop.Notifications",
    )
    assert found[1][:2] == ("notify-send", False)


@pytest.mark.parametrize("lab", [DeafBus, StalledBus])
def test_paths_on_a_wedged_bus_is_bounded(lab: Any) -> None:
    with lab() as bus:
        started = time.monotonic()
        found = paths({"PATH": PATH, "DBUS_SESSION_BUS_ADDRESS": bus.address})
        took = time.monotonic() - started
    assert found[0] == (f"dbus {bus.address}", False, "the bus did not answer within 1 s")
    assert took < BOUND


def test_paths_on_a_missing_socket(tmp_path: Path) -> None:
    address = f"unix:path={tmp_path}/gone"
    [(name, ok, why), _] = paths({"PATH": "", "DBUS_SESSION_BUS_ADDRESS": address})
    assert (name, ok) == (f"dbus {address}", False)
    assert why == "cannot reach the bus: No such file or directory"


# --- send never raises ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "error", [RuntimeError("boom"), OSError(5, "EIO"), ValueError("bad"), TimeoutError(), UnicodeError(), KeyError("x")]
)
@pytest.mark.parametrize("where", ["bus_address", "_notify_dbus", "_Connection", "_run", "_which", "escape_markup"])
def test_send_never_raises(where: str, error: Exception, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def fail(*args: object, **kwargs: object) -> Any:
        raise error

    monkeypatch.setattr(desktop, where, fail)
    monkeypatch.setattr(sys, "platform", "darwin")  # reach every path, macOS ones included
    with DeafBus() as bus:
        started = time.monotonic()
        how = send(BLOCK, {"PATH": PATH, "XDG_RUNTIME_DIR": str(bus.directory)}, timeout=0.1)
    assert how == ""
    assert time.monotonic() - started < 0.6


@pytest.mark.real
def test_text_a_bus_cannot_carry_is_not_an_error(session_bus: NotifyDaemon) -> None:
    # D-Bus strings cannot hold NUL, argv cannot either: nothing delivers it, nothing raises.
    note = Note(summary="work\0", body="x", critical=True)
    assert send(note, {"PATH": PATH, "DBUS_SESSION_BUS_ADDRESS": session_bus.address}) == ""


def test_notify_send_timing_out_is_killed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    pid_file = tmp_path / "pid"
    hang = bin_dir / "notify-send"
    hang.write_text(f"#!/bin/sh\necho $$ > {pid_file}\nexec sleep 30\n")
    hang.chmod(0o755)
    monkeypatch.setattr(desktop, "_notify_dbus", broken_dbus)
    with DeafBus() as bus:
        how, took = timed(BLOCK, {"PATH": str(bin_dir), "DBUS_SESSION_BUS_ADDRESS": bus.address})
    assert how == ""
    assert took < BOUND
    pid = int(pid_file.read_text())
    assert not Path(f"/proc/{pid}").exists()  # killed and reaped, not left behind
