"""mpop behind the pins (issue 21): the real mpop 1.4 against the lab Dovecot's POP3, through the shim.

A fetch that verifies delivers the mail over the very session mailpin judged (the relay: Dovecot
sees one login per account, and the POP3 session's commands arrive on mailpin's connection);
a server that changed since the pin is blocked before mpop runs, with no login at the server.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.conftest import need
from tests.test_run_real import MESSAGE, delivered, dovecot_logins, run, shim_env


def write_mpoprc(home: Path, ca: Path, pop3s: int, pop3: int, extra: str = "") -> None:
    """Two accounts on the lab Dovecot: `implicit` (995-style) and `starttls` (110 with STLS), each
    delivering to its own Maildir; `default` inherits the first."""
    for name in ("implicit", "starttls"):
        for sub in ("new", "cur", "tmp"):
            (home / "Mail" / name / sub).mkdir(parents=True, exist_ok=True)
    (home / ".mpoprc").write_text(
        f"defaults\ntls on\ntls_trust_file {ca}\nuser test\npassword secret\nhost localhost\nkeep off\n{extra}\n\n"
        f"account implicit\nport {pop3s}\ntls_starttls off\ndelivery maildir ~/Mail/implicit\n\n"
        f"account starttls\nport {pop3}\ntls_starttls on\ndelivery maildir ~/Mail/starttls\n\n"
        "account default : implicit\n"
    )
    (home / ".mpoprc").chmod(0o600)


@pytest.fixture
def fetcher(isolated_env: Path, pki, dovecot_server) -> Path:
    need("mpop")
    write_mpoprc(isolated_env, pki.ca_pem, dovecot_server.pop3s_port, dovecot_server.pop3_port)
    return isolated_env


@pytest.mark.parametrize(
    "argv", [["implicit"], ["starttls"], ["-a"], []], ids=["implicit", "starttls", "all", "default"]
)
def test_mpop_fetches_through_the_shim_and_is_blocked_without_a_login(
    fetcher: Path, shims: Path, dovecot_server, argv: list[str]
) -> None:
    env = shim_env(shims)
    dovecot_server.deliver("INBOX", MESSAGE)
    logins = dovecot_logins(dovecot_server)
    done = run(["mpop", "-q", *argv], env)
    assert done.returncode == 0, done.stderr
    boxes = {"implicit": ["implicit"], "starttls": ["starttls"]}.get(argv[0] if argv else "implicit", ["implicit"])
    if argv == ["-a"]:
        boxes = ["implicit"]  # the first account takes the message (keep off): the second finds none
    assert sum(delivered(fetcher / "Mail" / box) for box in boxes) == 1
    time.sleep(0.2)  # Dovecot writes its log asynchronously
    accounts = 3 if argv == ["-a"] else 1  # -a: implicit, starttls and default (which inherits implicit)
    # One connection per account: mailpin's verified session is the one mpop logs in on.
    assert dovecot_logins(dovecot_server) - logins == accounts
    dovecot_server.serve("foreign-ca")
    logins = dovecot_logins(dovecot_server)
    blocked = run(["mpop", "-q", *argv], env)
    assert blocked.returncode == 69, blocked.stderr
    assert b"mpop:" in blocked.stderr and b"blocked" in blocked.stderr
    time.sleep(0.2)
    assert dovecot_logins(dovecot_server) == logins
