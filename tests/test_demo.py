"""`mailpin demo`, run as a user runs it: every step behaves as shown, it is quick, and it leaves
nothing behind — no file in the user's HOME, no temporary directory, no listening port, no process.

Plus the embedded servers on their own: the parts of SMTP and IMAP the story does not reach, and
that a silent or flooding client can neither hang nor grow them.
"""

from __future__ import annotations

import imaplib
import os
import re
import signal
import smtplib
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailpin.demo import ca
from mailpin.demo.imap import ImapServer
from mailpin.demo.smtp import SmtpServer
from tests.conftest import need

STEPS = (
    "1. A throwaway CA, two mail servers, two accounts",
    "2. Pin both accounts",
    "3. Send and sync through mailpin",
    "4. Move an old STARTTLS account to Implicit TLS",
    "5. Attack 1: STARTTLS stripped on the IMAP server",
    "6. Attack 2: a certificate from another CA on the SMTP server",
)


def mailpin_command() -> str:
    """The installed entry script, as a user runs it (the demo ships in the wheel)."""
    found = Path(sys.executable).parent / "mailpin"
    if not found.exists():
        pytest.fail(f"the mailpin entry point is not installed next to {sys.executable}")
    return str(found)


def files_below(directory: Path) -> list[Path]:
    return sorted(directory.rglob("*"))


def demo_env(tmp_path: Path, **changes: str) -> dict[str, str]:
    """The test's isolated environment, with TMPDIR of its own (to see what the demo leaves there)."""
    tmp = tmp_path / "tmp"
    tmp.mkdir(exist_ok=True)
    return {**os.environ, "TMPDIR": str(tmp), **changes}


