"""mpop behind the pins (issue 21): the real mpop 1.4 against the lab Dovecot's POP3, through the shim.

A fetch that verifies delivers the mail over the very session mailpin judged (the relay: Dovecot
sees one login per account, and the POP3 session's commands arrive on mailpin's connection);
a server that changed since the pin is blocked before mpop runs, with no login at the server.
"""

from __future__ import annotations

import os
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
    # >= 1: the INBOX is the session's Dovecot's, where earlier tests may have left mail
    assert sum(delivered(fetcher / "Mail" / box) for box in boxes) >= 1
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


def test_per_account_lines_reach_exactly_their_account_in_mpops_own_reading(tmp_path: Path) -> None:
    """A run of several accounts: each verified account's lines land at the end of its own section, and
    an account that inherits from it (here unverified: `enforce = no`) reads as it did before — checked
    by the real mpop (`--pretend`) on the copy mailpin hands over."""
    from mailpin.configs import mpop
    from mailpin.run.enforce_fetch import _with_sections
    from tests.test_configs_mpop import accounts_of, pretend

    text = (
        "defaults\ndelivery mbox ~/m\ntls on\ntls_trust_file /etc/ca.pem\n\n"
        "account a\nhost a.example\ntls_starttls off\n# a comment at the end of a's section\n\n"
        "account b : a\nhost b.example\n\ndefaults\nport 1995\n\naccount c\nhost c.example\ntls_starttls off\n"
    )
    config = mpop.parse(text, str(tmp_path / "mpoprc"), str(tmp_path))
    config = type(config)(**{**config.__dict__, "data": text.encode()})
    fingerprint = "AB:" * 31 + "AB"
    flags = {
        "mpop:a": ["--socket=/run/relay/tls0", "--tls=on", "--tls-starttls=off", f"--tls-fingerprint={fingerprint}"],
        "mpop:c": ["--tls=on", "--tls-starttls=off", "--port=995", "--tls-trust-file=/proc/self/fd/9"],
    }
    rewritten = _with_sections(config, list(config.accounts), flags).decode()
    status, output = pretend(tmp_path, rewritten, ["-a"])
    assert status == 0, output
    seen = {item["name"]: item for item in accounts_of(output)}
    assert seen["a"]["socket"] == "/run/relay/tls0" and seen["a"]["tls_fingerprint"].startswith("AB:")
    # b inherits a, is not verified in this run: its own settings, not a's relay
    assert seen["b"]["socket"] == "(not set)" and seen["b"]["tls_fingerprint"] == "(not set)"
    assert (seen["b"]["host"], seen["b"]["port"], seen["b"]["tls_trust_file"]) == ("b.example", "995", "/etc/ca.pem")
    assert seen["c"]["tls_trust_file"] == "/proc/self/fd/9" and seen["c"]["port"] == "995"
    assert seen["c"]["socket"] == "(not set)"
    # and the file is otherwise the user's, line for line: every line of it, in order, only lines added
    added = iter(rewritten.splitlines())
    assert all(any(line == other for other in added) for line in text.splitlines())


def test_a_run_of_several_accounts_whose_command_line_sets_tls_keeps_the_pre_flight_alone(
    fetcher: Path, shims: Path, dovecot_server
) -> None:
    """`mpop -a --tls-trust-file=…`: the command line's setting applies to every account and would undo
    the per-account lines; the accounts are verified before mpop runs, and mpop runs as asked."""
    env = shim_env(shims)
    dovecot_server.deliver("INBOX", MESSAGE)
    ca = next(line.split()[1] for line in (fetcher / ".mpoprc").read_text().splitlines() if "tls_trust_file" in line)
    done = run(["mpop", "-q", "-a", f"--tls-trust-file={ca}"], env)
    assert done.returncode == 0, done.stderr
    assert delivered(fetcher / "Mail" / "implicit") >= 1
    dovecot_server.serve("foreign-ca")
    blocked = run(["mpop", "-q", "-a", f"--tls-trust-file={ca}"], env)
    assert blocked.returncode == 69, blocked.stderr


def test_a_blocked_fetch_is_told_on_the_desktop_and_in_the_notmuch_inbox(
    fetcher: Path, shims: Path, dovecot_server, session_bus, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As for mbsync: a blocked `mpop -a` from a timer tells the desktop (critical) and, with the
    notmuch alert on, the inbox the user reads next."""
    import subprocess

    need("notmuch")
    for variable in ("NOTMUCH_PROFILE", "NOTMUCH_DATABASE", "MAILDIR"):
        monkeypatch.delenv(variable, raising=False)
    mail = fetcher / "Mail"  # the Maildir root mpop delivers below is notmuch's database too
    for sub in ("cur", "new", "tmp"):
        (mail / sub).mkdir(parents=True, exist_ok=True)
    config = fetcher / ".notmuch-config"
    config.write_text(f"[database]\npath={mail}\n[user]\nprimary_email=me@example.org\n")
    assert subprocess.run(["notmuch", "new"], capture_output=True, env={**os.environ, "NOTMUCH_CONFIG": str(config)})
    settings = fetcher / ".config" / "mailpin" / "config"
    settings.parent.mkdir(parents=True, exist_ok=True)
    settings.write_text("[notify]\nnotmuch = yes\n")
    env = shim_env(shims, DBUS_SESSION_BUS_ADDRESS=session_bus.address, NOTMUCH_CONFIG=str(config))
    assert run(["mpop", "-q", "implicit"], env).returncode == 0  # pinned on first use
    dovecot_server.serve("foreign-ca")
    blocked = run(["mpop", "-q", "implicit"], env)
    assert blocked.returncode == 69, blocked.stderr
    (note,) = session_bus.wait_for(1, timeout=5)
    assert note["summary"] == "mpop:implicit: certificate from a different CA" and note["hints"]["urgency"] == 2
    found = subprocess.run(
        ["notmuch", "search", "--output=messages", "tag:mailpin"], capture_output=True, text=True,
        env={**os.environ, "NOTMUCH_CONFIG": str(config)},
    )  # fmt: skip
    assert len(found.stdout.split()) == 1, found
