"""`mailpin upgrade` (issue 20): a STARTTLS account found to have Implicit TLS through a real DNS server
(dnsmasq on 127.0.0.1, serving the lab's SRV records), moved there by an edit of the real msmtp's
config that changes only the lines it must, re-pinned in Implicit TLS mode, and then sending over
Implicit TLS through `mailpin run msmtp`; and every way it must not move: an SRV answer that points
at a foreign certificate, at another host, at nothing; a config another account inherits the wrong
way; a template; a file changed meanwhile.
"""

from __future__ import annotations

import difflib
import json
import os
from datetime import datetime, timezone
from pathlib import Path

import pytest

from mailpin.env import Env
from mailpin.model import Mode
from mailpin.setup import write
from mailpin.state.store import PinStore
from tests.conftest import need
from tests.lab.counting import CountingServer
from tests.lab.dns import DnsServer
from tests.lab.pki import free_port
from tests.test_run_real import MESSAGE, mailpin_command, run, shim_env

SRV = "_submissions._tcp.example.org"


def _msmtprc(home: Path, ca: Path, port: int, extra: str = "") -> bytes:
    text = (
        "# my mail\r\n"  # a CRLF line: kept as it is
        "defaults\n"
        "tls on\n"
        f"tls_trust_file {ca}\n"
        "\n"
        "account work\n"
        "  host localhost\n"
        f"  port {port}\n"
        "  # the tutorial said 587 and STARTTLS\n"
        "  tls_starttls on\n"
        "  from alice@example.org\n"
        f"{extra}"
        "\n"
        "account default : work\n"
    )
    (home / ".msmtprc").write_text(text)
    (home / ".msmtprc").chmod(0o600)
    return text.encode()


def _settings(home: Path, dns: DnsServer) -> None:
    config = home / ".config" / "mailpin" / "config"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(f"[dns]\nnameservers = {dns.nameserver}\n")


def _lab(
    home: Path, pki, smtp_server, dns: DnsServer, shims: Path, records, extra: str = ""
) -> tuple[dict[str, str], bytes]:
    """DNS serving RECORDS, mailpin pointed at it, and ~/.msmtprc on STARTTLS: (environment, config bytes)."""
    need("msmtp")
    dns.serve(records)
    _settings(home, dns)
    return shim_env(shims), _msmtprc(home, pki.ca_pem, smtp_server.submission_port, extra)


def _mailpin(env: dict[str, str], *argv: str) -> tuple[int, str, str]:
    done = run([mailpin_command(), *argv], env, timeout=120)
    return done.returncode, done.stdout.decode(), done.stderr.decode()


def _changed(before: bytes, after: bytes) -> list[str]:
    """The lines removed (-) and added (+), in order; every other line is byte for byte the same."""
    lines = difflib.ndiff(before.decode().splitlines(True), after.decode().splitlines(True))
    return [line for line in lines if line[0] in "+-"]


def _profiles() -> dict[str, object]:
    return dict(PinStore.for_env(Env.from_os()).load())


