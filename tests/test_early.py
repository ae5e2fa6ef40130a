"""Connecting while Python imports (net/early.py): a hint only ever saves a round trip — the verifier
takes a connection for exactly its endpoint, a stale hint costs one unused connection and is then
corrected, and a hint others could have written is not read."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from mailpin.net import early
from tests.conftest import need
from tests.lab.counting import CountingServer
from tests.test_run_real import MESSAGE, run, sender, shim_env, write_msmtprc  # noqa: F401 - sender is a fixture


def test_the_verifier_gets_the_connection_for_its_endpoint_only() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    opened = early.Early([("127.0.0.1", port)])
    assert opened.take("127.0.0.1", port + 1, 5) is None  # another endpoint: nothing
    sock = opened.take("127.0.0.1", port, 5)
    assert sock is not None and sock.getpeername()[1] == port
    assert opened.take("127.0.0.1", port, 5) is None  # handed out once
    sock.close()
    opened.close()
    listener.close()


def test_a_connection_nobody_took_is_closed(tmp_path: Path) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    opened = early.Early([("127.0.0.1", port)])
    server_side, _ = listener.accept()
    opened._threads[("127.0.0.1", port)].join(5)
    opened.close()
    server_side.settimeout(5)
    assert server_side.recv(1) == b""  # closed, not left open
    server_side.close()
    listener.close()


def test_a_hint_others_can_write_is_not_read(tmp_path: Path) -> None:
    early.Hints(tmp_path, "k").remember("", [("127.0.0.1", 1)])
    assert early.Hints(tmp_path, "k").agreed() == [("127.0.0.1", 1)]
    (tmp_path / "mailpin" / "connect.json").chmod(0o666)
    assert early.Hints(tmp_path, "k").agreed() == []


def test_before_the_message_only_what_every_sender_agreed_on(tmp_path: Path) -> None:
    """One place for all the From: lines a command line has seen: opened before the message is read;
    two places: nothing until the message says which, then that sender's."""
    work, home = [("mail.work.example", 465)], [("smtp.home.example", 465)]
    early.Hints(tmp_path, "k").remember("alice", work)
    early.Hints(tmp_path, "k").remember("alice-again", work)
    hints = early.Hints(tmp_path, "k")
    assert hints.agreed() == work and hints.of("alice") == work and hints.of("bob") == []
    hints.remember("bob", home)
    hints = early.Hints(tmp_path, "k")
    assert hints.agreed() == [] and hints.of("bob") == home and hints.of("alice") == work
    assert early.Hints(tmp_path, "other").agreed() == []  # another command line knows nothing


def test_the_sender_key_is_the_headers_from_line() -> None:
    assert early.sender(None) == ""
    alice = early.sender(b"From: a@x\nTo: b@y\n\nFrom: c@z\n")
    assert alice == early.sender(b"To: q@r\nFrom: a@x\n\nanother body\n")  # the header's, not the body's
    assert alice == early.sender(b"From: a@x\r\nTo: b@y\r\n\r\n")
    assert alice != early.sender(b"From: c@z\nTo: b@y\n\n")


def test_a_stale_hint_costs_one_unused_connection_then_is_corrected(
    sender: Path,  # noqa: F811 - the fixture
    shims: Path,
    smtp_server,
) -> None:
    env = shim_env(shims)
    with CountingServer(smtp_server.smtps_port) as stale:
        assert run(["msmtp", "-t"], env, MESSAGE).returncode == 0  # pins, and leaves the hint
        hints = json.loads((sender / ".cache" / "mailpin" / "connect.json").read_text())
        ((key, senders),) = hints.items()
        ((from_line, endpoints),) = senders.items()
        assert endpoints == [["localhost", smtp_server.smtps_port]]
        hints[key] = {from_line: [["127.0.0.1", stale.port]]}  # where an older config connected
        (sender / ".cache" / "mailpin" / "connect.json").write_text(json.dumps(hints))
        before = len(smtp_server.received())
        assert run(["msmtp", "-t"], env, MESSAGE).returncode == 0
        assert len(smtp_server.received()) == before + 1
        assert stale.settled() == 1  # the one unused connection
        assert json.loads((sender / ".cache" / "mailpin" / "connect.json").read_text())[key] == {from_line: endpoints}
        assert run(["msmtp", "-t"], env, MESSAGE).returncode == 0
        assert stale.settled() == 1  # corrected: nothing more goes there


def test_two_senders_of_one_command_line_open_only_their_own(
    isolated_env: Path,
    pki,
    shims: Path,
    smtp_server,
) -> None:
    """`msmtp --read-envelope-from -t` picks the account by the From: line. While the command line has
    only ever gone to one place, that place is opened before the message is read (here once for a new
    sender: one unused connection); once its senders disagree, nothing is opened before the message
    says whose it is, and every run costs each server exactly the connections the bare msmtp makes."""
    need("msmtp")
    env = shim_env(shims)
    argv = ["msmtp", "--read-envelope-from", "-t"]
    alice = MESSAGE  # From: alice@example.org -> account smtps
    bob = MESSAGE.replace(b"From: Alice <alice@example.org>", b"From: Bob <bob@example.org>")  # -> submission
    with CountingServer(smtp_server.smtps_port) as smtps, CountingServer(smtp_server.submission_port) as submission:
        write_msmtprc(isolated_env, pki.ca_pem, smtps.port, submission.port)
        counts = []
        for message in (alice, bob, alice, bob, alice):
            done = run(argv, env, message)
            assert done.returncode == 0, done.stderr
            counts.append((smtps.settled(), submission.settled()))
    assert counts == [(1, 0), (2, 1), (3, 1), (3, 2), (4, 2)]  # (2, 1): bob's first run opened alice's place
