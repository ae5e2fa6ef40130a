"""`mailpin setup ADDRESS` (issue 20): a new account found through a real DNS server (dnsmasq on
127.0.0.1), Implicit TLS preferred, pinned, and written as a stanza that the real tool accepts and
uses: `msmtp --pretend` and a send, an `mbsync` sync, an `offlineimap` run against the lab. And what
must not be set up: an SRV target outside the domain nobody confirmed, a certificate that does not
validate, a password in clear.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from mailpin.env import Env
from mailpin.model import Mode
from mailpin.state.store import PinStore
from tests.conftest import need
from tests.lab.dns import DnsServer
from tests.test_run_real import MESSAGE, mailpin_command, run, shim_env
from tests.test_upgrade import _settings

ADDRESS = "alice@example.org"


def _setup(env: dict[str, str], *argv: str) -> tuple[int, dict[str, object], str]:
    done = run([mailpin_command(), "setup", ADDRESS, "--json", *argv], env, timeout=120)
    out = done.stdout.decode()
    return done.returncode, json.loads(out) if out.strip() else {}, done.stderr.decode()


def _written(home: Path, pki, dns: DnsServer, shims: Path, tool: str, service: str, port: int):
    """DNS with SRV SERVICE → localhost:PORT, and `setup --write --yes` for TOOL with the lab's login."""
    need(tool)
    dns.serve([(f"{service}.example.org", "localhost", port, 0, 1)])
    _settings(home, dns)
    env = shim_env(shims)
    code, data, err = _setup(
        env, "--tool", tool, "--host", "localhost", "--trust-file", str(pki.ca_pem), "--user", "test",
        "--password-command", "echo secret", "--write", "--yes",
    )  # fmt: skip
    assert code == 0, (data, err)
    assert (data["endpoint"], data["mode"], data["written"]) == (f"localhost:{port}", "implicit", True), data
    return env, data


def _pinned(key: str) -> object:
    return PinStore.for_env(Env.from_os()).load().get(key)


def test_msmtp_stanza_is_found_pinned_written_and_sends(
    isolated_env: Path,
    pki,
    smtp_server,
    dns_server: DnsServer,
    shims: Path,
) -> None:
    env, _ = _written(isolated_env, pki, dns_server, shims, "msmtp", "_submissions._tcp", smtp_server.smtps_port)
    rc = (isolated_env / ".msmtprc").read_text()
    assert "tls_starttls off" in rc and 'passwordeval "echo secret"' in rc and "secret\n" not in rc
    assert (isolated_env / ".msmtprc").stat().st_mode & 0o777 == 0o600
    pretend = subprocess.run(["/usr/bin/msmtp", "--pretend", "-a", "example.org"], capture_output=True, text=True)
    assert pretend.returncode == 0 and f"port = {smtp_server.smtps_port}" in pretend.stdout, pretend.stderr
    profile = _pinned("msmtp:example.org")
    assert profile is not None and profile.mode is Mode.IMPLICIT  # type: ignore[attr-defined]
    received = len(smtp_server.messages)
    done = run(["msmtp", "-a", "example.org", "you@example.org"], env, MESSAGE)  # through mailpin's shim
    assert done.returncode == 0, done.stderr
    assert len(smtp_server.messages) == received + 1