def test_a_starttls_account_moves_to_implicit_tls_and_sends_there(
    isolated_env: Path, pki, smtp_server, dns_server: DnsServer, shims: Path
) -> None:
    need("msmtp")
    env = shim_env(shims)
    with CountingServer(smtp_server.smtps_port) as implicit:
        dns_server.serve([(SRV, "localhost", implicit.port, 0, 1)])
        _settings(isolated_env, dns_server)
        before = _msmtprc(isolated_env, pki.ca_pem, smtp_server.submission_port)
        assert _mailpin(env, "init", "--yes")[0] == 0
        assert _profiles()["msmtp:work"].mode is Mode.STARTTLS  # type: ignore[attr-defined]
        code, out, err = _mailpin(env, "upgrade", "--yes", "--json")
        assert code == 0, err
        (work,) = [m for m in json.loads(out)["accounts"] if m["account"] == "msmtp:work"]
        assert work["state"] == "moved" and work["endpoint"] == f"localhost:{implicit.port}", work
        assert any(SRV in said for said in work["srv"])
        after = (isolated_env / ".msmtprc").read_bytes()
        # Only the two lines that had to change changed, in place; every other byte is as it was.
        changed = _changed(before, after)
        assert changed == [
            f"-   port {smtp_server.submission_port}\n", f"+   port {implicit.port}\n",
            "-   tls_starttls on\n", "+   tls_starttls off\n",
        ], changed  # fmt: skip
        assert after.startswith(b"# my mail\r\n")
        assert Path(work["backup"]).read_bytes() == before
        assert Path(work["backup"]).stat().st_mode & 0o777 == 0o600
        profiles = _profiles()
        for key in ("msmtp:work", "msmtp:default"):  # default inherits work: it moved, and is pinned, too
            profile = profiles[key]
            assert (profile.mode, profile.port) == (Mode.IMPLICIT, implicit.port), key  # type: ignore[attr-defined]
        connections = implicit.settled()
        received = len(smtp_server.messages)
        done = run(["msmtp", "-a", "work", "you@example.org"], env, MESSAGE)
        assert done.returncode == 0, done.stderr
        assert len(smtp_server.messages) == received + 1
        assert implicit.settled() == connections + 1  # the send went over Implicit TLS
        # The ratchet, now reached on purpose: the old STARTTLS config is a downgrade, and blocked.
        (isolated_env / ".msmtprc").write_bytes(before)
        done = run(["msmtp", "-a", "work", "you@example.org"], env, MESSAGE)
        assert done.returncode == 69 and b"config-downgrade" in done.stderr, done.stderr
        assert len(smtp_server.messages) == received + 1


def test_an_srv_record_pointing_at_a_foreign_certificate_is_not_proposed(
    isolated_env: Path, pki, smtp_server, dns_server: DnsServer, shims: Path
) -> None:
    env, before = _lab(
        isolated_env, pki, smtp_server, dns_server, shims, [(SRV, "localhost", smtp_server.smtps_port, 0, 1)]
    )
    assert _mailpin(env, "init", "--yes")[0] == 0
    smtp_server.serve("foreign-ca")
    code, out, err = _mailpin(env, "upgrade", "--yes")
    assert code == 0, err
    assert "msmtp:work stays on STARTTLS" in out and "does not validate for localhost" in out, out
    assert (isolated_env / ".msmtprc").read_bytes() == before
    assert _profiles()["msmtp:work"].mode is Mode.STARTTLS  # type: ignore[attr-defined]
    assert not list(isolated_env.glob(".msmtprc.mailpin-*"))


@pytest.mark.parametrize(
    ("records", "said"),
    [
        ([], "no such name"),
        ([(SRV, None, 0, 0, 0)], "not offered"),
        ([(SRV, "mail.example.org", 465, 0, 1)], "--host mail.example.org"),  # never tried unconfirmed
        ([(SRV, "localhost", free_port(), 0, 1)], "unreachable"),  # a lame target: nothing listens there
    ],
)
def test_an_account_stays_where_dns_offers_nothing_it_may_use(
    isolated_env: Path, pki, smtp_server, dns_server: DnsServer, shims: Path, records, said: str
) -> None:
    env, before = _lab(isolated_env, pki, smtp_server, dns_server, shims, records)
    code, out, err = _mailpin(env, "upgrade", "--yes", "msmtp:work")
    assert code == 0, err
    assert "msmtp:work stays on STARTTLS" in out and said in out, out
    assert "localhost:465 (the well-known port)" in out  # tried, and nothing listens there in the lab
    assert (isolated_env / ".msmtprc").read_bytes() == before


def test_without_yes_and_a_terminal_the_change_is_shown_not_written(
    isolated_env: Path, pki, smtp_server, dns_server: DnsServer, shims: Path
) -> None:
    env, before = _lab(
        isolated_env, pki, smtp_server, dns_server, shims, [(SRV, "localhost", smtp_server.smtps_port, 0, 1)]
    )
    code, out, err = _mailpin(env, "upgrade", "work")
    assert code == 0, err
    assert f"+  port {smtp_server.smtps_port}" in out and "+  tls_starttls off" in out and "--yes" in out, out
    assert (isolated_env / ".msmtprc").read_bytes() == before


