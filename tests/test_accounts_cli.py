"""`mailpin accounts` across the three tools, as a user with all three configured sees it."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap
from pathlib import Path

from mailpin.cli import main
from mailpin.env import Env

MSMTPRC = """\
defaults
tls on
tls_trust_file /etc/ssl/certs/ca-certificates.crt

account work
host smtp.work.example
from me@work.example
tls_starttls off

account home
host mail.home.example
port 587
from me@home.example
tls_fingerprint 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF

account default : work
"""

MBSYNCRC = """\
IMAPAccount work
Host imap.work.example
User me
SSLType IMAPS
CertificateFile ~/certs/work.pem

IMAPStore work-remote
Account work

MaildirStore work-local
Path ~/Mail/work/
Inbox ~/Mail/work/INBOX

Channel work
Master :work-remote:
Slave :work-local:
Patterns *
"""

OFFLINEIMAPRC = """\
[general]
accounts = home

[Account home]
localrepository = home-local
remoterepository = home-remote

[Repository home-local]
type = Maildir
localfolders = ~/Mail/home

[Repository home-remote]
type = IMAP
remotehost = imap.home.example
remoteuser = me
ssl = no
starttls = yes
"""


def _write(home: Path, name: str, text: str) -> Path:
    path = home / name
    path.write_text(text)
    path.chmod(0o600)
    return path


def _env(stdin: bytes = b"") -> tuple[Env, io.StringIO, io.StringIO]:
    import os

    out, err = io.StringIO(), io.StringIO()
    stream = io.TextIOWrapper(io.BytesIO(stdin))
    return Env(environ=dict(os.environ), stdout=out, stderr=err, stdin=stream), out, err


def _all_three(home: Path) -> None:
    (home / "certs").mkdir(exist_ok=True)  # mbsync refuses a config whose CertificateFile is unreadable
    (home / "certs" / "work.pem").write_bytes(Path("/etc/ssl/certs/ca-certificates.crt").read_bytes())
    _write(home, ".msmtprc", MSMTPRC)
    _write(home, ".mbsyncrc", MBSYNCRC)
    _write(home, ".offlineimaprc", OFFLINEIMAPRC)


def test_accounts_lists_every_tool_with_defaults_applied(isolated_env: Path) -> None:
    _all_three(isolated_env)
    env, out, err = _env()
    assert main(["accounts", "--json"], env) == 0, err.getvalue()
    data = json.loads(out.getvalue())
    by_key = {entry["account"]: entry for entry in data["accounts"]}
    # `account default : work` is, to msmtp, an account named "default" that copies work.
    assert set(by_key) == {"msmtp:work", "msmtp:home", "msmtp:default", "mbsync:work", "offlineimap:home"}
    work = by_key["msmtp:work"]
    assert (work["protocol"], work["host"], work["port"], work["mode"]) == (
        "smtp",
        "smtp.work.example",
        465,
        "implicit",
    )
    assert work["source"] == f"{isolated_env / '.msmtprc'}:5"
    home = by_key["msmtp:home"]
    assert (home["port"], home["mode"], home["trust"]) == (587, "starttls", "pinned fingerprint")
    imap = by_key["mbsync:work"]
    assert (imap["protocol"], imap["host"], imap["port"], imap["mode"]) == (
        "imap",
        "imap.work.example",
        993,
        "implicit",
    )
    assert imap["trust_file"] == str(isolated_env / "certs" / "work.pem")
    oi = by_key["offlineimap:home"]
    assert (oi["host"], oi["port"], oi["mode"], oi["opportunistic"]) == ("imap.home.example", 143, "starttls", True)


def test_accounts_text_names_account_endpoint_mode_and_source(isolated_env: Path) -> None:
    _all_three(isolated_env)
    env, out, _ = _env()
    assert main(["accounts"], env) == 0
    text = out.getvalue()
    assert "msmtp:work" in text and "smtp.work.example:465" in text and "implicit" in text
    assert "offlineimap:home" in text and "opportunistic" in text
    assert f"{isolated_env / '.mbsyncrc'}:1" in text


def test_a_broken_config_is_one_line_with_file_and_line_and_exit_78(isolated_env: Path) -> None:
    _all_three(isolated_env)
    _write(isolated_env, ".msmtprc", MSMTPRC + "\naccount broken : no-such-account\n")
    env, out, err = _env()
    assert main(["accounts", "--json"], env) == 78
    lines = err.getvalue().splitlines()
    assert len(lines) == 1
    assert f"{isolated_env / '.msmtprc'}:" in lines[0]
    # The other tools' accounts are still listed: one broken file does not hide the rest.
    keys = {entry["account"] for entry in json.loads(out.getvalue())["accounts"]}
    assert {"mbsync:work", "offlineimap:home"} <= keys


def test_for_msmtp_resolves_the_account_from_the_from_header(isolated_env: Path) -> None:
    _all_three(isolated_env)
    message = b"From: Me <me@home.example>\r\nTo: you@example.org\r\nSubject: hi\r\n\r\nbody\r\n"
    env, out, err = _env(message)
    argv = ["accounts", "--for", "msmtp", "--json", "--", "--read-envelope-from", "-t"]
    assert main(argv, env) == 0, err.getvalue()
    data = json.loads(out.getvalue())
    assert [entry["account"] for entry in data["accounts"]] == ["msmtp:home"]
    assert data["invocation"] == ["msmtp", "--read-envelope-from", "-t"]


def test_for_msmtp_without_selection_uses_the_default_account(isolated_env: Path) -> None:
    _all_three(isolated_env)
    env, out, _ = _env(b"From: someone@else.example\r\n\r\n")
    assert main(["accounts", "--for", "msmtp", "--json", "--", "-oi", "rcpt@example.org"], env) == 0
    [chosen] = json.loads(out.getvalue())["accounts"]
    assert (chosen["account"], chosen["host"], chosen["port"]) == ("msmtp:default", "smtp.work.example", 465)


def test_for_mbsync_and_offlineimap(isolated_env: Path) -> None:
    _all_three(isolated_env)
    env, out, _ = _env()
    assert main(["accounts", "--for", "mbsync", "--json", "--", "-a"], env) == 0
    assert [entry["account"] for entry in json.loads(out.getvalue())["accounts"]] == ["mbsync:work"]
    env, out, _ = _env()
    assert main(["accounts", "--for", "offlineimap", "--json", "--", "-o", "-u", "quiet"], env) == 0
    assert [entry["account"] for entry in json.loads(out.getvalue())["accounts"]] == ["offlineimap:home"]


def test_for_an_unknown_channel_is_a_config_error(isolated_env: Path) -> None:
    _all_three(isolated_env)
    env, _, err = _env()
    assert main(["accounts", "--for", "mbsync", "--", "no-such-channel"], env) == 78
    assert "no-such-channel" in err.getvalue()


def test_tool_arguments_without_for_are_a_usage_error(isolated_env: Path) -> None:
    env, _, err = _env()
    assert main(["accounts", "--", "-a", "work"], env) == 2
    assert "--for" in err.getvalue()


def test_no_configs_is_not_an_error(isolated_env: Path) -> None:
    env, out, _ = _env()
    assert main(["accounts"], env) == 0
    assert "no accounts found" in out.getvalue()


def test_accounts_does_not_import_the_tls_stack(isolated_env: Path) -> None:
    # `accounts` and the wrappers' resolution run before every send: keep cryptography out of them.
    _all_three(isolated_env)
    code = textwrap.dedent(
        """
        import sys
        from mailpin.cli import main
        main(["accounts"])
        print(sorted(m for m in ("cryptography", "ssl") if m in sys.modules))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_accounts_says_which_accounts_get_the_verified_session_itself(isolated_env: Path) -> None:
    """Issue 19: `accounts` says which path `mailpin run` takes for each account — the relay (one
    connection), or msmtp's own TLS held by flags, and why (run/enforce.relays)."""
    rc = isolated_env / ".msmtprc"
    rc.write_text(
        "defaults\ntls on\ntls_trust_file /etc/ssl/certs/ca-certificates.crt\n\n"
        "account plain\nhost smtp.example.org\nport 465\ntls_starttls off\nfrom a@example.org\n\n"
        "account tuned\nhost smtp.example.org\nport 465\ntls_starttls off\ntls_priorities SECURE256\n"
        "from b@example.org\n\naccount off\nhost smtp.example.org\nport 465\ntls_starttls off\nfrom c@example.org\n"
    )
    rc.chmod(0o600)
    settings = isolated_env / ".config" / "mailpin" / "config"
    settings.parent.mkdir(parents=True, exist_ok=True)
    settings.write_text("[accounts]\n  [[msmtp:off]]\n  enforce = no\n")
    env, out, err = _env()
    assert main(["accounts", "--json"], env) == 0, err.getvalue()
    how = {entry["account"]: entry["enforcement"] for entry in json.loads(out.getvalue())["accounts"]}
    assert how["msmtp:plain"].startswith("relay")
    assert "msmtp's own TLS (tls_priorities)" in how["msmtp:tuned"]
    assert how["msmtp:off"] == "pre-flight check only"