def test_mbsync_stanza_syncs(isolated_env: Path, pki, dovecot_server, dns_server: DnsServer, shims: Path) -> None:
    env, data = _written(isolated_env, pki, dns_server, shims, "mbsync", "_imaps._tcp", dovecot_server.imaps_port)
    assert "IMAPS" in str(data["stanza"]), data
    done = run(["mbsync", "-a"], env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert (isolated_env / "Mail" / "example.org" / "INBOX" / "cur").is_dir()


def test_offlineimap_stanza_runs(isolated_env: Path, pki, dovecot_server, dns_server: DnsServer, shims: Path) -> None:
    port = dovecot_server.imaps_port
    env, data = _written(isolated_env, pki, dns_server, shims, "offlineimap", "_imaps._tcp", port)
    assert "ssl = yes" in str(data["stanza"]) and "[general]" in str(data["stanza"]), data
    done = run(["offlineimap", "-o", "-u", "quiet"], env, timeout=180)
    assert done.returncode == 0, (done.stdout, done.stderr)
    assert (isolated_env / "Mail" / "example.org" / "INBOX").is_dir()


def test_an_srv_target_outside_the_domain_is_not_used_unconfirmed(
    isolated_env: Path,
    pki,
    smtp_server,
    dns_server: DnsServer,
    shims: Path,
) -> None:
    dns_server.serve([("_submissions._tcp.example.org", "localhost", smtp_server.smtps_port, 0, 1)])
    _settings(isolated_env, dns_server)
    code, data, _ = _setup(shim_env(shims), "--tool", "msmtp", "--trust-file", str(pki.ca_pem), "--write", "--yes")
    assert code == 69 and data["endpoint"] is None and data["tried"] == [], data
    assert any("outside example.org" in str(item) for item in data["not_tried"]), data  # type: ignore[attr-defined]
    assert not (isolated_env / ".msmtprc").exists() and _pinned("msmtp:example.org") is None


@pytest.mark.parametrize("variant", ["foreign-ca", "self-signed"])
def test_a_certificate_that_does_not_validate_is_not_set_up(
    isolated_env: Path,
    pki,
    smtp_server,
    dns_server: DnsServer,
    shims: Path,
    variant: str,
) -> None:
    dns_server.serve([("_submissions._tcp.example.org", "localhost", smtp_server.smtps_port, 0, 1)])
    _settings(isolated_env, dns_server)
    smtp_server.serve(variant)
    code, data, _ = _setup(
        shim_env(shims), "--tool", "msmtp", "--host", "localhost", "--trust-file", str(pki.ca_pem), "--write", "--yes"
    )
    assert code == 69 and data["endpoint"] is None, data
    assert any("does not validate" in str(t["problem"]) for t in data["tried"]), data  # type: ignore[index,union-attr]
    assert not (isolated_env / ".msmtprc").exists() and _pinned("msmtp:example.org") is None


def test_without_a_password_command_the_stanza_has_a_placeholder_not_a_password(
    isolated_env: Path,
    pki,
    smtp_server,
    dns_server: DnsServer,
    shims: Path,
) -> None:
    need("msmtp")
    dns_server.serve([("_submissions._tcp.example.org", "localhost", smtp_server.smtps_port, 0, 1)])
    _settings(isolated_env, dns_server)
    code, data, err = _setup(shim_env(shims), "--tool", "msmtp", "--host", "localhost", "--trust-file", str(pki.ca_pem))
    assert code == 0 and data["written"] is False, (data, err)
    stanza = str(data["stanza"])
    assert '# passwordeval "pass show mail/example.org"' in stanza and "\npassword" not in stanza
    assert not (isolated_env / ".msmtprc").exists()  # printed, not written, without --write


def test_starttls_only_when_no_implicit_tls_endpoint_works(
    isolated_env: Path, pki, smtp_server, dns_server: DnsServer, shims: Path
) -> None:
    """No Implicit TLS record and nothing at 465 on the host: the STARTTLS record is used, and said."""
    need("msmtp")
    dns_server.serve([("_submission._tcp.example.org", "localhost", smtp_server.submission_port, 0, 1)])
    _settings(isolated_env, dns_server)
    code, data, err = _setup(shim_env(shims), "--tool", "msmtp", "--host", "localhost", "--trust-file", str(pki.ca_pem))
    assert code == 0, (data, err)
    assert (data["endpoint"], data["mode"]) == (f"localhost:{smtp_server.submission_port}", "starttls"), data
    assert "tls_starttls on" in str(data["stanza"]) and "STARTTLS (no Implicit TLS found)" in str(data["stanza"])
    tried = {(t["endpoint"], t["mode"]) for t in data["tried"]}  # type: ignore[union-attr]
    assert ("localhost:465", "implicit") in tried  # Implicit TLS was tried first
