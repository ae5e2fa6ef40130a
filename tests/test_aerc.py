"""aerc sends through mailpin's msmtp shim, configured as contrib/mua/aerc-accounts.conf says.

aerc (in tmux, keys pressed as a user would) runs `outgoing` with the recipients on the command
line, discards its stderr and shows only the exit status. While the lab's SMTP server presents a
foreign CA every press of send is blocked — and told on the desktop each time, since aerc itself
cannot say why (issue 18, item 13). The sibling: once the server is restored, the same press sends.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import need
from tests.test_mua_retry import Lab, Neomutt, wait_for
from tests.test_pins_real import cli
from tests.test_run_real import shim_env, write_msmtprc

REVIEW = "Send this email?"  # aerc's review screen, once the editor has exited


@pytest.fixture
def lab(isolated_env: Path, pki, smtp_server, shims: Path, session_bus) -> Lab:
    need("msmtp")
    write_msmtprc(isolated_env, pki.ca_pem, smtp_server.smtps_port, smtp_server.submission_port)
    assert cli("init", "--yes")[0] == 0
    lab = Lab(isolated_env, smtp_server, shims)
    lab.env = shim_env(shims, DBUS_SESSION_BUS_ADDRESS=session_bus.address)
    return lab


class Aerc(Neomutt):
    """aerc composing one message in a private tmux server, at its review screen (the tmux plumbing,
    `screen`, `keys` and `close`, is the neomutt test's)."""

    def __init__(self, lab: Lab, tmp_path: Path) -> None:  # starts aerc: no super().__init__()
        self.tmux, aerc = need("tmux"), need("aerc")
        self.socket = tmp_path / "tmux.sock"
        mail = tmp_path / "Mail"
        for sub in ("cur", "new", "tmp"):
            (mail / "INBOX" / sub).mkdir(parents=True)
        config = lab.home / ".config" / "aerc"
        config.mkdir(parents=True)
        (config / "aerc.conf").write_text("[compose]\neditor = true\n")  # the editor exits: review at once
        accounts = config / "accounts.conf"
        accounts.write_text(
            f"[lab]\nsource = maildir://{mail}\nfrom = Alice <alice@example.org>\ndefault = INBOX\n"
            f"outgoing = {lab.shims / 'msmtp'} --read-envelope-from\n"
        )
        accounts.chmod(0o600)  # aerc refuses an accounts.conf that others can read
        command = f"{aerc} 'mailto:bob@example.org?subject=quarterly%20report'; sleep 600"
        subprocess.run(
            [self.tmux, "-S", str(self.socket), "new-session", "-d", "-x", "150", "-y", "40", command],
            env={**lab.env, "TERM": "screen"},
            check=True,
        )

    def review_again(self) -> bool:
        """aerc 0.14 redraws only on an event: a failed send brings the composer back unseen until a
        key is pressed (F12 is bound to nothing)."""
        self.keys("F12")
        time.sleep(0.1)
        return REVIEW in self.screen()


@pytest.fixture
def aerc(lab: Lab, tmp_path: Path) -> Iterator[Aerc]:
    client = Aerc(lab, tmp_path)
    try:
        wait_for("aerc's review screen", lambda: REVIEW in client.screen())
        yield client
    finally:
        client.close()


def test_every_blocked_send_from_aerc_is_told_on_the_desktop(lab: Lab, aerc: Aerc, session_bus) -> None:
    lab.attack()
    # --read-envelope-from: msmtp's first account whose `from` is the message's From, smtps.
    for count in (1, 2, 3):
        aerc.keys("y")
        note = session_bus.wait_for(count, timeout=20)[-1]
        assert note["summary"] == "msmtp:smtps: certificate from a different CA", note
        assert "mailpin review msmtp:smtps" in note["body"] and note["hints"]["urgency"] == 2
        wait_for("the composer back after the failed send", aerc.review_again)
    assert lab.delivered() == [] and len(lab.held()) == 1  # one message, pressed three times

    lab.restore()
    aerc.keys("y")
    wait_for("the message at the server", lambda: len(lab.delivered()) == 1)
    assert b"quarterly report" in lab.delivered()[0]
    assert len(session_bus.notifications()) == 3  # a verified send tells nobody