def test_an_account_another_inherits_the_wrong_way_is_not_written(
    isolated_env: Path, pki, smtp_server, dns_server: DnsServer, shims: Path
) -> None:
    """`account home : work` with its own host would move to work's port on another host: refused."""
    need("msmtp")
    env = shim_env(shims)
    dns_server.serve([(SRV, "localhost", smtp_server.smtps_port, 0, 1)])
    _settings(isolated_env, dns_server)
    before = _msmtprc(
        isolated_env, pki.ca_pem, smtp_server.submission_port, "\naccount home : work\n  host 127.0.0.1\n"
    )
    code, out, err = _mailpin(env, "upgrade", "--yes", "msmtp:work")
    assert code == 0, err
    assert "would change 'home' too" in out, out
    assert (isolated_env / ".msmtprc").read_bytes() == before


def test_a_file_holding_a_template_is_never_written(
    isolated_env: Path, pki, smtp_server, dns_server: DnsServer, shims: Path
) -> None:
    records = [(SRV, "localhost", smtp_server.smtps_port, 0, 1)]
    env, before = _lab(isolated_env, pki, smtp_server, dns_server, shims, records, "  # {{ .password }}\n")
    code, out, err = _mailpin(env, "upgrade", "--yes")
    assert code == 78 and "holds a template" in out and "+  tls_starttls off" in out, (out, err)
    assert (isolated_env / ".msmtprc").read_bytes() == before


def test_a_template_is_never_written_and_the_patch_is_shown(
    isolated_env: Path, pki, smtp_server, dns_server: DnsServer, shims: Path
) -> None:
    env, _ = _lab(isolated_env, pki, smtp_server, dns_server, shims, [(SRV, "localhost", smtp_server.smtps_port, 0, 1)])
    source = isolated_env / ".local" / "share" / "chezmoi" / "private_dot_msmtprc.tmpl"
    source.parent.mkdir(parents=True)
    source.write_text("{{ .email }}\n")
    before = (isolated_env / ".msmtprc").read_bytes()
    code, out, err = _mailpin(env, "upgrade", "--yes")
    assert code == 78, (out, err)
    assert f"change {source}" in out and "+  tls_starttls off" in out, out
    assert (isolated_env / ".msmtprc").read_bytes() == before


