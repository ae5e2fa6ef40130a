"""Connecting while Python imports (net/early.py): a hint only ever saves a round trip — the verifier
takes a connection for exactly its endpoint, a stale hint costs one unused connection and is then
corrected, and a hint others could have written is not read."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from mailpin.net import early
from tests.lab.counting import CountingServer
from tests.test_run_real import MESSAGE, run, sender, shim_env  # noqa: F401 - sender is a fixture


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
    early.remember(tmp_path, "k", [("127.0.0.1", 1)])
    assert early.start(tmp_path, "k") is not None
    (tmp_path / "mailpin" / "connect.json").chmod(0o666)
    assert early.start(tmp_path, "k") is None


def test_a_stale_hint_costs_one_unused_connection_then_is_corrected(
    sender: Path,  # noqa: F811 - the fixture
    shims: Path,
    smtp_server,
) -> None:
    env = shim_env(shims)
    with CountingServer(smtp_server.smtps_port) as stale:
        assert run(["msmtp", "-t"], env, MESSAGE).returncode == 0  # pins, and leaves the hint
        hints = json.loads((sender / ".cache" / "mailpin" / "connect.json").read_text())
        ((key, endpoints),) = hints.items()
        assert endpoints == [["localhost", smtp_server.smtps_port]]
        hints[key] = [["127.0.0.1", stale.port]]  # where an older config connected
        (sender / ".cache" / "mailpin" / "connect.json").write_text(json.dumps(hints))
        before = len(smtp_server.received())
        assert run(["msmtp", "-t"], env, MESSAGE).returncode == 0
        assert len(smtp_server.received()) == before + 1
        assert stale.settled() == 1  # the one unused connection
        assert json.loads((sender / ".cache" / "mailpin" / "connect.json").read_text())[key] == endpoints
        assert run(["msmtp", "-t"], env, MESSAGE).returncode == 0
        assert stale.settled() == 1  # corrected: nothing more goes there