def run_demo(env: dict[str, str], *args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    done = subprocess.run([mailpin_command(), "demo", *args], env=env, capture_output=True, text=True, timeout=60)
    return done, time.monotonic() - started


def ports_in(output: str) -> set[int]:
    return {int(port) for port in re.findall(r"localhost:(\d+)", output)}


def assert_left_nothing(tmp_path: Path, home: Path, output: str) -> None:
    assert files_below(home) == [], "the user's HOME must stay untouched"
    assert list((tmp_path / "tmp").iterdir()) == [], "the temporary directory must be removed"
    ports = ports_in(output)
    assert len(ports) >= 2
    for port in ports:
        with socket.socket() as probe, pytest.raises(ConnectionRefusedError):
            probe.connect(("127.0.0.1", port))
    if Path("/proc/self/cwd").exists():  # a process still working in the demo's directory (a tunnel…)
        lingering = []
        for cwd in Path("/proc").glob("[0-9]*/cwd"):
            try:
                if str(tmp_path / "tmp") in os.readlink(cwd):
                    lingering.append(cwd.parent.name)
            except OSError:
                continue
        assert lingering == []


def test_the_demo_with_msmtp_and_mbsync_blocks_both_attacks_and_notifies(
    isolated_env: Path, tmp_path: Path, session_bus
) -> None:
    need("msmtp")
    need("mbsync")
    done, seconds = run_demo(demo_env(tmp_path, DBUS_SESSION_BUS_ADDRESS=session_bus.address))
    assert done.returncode == 0, done.stdout + done.stderr
    assert seconds < 30
    for step in STEPS:
        assert step in done.stdout
    out = done.stdout
    assert "$ mailpin run msmtp -a demo -t < hello.eml" in out and "$ mailpin run mbsync -a" in out
    assert out.count("✓ blocked (exit 69)") == 2
    assert "mailpin: mbsync:demo blocked: " in out and "[starttls-missing]" in out
    assert "mailpin: msmtp:demo blocked: " in out and "message held as" in out
    assert "a new key from a different CA" in out  # review's words, shown
    assert "$ mailpin queue flush" in out and "the held message went out" in out
    assert "$ mailpin upgrade --yes msmtp:old" in out and "+tls_starttls off" in out  # the diff, shown
    assert "the next send went over Implicit TLS" in out
    assert "All 6 steps behaved as shown" in out
    notes = session_bus.wait_for(2)
    assert [note["summary"] for note in notes] == [
        "mbsync:demo: STARTTLS stripped",
        "msmtp:demo: certificate from a different CA",
    ]
    assert out.count("a notification is on your desktop") == 2
    assert_left_nothing(tmp_path, isolated_env, out)


def test_without_msmtp_and_mbsync_the_demo_uses_check(isolated_env: Path, tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    # A bus that is not there: the demo must say what the notification would have read.
    env = demo_env(tmp_path, PATH=str(empty), DBUS_SESSION_BUS_ADDRESS=f"unix:path={tmp_path}/no-bus")
    done, seconds = run_demo(env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert seconds < 30
    out = done.stdout
    for step in STEPS:
        assert step in out
    assert "msmtp and mbsync not installed" in out
    assert "msmtp is not installed: `mailpin upgrade` checks its edit with `msmtp --pretend`; skipped" in out
    assert "mailpin run" not in out
    assert "$ mailpin check mbsync:demo" in out and "$ mailpin check msmtp:demo" in out
    assert out.count("✓ blocked (exit 69)") == 2
    assert out.count("on a desktop it would read:") == 2
    assert "mbsync:demo: STARTTLS stripped" in out and "msmtp:demo: certificate from a different CA" in out
    assert "queue flush" not in out  # nothing was held: nothing was sent
    assert_left_nothing(tmp_path, isolated_env, out)


def test_a_step_that_misbehaves_fails_the_demo_by_name_and_still_cleans_up(isolated_env: Path, tmp_path: Path) -> None:
    fake = tmp_path / "bin"
    fake.mkdir()
    for tool in ("msmtp", "mbsync"):  # "installed", but every send and sync fails
        (fake / tool).write_text("#!/bin/sh\necho 'this tool is broken' >&2\nexit 1\n")
        (fake / tool).chmod(0o755)
    done, _ = run_demo(demo_env(tmp_path, PATH=f"{fake}{os.pathsep}/usr/bin{os.pathsep}/bin"), "--quiet")
    assert done.returncode == 1
    assert "FAILED" in done.stderr and "'Send and sync through mailpin'" in done.stderr
    assert "this tool is broken" in done.stderr  # --quiet: the failing step's output is the evidence
    assert "Attack 1" not in done.stdout
    assert_left_nothing(tmp_path, isolated_env, done.stdout)


@pytest.mark.parametrize(
    ("signum", "moment"),
    [
        (signal.SIGINT, "2. Pin both accounts"),  # mailpin's own command running
        (signal.SIGINT, "$ mailpin run mbsync -a"),  # mbsync and its tunnel running
        (signal.SIGTERM, "2. Pin both accounts"),
    ],
    ids=["ctrl-c", "ctrl-c-during-sync", "sigterm"],
)
def test_an_interrupted_demo_stops_the_servers_and_removes_everything(
    isolated_env: Path, tmp_path: Path, signum: int, moment: str
) -> None:
    if "mbsync" in moment:
        need("mbsync")
    proc = subprocess.Popen([mailpin_command(), "demo"], env=demo_env(tmp_path), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)  # fmt: skip
    try:
        assert proc.stdout is not None
        seen = ""
        for line in proc.stdout:  # a command's line is printed as it starts
            seen += line
            if moment in line:
                break
        if signum == signal.SIGINT:
            os.killpg(proc.pid, signum)  # a terminal's Ctrl-C: the whole foreground process group
        else:
            proc.send_signal(signum)  # a service manager stopping the demo alone
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err
    assert "interrupted" in err
    assert_left_nothing(tmp_path, isolated_env, seen + out)


def test_keep_keeps_the_directory_and_says_where(isolated_env: Path, tmp_path: Path) -> None:
    done, _ = run_demo(demo_env(tmp_path, PATH=str(tmp_path)), "--keep", "--quiet")
    assert done.returncode == 0, done.stdout + done.stderr
    (kept,) = (tmp_path / "tmp").iterdir()
    assert f"kept {kept}" in done.stdout
    assert (kept / "home" / ".msmtprc").is_file() and (kept / "pki" / "ca.pem").is_file()
    assert files_below(isolated_env) == []


# -- the servers on their own ----------------------------------------------------------------------


@pytest.fixture
def pki(tmp_path: Path) -> ca.DemoPKI:  # the demo's own PKI, not the lab's
    return ca.make(tmp_path / "demo-pki")


@pytest.fixture
def smtp(pki: ca.DemoPKI) -> Iterator[SmtpServer]:
    server = SmtpServer(pki).start()
    yield server
    server.stop()
    assert server.errors == []


@pytest.fixture
def imap(pki: ca.DemoPKI) -> Iterator[ImapServer]:
    server = ImapServer(pki, [b"Subject: one\r\nX-Tag: a\r\n\r\nbody one\r\n", b"Subject: two\r\n\r\nbody two\r\n"])
    yield server.start()
    server.stop()
    assert server.errors == []


def client_context(pki: ca.DemoPKI) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(pki.trust_file))


def test_smtp_starttls_auth_and_dot_unstuffing(smtp: SmtpServer, pki: ca.DemoPKI) -> None:
    with smtplib.SMTP("localhost", smtp.ports["starttls"], timeout=5) as client:
        client.ehlo()
        assert client.has_extn("starttls") and not client.has_extn("auth")  # no password before TLS
        client.starttls(context=client_context(pki))
        client.ehlo()
        client.login("demo", "demo")
        client.sendmail("a@example.org", ["b@example.org"], b"Subject: x\r\n\r\n.leading dot\r\n..two\r\n")
    (got,) = smtp.received
    assert got.recipients == ("b@example.org",)
    assert got.data == b"Subject: x\r\n\r\n.leading dot\r\n..two\r\n"
    assert smtp.logins == 1


def test_smtp_strip_and_foreign_switches(smtp: SmtpServer, pki: ca.DemoPKI) -> None:
    smtp.offer_starttls = False
    with smtplib.SMTP("localhost", smtp.ports["starttls"], timeout=5) as client:
        client.ehlo()
        assert not client.has_extn("starttls")
    smtp.foreign = True
    with pytest.raises(ssl.SSLCertVerificationError):
        smtplib.SMTP_SSL("localhost", smtp.ports["implicit"], timeout=5, context=client_context(pki))


def test_imap_starttls_authenticate_and_fetch(imap: ImapServer, pki: ca.DemoPKI) -> None:
    with imaplib.IMAP4("localhost", imap.ports["starttls"], timeout=5) as client:
        assert "STARTTLS" in client.capabilities and "LOGINDISABLED" in client.capabilities
        client.starttls(ssl_context=client_context(pki))
        assert "AUTH=PLAIN" in client.capabilities
        assert client.authenticate("PLAIN", lambda _: b"\0demo\0demo")[0] == "OK"
        assert client.select("INBOX")[1] == [b"2"]
        typ, data = client.uid("FETCH", "1:*", "(FLAGS RFC822.SIZE BODY.PEEK[HEADER.FIELDS (X-TAG)])")
        assert typ == "OK" and data[0][1] == b"X-Tag: a\r\n\r\n"
        typ, data = client.uid("FETCH", "2", "(BODY[])")
        assert data[0][1] == b"Subject: two\r\n\r\nbody two\r\n"
        assert b"\\Seen" in client.uid("FETCH", "2", "(FLAGS)")[1][0]  # fetched without PEEK: read
        assert client.logout()[0] == "BYE"
    assert imap.fetched == 1


def test_imap_literals_both_kinds(imap: ImapServer, pki: ca.DemoPKI) -> None:
    with (
        socket.create_connection(("127.0.0.1", imap.ports["implicit"]), timeout=5) as raw,
        client_context(pki).wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        reader = tls.makefile("rb")
        assert reader.readline().startswith(b"* OK [CAPABILITY IMAP4rev1 LITERAL+")
        tls.sendall(b"a1 LOGIN {4}\r\n")  # RFC 3501 §4.3: wait for the go-ahead
        assert reader.readline().startswith(b"+ ")
        tls.sendall(b'demo {4+}\r\ndemo\r\na2 SELECT "INBOX"\r\n')  # RFC 7888: LITERAL+ needs none
        assert reader.readline().startswith(b"a1 OK ")
        assert b"* 2 EXISTS\r\n" in [reader.readline() for _ in range(6)]
        assert reader.readline().startswith(b"a2 OK [READ-WRITE]")
        tls.sendall(b"a3 FROBNICATE\r\na4 UID FETCH x:y (FLAGS)\r\na5 FETCH 1 (ENVELOPE)\r\n")
        assert [reader.readline().split(b" ")[:2] for _ in range(3)] == [
            [b"a3", b"BAD"],
            [b"a4", b"BAD"],
            [b"a5", b"BAD"],
        ]
        reader.close()
    assert imap.logins == 1


def test_a_silent_or_flooding_client_neither_hangs_nor_grows_a_server(smtp: SmtpServer) -> None:
    silent = socket.create_connection(("127.0.0.1", smtp.ports["implicit"]))  # never says a word
    flood = socket.create_connection(("127.0.0.1", smtp.ports["starttls"]))
    try:
        assert flood.recv(100).startswith(b"220 ")
        flood.sendall(b"x" * 20000)  # no line end, over the line cap: the server hangs up
        flood.settimeout(5)
        assert flood.recv(100) == b""
        started = time.monotonic()
        smtp.stop()
        assert time.monotonic() - started < 3
    finally:
        silent.close()
        flood.close()


def test_the_readme_demo_command_runs_the_demo() -> None:
    """README set-up command 1, `bash contrib/demo.sh`, as written (in this checkout's venv)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "MAILPIN_VENV": str(Path(sys.executable).parent.parent)}
    done = subprocess.run(["bash", "contrib/demo.sh", "--quiet"], cwd=root, env=env, capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert b"behaved as shown" in done.stdout