def test_a_file_changed_after_it_was_read_is_not_written(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    file = tmp_path / "d" / "msmtprc"
    file.write_bytes(b"account a\nport 587\n")
    now = datetime(2026, 12, 4, tzinfo=timezone.utc)
    with pytest.raises(write.WriteRefused, match="changed since it was read"):
        write.replace(file, b"account a\nport 25\n", b"account a\nport 465\n", now)
    assert file.read_bytes() == b"account a\nport 587\n" and os.listdir(tmp_path / "d") == ["msmtprc"]
    backup = write.replace(file, b"account a\nport 587\n", b"account a\nport 465\n", now)
    assert file.read_bytes() == b"account a\nport 465\n" and backup.read_bytes() == b"account a\nport 587\n"


def test_an_mbsync_starttls_account_moves_to_implicit_tls_and_syncs_there(
    isolated_env: Path, pki, dovecot_server, dns_server: DnsServer, shims: Path
) -> None:
    """The login's domain (User test@example.org) holds the SRV record; SSLType and Port change in
    place, the comment on the SSLType line stays; the sync then goes over Implicit TLS."""
    need("mbsync")
    env = shim_env(shims)
    box = isolated_env / "Mail" / "work"
    box.mkdir(parents=True)
    with CountingServer(dovecot_server.imaps_port) as implicit:
        dns_server.serve([("_imaps._tcp.example.org", "localhost", implicit.port, 0, 1)])
        _settings(isolated_env, dns_server)
        rc = isolated_env / ".mbsyncrc"
        before = (
            "IMAPAccount work\n"
            "Host localhost\n"
            f"Port {dovecot_server.imap_port}\n"
            "User test@example.org\nPass secret\n"
            "SSLType STARTTLS   # as the wiki said\n"
            f"CertificateFile {pki.ca_pem}\nSystemCertificates no\n\n"
            "IMAPStore work-remote\nAccount work\n\n"
            f"MaildirStore work-local\nPath {box}/\nInbox {box}/INBOX\n\n"
            "Channel work\nFar :work-remote:\nNear :work-local:\nPatterns INBOX\nCreate Near\nSync Pull\n"
        ).encode()
        rc.write_bytes(before)
        assert _mailpin(env, "init", "--yes")[0] == 0
        code, out, err = _mailpin(env, "upgrade", "--yes", "--json", "mbsync:work")
        assert code == 0, err
        (work,) = json.loads(out)["accounts"]
        assert work["state"] == "moved", work
        changed = _changed(before, rc.read_bytes())
        assert changed == [
            f"- Port {dovecot_server.imap_port}\n", f"+ Port {implicit.port}\n",
            "- SSLType STARTTLS   # as the wiki said\n", "+ SSLType IMAPS   # as the wiki said\n",
        ], changed  # fmt: skip
        profile = _profiles()["mbsync:work"]
        assert (profile.mode, profile.port) == (Mode.IMPLICIT, implicit.port)  # type: ignore[attr-defined]
        connections = implicit.settled()
        done = run(["mbsync", "-a"], env, timeout=120)
        assert done.returncode == 0, done.stderr
        assert implicit.settled() == connections + 1  # the sync went over Implicit TLS
        rc.write_bytes(before)  # back to STARTTLS: a downgrade now, and blocked
        done = run(["mbsync", "-a"], env, timeout=120)
        assert done.returncode == 69 and b"config-downgrade" in done.stderr, done.stderr


def test_an_srv_target_on_another_host_moves_the_account_only_when_named(
    isolated_env: Path, pki, smtp_server, dns_server: DnsServer, shims: Path
) -> None:
    """The SRV record names 127.0.0.1, not the configured localhost: not tried unless the user names
    it with --host, and then its certificate must validate for that name, and the host moves too."""
    records = [(SRV, "127.0.0.1", smtp_server.smtps_port, 0, 1)]
    env, before = _lab(isolated_env, pki, smtp_server, dns_server, shims, records)
    code, out, _ = _mailpin(env, "upgrade", "--yes", "msmtp:work")
    assert code == 0 and "--host 127.0.0.1" in out and (isolated_env / ".msmtprc").read_bytes() == before, out
    code, out, err = _mailpin(env, "upgrade", "--yes", "--host", "127.0.0.1", "--json", "msmtp:work")
    assert code == 0, err
    (work,) = json.loads(out)["accounts"]
    assert work["state"] == "moved" and work["endpoint"] == f"127.0.0.1:{smtp_server.smtps_port}", work
    after = (isolated_env / ".msmtprc").read_text()
    assert "  host 127.0.0.1\n" in after and "localhost" not in after.split("account work")[1].split("account")[0]


def test_an_offlineimap_starttls_account_moves_to_implicit_tls_and_syncs_there(
    isolated_env: Path, pki, dovecot_server, dns_server: DnsServer, shims: Path
) -> None:
    """`ssl = no` (STARTTLS, which offlineimap does not even check) becomes `ssl = yes` in place, the
    port moves, and the CA file it already names is what the certificate was checked against."""
    need("offlineimap")
    env = shim_env(shims)
    with CountingServer(dovecot_server.imaps_port) as implicit:
        dns_server.serve([("_imaps._tcp.example.org", "localhost", implicit.port, 0, 1)])
        _settings(isolated_env, dns_server)
        rc = isolated_env / ".offlineimaprc"
        before = (
            "[general]\naccounts = lab\nmetadata = ~/.offlineimap\n\n"
            "[Account lab]\nlocalrepository = lab-local\nremoterepository = lab-remote\n\n"
            "[Repository lab-local]\ntype = Maildir\nlocalfolders = ~/OfflineMail\n\n"
            "[Repository lab-remote]\ntype = IMAP\nremotehost = localhost\n"
            f"remoteport: {dovecot_server.imap_port}\nssl = no\nsslcacertfile = {pki.ca_pem}\n"
            "remoteuser = test@example.org\nremotepass = secret\nfolderfilter = lambda f: f == 'INBOX'\n"
        ).encode()
        rc.write_bytes(before)
        code, out, err = _mailpin(env, "upgrade", "--yes", "--json", "offlineimap:lab")
        assert code == 0, err
        (lab,) = json.loads(out)["accounts"]
        assert lab["state"] == "moved", lab
        assert _changed(before, rc.read_bytes()) == [
            f"- remoteport: {dovecot_server.imap_port}\n", f"+ remoteport: {implicit.port}\n",
            "- ssl = no\n", "+ ssl = yes\n",
        ]  # fmt: skip
        profile = _profiles()["offlineimap:lab"]
        assert (profile.mode, profile.port) == (Mode.IMPLICIT, implicit.port)  # type: ignore[attr-defined]
        connections = implicit.settled()
        done = run(["offlineimap", "-o", "-u", "quiet"], env, timeout=180)
        assert done.returncode == 0, (done.stdout, done.stderr)
        assert implicit.settled() > connections  # offlineimap's sync went over Implicit TLS


def test_an_offlineimap_account_without_a_ca_file_gets_the_systems_store_named(tmp_path: Path) -> None:
    """offlineimap refuses `ssl = yes` with nothing to check the certificate with: the edit names the
    system's store (the trust the endpoint was checked under), and every other line stays."""
    from mailpin.configs import offlineimap, offlineimap_edit

    text = (
        b"[general]\naccounts = a\n\n[Account a]\nlocalrepository = l\nremoterepository = r\n\n"
        b"[Repository l]\ntype = Maildir\nlocalfolders = ~/M\n\n"
        b"[Repository r]\ntype = IMAP\nremotehost = localhost\nremoteport = 143\nssl = no\nremoteuser = u\n"
    )
    (account,) = offlineimap.parse(text.decode(), "rc", str(tmp_path)).accounts
    assert offlineimap_edit.trust_after(text, "rc", "r") is None
    edit = offlineimap_edit.implicit_tls(text, "rc", str(tmp_path), account, 993)
    assert _changed(text, edit.after) == [
        "+ sslcacertfile = OS-DEFAULT\n", "- remoteport = 143\n", "+ remoteport = 993\n",
        "- ssl = no\n", "+ ssl = yes\n",
    ]  # fmt: skip


def _cli(*argv: str) -> tuple[int, str]:
    import io

    from mailpin.cli import main

    env = Env.from_os()
    env.stdout, env.stderr, env.stdin = io.StringIO(), io.StringIO(), io.StringIO()
    code = main(list(argv), env)
    return code, env.stdout.getvalue() + env.stderr.getvalue()  # type: ignore[attr-defined]


@pytest.mark.parametrize("command", ["init", "doctor"])
def test_init_and_doctor_name_an_account_that_could_move_once(
    isolated_env: Path, pki, smtp_server, monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    """The hint tries the Implicit TLS port on the configured host only (no DNS of its own); here the
    lab's Implicit TLS port stands in for 465, which nothing in the lab may listen on."""
    from mailpin.model import DEFAULT_PORTS, Protocol
    from mailpin.setup import hint

    need("msmtp")
    ports = {**DEFAULT_PORTS, (Protocol.SMTP, Mode.IMPLICIT): smtp_server.smtps_port}
    monkeypatch.setattr(hint, "DEFAULT_PORTS", ports)
    _msmtprc(isolated_env, pki.ca_pem, smtp_server.submission_port)
    tip = f"could move to Implicit TLS: localhost:{smtp_server.smtps_port}" if command == "init" else (
        f"Implicit TLS answers at localhost:{smtp_server.smtps_port}")  # fmt: skip
    args = ("init", "--yes") if command == "init" else ("doctor",)
    code, out = _cli(*args)
    assert tip in out and "mailpin upgrade msmtp:work" in out, out
    code, out = _cli(*args)
    assert tip not in out, out  # said once
    assert code == 0, out


def test_no_hint_when_the_implicit_port_does_not_validate(
    isolated_env: Path, pki, smtp_server, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mailpin.model import DEFAULT_PORTS, Protocol
    from mailpin.setup import hint

    need("msmtp")
    ports = {**DEFAULT_PORTS, (Protocol.SMTP, Mode.IMPLICIT): smtp_server.smtps_port}
    monkeypatch.setattr(hint, "DEFAULT_PORTS", ports)
    _msmtprc(isolated_env, pki.ca_pem, smtp_server.submission_port)
    assert _cli("init", "--yes")[0] == 0  # pinned on STARTTLS (the hint was said here, and is now spent)
    (isolated_env / ".local" / "state" / "mailpin" / "upgrade-told.json").unlink()
    smtp_server.serve("foreign-ca")
    _, out = _cli("doctor")
    assert "Implicit TLS answers" not in out, out


def test_a_file_linked_into_the_nix_store_is_never_written(tmp_path: Path) -> None:
    """home-manager links dotfiles into /nix/store: an edit there would be lost, or refused by the
    filesystem; mailpin says where to make the change instead."""
    link = tmp_path / ".msmtprc"
    link.symlink_to("/nix/store/0000000000000000000000000000000-home-manager-files/.msmtprc")
    said = write.unwritable(link, b"account a\n", tmp_path)
    assert said is not None and "nix store" in said and "home-manager" in said
    plain = tmp_path / "plain"
    plain.write_bytes(b"account a\n")
    assert write.unwritable(plain, b"account a\n", tmp_path) is None  # the sibling that may be written


def test_a_getmail_account_is_named_as_one_to_move_by_hand_and_its_file_is_untouched(isolated_env: Path) -> None:
    """upgrade edits msmtp, mpop, mbsync and offlineimap configs; a cleartext account of a tool whose
    config it does not edit gets a plain line, not an editor meant for another grammar — and no
    connection is made."""
    from tests.test_pins_real import cli

    directory = isolated_env / ".config" / "getmail"
    directory.mkdir(parents=True)
    rc = directory / "getmailrc"
    rc.write_text(
        "[retriever]\ntype = SimplePOP3Retriever\nserver = 127.0.0.1\nport = 9\nusername = u\n\n"
        "[destination]\ntype = Maildir\npath = ~/Mail/\n"
    )
    before = rc.read_bytes()
    code, out, err = cli("upgrade", "--yes", "getmail:getmailrc")
    assert code == 0, err
    assert "getmail:getmailrc: mailpin does not edit getmail's config yet" in out + err
    assert rc.read_bytes() == before
    assert not list(directory.glob("getmailrc.mailpin-*"))


def test_an_mpop_starttls_account_moves_to_implicit_tls_and_fetches_there(
    isolated_env: Path, pki, dovecot_server, dns_server: DnsServer, shims: Path
) -> None:
    """mpop's config is msmtp's grammar: the same edit (port, tls_starttls in the account's section),
    checked by `mpop --pretend` and mailpin's mpop reader; found by `_pop3s._tcp` (RFC 6186)."""
    need("mpop")
    env = shim_env(shims)
    for sub in ("new", "cur", "tmp"):
        (isolated_env / "Mail" / "work" / sub).mkdir(parents=True)
    with CountingServer(dovecot_server.pop3s_port) as implicit:
        dns_server.serve([("_pop3s._tcp.example.org", "localhost", implicit.port, 0, 1)])
        _settings(isolated_env, dns_server)
        text = (
            f"defaults\ntls on\ntls_trust_file {pki.ca_pem}\ndelivery maildir ~/Mail/work\n\n"
            f"account work\nhost localhost\nport {dovecot_server.pop3_port}\ntls_starttls on\n"
            "user test@example.org\npassword secret\n"
        )
        rc = isolated_env / ".mpoprc"
        rc.write_text(text)
        rc.chmod(0o600)
        assert _mailpin(env, "init", "--yes")[0] == 0
        assert _profiles()["mpop:work"].mode is Mode.STARTTLS  # type: ignore[attr-defined]
        code, out, err = _mailpin(env, "upgrade", "--yes", "--json", "mpop:work")
        assert code == 0, err
        (work,) = json.loads(out)["accounts"]
        assert work["state"] == "moved" and work["endpoint"] == f"localhost:{implicit.port}", work
        changed = _changed(text.encode(), rc.read_bytes())
        assert changed == [
            f"- port {dovecot_server.pop3_port}\n", f"+ port {implicit.port}\n",
            "- tls_starttls on\n", "+ tls_starttls off\n",
        ], changed  # fmt: skip
        profile = _profiles()["mpop:work"]
        assert (profile.mode, profile.port) == (Mode.IMPLICIT, implicit.port)  # type: ignore[attr-defined]
        dovecot_server.deliver("INBOX", MESSAGE)
        connections = implicit.settled()
        done = run(["mpop", "-q", "work"], env)
        assert done.returncode == 0, done.stderr
        assert implicit.settled() == connections + 1  # the fetch went over Implicit TLS, one connection
